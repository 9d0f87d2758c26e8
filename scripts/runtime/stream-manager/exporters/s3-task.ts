/**
 * `s3TaskExecutor`: every message is a JSON S3ExportTaskDefinition
 * `{inputUrl: "file:/abs/path", bucket, key, userMetadata?}` (Greengrass developer guide, "Export
 * configurations for supported AWS Cloud destinations", Amazon S3 objects). The file is uploaded
 * to `bucket/key`, one task after the other in append order: PutObject up to
 * sizeThresholdForMultipartUploadBytes, a multipart upload of 5 MiB parts above it (read part by
 * part, so a large file is never held in memory whole; a retry sends only the parts S3 does not
 * have yet).
 *
 * Progress goes to statusConfig.statusStreamName as JSON StatusMessages (eventType S3Task 0):
 * InProgress when a task starts (INFO) and after each part (DEBUG), Success (INFO), Failure (ERROR).
 * Only messages at or above the configured verbosity are appended (statusLevel ERROR 0 .. TRACE 4,
 * default INFO 2).
 *
 * A task that can never succeed (not JSON, a field missing, a file that is not there, a bad key
 * pattern, S3 refusing it: NoSuchBucket, AccessDenied, ...) gets a Failure status and the stream
 * moves on. A failure that may pass (no connection, a 5xx, throttling, expired credentials)
 * rejects the batch: the server retries it, and the tasks of the batch that already succeeded are
 * not uploaded again.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ConfigError, errorMessage } from '../../../../components/lib/errors';
import type { ExportConfig, ExportEnvironment, Exporter, StoredMessage } from '../types';
import { awsCredentials, awsErrorName, describeAwsError, DeliveredSet, httpHandler, intField, isCredentialError, isObject, isRefusal, limitedLog, Rejections } from './common';
import { KeyPatternError, resolveKey } from './key-pattern';

export const MIB = 1024 * 1024;
/** S3's smallest part but the last (Amazon S3 User Guide, "Multipart upload limits"), and the Stream Manager's minimum threshold. */
export const MIN_PART_BYTES = 5 * MIB;
const MAX_PARTS = 10_000;
/** Amazon S3's largest object. */
const MAX_OBJECT_BYTES = 5 * 1024 * 1024 * MIB;
/** One request (one part, or a whole PutObject below the threshold) may take this long. */
const REQUEST_TIMEOUT_MS = 120_000;

export const Status = { Success: 0, Failure: 1, InProgress: 2, Warning: 3, Canceled: 4 } as const;
export const StatusLevel = { ERROR: 0, WARN: 1, INFO: 2, DEBUG: 3, TRACE: 4 } as const;
type StatusCode = (typeof Status)[keyof typeof Status];
type LevelCode = (typeof StatusLevel)[keyof typeof StatusLevel];

export interface S3ExportTaskDefinition {
  inputUrl: string;
  bucket: string;
  key: string;
  userMetadata?: Record<string, string>;
}

/** A task that can never succeed: the reason goes into the Failure status. */
class TaskFailure extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** Bucket names (Amazon S3 User Guide, "General purpose bucket naming rules"). */
const BUCKET = /^(?!xn--)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const RESERVED_METADATA = '$aws-gg-';

/** The task definition out of a message, or a TaskFailure saying what is wrong with it. */
export function parseTask(payload: Buffer): S3ExportTaskDefinition {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    throw new TaskFailure('not_json', `the message is not a JSON S3ExportTaskDefinition: ${errorMessage(e)}`);
  }
  if (!isObject(v)) throw new TaskFailure('not_object', 'the message is not a JSON object (S3ExportTaskDefinition)');
  const { inputUrl, bucket, key, userMetadata } = v;
  if (typeof inputUrl !== 'string' || inputUrl.length === 0) throw new TaskFailure('input_url', 'inputUrl is missing (a file URL: file:/absolute/path)');
  if (typeof bucket !== 'string' || bucket.length === 0) throw new TaskFailure('bucket', 'bucket is missing');
  if (!BUCKET.test(bucket) || bucket.includes('..')) throw new TaskFailure('bucket', `bucket '${bucket}' is not a valid S3 bucket name`);
  if (typeof key !== 'string' || key.length === 0) throw new TaskFailure('key', 'key is missing');
  if (userMetadata !== undefined && userMetadata !== null) {
    if (!isObject(userMetadata)) throw new TaskFailure('user_metadata', 'userMetadata must be an object of strings');
    for (const [k, m] of Object.entries(userMetadata)) {
      if (typeof m !== 'string') throw new TaskFailure('user_metadata', `userMetadata '${k}' must be a string`);
      if (k.toLowerCase().startsWith(RESERVED_METADATA)) throw new TaskFailure('user_metadata', `userMetadata key '${k}': keys starting with ${RESERVED_METADATA} are reserved`);
    }
    return { inputUrl, bucket, key, userMetadata: userMetadata as Record<string, string> };
  }
  return { inputUrl, bucket, key };
}

/** `file:/abs/path` (or `file:///abs/path`) -> the absolute path; anything else is a TaskFailure. */
export function inputPath(inputUrl: string): string {
  let url: URL;
  try {
    url = new URL(inputUrl);
  } catch {
    throw new TaskFailure('input_url', `inputUrl '${inputUrl}' is not a URL (expected file:/absolute/path)`);
  }
  if (url.protocol !== 'file:') throw new TaskFailure('input_url', `inputUrl '${inputUrl}': only file: URLs are supported`);
  if (url.host !== '' && url.host !== 'localhost') throw new TaskFailure('input_url', `inputUrl '${inputUrl}': a file URL must name a local file`);
  const p = fileURLToPath(url);
  if (!path.isAbsolute(p)) throw new TaskFailure('input_url', `inputUrl '${inputUrl}' is not an absolute path`);
  return p;
}

export interface S3TaskOptions {
  sizeThresholdForMultipartUploadBytes: number;
  statusStreamName?: string;
  statusLevel: LevelCode;
}

/** The S3 task executor's own fields: sizeThresholdForMultipartUploadBytes (>= 5 MiB, default 5 MiB) and statusConfig. */
export function s3TaskOptions(config: ExportConfig): S3TaskOptions {
  const threshold = intField(config, 'sizeThresholdForMultipartUploadBytes', MIN_PART_BYTES, Number.MAX_SAFE_INTEGER, MIN_PART_BYTES);
  const sc = config['statusConfig'];
  if (sc === undefined || sc === null) return { sizeThresholdForMultipartUploadBytes: threshold, statusLevel: StatusLevel.INFO };
  if (!isObject(sc)) throw new ConfigError('statusConfig', `export '${config.identifier}': statusConfig must be an object {statusStreamName, statusLevel}`);
  const level = sc['statusLevel'] ?? StatusLevel.INFO;
  if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 4) {
    throw new ConfigError('statusConfig/statusLevel', `export '${config.identifier}': statusLevel must be 0 (ERROR) .. 4 (TRACE), got ${JSON.stringify(level)}`);
  }
  const name = sc['statusStreamName'];
  if (name !== undefined && name !== null && (typeof name !== 'string' || name.length === 0)) {
    throw new ConfigError('statusConfig/statusStreamName', `export '${config.identifier}': statusStreamName must be a stream name, got ${JSON.stringify(name)}`);
  }
  return { sizeThresholdForMultipartUploadBytes: threshold, statusLevel: level as LevelCode, ...(typeof name === 'string' ? { statusStreamName: name } : {}) };
}

/** The part size: 5 MiB, larger only when 10,000 parts of it would not hold the file. */
export function partSize(fileBytes: number): number {
  const min = Math.ceil(fileBytes / MAX_PARTS);
  return Math.max(MIN_PART_BYTES, Math.ceil(min / MIB) * MIB);
}

export interface S3TaskExporter extends Exporter {
  readonly rejections: Rejections;
  /** Tasks uploaded and their bytes; multipart uploads, and parts a retry did not send again. */
  readonly uploaded: { tasks: number; bytes: number; multipart: number; resumedParts: number };
}

export function createS3TaskExporter(config: ExportConfig, streamName: string, env: ExportEnvironment): S3TaskExporter {
  const o = s3TaskOptions(config);
  const endpoint = env.endpoints.s3;
  const creds = awsCredentials(env, endpoint, 'S3');
  const client = new S3Client({
    region: env.region,
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    credentials: creds.provider,
    // The server's backoff owns retries.
    maxAttempts: 1,
    // S3-compatible stores (s3rver) refuse the aws-chunked CRC32 bodies the SDK sends by default since 3.729 (aws/aws-sdk-js-v3#6810).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: httpHandler(REQUEST_TIMEOUT_MS),
  });
  const delivered = new DeliveredSet();
  const rejections = new Rejections();
  const uploaded = { tasks: 0, bytes: 0, multipart: 0, resumedParts: 0 };
  const limited = limitedLog();
  /** When a task was first tried: its key's timestamp stays the same across the server's retries. */
  const firstTried = new Map<number, Date>();

  const status = async (level: LevelCode, code: StatusCode, m: StoredMessage, task: unknown, message: string): Promise<void> => {
    if (!o.statusStreamName || level > o.statusLevel) return;
    const body = {
      eventType: 0,
      statusLevel: level,
      status: code,
      statusContext: {
        ...(isObject(task) ? { s3ExportTaskDefinition: task } : {}),
        exportIdentifier: config.identifier,
        streamName,
        sequenceNumber: m.sequenceNumber,
      },
      message,
      timestampEpochMs: Date.now(),
    };
    try {
      await env.appendToStream(o.statusStreamName, Buffer.from(JSON.stringify(body)));
    } catch (e) {
      // The upload itself is done (or failed for its own reason); a missing status stream must not stall the tasks.
      limited(`status:${o.statusStreamName}`, (suppressed) =>
        env.log.warn('S3 task status not appended to the status stream', { export: config.identifier, stream: streamName, statusStream: o.statusStreamName, err: errorMessage(e), suppressed }),
      );
    }
  };

  const send = async (body: Buffer | Uint8Array, bucket: string, key: string, metadata: Record<string, string> | undefined, contentLength: number): Promise<void> => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: contentLength, ...(metadata ? { Metadata: metadata } : {}) }));
  };

  /**
   * Multipart uploads a retry can continue, by the task's sequence number: the parts already in S3
   * (their ETags) are not sent again. Only while the same file (size, modification time) goes to
   * the same bucket and key; in memory, so a runtime restart starts the upload anew.
   */
  const pending = new Map<number, PendingUpload>();
  const abort = async (seq: number): Promise<void> => {
    const up = pending.get(seq);
    if (!up) return;
    pending.delete(seq);
    // Parts of an abandoned upload cost storage until aborted (or a bucket lifecycle rule removes them).
    await client.send(new AbortMultipartUploadCommand({ Bucket: up.bucket, Key: up.key, UploadId: up.uploadId })).catch(() => undefined);
  };

  const multipart = async (file: string, st: { size: number; mtimeMs: number }, task: S3ExportTaskDefinition, key: string, m: StoredMessage): Promise<void> => {
    let up = pending.get(m.sequenceNumber);
    if (up && (up.bucket !== task.bucket || up.key !== key || up.size !== st.size || up.mtimeMs !== st.mtimeMs)) {
      await abort(m.sequenceNumber);
      up = undefined;
    }
    if (!up) {
      const created = await client.send(new CreateMultipartUploadCommand({ Bucket: task.bucket, Key: key, ...(task.userMetadata ? { Metadata: task.userMetadata } : {}) }));
      if (!created.UploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
      up = { uploadId: created.UploadId, bucket: task.bucket, key, size: st.size, mtimeMs: st.mtimeMs, partBytes: partSize(st.size), parts: new Map() };
      pending.set(m.sequenceNumber, up);
    } else {
      uploaded.resumedParts += up.parts.size;
    }
    const total = Math.ceil(st.size / up.partBytes);
    const fh = await fs.promises.open(file, 'r');
    try {
      const buf = Buffer.allocUnsafe(up.partBytes);
      for (let n = 1; n <= total; n++) {
        if (up.parts.has(n)) continue;
        const offset = (n - 1) * up.partBytes;
        const want = Math.min(up.partBytes, st.size - offset);
        const { bytesRead } = await fh.read(buf, 0, want, offset);
        if (bytesRead !== want) throw new TaskFailure('file_changed', `${file} became shorter while it was uploaded`);
        const r = await client.send(new UploadPartCommand({ Bucket: up.bucket, Key: key, UploadId: up.uploadId, PartNumber: n, Body: buf.subarray(0, want), ContentLength: want }));
        up.parts.set(n, r.ETag ?? '');
        await status(StatusLevel.DEBUG, Status.InProgress, m, task, `Uploaded part ${n} of ${total} (${offset + want} of ${st.size} bytes)`);
      }
      const parts = [...up.parts.entries()].sort((a, b) => a[0] - b[0]).map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
      await client.send(new CompleteMultipartUploadCommand({ Bucket: up.bucket, Key: key, UploadId: up.uploadId, MultipartUpload: { Parts: parts } }));
      pending.delete(m.sequenceNumber);
    } catch (e) {
      if (awsErrorName(e) === 'NoSuchUpload') {
        // Aborted behind our back (a lifecycle rule): the retry starts a new upload.
        pending.delete(m.sequenceNumber);
        throw new Error(`multipart upload of ${file} is gone from S3 (NoSuchUpload); starting it anew`, { cause: e });
      }
      if (e instanceof TaskFailure || isRefusal(e)) await abort(m.sequenceNumber);
      throw e;
    } finally {
      await fh.close();
    }
  };

  /** One task: resolves when it is done or failed for good (Failure status sent); rejects if it may work later. */
  const runTask = async (m: StoredMessage): Promise<void> => {
    let task: unknown;
    try {
      task = JSON.parse(m.payload.toString('utf8'));
    } catch {
      task = undefined;
    }
    try {
      const def = parseTask(m.payload);
      const file = inputPath(def.inputUrl);
      const at = firstTried.get(m.sequenceNumber) ?? new Date();
      firstTried.set(m.sequenceNumber, at);
      let key: string;
      try {
        key = resolveKey(def.key, at);
      } catch (e) {
        if (e instanceof KeyPatternError) throw new TaskFailure('key_pattern', `key '${def.key}': ${e.message}`);
        throw e;
      }
      if (Buffer.byteLength(key) > 1024) throw new TaskFailure('key', `key '${key.slice(0, 64)}...' is longer than S3's 1024 bytes`);
      let size: number;
      let mtimeMs: number;
      try {
        const st = await fs.promises.stat(file);
        if (!st.isFile()) throw new TaskFailure('input_file', `${file} is not a regular file`);
        size = st.size;
        mtimeMs = st.mtimeMs;
      } catch (e) {
        if (e instanceof TaskFailure) throw e;
        throw new TaskFailure('input_file', `cannot read ${file}: ${errorMessage(e)}`);
      }
      if (size > MAX_OBJECT_BYTES) throw new TaskFailure('input_file', `${file} is ${size} bytes, more than S3's 5 TiB object limit`);
      await status(StatusLevel.INFO, Status.InProgress, m, task, `Uploading ${file} (${size} bytes) to s3://${def.bucket}/${key}`);
      try {
        if (size > o.sizeThresholdForMultipartUploadBytes) {
          await multipart(file, { size, mtimeMs }, def, key, m);
          uploaded.multipart++;
        } else {
          let body: Buffer;
          try {
            body = await fs.promises.readFile(file);
          } catch (e) {
            throw new TaskFailure('input_file', `cannot read ${file}: ${errorMessage(e)}`);
          }
          await send(body, def.bucket, key, def.userMetadata, body.length);
        }
      } catch (e) {
        if (e instanceof TaskFailure) throw e;
        if (isCredentialError(e)) creds.invalidate();
        if (isRefusal(e)) throw new TaskFailure('s3_refused', `S3 refused the upload to s3://${def.bucket}/${key}: ${describeAwsError(e)}`);
        throw e;
      }
      uploaded.tasks++;
      uploaded.bytes += size;
      firstTried.delete(m.sequenceNumber);
      await status(StatusLevel.INFO, Status.Success, m, task, `Uploaded ${file} to s3://${def.bucket}/${key}`);
    } catch (e) {
      if (!(e instanceof TaskFailure)) throw e;
      firstTried.delete(m.sequenceNumber);
      await abort(m.sequenceNumber);
      rejections.count(e.reason);
      limited(`failure:${e.reason}`, (suppressed) =>
        env.log.error('S3 export task failed; not retried', { export: config.identifier, stream: streamName, sequenceNumber: m.sequenceNumber, reason: e.reason, err: e.message, suppressed }),
      );
      await status(StatusLevel.ERROR, Status.Failure, m, task, e.message);
    }
  };

  return {
    kind: 's3TaskExecutor',
    rejections,
    uploaded,
    async send(batch) {
      for (const m of batch) {
        if (delivered.has(m)) continue;
        try {
          await runTask(m);
        } catch (e) {
          throw new Error(`S3 task ${m.sequenceNumber} of ${streamName}: ${describeAwsError(e)}`, { cause: e });
        }
        delivered.add(m);
      }
      delivered.settle(batch);
    },
    async close() {
      await Promise.allSettled([...pending.keys()].map((seq) => abort(seq)));
      client.destroy();
    },
  };
}

interface PendingUpload {
  uploadId: string;
  bucket: string;
  key: string;
  size: number;
  mtimeMs: number;
  partBytes: number;
  /** Part number -> ETag of the parts S3 has. */
  parts: Map<number, string>;
}

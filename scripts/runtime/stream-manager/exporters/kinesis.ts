/**
 * `kinesis`: each message becomes one Kinesis Data Streams record of `kinesisStreamName`, its data the
 * message's bytes and its partition key a random UUID (Greengrass developer guide, "Export
 * configurations for supported AWS Cloud destinations": records spread over every shard).
 * PutRecords (Amazon Kinesis Data Streams API Reference) takes at most 500 records and 5 MiB per
 * request, 1 MiB per record (data plus partition key); a batch is split to fit.
 *
 * Partial failures: PutRecords answers per record; those with an ErrorCode
 * (ProvisionedThroughputExceededException, InternalFailure) are not in the stream. The exporter
 * marks the records that arrived and rejects the batch naming what failed; the server retries the
 * batch with its backoff and only the records not yet delivered are sent again, with the partition
 * key they had. Rejecting the whole batch and sending it again would put a second copy of every
 * record that did arrive into the stream, and consumers cannot tell a copy from a new record; a
 * record retried later costs only its place in the order (which random partition keys do not keep
 * across shards anyway). What is marked lives in memory: a runtime restart during a partial failure
 * sends the batch whole again.
 *
 * A record that can never be put (over 1 MiB) is skipped, logged and counted, so the stream does not
 * stall on it.
 */
import { randomUUID } from 'node:crypto';
import { KinesisClient, PutRecordsCommand, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import type { ExportConfig, ExportEnvironment, Exporter, StoredMessage } from '../types';
import { awsCredentials, describeAwsError, DeliveredSet, httpHandler, isCredentialError, limitedLog, Rejections, stringField } from './common';

/** PutRecords limits (Amazon Kinesis Data Streams Developer Guide, "Quotas and limits"). */
export const KINESIS_MAX_RECORDS = 500;
export const KINESIS_MAX_REQUEST_BYTES = 5 * 1024 * 1024;
export const KINESIS_MAX_RECORD_BYTES = 1024 * 1024;
const REQUEST_TIMEOUT_MS = 30_000;
/** Stream names (CreateStream: 1-128 of [a-zA-Z0-9_.-]). */
const STREAM_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;

export interface KinesisExporter extends Exporter {
  readonly rejections: Rejections;
  readonly counts: { records: number; requests: number; failedRecords: number };
}

/** Consecutive runs of messages that fit one PutRecords each. */
export function chunkRecords<T extends { bytes: number }>(items: readonly T[], maxRecords = KINESIS_MAX_RECORDS, maxBytes = KINESIS_MAX_REQUEST_BYTES): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const it of items) {
    if (cur.length > 0 && (cur.length >= maxRecords || bytes + it.bytes > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it);
    bytes += it.bytes;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export function createKinesisExporter(config: ExportConfig, streamName: string, env: ExportEnvironment): KinesisExporter {
  const kinesisStreamName = stringField(config, 'kinesisStreamName', STREAM_NAME, 'a Kinesis stream name (1-128 of letters, digits, _ . -)');
  const endpoint = env.endpoints.kinesis;
  const creds = awsCredentials(env, endpoint, 'Kinesis');
  const client = new KinesisClient({
    region: env.region,
    ...(endpoint ? { endpoint } : {}),
    credentials: creds.provider,
    maxAttempts: 1,
    requestHandler: httpHandler(REQUEST_TIMEOUT_MS),
  });
  const delivered = new DeliveredSet();
  /** A retried record keeps its partition key (same shard as its first try). */
  const keys = new Map<number, string>();
  const rejections = new Rejections();
  const counts = { records: 0, requests: 0, failedRecords: 0 };
  const limited = limitedLog();

  return {
    kind: 'kinesis',
    rejections,
    counts,
    async send(batch) {
      const todo: Array<{ m: StoredMessage; entry: PutRecordsRequestEntry; bytes: number }> = [];
      for (const m of batch) {
        if (delivered.has(m)) continue;
        let key = keys.get(m.sequenceNumber);
        if (!key) {
          key = randomUUID();
          keys.set(m.sequenceNumber, key);
        }
        const bytes = m.payload.length + Buffer.byteLength(key);
        if (bytes > KINESIS_MAX_RECORD_BYTES) {
          rejections.count('record_too_large');
          limited('record_too_large', (suppressed) =>
            env.log.error('message larger than a Kinesis record (1 MiB); skipped', { export: config.identifier, stream: streamName, sequenceNumber: m.sequenceNumber, bytes: m.payload.length, suppressed }),
          );
          delivered.add(m);
          keys.delete(m.sequenceNumber);
          continue;
        }
        todo.push({ m, entry: { Data: m.payload, PartitionKey: key }, bytes });
      }
      let failed = 0;
      let firstError = '';
      for (const chunk of chunkRecords(todo)) {
        counts.requests++;
        let answer;
        try {
          answer = await client.send(new PutRecordsCommand({ StreamName: kinesisStreamName, Records: chunk.map((c) => c.entry) }));
        } catch (e) {
          if (isCredentialError(e)) creds.invalidate();
          // The whole request failed: nothing of this chunk is in the stream.
          throw new Error(`PutRecords to ${kinesisStreamName}: ${describeAwsError(e)}`, { cause: e });
        }
        const results = answer.Records ?? [];
        chunk.forEach((c, i) => {
          const r = results[i];
          if (r && !r.ErrorCode && r.SequenceNumber) {
            delivered.add(c.m);
            keys.delete(c.m.sequenceNumber);
            counts.records++;
          } else {
            failed++;
            counts.failedRecords++;
            if (!firstError) firstError = r ? `${r.ErrorCode ?? 'no result'}: ${r.ErrorMessage ?? ''}` : 'no result for the record';
          }
        });
      }
      if (failed > 0) {
        throw new Error(`PutRecords to ${kinesisStreamName}: ${failed} of ${todo.length} records failed (${firstError}); only those are sent again`);
      }
      delivered.settle(batch);
    },
    close() {
      client.destroy();
      keys.clear();
      return Promise.resolve();
    },
  };
}

/**
 * Greengrass Stream Manager as Uplink exporters (docs/uplink.md "Stream Manager"): the outbox and the
 * sender stay as they are; each `streammanager-*` exporter turns one sealed batch into Stream Manager
 * messages, and Stream Manager exports them to AWS with the Token Exchange role.
 *
 *  - `streammanager-s3`: the batch is written to a file in the Uplink's work folder and an S3 export
 *    task `{inputUrl: "file:<path>", bucket, key, userMetadata}` is appended to the class's task
 *    stream; `send` resolves only when the status stream reports Success for that key, then the file
 *    is deleted. The key is the direct S3 exporter's (exporters/s3.ts `s3Key`), so the two paths
 *    write the same objects. A Failure rejects (the sender retries: a new task); a task still queued
 *    after `taskTimeoutMs` rejects too, but stays queued and is not appended again.
 *  - `streammanager-sitewise`: 1-minute and 15-minute rollups become PutAssetPropertyValueEntry
 *    messages (the mean of each point), appended to the class's SiteWise stream.
 *  - `streammanager-kinesis`: each record (one NDJSON line, the contract payload) is one message of
 *    the class's Kinesis stream, one Kinesis record.
 *  SiteWise and Kinesis resolve once every message is appended: Stream Manager's stream on disk is the
 *  buffer from then on, sized from the Uplink's own bounds (streamPlan).
 *
 * One stream per (class, destination): tasks of one stream run in append order, so a class of its
 * own with its own export priority (1 for alarms ... 10 for health) is what keeps alarms first.
 *
 * Restarts: at connect the streams are created (or updated to the planned definition), every task of
 * the task streams and every status of the status stream is read back: a task with a final status is
 * done (a leftover file of a Success is deleted, the batch's next send resolves at once without a
 * second upload), a task without one is still queued (its batch's next send waits for it instead of
 * appending another). Only a crash between the append and the outbox noticing nothing was appended
 * cannot be told apart: there the task may be appended twice, and S3 gets the same key twice
 * (overwritten, not doubled).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Clock, TimerHandle } from '../../lib/clock';
import { errorMessage } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Metrics } from '../../lib/metrics';
import { CLASSES, type RecordClass } from '../classes';
import { EXPORTER_CLASSES, type ExporterName, type StreamManagerConfig, type StreamManagerDestination } from '../config';
import { s3Key } from './s3';
import { isServerAnswer, sm, SmConnection, SmUnavailableError, type SdkClient, type SdkStreamInfo } from './stream-manager-client';
import { ExportError, type ExportBatch, type Exporter } from './types';

// ---------------------------------------------------------------------------------------------
// The streams

export type SmStrategy = 'RejectNewData' | 'OverwriteOldestData';

export interface SmStreamPlan {
  name: string;
  kind: StreamManagerDestination | 'status';
  cls?: RecordClass;
  maxSize: number;
  streamSegmentSize: number;
  timeToLiveMillis: number;
  strategyOnFull: SmStrategy;
  flushOnWrite: boolean;
  /** Export priority, 1 (most urgent) to 10; none for the status stream. */
  priority?: number;
  exportId?: string;
}

/** Export priority per class: lower is more urgent (Stream Manager's ExportDefinition). Alarms first, health last. */
export const SM_PRIORITY: Record<RecordClass, number> = { alarms: 1, events: 2, '1m': 3, '15m': 4, '1d': 5, health: 10 };
/** Each class stream's share of maxOutboxBytes (the same proportions as a day's volume: 1-minute rollups dominate). */
export const SM_SHARE: Record<RecordClass, number> = { alarms: 0.05, events: 0.05, '1m': 0.5, '15m': 0.2, '1d': 0.05, health: 0.15 };
/** An S3 task is a few hundred bytes of JSON; its stream never needs more than this. */
const TASK_STREAM_MAX = 64 * 1024 * 1024;
const STATUS_STREAM_MAX = 16 * 1024 * 1024;
const MIN_STREAM = 1024 * 1024;
/** IoT SiteWise takes values up to 7 days old (BatchPutAssetPropertyValue); older ones it rejects, so they are not sent. */
export const SITEWISE_MAX_AGE_MS = 7 * 86_400_000;
/** ... and at most 10 minutes in the future. */
export const SITEWISE_MAX_AHEAD_MS = 10 * 60_000;

export const streamName = (prefix: string, cls: RecordClass, kind: StreamManagerDestination): string => `${prefix}${cls}-${kind}`;
export const statusStreamName = (prefix: string): string => `${prefix}s3-status`;

/**
 * Which strategy a stream uses when full, and why:
 *  - every S3 task stream: RejectNewData. The batch itself is in the outbox until its task
 *    succeeded, so a full task stream only pushes back (the append fails, the batch waits in the
 *    outbox under the outbox's own overflow policy); overwriting would silently drop queued tasks.
 *  - alarms and events (SiteWise is for rollups only; Kinesis): RejectNewData, so nothing urgent is
 *    ever dropped by Stream Manager; the append fails and the outbox keeps the batch.
 *  - 1m, 15m, 1d, health on SiteWise and Kinesis: OverwriteOldestData, the outbox's own rule for bulk
 *    data (oldest first), and a full stream never blocks newer data. What it overwrites before export
 *    is counted (`sm_overwritten_<stream>`, from DescribeMessageStream).
 * The time to live is maxAgeMs everywhere: Stream Manager keeps exported data until size or age evicts
 * it, so without one a RejectNewData stream would fill with exported data and block.
 */
export function strategyFor(cls: RecordClass, kind: StreamManagerDestination): SmStrategy {
  if (kind === 's3' || cls === 'alarms' || cls === 'events') return 'RejectNewData';
  return 'OverwriteOldestData';
}

function sized(maxSize: number): { maxSize: number; streamSegmentSize: number } {
  // Stream Manager deletes whole segments: a sixteenth of the stream, 64 KiB to 16 MiB (its default).
  const streamSegmentSize = Math.min(16 * 1024 * 1024, Math.max(64 * 1024, Math.floor(maxSize / 16)), maxSize);
  return { maxSize, streamSegmentSize };
}

/** The streams a configuration needs: one per (routed class, enabled destination), plus the S3 status stream. */
export function streamPlan(c: {
  sm: StreamManagerConfig;
  routes: Readonly<Record<RecordClass, readonly ExporterName[]>>;
  maxOutboxBytes: number;
  maxAgeMs: number;
}): SmStreamPlan[] {
  const out: SmStreamPlan[] = [];
  const ttl = Math.max(60_000, c.maxAgeMs);
  for (const kind of ['s3', 'sitewise', 'kinesis'] as const) {
    if (!c.sm.enabled || !c.sm[kind].enabled) continue;
    const exporter: ExporterName = `streammanager-${kind}`;
    for (const cls of CLASSES) {
      if (!c.routes[cls].includes(exporter) || !EXPORTER_CLASSES[exporter].includes(cls)) continue;
      // A class's share is split between its data streams (SiteWise, Kinesis), so together they stay within maxOutboxBytes.
      const dataKinds = (['sitewise', 'kinesis'] as const).filter((k) => c.sm[k].enabled && c.routes[cls].includes(`streammanager-${k}`) && EXPORTER_CLASSES[`streammanager-${k}`].includes(cls)).length;
      const share = Math.max(MIN_STREAM, Math.floor((c.maxOutboxBytes * SM_SHARE[cls]) / Math.max(1, kind === 's3' ? 1 : dataKinds)));
      const name = streamName(c.sm.streamPrefix, cls, kind);
      out.push({
        name,
        kind,
        cls,
        ...sized(kind === 's3' ? Math.min(share, TASK_STREAM_MAX) : share),
        timeToLiveMillis: ttl,
        strategyOnFull: strategyFor(cls, kind),
        // Alarms are fsynced message by message (a handful a day); bulk data relies on the outbox until appended.
        flushOnWrite: cls === 'alarms',
        priority: SM_PRIORITY[cls],
        exportId: `${name}-export`,
      });
    }
    if (kind === 's3' && out.some((p) => p.kind === 's3')) {
      // Statuses of tasks already seen are of no further use: the oldest go first.
      out.push({ name: statusStreamName(c.sm.streamPrefix), kind: 'status', ...sized(STATUS_STREAM_MAX), timeToLiveMillis: ttl, strategyOnFull: 'OverwriteOldestData', flushOnWrite: false });
    }
  }
  return out;
}

/** The SDK's MessageStreamDefinition for a planned stream. */
export function sdkDefinition(p: SmStreamPlan, c: { sm: StreamManagerConfig; statusStream: string }): unknown {
  const def = new sm.MessageStreamDefinition()
    .withName(p.name)
    .withMaxSize(p.maxSize)
    .withStreamSegmentSize(p.streamSegmentSize)
    .withTimeToLiveMillis(p.timeToLiveMillis)
    .withStrategyOnFull(sm.StrategyOnFull[p.strategyOnFull])
    .withPersistence(sm.Persistence.File)
    .withFlushOnWrite(p.flushOnWrite);
  if (p.kind === 'status' || p.exportId === undefined) return def;
  const exp = new sm.ExportDefinition();
  if (p.kind === 's3') {
    const status = new sm.StatusConfig().withStatusLevel(sm.StatusLevel.INFO).withStatusStreamName(c.statusStream);
    exp.withS3TaskExecutor([new sm.S3ExportTaskExecutorConfig().withIdentifier(p.exportId).withPriority(p.priority).withStatusConfig(status)]);
  } else if (p.kind === 'sitewise') {
    exp.withIotSitewise([new sm.IoTSiteWiseConfig().withIdentifier(p.exportId).withPriority(p.priority).withBatchSize(10)]);
  } else {
    exp.withKinesis([new sm.KinesisConfig().withIdentifier(p.exportId).withKinesisStreamName(c.sm.kinesis.streamName).withPriority(p.priority).withBatchSize(500)]);
  }
  return def.withExportDefinition(exp);
}

// ---------------------------------------------------------------------------------------------
// Messages

/** An S3 export task for a file (Stream Manager's S3ExportTaskDefinition, as JSON). */
export function s3TaskMessage(file: string, bucket: string, key: string, metadata: Record<string, string>): Buffer {
  const task = new sm.S3ExportTaskDefinition().withInputUrl(`file:${file}`).withBucket(bucket).withKey(key).withUserMetadata(metadata);
  return sm.util.validateAndSerializeToJsonBytes(task) as Buffer;
}

/** IoT SiteWise property alias of a point: `/dcmms/{siteId}/{assetId}/{point}`; 15-minute means go to `.../{point}/15m`. */
export function sitewiseAlias(siteId: string, assetId: string, point: string, interval: string): string {
  return `/dcmms/${siteId}/${assetId}/${point}${interval === '1m' ? '' : `/${interval}`}`;
}

export interface SitewiseConversion {
  /** PutAssetPropertyValueEntry JSON messages. */
  messages: Buffer[];
  values: number;
  /** Not sent, counted: no finite mean, outside SiteWise's time window, not a rollup. */
  skipped: { noValue: number; tooOld: number; tooNew: number; notAggregate: number };
}

interface Rollup {
  siteId?: unknown;
  assetId?: unknown;
  interval?: unknown;
  start?: unknown;
  revision?: unknown;
  series?: unknown;
}

/**
 * Rollups to SiteWise entries. Per point: the mean (`avg`) at the bucket's start, quality GOOD (the
 * contract's rollups carry no quality flag; a point without samples has no mean and is not sent).
 * Values of one alias are grouped, up to 10 per entry (the API's limit), oldest first; the same
 * bucket twice in one batch (a late revision) keeps the highest revision. entryId is a hash of the
 * alias and the entry's timestamps: a re-sent batch sends the same ids.
 */
export function sitewiseEntries(siteId: string, lines: readonly string[], now: number): SitewiseConversion {
  const skipped = { noValue: 0, tooOld: 0, tooNew: 0, notAggregate: 0 };
  const byAlias = new Map<string, Map<number, { v: number; rev: number }>>();
  for (const line of lines) {
    let r: Rollup;
    try {
      r = JSON.parse(line) as Rollup;
    } catch {
      skipped.notAggregate++;
      continue;
    }
    if (typeof r.assetId !== 'string' || typeof r.interval !== 'string' || typeof r.start !== 'number' || typeof r.series !== 'object' || r.series === null) {
      skipped.notAggregate++;
      continue;
    }
    const series = r.series as Record<string, { avg?: unknown; count?: unknown }>;
    const points = Object.keys(series);
    if (r.start < now - SITEWISE_MAX_AGE_MS) {
      skipped.tooOld += points.length;
      continue;
    }
    if (r.start > now + SITEWISE_MAX_AHEAD_MS) {
      skipped.tooNew += points.length;
      continue;
    }
    const rev = typeof r.revision === 'number' ? r.revision : 0;
    for (const point of points) {
      const avg = series[point]?.avg;
      if (typeof avg !== 'number' || !Number.isFinite(avg)) {
        skipped.noValue++;
        continue;
      }
      const alias = sitewiseAlias(siteId, r.assetId, point, r.interval);
      let m = byAlias.get(alias);
      if (!m) byAlias.set(alias, (m = new Map()));
      const prev = m.get(r.start);
      if (!prev || prev.rev <= rev) m.set(r.start, { v: avg, rev });
    }
  }
  const messages: Buffer[] = [];
  let values = 0;
  for (const [alias, m] of byAlias) {
    const ts = [...m.keys()].sort((a, b) => a - b);
    for (let i = 0; i < ts.length; i += 10) {
      const chunk = ts.slice(i, i + 10);
      const entryId = createHash('sha256').update(`${alias}\n${chunk.join(',')}`).digest('hex').slice(0, 40);
      const propertyValues = chunk.map((t) =>
        new sm.AssetPropertyValue()
          .withValue(new sm.Variant().withDoubleValue(m.get(t)!.v))
          .withTimestamp(new sm.TimeInNanos().withTimeInSeconds(Math.floor(t / 1000)).withOffsetInNanos((t % 1000) * 1_000_000))
          .withQuality(sm.Quality.GOOD),
      );
      const entry = new sm.PutAssetPropertyValueEntry().withEntryId(entryId).withPropertyAlias(alias).withPropertyValues(propertyValues);
      messages.push(sm.util.validateAndSerializeToJsonBytes(entry) as Buffer);
      values += chunk.length;
    }
  }
  return { messages, values, skipped };
}

/** A StatusMessage of an S3 task, as Stream Manager writes it (JSON, enums as integers). */
export interface S3TaskStatus {
  seq: number;
  /** 0 Success, 1 Failure, 2 InProgress, 3 Warning, 4 Canceled. */
  status: number;
  key: string;
  inputUrl: string;
  bucket: string;
  taskSequenceNumber: number | null;
  message: string;
}

export const SM_STATUS = { Success: 0, Failure: 1, InProgress: 2, Warning: 3, Canceled: 4 } as const;

export function parseStatus(seq: number, payload: Buffer): S3TaskStatus | undefined {
  try {
    const m = JSON.parse(payload.toString('utf8')) as { status?: unknown; message?: unknown; statusContext?: { s3ExportTaskDefinition?: { key?: unknown; inputUrl?: unknown; bucket?: unknown }; sequenceNumber?: unknown } };
    const t = m.statusContext?.s3ExportTaskDefinition;
    if (typeof m.status !== 'number' || typeof t?.key !== 'string') return undefined;
    return {
      seq,
      status: m.status,
      key: t.key,
      inputUrl: typeof t.inputUrl === 'string' ? t.inputUrl : '',
      bucket: typeof t.bucket === 'string' ? t.bucket : '',
      taskSequenceNumber: typeof m.statusContext?.sequenceNumber === 'number' ? m.statusContext.sequenceNumber : null,
      message: typeof m.message === 'string' ? m.message : '',
    };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The hub: one connection, the streams, the status reader, export status

export interface SmExportState {
  stream: string;
  exportId: string;
  lastExportedSequenceNumber: number | null;
  lastExportTime: number | null;
  errorMessage: string | null;
  /** Messages appended but not exported yet (newest - lastExported). */
  backlog: number;
  oldestSequenceNumber: number | null;
  newestSequenceNumber: number | null;
  totalBytes: number | null;
  /** Overwritten before export (OverwriteOldestData streams), since start. */
  overwritten: number;
}

export interface SmStatusReport {
  connected: boolean;
  lastError: string | null;
  exports: SmExportState[];
}

export interface StreamManagerHubOptions {
  config: StreamManagerConfig;
  routes: Readonly<Record<RecordClass, readonly ExporterName[]>>;
  maxOutboxBytes: number;
  maxAgeMs: number;
  siteId: string;
  thingName: string;
  outboxId: string;
  /** Where S3 task files are written (`<work folder>/streammanager-s3`). */
  fileDir: string;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  resolvePort: () => Promise<number>;
  authToken?: string | undefined;
  backoffInitialMs: number;
  backoffMaxMs: number;
  statusIntervalMs: number;
  random?: () => number;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

interface PendingTask {
  stream: string;
  seq: number;
}

const STATUS_POLL_MS = 1000;
const READ_PAGE = 500;
const APPEND_PARALLEL = 64;
const MAX_FINALS = 100_000;
/**
 * Kinesis Data Streams takes a record of at most 1 MiB, data and partition key together (PutRecords
 * API reference); Stream Manager's Kinesis export adds a random UUID (36 characters) as the key. A
 * larger record could never be exported and would hold its stream back: it is not appended, and
 * counted. (AWS's JS client has no lower limit for appends: cbor 5's encode() keeps a request whole
 * up to its last piece, the payload; docs/stream-manager.md.)
 */
export const SM_MAX_MESSAGE_BYTES = 1024 * 1024 - 36;

export class StreamManagerHub {
  readonly plan: SmStreamPlan[];
  private readonly conn: SmConnection;
  /** The status reader's own connection: its long polls never sit in front of appends. */
  private readonly statusConn: SmConnection;
  private readonly statusStream: string;
  private readonly finals = new Map<string, S3TaskStatus>();
  private readonly finalsByUrl = new Map<string, S3TaskStatus>();
  private readonly pending = new Map<string, PendingTask>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Keys whose append failed without an answer (a deadline, a lost connection): it may have been stored. */
  private readonly uncertain = new Set<string>();
  /** Per task stream: every task below this sequence number has been read back into `pending`. */
  private readonly scanned = new Map<string, number>();
  private readonly exportsState = new Map<string, SmExportState>();
  private readonly reportedErrors = new Map<string, string>();
  /** Per OverwriteOldestData stream: messages up to here are accounted for (exported or counted overwritten). */
  private readonly lostUpTo = new Map<string, number>();
  private statusNext = 0;
  private statusCaughtUp = false;
  /** When the status reader last found no newer status (it had read everything written before then). */
  private statusCaughtUpAt = -Infinity;
  /** When each stream's export status was last read (DescribeMessageStream). */
  private readonly describedAt = new Map<string, number>();
  private reconciled = false;
  private closed = false;
  private timers: TimerHandle[] = [];
  private statusLoop: Promise<void> | undefined;
  private refs = 0;
  private readonly log: Logger;
  /** Ends the status reader's pause at once when the hub closes. */
  private wake: () => void = () => undefined;

  constructor(private readonly o: StreamManagerHubOptions) {
    this.log = o.logger.child({ module: 'stream-manager' });
    this.plan = streamPlan({ sm: o.config, routes: o.routes, maxOutboxBytes: o.maxOutboxBytes, maxAgeMs: o.maxAgeMs });
    this.statusStream = statusStreamName(o.config.streamPrefix);
    const common = {
      clock: o.clock,
      logger: this.log,
      resolvePort: o.resolvePort,
      authToken: o.authToken,
      requestTimeoutMs: o.config.requestTimeoutMs,
      // Reconnects are cheap (loopback) and Stream Manager restarts with the nucleus: seconds, not the cloud backoff's minutes.
      backoffInitialMs: Math.min(o.backoffInitialMs, 1000),
      backoffMaxMs: Math.min(o.backoffMaxMs, 30_000),
      ...(o.random ? { random: o.random } : {}),
    };
    this.conn = new SmConnection({ ...common, onConnect: (c) => this.ensureStreams(c) });
    this.statusConn = new SmConnection(common);
  }

  get hasS3(): boolean {
    return this.plan.some((p) => p.kind === 's3');
  }

  /** Exporters share one hub; the last to close it closes it. */
  acquire(): void {
    if (this.refs++ > 0) return;
    fs.mkdirSync(this.o.fileDir, { recursive: true });
    if (this.hasS3) this.statusLoop = this.readStatuses();
    this.timers.push(this.o.clock.setInterval(() => void this.describeAll(), this.o.statusIntervalMs));
    // Connect now (streams created, tasks reconciled) rather than at the first batch.
    void this.describeAll();
  }

  async release(): Promise<void> {
    if (--this.refs > 0) return;
    this.closed = true;
    this.wake();
    for (const t of this.timers) this.o.clock.clearInterval(t);
    this.conn.close();
    this.statusConn.close();
    for (const set of this.waiters.values()) for (const w of set) w.reject(new SmUnavailableError('the Uplink is closing'));
    this.waiters.clear();
    await this.statusLoop?.catch(() => undefined);
  }

  report(): SmStatusReport {
    return { connected: this.conn.connected, lastError: this.conn.lastFailure || null, exports: [...this.exportsState.values()] };
  }

  /** Exports that report an error now: the component is degraded while there are any. */
  failing(): Array<{ stream: string; exportId: string; error: string }> {
    return [...this.exportsState.values()].filter((e) => e.errorMessage).map((e) => ({ stream: e.stream, exportId: e.exportId, error: e.errorMessage! }));
  }

  private streamOf(cls: RecordClass, kind: StreamManagerDestination): string {
    return streamName(this.o.config.streamPrefix, cls, kind);
  }

  /** At every (re)connect: each planned stream exists with the planned definition; tasks reconciled once. */
  private async ensureStreams(c: SdkClient): Promise<void> {
    const t = this.o.config.requestTimeoutMs;
    const existing = new Set(await deadline(this.o.clock, c.listStreams(), t, 'ListStreams'));
    for (const p of this.plan) {
      const def = sdkDefinition(p, { sm: this.o.config, statusStream: this.statusStream });
      if (!existing.has(p.name)) {
        try {
          await deadline(this.o.clock, c.createMessageStream(def), t, `CreateMessageStream ${p.name}`);
          this.log.info('stream created', { stream: p.name, maxSize: p.maxSize, timeToLiveMillis: p.timeToLiveMillis, strategyOnFull: p.strategyOnFull, priority: p.priority });
          continue;
        } catch (err) {
          if (!isServerAnswer(err)) throw err; // created meanwhile by another client: update it below
        }
      }
      try {
        await deadline(this.o.clock, c.updateMessageStream(def), t, `UpdateMessageStream ${p.name}`);
      } catch (err) {
        if (!isServerAnswer(err)) throw err;
        // A definition Stream Manager refuses to apply (maxSize below what the stream holds now): the old one stays.
        this.log.warn('stream definition not updated; the existing one stays', { stream: p.name, err: errorMessage(err) });
      }
    }
    if (!this.reconciled && this.hasS3) {
      for (const p of this.plan.filter((x) => x.kind === 's3')) await this.readTasks(c, p.name);
      this.reconciled = true;
      this.log.info('S3 tasks read back', { tasks: this.pending.size });
      this.settleKnown();
    }
  }

  /** Reads the tasks of a task stream not read yet into `pending` (at start, and after an append of unknown outcome). */
  private async readTasks(c: SdkClient, stream: string): Promise<void> {
    for (let from = this.scanned.get(stream) ?? 0; ; ) {
      const msgs = await readPage(this.o.clock, c, stream, from, READ_PAGE, this.o.config.requestTimeoutMs);
      for (const m of msgs) {
        const key = taskKey(m.payload);
        const f = key === undefined ? undefined : this.finals.get(key);
        if (key !== undefined && !(f && f.taskSequenceNumber !== null && f.taskSequenceNumber >= m.sequenceNumber)) this.pending.set(key, { stream, seq: m.sequenceNumber });
        from = m.sequenceNumber + 1;
      }
      this.scanned.set(stream, from);
      if (msgs.length < READ_PAGE) break;
    }
  }

  /** The status stream, read forever from the start (a long poll on its own connection). */
  private async readStatuses(): Promise<void> {
    while (!this.closed) {
      try {
        const msgs = await this.statusConn.call(
          'ReadMessages',
          (c) => c.readMessages(this.statusStream, new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(this.statusNext).withMinMessageCount(1).withMaxMessageCount(READ_PAGE).withReadTimeoutMillis(STATUS_POLL_MS)),
          STATUS_POLL_MS + this.o.config.requestTimeoutMs,
        );
        for (const m of msgs) {
          if (m.sequenceNumber < this.statusNext) continue;
          this.statusNext = m.sequenceNumber + 1;
          const s = parseStatus(m.sequenceNumber, m.payload);
          if (s) this.onStatus(s);
        }
        if (msgs.length < READ_PAGE) this.caughtUp();
      } catch (err) {
        if (err instanceof sm.NotEnoughMessagesException) {
          this.caughtUp();
          continue;
        }
        // ResourceNotFound (the stream is created at connect), or Stream Manager away: try again shortly.
        await new Promise<void>((resolve) => {
          const t = this.o.clock.setTimeout(resolve, err instanceof sm.ResourceNotFoundException ? 200 : Math.min(this.o.config.probeIntervalMs, 5000));
          this.wake = () => (this.o.clock.clearTimeout(t), resolve());
        });
      }
    }
  }

  private caughtUp(): void {
    this.statusCaughtUpAt = this.o.clock.now();
    if (this.statusCaughtUp) return;
    this.statusCaughtUp = true;
    this.settleKnown();
    this.cleanLeftovers();
  }

  private onStatus(s: S3TaskStatus): void {
    if (s.status !== SM_STATUS.Success && s.status !== SM_STATUS.Failure && s.status !== SM_STATUS.Canceled) return;
    if (this.finals.size >= MAX_FINALS) {
      const first = this.finals.keys().next().value as string;
      const f = this.finals.get(first);
      this.finals.delete(first);
      if (f) this.finalsByUrl.delete(f.inputUrl);
    }
    this.finals.set(s.key, s);
    this.finalsByUrl.set(s.inputUrl, s);
    const p = this.pending.get(s.key);
    // A final status for an older task of the same key (a Failure before the retry) does not end the newer one.
    if (p && s.taskSequenceNumber !== null && s.taskSequenceNumber < p.seq && s.status !== SM_STATUS.Success) return;
    this.pending.delete(s.key);
    const ws = this.waiters.get(s.key);
    if (!ws) return;
    this.waiters.delete(s.key);
    for (const w of ws) {
      if (s.status === SM_STATUS.Success) w.resolve();
      else w.reject(new ExportError('SM_S3_FAILURE', `S3 task ${s.key}: ${s.message || 'failed'}`, { refused: true }));
    }
  }

  /** Tasks read back at start whose final status was read too: nothing to wait for. */
  private settleKnown(): void {
    if (!this.reconciled || !this.statusCaughtUp) return;
    for (const [key, p] of this.pending) {
      const f = this.finals.get(key);
      if (f && (f.taskSequenceNumber === null || f.taskSequenceNumber >= p.seq)) this.pending.delete(key);
    }
  }

  /** Files of tasks that succeeded (the Uplink died before deleting them), and orphans older than maxAgeMs. */
  private cleanLeftovers(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.o.fileDir);
    } catch {
      return;
    }
    let removed = 0;
    for (const n of names) {
      const file = path.join(this.o.fileDir, n);
      const f = this.finalsByUrl.get(`file:${file}`);
      let old = false;
      try {
        old = fs.statSync(file).mtimeMs < this.o.clock.now() - this.o.maxAgeMs;
      } catch {
        continue;
      }
      if ((f && f.status === SM_STATUS.Success) || old || n.endsWith('.tmp')) {
        fs.rmSync(file, { force: true });
        removed++;
      }
    }
    if (removed > 0) this.log.info('S3 task files of finished tasks removed', { removed });
  }

  /** DescribeMessageStream of every exporting stream: export status into the Uplink's status and health. */
  async describeAll(): Promise<void> {
    if (this.closed) return;
    for (const p of this.plan) {
      if (p.exportId === undefined) continue;
      let info: SdkStreamInfo;
      try {
        info = await this.conn.call(`DescribeMessageStream ${p.name}`, (c) => c.describeMessageStream(p.name));
      } catch (err) {
        if (err instanceof SmUnavailableError) return; // reported as connected: false
        continue;
      }
      const ex = info.exportStatuses?.find((e) => e.exportConfigIdentifier === p.exportId) ?? info.exportStatuses?.[0];
      const newest = info.storageStatus?.newestSequenceNumber ?? null;
      const oldest = info.storageStatus?.oldestSequenceNumber ?? null;
      const last = ex?.lastExportedSequenceNumber ?? null;
      const prev = this.exportsState.get(p.name);
      let overwritten = prev?.overwritten ?? 0;
      if (p.strategyOnFull === 'OverwriteOldestData' && oldest !== null) {
        // Messages below the oldest one left, from the next one to export on, went unexported.
        const counted = this.lostUpTo.get(p.name) ?? -1;
        const from = Math.max((last ?? -1) + 1, counted + 1);
        if (oldest > from) {
          const n = oldest - from;
          overwritten += n;
          this.o.metrics.drop(`sm_overwritten_${p.cls ?? 'status'}`, n);
          this.log.warn('Stream Manager overwrote messages before exporting them', { stream: p.name, messages: n });
        }
        this.lostUpTo.set(p.name, Math.max(counted, oldest - 1));
      }
      const state: SmExportState = {
        stream: p.name,
        exportId: ex?.exportConfigIdentifier ?? p.exportId,
        lastExportedSequenceNumber: last,
        lastExportTime: ex?.lastExportTime ?? null,
        errorMessage: ex?.errorMessage || null,
        backlog: newest === null ? 0 : Math.max(0, newest - (last ?? (oldest ?? 0) - 1)),
        oldestSequenceNumber: oldest,
        newestSequenceNumber: newest,
        totalBytes: info.storageStatus?.totalBytes ?? null,
        overwritten,
      };
      this.exportsState.set(p.name, state);
      this.describedAt.set(p.name, this.o.clock.now());
      const reported = this.reportedErrors.get(p.name);
      if (state.errorMessage && state.errorMessage !== reported) {
        this.reportedErrors.set(p.name, state.errorMessage);
        this.o.metrics.recordError(new ExportError('SM_EXPORT_FAILING', `Stream Manager export ${state.exportId} (${p.name}): ${state.errorMessage}`));
        this.log.warn('Stream Manager export failing', { stream: p.name, exportId: state.exportId, err: state.errorMessage, backlog: state.backlog });
      } else if (!state.errorMessage && reported) {
        this.reportedErrors.delete(p.name);
        this.log.info('Stream Manager export recovered', { stream: p.name, exportId: state.exportId });
      }
    }
  }

  /** Stream Manager answers, and the exports holding our queued tasks do not report an error. */
  async probe(kind: StreamManagerDestination): Promise<void> {
    await this.conn.call('ListStreams', (c) => c.listStreams());
    if (kind !== 's3' || this.pending.size === 0) return;
    await this.describeAll();
    const streams = new Set([...this.pending.values()].map((p) => p.stream));
    const bad = [...streams].map((s) => this.exportsState.get(s)).find((e) => e?.errorMessage);
    if (bad) throw new ExportError('SM_EXPORT_FAILING', `Stream Manager export ${bad.exportId}: ${bad.errorMessage}`);
  }

  // --- S3 ---------------------------------------------------------------------------------------

  async sendS3(batch: ExportBatch): Promise<void> {
    const s3 = this.o.config.s3;
    const key = s3Key(s3.prefix, this.o.thingName, this.o.outboxId, batch);
    // Connected, and so the tasks queued before a restart are read back: only then is `pending` complete.
    try {
      await this.conn.call('connect', () => Promise.resolve());
    } catch (err) {
      throw asExportError(err, 'connect to Stream Manager');
    }
    const file = path.join(this.o.fileDir, `${this.o.outboxId}-${String(batch.seq).padStart(12, '0')}.ndjson.gz`);
    const done = this.finals.get(key);
    if (done?.status === SM_STATUS.Success && !this.pending.has(key)) {
      // Uploaded before (a restart between the Success and the outbox's confirmation): no second upload.
      fs.rmSync(file, { force: true });
      this.forget(key);
      return;
    }
    const stream = this.streamOf(batch.cls, 's3');
    if (this.uncertain.has(key)) {
      // The last append of this key got no answer: look in the stream before appending it again.
      try {
        await this.conn.call(`ReadMessages ${stream}`, (c) => this.readTasks(c, stream));
      } catch (err) {
        throw asExportError(err, `read back the tasks of ${stream}`);
      }
      this.uncertain.delete(key);
      this.settleKnown();
    }
    if (!this.pending.has(key) && this.finals.get(key)?.status === SM_STATUS.Success) {
      fs.rmSync(file, { force: true });
      this.forget(key);
      return;
    }
    if (!this.pending.has(key)) {
      // A new task for this key: an earlier task's Failure is history (it must not fail this one).
      if (this.finals.has(key)) this.forget(key);
      await writeDurably(file, batch.body);
      const meta = { seq: String(batch.seq), class: batch.cls, count: String(batch.count), 'site-id': this.o.siteId, 'thing-name': this.o.thingName };
      let seq: number;
      try {
        seq = await this.conn.call(`AppendMessage ${stream}`, (c) => c.appendMessage(stream, s3TaskMessage(file, s3.bucket, key, meta)));
      } catch (err) {
        if (!isServerAnswer(err)) this.uncertain.add(key);
        throw asExportError(err, `append S3 task to ${stream}`);
      }
      // The status reader may have seen this task's final status already (it reads on its own connection).
      const f = this.finals.get(key);
      if (f && f.taskSequenceNumber !== null && f.taskSequenceNumber < seq) this.forget(key);
      if (!this.finals.has(key)) this.pending.set(key, { stream, seq });
    }
    await this.waitFor(key);
    fs.rmSync(file, { force: true });
    this.forget(key);
  }

  private forget(key: string): void {
    const f = this.finals.get(key);
    this.finals.delete(key);
    if (f) this.finalsByUrl.delete(f.inputUrl);
  }

  private waitFor(key: string): Promise<void> {
    const f = this.finals.get(key);
    const p = this.pending.get(key);
    if (f && !p) {
      return f.status === SM_STATUS.Success ? Promise.resolve() : Promise.reject(new ExportError('SM_S3_FAILURE', `S3 task ${key}: ${f.message || 'failed'}`, { refused: true }));
    }
    return new Promise<void>((resolve, reject) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const w: Waiter = {
        resolve: () => (this.o.clock.clearTimeout(timer), resolve()),
        reject: (e) => (this.o.clock.clearTimeout(timer), reject(e)),
      };
      set.add(w);
      const timer = this.o.clock.setTimeout(() => {
        set!.delete(w);
        const task = this.pending.get(key);
        const ex = task ? this.exportsState.get(task.stream) : undefined;
        // Stream Manager had exported past this task, and the status reader has since read to the end of
        // the status stream without its final status (overwritten there): forget the task, so the retry
        // appends it again (same key: overwritten, not doubled). A status merely not read yet is waited for.
        const exportedAt = task ? this.describedAt.get(task.stream) : undefined;
        if (task && exportedAt !== undefined && this.statusCaughtUpAt > exportedAt && ex?.lastExportedSequenceNumber != null && ex.lastExportedSequenceNumber >= task.seq) this.pending.delete(key);
        reject(new ExportError('SM_S3_PENDING', `S3 task ${key} still queued in Stream Manager after ${this.o.config.taskTimeoutMs} ms${ex?.errorMessage ? ` (export ${ex.exportId}: ${ex.errorMessage})` : ''}`));
      }, this.o.config.taskTimeoutMs);
    });
  }

  // --- SiteWise and Kinesis ---------------------------------------------------------------------

  async sendSitewise(batch: ExportBatch): Promise<void> {
    const lines = gunzipSync(batch.body).toString('utf8').split('\n').filter((l) => l.length > 0);
    const conv = sitewiseEntries(this.o.siteId, lines, this.o.clock.now());
    for (const [why, n] of Object.entries(conv.skipped)) if (n > 0) this.o.metrics.drop(`sitewise_${why === 'noValue' ? 'no_value' : why === 'tooOld' ? 'too_old' : why === 'tooNew' ? 'too_new' : 'not_aggregate'}`, n);
    await this.appendAll(this.streamOf(batch.cls, 'sitewise'), conv.messages);
  }

  async sendKinesis(batch: ExportBatch): Promise<void> {
    const lines = gunzipSync(batch.body).toString('utf8').split('\n').filter((l) => l.length > 0);
    const records = lines.map((l) => Buffer.from(l, 'utf8'));
    const fit = records.filter((r) => r.length <= SM_MAX_MESSAGE_BYTES);
    if (fit.length < records.length) {
      this.o.metrics.drop('kinesis_too_large', records.length - fit.length);
      this.log.warn('records above Kinesis\'s record size not sent to Kinesis', { records: records.length - fit.length, maxBytes: SM_MAX_MESSAGE_BYTES, seq: batch.seq });
    }
    await this.appendAll(this.streamOf(batch.cls, 'kinesis'), fit);
  }

  /** Appends in order, several in flight on the one connection (the SDK matches answers by request id). */
  private async appendAll(stream: string, messages: readonly Buffer[]): Promise<void> {
    for (let i = 0; i < messages.length; i += APPEND_PARALLEL) {
      try {
        await Promise.all(messages.slice(i, i + APPEND_PARALLEL).map((m) => this.conn.call(`AppendMessage ${stream}`, (c) => c.appendMessage(stream, m))));
      } catch (err) {
        throw asExportError(err, `append to ${stream}`);
      }
    }
  }
}

/** The three exporters over one hub. */
export function createStreamManagerExporter(hub: StreamManagerHub, kind: StreamManagerDestination): Exporter {
  hub.acquire();
  let closed = false;
  const send = kind === 's3' ? (b: ExportBatch) => hub.sendS3(b) : kind === 'sitewise' ? (b: ExportBatch) => hub.sendSitewise(b) : (b: ExportBatch) => hub.sendKinesis(b);
  return {
    name: `streammanager-${kind}`,
    send,
    probe: () => hub.probe(kind),
    close: () => {
      if (closed) return Promise.resolve();
      closed = true;
      return hub.release();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function asExportError(err: unknown, what: string): ExportError {
  if (err instanceof ExportError) return err;
  // A server answer: a full RejectNewData stream, a stream missing; not a refusal of the data by AWS.
  const code = isServerAnswer(err) ? `SM_${(err as Error).constructor.name.replace(/Exception$/, '').toUpperCase()}` : 'SM_ERROR';
  return new ExportError(code, `${what}: ${errorMessage(err)}`, { cause: err });
}

function taskKey(payload: Buffer): string | undefined {
  try {
    const t = JSON.parse(payload.toString('utf8')) as { key?: unknown };
    return typeof t.key === 'string' ? t.key : undefined;
  } catch {
    return undefined;
  }
}

async function readPage(clock: Clock, c: SdkClient, stream: string, from: number, max: number, timeoutMs: number): Promise<Array<{ sequenceNumber: number; payload: Buffer }>> {
  try {
    return await deadline(clock, c.readMessages(stream, new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(from).withMinMessageCount(1).withMaxMessageCount(max).withReadTimeoutMillis(0)), timeoutMs, `ReadMessages ${stream}`);
  } catch (err) {
    if (err instanceof sm.NotEnoughMessagesException) return [];
    throw err;
  }
}

/** The file Stream Manager uploads must be complete whatever happens to us: written, fsynced, then renamed into place. */
async function writeDurably(file: string, body: Buffer): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await fs.promises.open(tmp, 'w');
  try {
    await fh.writeFile(body);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, file);
}

export function deadline<T>(clock: Clock, p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: TimerHandle | undefined;
  return Promise.race([
    p,
    new Promise<never>((_r, reject) => {
      timer = clock.setTimeout(() => reject(new SmUnavailableError(`Stream Manager did not answer ${what} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clock.clearTimeout(timer));
}


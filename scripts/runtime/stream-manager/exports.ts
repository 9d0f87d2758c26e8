/**
 * The export runner: every export config of every stream sends its stream's messages, in sequence
 * order, through an Exporter (./types.ts; the exporters are in ./exporters/). Docs:
 * docs/stream-manager.md "Exports".
 *
 * - Progress: each config reads from lastExportedSequenceNumber + 1 (at first startSequenceNumber,
 *   default 0; never below the stream's oldest message), and its progress is persisted with the
 *   stream after every delivered batch, so a restart resends at most the batch in flight.
 * - Batching: with batchIntervalMillis unset a batch goes as soon as there is a message, up to
 *   batchSize; with it set, when batchSize messages wait or the oldest waiting one is that old.
 * - Priority: lower number first, unset = least urgent. A config starts a batch only if no config of
 *   a more urgent priority has a batch ready or in flight, so a priority 1 stream drains before a
 *   priority 10 one; configs in backoff do not hold the others back.
 * - Failures: the exporter's Error message becomes errorMessage; the batch is retried after an
 *   exponential backoff with jitter capped at 5 minutes (the Stream Manager's documented retry).
 * - disabled: the config keeps its progress and sends nothing until enabled again.
 */
import { isDeepStrictEqual } from 'node:util';
import { backoffDelay } from '../../../components/lib/backoff';
import type { Logger } from '../../../components/lib/logger';
import { StreamDefinition, defaultBatchSize, exportConfigs } from './definition';
import { RequestError, Status } from './protocol';
import type { ExportProgress, MessageStream } from './store';
import type { ExportConfig, ExportEnvironment, ExportKind, Exporter, ExporterFactory } from './types';

export interface ExportRunnerOptions {
  factories: Partial<Record<ExportKind, ExporterFactory>>;
  env: ExportEnvironment;
  log: Logger;
  now: () => number;
  /** First retry delay (default 1 s) and the cap (default 5 min, the Stream Manager's). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Batches in flight at once (STREAM_MANAGER_THREAD_POOL_SIZE; default 5). */
  concurrency?: number;
  /** Payload bytes per batch at most (default 8 MiB). */
  maxBatchBytes?: number;
}

export interface ExportStatus {
  exportConfigIdentifier: string;
  lastExportedSequenceNumber: number;
  lastExportTime?: number;
  errorMessage?: string;
  exportedBytesFromStream: number;
  exportedMessagesCount: number;
}

class Task {
  busy = false;
  retired = false;
  attempt = 0;
  retryAt = 0;
  errorMessage: string | undefined;
  progress: ExportProgress;
  /** Ingest time of the first waiting message, cached by its sequence number. */
  waitingSince: { seq: number; time: number } | undefined;

  constructor(
    readonly stream: MessageStream,
    readonly kind: ExportKind,
    public config: ExportConfig,
    public exporter: Exporter,
  ) {
    const start = config.startSequenceNumber ?? 0;
    const saved = stream.exportProgress(config.identifier);
    this.progress =
      saved && saved.startSequenceNumber === start
        ? saved
        : { lastExportedSequenceNumber: start - 1, exportedBytesFromStream: 0, exportedMessagesCount: 0, startSequenceNumber: start };
  }

  get priority(): number {
    return this.config.priority ?? 11;
  }

  get batchSize(): number {
    return this.config.batchSize ?? defaultBatchSize(this.kind);
  }

  nextSeq(): number {
    return Math.max(this.progress.lastExportedSequenceNumber + 1, this.stream.status().oldestSequenceNumber);
  }

  available(): number {
    return this.stream.nextSequenceNumber - this.nextSeq();
  }
}

export type PreparedExports = Map<string, { kind: ExportKind; config: ExportConfig; exporter?: Exporter }>;

export class ExportRunner {
  private readonly tasks = new Map<string, Task[]>();
  private readonly retiring = new Set<Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly watched = new WeakSet<MessageStream>();
  private timer: NodeJS.Timeout | undefined;
  private kickPending = false;
  private closed = false;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly concurrency: number;
  private readonly maxBatchBytes: number;

  constructor(private readonly o: ExportRunnerOptions) {
    this.retryInitialMs = o.retryInitialMs ?? 1000;
    this.retryMaxMs = o.retryMaxMs ?? 300_000;
    this.concurrency = Math.max(1, o.concurrency ?? 5);
    this.maxBatchBytes = o.maxBatchBytes ?? 8 * 1024 * 1024;
  }

  get supportedKinds(): ReadonlySet<ExportKind> {
    return new Set(Object.keys(this.o.factories) as ExportKind[]);
  }

  /**
   * Builds the exporters of a definition (the factories check their own fields). A factory that
   * refuses its config makes the request InvalidRequest, and nothing changes. Configs identical to
   * a running one keep that one's exporter (see attach).
   */
  prepare(def: StreamDefinition): PreparedExports {
    const running = new Map((this.tasks.get(def.name) ?? []).map((t) => [t.config.identifier, t]));
    const out: PreparedExports = new Map();
    try {
      for (const { kind, config } of exportConfigs(def)) {
        const same = running.get(config.identifier);
        if (same && same.kind === kind && isDeepStrictEqual(same.config, config)) {
          out.set(config.identifier, { kind, config });
          continue;
        }
        const factory = this.o.factories[kind];
        if (!factory) throw new RequestError(Status.InvalidRequest, `no exporter for ${kind}`);
        let exporter: Exporter;
        try {
          exporter = factory(config, def.name, this.o.env);
        } catch (err) {
          throw new RequestError(Status.InvalidRequest, `export '${config.identifier}' (${kind}): ${(err as Error).message}`);
        }
        out.set(config.identifier, { kind, config, exporter });
      }
    } catch (err) {
      this.discard(out);
      throw err;
    }
    return out;
  }

  /** Closes exporters of a prepared set that will not be used. */
  discard(prepared: PreparedExports): void {
    for (const p of prepared.values()) if (p.exporter) this.retire(p.exporter);
  }

  /** Makes `prepared` the stream's export set: unchanged configs keep their task, others start anew. */
  attach(stream: MessageStream, prepared: PreparedExports): void {
    const old = new Map((this.tasks.get(stream.name) ?? []).map((t) => [t.config.identifier, t]));
    const next: Task[] = [];
    for (const [id, p] of prepared) {
      const keep = old.get(id);
      if (!p.exporter && keep) {
        next.push(keep);
        old.delete(id);
        continue;
      }
      next.push(new Task(stream, p.kind, p.config, p.exporter!));
    }
    for (const t of old.values()) this.retireTask(t);
    this.tasks.set(stream.name, next);
    stream.saveExportProgress('', undefined, new Set(next.map((t) => t.config.identifier)));
    if (!this.watched.has(stream)) {
      this.watched.add(stream);
      stream.on('append', () => this.kick());
    }
    this.kick();
  }

  detach(streamName: string): void {
    for (const t of this.tasks.get(streamName) ?? []) this.retireTask(t);
    this.tasks.delete(streamName);
  }

  statuses(streamName: string): ExportStatus[] {
    return (this.tasks.get(streamName) ?? []).map((t) => ({
      exportConfigIdentifier: t.config.identifier,
      lastExportedSequenceNumber: t.progress.lastExportedSequenceNumber,
      lastExportTime: t.progress.lastExportTime,
      errorMessage: t.errorMessage,
      exportedBytesFromStream: t.progress.exportedBytesFromStream,
      exportedMessagesCount: t.progress.exportedMessagesCount,
    }));
  }

  /** Re-evaluates every config now (after appends, timers; tests with an injected clock call it too). */
  kick(): void {
    if (this.kickPending || this.closed) return;
    this.kickPending = true;
    setImmediate(() => {
      this.kickPending = false;
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    // A batch in flight is given a moment to land, so its progress is recorded.
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, 5000).unref())]);
    for (const name of [...this.tasks.keys()]) this.detach(name);
    await Promise.allSettled([...this.retiring]);
  }

  private retireTask(t: Task): void {
    t.retired = true;
    if (!t.busy) this.retire(t.exporter);
  }

  private retire(e: Exporter): void {
    const p = e
      .close()
      .catch((err: unknown) => this.o.log.warn('Stream Manager: an exporter failed to close', { kind: e.kind, err: err as Error }))
      .finally(() => this.retiring.delete(p));
    this.retiring.add(p);
  }

  /** Is a batch ready now? If not only for time, `due` is when it will be. */
  private ready(t: Task, now: number): { ready: boolean; due?: number } {
    if (t.retired || t.busy || t.config.disabled === true) return { ready: false };
    if (t.available() <= 0) return { ready: false };
    // Retry delays run on the real clock (the injected one only stamps and ages messages).
    const realNow = Date.now();
    if (t.retryAt > realNow) return { ready: false, due: now + (t.retryAt - realNow) };
    const interval = t.config.batchIntervalMillis;
    if (interval === undefined || t.available() >= t.batchSize) return { ready: true };
    const seq = t.nextSeq();
    if (t.waitingSince?.seq !== seq) {
      const first = t.stream.read(seq, 1, 1)[0];
      if (!first) return { ready: false };
      t.waitingSince = { seq: first.sequenceNumber, time: first.ingestTime };
    }
    const due = t.waitingSince.time + interval;
    return due <= now ? { ready: true } : { ready: false, due };
  }

  private pump(): void {
    if (this.closed) return;
    const now = this.o.now();
    const all = [...this.tasks.values()].flat();
    const ready: Task[] = [];
    let due = Infinity;
    let busy = 0;
    let urgent = Infinity;
    for (const t of all) {
      if (t.busy && !t.retired) {
        busy += 1;
        urgent = Math.min(urgent, t.priority);
        continue;
      }
      const r = this.ready(t, now);
      if (r.ready) {
        ready.push(t);
        urgent = Math.min(urgent, t.priority);
      } else if (r.due !== undefined) due = Math.min(due, r.due);
    }
    ready.sort((a, b) => a.priority - b.priority);
    for (const t of ready) {
      if (busy >= this.concurrency || t.priority > urgent) break;
      busy += 1;
      this.send(t);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (due < Infinity) this.timer = setTimeout(() => this.kick(), Math.max(0, due - now) + 5);
  }

  private send(t: Task): void {
    t.busy = true;
    const batch = t.stream.read(t.nextSeq(), t.batchSize, this.maxBatchBytes);
    if (batch.length === 0) {
      t.busy = false;
      return;
    }
    const p = (async () => {
      try {
        await t.exporter.send(batch);
        if (t.retired || t.stream.isDeleted) return;
        const last = batch[batch.length - 1]!;
        const p2 = t.progress;
        p2.lastExportedSequenceNumber = last.sequenceNumber;
        p2.lastExportTime = this.o.now();
        p2.exportedMessagesCount += batch.length;
        for (const m of batch) p2.exportedBytesFromStream += m.payload.length;
        t.errorMessage = undefined;
        t.attempt = 0;
        t.retryAt = 0;
        t.stream.saveExportProgress(t.config.identifier, p2);
      } catch (err) {
        if (t.retired) return;
        t.attempt += 1;
        t.errorMessage = err instanceof Error ? err.message : String(err);
        const delay = backoffDelay(t.attempt, { initialMs: this.retryInitialMs, maxMs: this.retryMaxMs });
        t.retryAt = Date.now() + delay;
        this.o.log.warn('Stream Manager: export failed; retrying', {
          stream: t.stream.name,
          export: t.config.identifier,
          attempt: t.attempt,
          retryInMs: delay,
          error: t.errorMessage,
        });
      } finally {
        t.busy = false;
        if (t.retired) this.retire(t.exporter);
        this.kick();
      }
    })();
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }
}

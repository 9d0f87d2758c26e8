/**
 * The alarm journal every alarm source keeps (docs/alarms.md): alarms are the product's promise, and
 * pub/sub forgets a message nobody was subscribed for. So a source never just publishes a
 * transition; it commits it here first, in its own SQLite file and in the same transaction as its
 * own alarm state, then publishes it:
 *
 *  - every transition gets the journal's id (`journalId`, made with the file) and a gap-free
 *    sequence number (`sourceSeq`), plus a per-alarm counter (`transitionSeq`: 0 for the raise);
 *  - the journal keeps transitions for `retentionMs` (at most `maxEntries`) and the latest
 *    transition of every active alarm for as long as it is active;
 *  - a consumer that missed something (it was restarted, IPC dropped a message, its queue
 *    overflowed) asks on the alarm sync topic; the source answers with a snapshot of its active
 *    alarms and replays its journal from the sequence number asked for (`replayed: true`). The
 *    snapshot is also published every `snapshotIntervalMs`, so a gap is noticed even when no
 *    transition follows it.
 *
 * Consumers de-duplicate on (alarmId, transitionSeq), so a replay is harmless.
 *
 * If the bus ever had to drop alarm or control messages from its own queue (a nucleus gone for very
 * long, see bus.ts), that is itself an alarm: `alarm_delivery_overflow` (critical) on the asset
 * `gateway`, raised by this source, updated while drops go on, cleared after `overflowClearMs`
 * without one. The dropped transitions themselves are recovered by sync.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Bus, Subscription } from './bus-types';
import type { Clock, TimerHandle } from './clock';
import { ALARM_SNAPSHOT_PAGE, CONTRACT_VERSION, filters, topics, type AlarmMessage, type AlarmSnapshot, type AlarmSyncRequest } from './contract';
import { errorMessage } from './errors';
import { createLogLimiter } from './log-limit';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

export interface AlarmJournalOptions {
  db: Database.Database;
  bus: Bus;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  siteId: string;
  /** Short name of the source component: the alarms' `source` and the snapshot topic's. */
  source: string;
  /** Transitions are kept this long (default 7 days), and at most maxEntries of them. */
  retentionMs?: number;
  maxEntries?: number;
  /** Unsolicited snapshots (default 60 s). */
  snapshotIntervalMs?: number;
  /** Transitions sent per sync request (default 1000); a consumer that needs more asks again. */
  maxReplay?: number;
  /** The overflow alarm clears after this long without a drop (default 5 min). */
  overflowClearMs?: number;
}

/** The asset of alarms about the gateway itself. */
export const GATEWAY_ASSET = 'gateway';
export const OVERFLOW_ALARM_TYPE = 'alarm_delivery_overflow';
/** How often the bus's drop counter is looked at. */
const OVERFLOW_CHECK_MS = 5000;

/** A transition as the source makes it; the journal fills in the journal fields. */
export type NewTransition = Omit<AlarmMessage, 'journalId' | 'sourceSeq' | 'transitionSeq' | 'replayed'>;

export interface JournalPosition {
  journalId: string;
  headSeq: number;
  oldestSeq: number;
}

const DDL = `
CREATE TABLE IF NOT EXISTS alarm_journal_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarm_journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, alarm_id TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarm_active (alarm_id TEXT PRIMARY KEY, message TEXT NOT NULL);
`;

export class AlarmJournal {
  readonly journalId: string;
  private readonly o: Required<Omit<AlarmJournalOptions, 'db' | 'bus' | 'clock' | 'logger' | 'metrics' | 'siteId' | 'source'>> & AlarmJournalOptions;
  private readonly st;
  private readonly log: Logger;
  private readonly limited;
  private sub: Subscription | undefined;
  private timer: TimerHandle | undefined;
  private overflowTimer: TimerHandle | undefined;
  private closed = false;
  private dropsSeen = 0;
  private lastDropAt = 0;
  private overflow: AlarmMessage | undefined;

  constructor(opts: AlarmJournalOptions) {
    this.o = { retentionMs: 7 * 86_400_000, maxEntries: 100_000, snapshotIntervalMs: 60_000, maxReplay: 1000, overflowClearMs: 300_000, ...opts };
    this.log = opts.logger.child({ module: 'alarm-journal' });
    this.limited = createLogLimiter(opts.clock);
    const db = opts.db;
    db.exec(DDL);
    db.prepare(`INSERT OR IGNORE INTO alarm_journal_meta (k, v) VALUES ('journalId', ?)`).run(randomUUID());
    this.journalId = (db.prepare(`SELECT v FROM alarm_journal_meta WHERE k = 'journalId'`).pluck().get() as string);
    this.st = {
      insert: db.prepare('INSERT INTO alarm_journal (at, alarm_id, message) VALUES (?, ?, ?)'),
      setMessage: db.prepare('UPDATE alarm_journal SET message = ? WHERE seq = ?'),
      activeGet: db.prepare('SELECT message FROM alarm_active WHERE alarm_id = ?').pluck(),
      activePut: db.prepare('INSERT INTO alarm_active (alarm_id, message) VALUES (?, ?) ON CONFLICT(alarm_id) DO UPDATE SET message = excluded.message'),
      activeDel: db.prepare('DELETE FROM alarm_active WHERE alarm_id = ?'),
      activeAll: db.prepare('SELECT message FROM alarm_active ORDER BY rowid').pluck(),
      from: db.prepare('SELECT message FROM alarm_journal WHERE seq >= ? ORDER BY seq LIMIT ?').pluck(),
      head: db.prepare('SELECT max(seq) FROM alarm_journal').pluck(),
      oldest: db.prepare('SELECT min(seq) FROM alarm_journal').pluck(),
      lastSeq: db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'alarm_journal'`).pluck(),
      pruneAge: db.prepare('DELETE FROM alarm_journal WHERE at < ?'),
      pruneCount: db.prepare('DELETE FROM alarm_journal WHERE seq <= ?'),
    };
  }

  position(): JournalPosition {
    const head = (this.st.lastSeq.get() as number | undefined) ?? 0;
    const oldest = (this.st.oldest.get() as number | null) ?? head + 1;
    return { journalId: this.journalId, headSeq: head, oldestSeq: Math.min(oldest, head + 1) };
  }

  /** Latest transition of every active alarm. */
  active(): AlarmMessage[] {
    return (this.st.activeAll.all() as string[]).map((m) => JSON.parse(m) as AlarmMessage);
  }

  /**
   * Journal one transition. `alongside` runs in the same transaction (the source's own alarm
   * state), so a crash keeps both or neither. Returns the journaled message; `publish` sends it.
   * Must not be called inside another transaction of the same connection's caller that may roll
   * back after it returned (the message would be published but not kept).
   */
  record(t: NewTransition, alongside?: () => void): AlarmMessage {
    return this.o.db.transaction((): AlarmMessage => {
      alongside?.();
      const prevRaw = this.st.activeGet.get(t.alarmId) as string | undefined;
      const prev = prevRaw === undefined ? undefined : (JSON.parse(prevRaw) as AlarmMessage);
      const transition = t.transition ?? (t.state === 'cleared' ? 'cleared' : prev ? 'updated' : 'raised');
      // A raise starts the count; any later transition follows the active one (1 if the journal
      // never saw the raise: an alarm restored from before the journal existed).
      const transitionSeq = transition === 'raised' ? 0 : (prev?.transitionSeq ?? 0) + 1;
      const row = this.st.insert.run(t.ts, t.alarmId, '');
      const sourceSeq = Number(row.lastInsertRowid);
      const msg: AlarmMessage = { ...t, transition, transitionSeq, journalId: this.journalId, sourceSeq };
      const json = JSON.stringify(msg);
      this.st.setMessage.run(json, sourceSeq);
      if (transition === 'cleared') this.st.activeDel.run(t.alarmId);
      else this.st.activePut.run(t.alarmId, json);
      return msg;
    })();
  }

  /** Publish a journaled transition (alarm priority on the bus: never evicted from its queue). */
  publish(msg: AlarmMessage): void {
    // messagesOut is counted by the bus, once per message actually sent.
    this.o.bus.publish(topics.alarms(this.o.siteId, msg.assetId), msg).catch(
      (err: unknown) => {
        // Kept in the journal: a consumer that misses it gets it by sync.
        this.o.metrics.recordError(err);
        this.limited('publish', (suppressed) => this.log.error('alarm not published; it stays in the journal for sync', { alarmId: msg.alarmId, sourceSeq: msg.sourceSeq, err: errorMessage(err), suppressed }));
      },
    );
  }

  /** Journal and publish. */
  emit(t: NewTransition, alongside?: () => void): AlarmMessage {
    const msg = this.record(t, alongside);
    this.publish(msg);
    return msg;
  }

  async start(): Promise<void> {
    this.prune();
    // An overflow alarm left active by an earlier process: that process's bus is gone, so is its queue.
    for (const a of this.active()) if (a.type === OVERFLOW_ALARM_TYPE && a.assetId === GATEWAY_ASSET) this.emit(this.overflowTransition('cleared', a.alarmId, a.value ?? null, 'the process that dropped them has ended'));
    this.dropsSeen = this.o.bus.criticalDropped;
    this.sub = await this.o.bus.subscribe(filters.alarmSync(this.o.siteId), (req) => this.onSync(req));
    this.snapshot();
    this.timer = this.o.clock.setInterval(() => {
      this.prune();
      this.snapshot();
    }, this.o.snapshotIntervalMs);
    this.overflowTimer = this.o.clock.setInterval(() => this.checkOverflow(), OVERFLOW_CHECK_MS);
  }

  /** Turns drops of the bus's alarm queue into the overflow alarm (see the header). */
  checkOverflow(): void {
    const dropped = this.o.bus.criticalDropped;
    const now = this.o.clock.now();
    if (dropped > this.dropsSeen) {
      this.dropsSeen = dropped;
      this.lastDropAt = now;
      this.overflow = this.emit(this.overflowTransition('raised', this.overflow?.alarmId ?? randomUUID(), dropped, `${dropped} alarm or control messages dropped from the full IPC queue; alarms are recovered from the journal`));
    } else if (this.overflow && now - this.lastDropAt >= this.o.overflowClearMs) {
      this.emit(this.overflowTransition('cleared', this.overflow.alarmId, dropped, 'no more drops'));
      this.overflow = undefined;
    }
  }

  private overflowTransition(state: 'raised' | 'cleared', alarmId: string, value: number | null, message: string): NewTransition {
    return {
      schemaVersion: CONTRACT_VERSION,
      siteId: this.o.siteId,
      assetId: GATEWAY_ASSET,
      alarmId,
      type: OVERFLOW_ALARM_TYPE,
      severity: 'critical',
      state,
      ts: this.o.clock.now(),
      source: this.o.source,
      ...(value !== null ? { value } : {}),
      message,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.clock.clearInterval(this.timer);
    this.o.clock.clearInterval(this.overflowTimer);
    await this.sub?.close().catch(() => undefined);
  }

  /** Publishes the snapshot (in pages of ALARM_SNAPSHOT_PAGE alarms). */
  snapshot(requestedBy?: string): void {
    if (this.closed) return;
    const pos = this.position();
    const active = this.active();
    const pages = Math.max(1, Math.ceil(active.length / ALARM_SNAPSHOT_PAGE));
    for (let p = 0; p < pages; p++) {
      const snap: AlarmSnapshot = {
        schemaVersion: CONTRACT_VERSION,
        siteId: this.o.siteId,
        source: this.o.source,
        ts: this.o.clock.now(),
        journalId: pos.journalId,
        headSeq: pos.headSeq,
        oldestSeq: pos.oldestSeq,
        active: active.slice(p * ALARM_SNAPSHOT_PAGE, (p + 1) * ALARM_SNAPSHOT_PAGE).map((a) => ({ ...a, replayed: true })),
        page: p + 1,
        pages,
        ...(requestedBy ? { requestedBy } : {}),
      };
      this.o.bus.publish(topics.alarmSnapshot(this.o.siteId, this.o.source), snap).catch((err: unknown) => {
        this.o.metrics.recordError(err);
        this.limited('snapshot', (suppressed) => this.log.warn('alarm snapshot not published', { err: errorMessage(err), suppressed }));
      });
    }
  }

  /** Transitions from `seq` on (at most maxReplay), marked replayed. */
  replayFrom(seq: number): AlarmMessage[] {
    return (this.st.from.all(seq, this.o.maxReplay) as string[]).map((m) => ({ ...(JSON.parse(m) as AlarmMessage), replayed: true }));
  }

  private onSync(req: AlarmSyncRequest): void {
    if (this.closed || req.siteId !== this.o.siteId) return;
    this.o.metrics.incIn();
    this.snapshot(req.requester);
    const want = req.from?.[this.o.source];
    if (!want) return;
    // Another journal (this file was made anew): everything this journal holds is news to the asker.
    const from = want.journalId === this.journalId ? want.seq : 1;
    const list = this.replayFrom(from);
    if (list.length > 0) this.log.info('replaying alarm transitions', { requester: req.requester, fromSeq: from, count: list.length });
    for (const m of list) this.publish(m);
  }

  /** Age and count bounds of the journal (active alarms are kept in alarm_active regardless). */
  prune(): number {
    let n = this.st.pruneAge.run(this.o.clock.now() - this.o.retentionMs).changes;
    const head = (this.st.head.get() as number | null) ?? 0;
    if (head > this.o.maxEntries) n += this.st.pruneCount.run(head - this.o.maxEntries).changes;
    return n;
  }
}

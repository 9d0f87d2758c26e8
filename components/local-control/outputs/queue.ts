/**
 * The durable notification queue (docs/local-control-outputs.md "The queue"): one SQLite file,
 * WAL, synchronous FULL, so a notification acknowledged as queued survives kill -9 and power loss.
 *
 *  notifications  one row per (transition or escalation, channel) still to deliver; deleted only
 *                 when the channel accepted it (or it was dropped by a bound, counted);
 *  seen           the identity of every notification ever queued ((alarmId, transitionSeq,
 *                 channel), or (alarmId, 'escalation', channel)), inserted in the same transaction
 *                 as its row, kept `dedupeRetentionMs` after queueing: a transition offered again (a
 *                 journal replay, a snapshot) is not notified twice, even after its delivery;
 *  escalations    per critical alarm: pending (waiting for `due_at`), acked, cleared or escalated;
 *  dropped        counts per reason, kept across restarts.
 *
 * One writer (the LocalControl process); every method is synchronous and every change one
 * transaction. The row count is mirrored in memory and reloaded after a failed transaction.
 */
import Database from 'better-sqlite3';
import type { AlarmMessage } from '../../lib/contract';
import type { Notification, NotificationKind } from './types';

export interface QueueTarget {
  channel: string;
  key: string;
}

export interface EnqueueRequest {
  kind: NotificationKind;
  alarm: AlarmMessage;
  /** 0 critical ... 3 low: what the count bound evicts first is the least important, oldest. */
  severityRank: number;
  targets: readonly QueueTarget[];
  now: number;
  maxQueued: number;
  /** Escalation bookkeeping in the same transaction. */
  escalation?: { op: 'track'; dueAt: number } | { op: 'clear' };
}

export interface EnqueueResult {
  queued: string[];
  duplicates: string[];
  /** Older, less (or as) important notifications the count bound dropped to make room, per channel. */
  evicted: Array<{ channel: string; severityRank: number }>;
  /** Channels this notification was not queued on: the queue is full of more important ones. */
  rejected: string[];
}

export interface DueEscalation {
  alarmId: string;
  alarm: AlarmMessage;
  dueAt: number;
}

export type EscalationState = 'pending' | 'acked' | 'cleared' | 'escalated';

export interface AckResult {
  /** The state before the acknowledgement; `unknown` when the alarm was never seen here. */
  previous: EscalationState | 'unknown';
  /** Queued escalation notifications removed because the alarm is now acknowledged. */
  withdrawn: number;
}

type Row = { id: number; channel: string; kind: string; queued_at: number; attempts: number; progress: string | null; alarm: string };

export class NotificationQueue {
  private readonly db: Database.Database;
  private readonly st;
  private total = 0;
  private closed = false;

  constructor(opts: { path: string; nativeBinding?: string }) {
    this.db = new Database(opts.path, opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {});
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS notifications (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, kind TEXT NOT NULL,
        severity INTEGER NOT NULL, queued_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, progress TEXT, alarm_id TEXT NOT NULL, alarm TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS notifications_by_channel ON notifications(channel, id);
      CREATE INDEX IF NOT EXISTS notifications_by_age ON notifications(queued_at);
      CREATE INDEX IF NOT EXISTS notifications_by_importance ON notifications(severity, id);
      CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS seen_by_age ON seen(at);
      CREATE TABLE IF NOT EXISTS escalations (alarm_id TEXT PRIMARY KEY, state TEXT NOT NULL, due_at INTEGER, alarm TEXT,
        acked_by TEXT, acked_at INTEGER, updated_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS escalations_due ON escalations(state, due_at);
      CREATE TABLE IF NOT EXISTS dropped (reason TEXT PRIMARY KEY, n INTEGER NOT NULL);
    `);
    const db = this.db;
    this.st = {
      seen: db.prepare(`INSERT OR IGNORE INTO seen (key, at) VALUES (?, ?)`),
      insert: db.prepare(`INSERT INTO notifications (channel, kind, severity, queued_at, alarm_id, alarm) VALUES (?, ?, ?, ?, ?, ?)`),
      leastImportant: db.prepare(`SELECT id, channel, severity FROM notifications ORDER BY severity DESC, id ASC LIMIT 1`),
      deleteOne: db.prepare(`DELETE FROM notifications WHERE id = ?`),
      pending: db.prepare(`SELECT id, channel, kind, queued_at, attempts, progress, alarm FROM notifications WHERE channel = ? AND queued_at >= ? ORDER BY id LIMIT ?`),
      count: db.prepare(`SELECT COUNT(*) FROM notifications`).pluck(),
      countChannel: db.prepare(`SELECT COUNT(*) FROM notifications WHERE channel = ?`).pluck(),
      byChannel: db.prepare(`SELECT channel, COUNT(*) n FROM notifications GROUP BY channel`),
      oldestOfChannel: db.prepare(`SELECT MIN(queued_at) FROM notifications WHERE channel = ?`).pluck(),
      attempt: db.prepare(`UPDATE notifications SET attempts = attempts + 1 WHERE id = ?`),
      progress: db.prepare(`UPDATE notifications SET progress = ? WHERE id = ?`),
      expiredByChannel: db.prepare(`SELECT channel, COUNT(*) n FROM notifications WHERE queued_at < ? GROUP BY channel`),
      deleteExpired: db.prepare(`DELETE FROM notifications WHERE queued_at < ?`),
      channels: db.prepare(`SELECT DISTINCT channel FROM notifications`).pluck(),
      deleteChannel: db.prepare(`DELETE FROM notifications WHERE channel = ?`),
      pruneSeen: db.prepare(`DELETE FROM seen WHERE at < ?`),
      countDropped: db.prepare(`INSERT INTO dropped (reason, n) VALUES (?, ?) ON CONFLICT(reason) DO UPDATE SET n = n + excluded.n`),
      droppedAll: db.prepare(`SELECT reason, n FROM dropped`),
      escGet: db.prepare(`SELECT state FROM escalations WHERE alarm_id = ?`).pluck(),
      escTrack: db.prepare(`INSERT INTO escalations (alarm_id, state, due_at, alarm, updated_at) VALUES (?, 'pending', ?, ?, ?)`),
      escRefresh: db.prepare(`UPDATE escalations SET alarm = ?, updated_at = ? WHERE alarm_id = ? AND state = 'pending'`),
      escClear: db.prepare(`UPDATE escalations SET state = 'cleared', updated_at = ? WHERE alarm_id = ? AND state = 'pending'`),
      escDue: db.prepare(`SELECT alarm_id, due_at, alarm FROM escalations WHERE state = 'pending' AND due_at <= ? ORDER BY due_at LIMIT ?`),
      escNext: db.prepare(`SELECT MIN(due_at) FROM escalations WHERE state = 'pending'`).pluck(),
      escDone: db.prepare(`UPDATE escalations SET state = 'escalated', updated_at = ? WHERE alarm_id = ?`),
      escAckInsert: db.prepare(`INSERT INTO escalations (alarm_id, state, acked_by, acked_at, updated_at) VALUES (?, 'acked', ?, ?, ?)`),
      escAck: db.prepare(`UPDATE escalations SET state = CASE state WHEN 'pending' THEN 'acked' ELSE state END, acked_by = ?, acked_at = ?, updated_at = ? WHERE alarm_id = ?`),
      escWithdraw: db.prepare(`DELETE FROM notifications WHERE kind = 'escalation' AND alarm_id = ?`),
      escPrune: db.prepare(`DELETE FROM escalations WHERE state <> 'pending' AND updated_at < ?`),
      escPending: db.prepare(`SELECT COUNT(*) FROM escalations WHERE state = 'pending'`).pluck(),
    };
    this.total = this.st.count.get() as number;
  }

  private tx<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      this.total = this.st.count.get() as number;
      throw err;
    }
  }

  private countDrop(reason: string, n: number): void {
    if (n > 0) this.st.countDropped.run(reason, n);
  }

  /** Counts a drop that is not a whole row (a refused recipient or number). */
  countDropped(reason: string, n = 1): void {
    this.countDrop(reason, n);
  }

  /** Queues one notification per target not seen before; count bound applied; one transaction. */
  enqueue(r: EnqueueRequest): EnqueueResult {
    const out: EnqueueResult = { queued: [], duplicates: [], evicted: [], rejected: [] };
    const body = JSON.stringify(r.alarm);
    this.tx(() => {
      let added = 0;
      for (const t of r.targets) {
        if (this.st.seen.run(t.key, r.now).changes === 0) {
          out.duplicates.push(t.channel);
          continue;
        }
        if (this.total + added >= r.maxQueued) {
          const victim = this.st.leastImportant.get() as { id: number; channel: string; severity: number } | undefined;
          if (!victim || victim.severity < r.severityRank) {
            // Everything queued matters more than this one: this one is the drop.
            out.rejected.push(t.channel);
            continue;
          }
          this.st.deleteOne.run(victim.id);
          added -= 1;
          out.evicted.push({ channel: victim.channel, severityRank: victim.severity });
        }
        this.st.insert.run(t.channel, r.kind, r.severityRank, r.now, r.alarm.alarmId, body);
        added += 1;
        out.queued.push(t.channel);
      }
      this.countDrop('queue_full', out.evicted.length + out.rejected.length);
      const e = r.escalation;
      if (e?.op === 'track') {
        const state = this.st.escGet.get(r.alarm.alarmId) as string | undefined;
        if (state === undefined) this.st.escTrack.run(r.alarm.alarmId, e.dueAt, body, r.now);
        else this.st.escRefresh.run(body, r.now, r.alarm.alarmId);
      } else if (e?.op === 'clear') {
        this.st.escClear.run(r.now, r.alarm.alarmId);
      }
      this.total += added;
    });
    return out;
  }

  /** The oldest `limit` notifications of a channel queued at or after `notBefore` (older ones are the age bound's). */
  pending(channel: string, limit: number, notBefore = 0): Notification[] {
    return (this.st.pending.all(channel, notBefore, limit) as Row[]).map((x) => ({
      id: x.id,
      channel: x.channel,
      kind: x.kind as NotificationKind,
      alarm: JSON.parse(x.alarm) as AlarmMessage,
      queuedAt: x.queued_at,
      attempts: x.attempts,
      progress: x.progress,
    }));
  }

  /** The channel accepted them: they leave the queue. */
  remove(ids: readonly number[]): void {
    this.tx(() => {
      for (const id of ids) this.total -= this.st.deleteOne.run(id).changes;
    });
  }

  /** Given up on (refused for good): they leave the queue, counted under `reason`. */
  drop(ids: readonly number[], reason: string): void {
    this.tx(() => {
      let n = 0;
      for (const id of ids) n += this.st.deleteOne.run(id).changes;
      this.total -= n;
      this.countDrop(reason, n);
    });
  }

  noteAttempt(ids: readonly number[]): void {
    this.tx(() => {
      for (const id of ids) this.st.attempt.run(id);
    });
  }

  saveProgress(id: number, progress: string): void {
    this.st.progress.run(progress, id);
  }

  /** Drops notifications queued before `cutoff`; returns how many per channel (counted as `expired`). */
  expire(cutoff: number): Map<string, number> {
    const out = new Map<string, number>();
    this.tx(() => {
      for (const r of this.st.expiredByChannel.all(cutoff) as Array<{ channel: string; n: number }>) out.set(r.channel, r.n);
      if (out.size === 0) return;
      const n = this.st.deleteExpired.run(cutoff).changes;
      this.total -= n;
      this.countDrop('expired', n);
    });
    return out;
  }

  /** Drops the notifications of channels no longer configured; returns how many per channel. */
  dropUnknownChannels(known: ReadonlySet<string>): Map<string, number> {
    const out = new Map<string, number>();
    this.tx(() => {
      for (const ch of this.st.channels.all() as string[]) {
        if (known.has(ch)) continue;
        const n = this.st.deleteChannel.run(ch).changes;
        out.set(ch, n);
        this.total -= n;
        this.countDrop('channel_removed', n);
      }
    });
    return out;
  }

  /** Forgets identities and finished escalations older than `cutoff`. */
  prune(cutoff: number): void {
    this.tx(() => {
      this.st.pruneSeen.run(cutoff);
      this.st.escPrune.run(cutoff);
    });
  }

  dueEscalations(now: number, limit = 500): DueEscalation[] {
    return (this.st.escDue.all(now, limit) as Array<{ alarm_id: string; due_at: number; alarm: string }>).map((r) => ({
      alarmId: r.alarm_id,
      dueAt: r.due_at,
      alarm: JSON.parse(r.alarm) as AlarmMessage,
    }));
  }

  nextEscalationDue(): number | null {
    return (this.st.escNext.get() as number | null) ?? null;
  }

  pendingEscalations(): number {
    return this.st.escPending.get() as number;
  }

  /** Queues the escalation notifications of one alarm and marks it escalated, in one transaction. */
  escalate(d: DueEscalation, targets: readonly QueueTarget[], now: number, maxQueued: number): EnqueueResult {
    let res: EnqueueResult = { queued: [], duplicates: [], evicted: [], rejected: [] };
    this.tx(() => {
      res = this.enqueue({ kind: 'escalation', alarm: d.alarm, severityRank: 0, targets, now, maxQueued });
      this.st.escDone.run(now, d.alarmId);
    });
    return res;
  }

  /** Records an acknowledgement; a pending escalation stops, queued escalation notifications are withdrawn. */
  acknowledge(alarmId: string, by: string, at: number, now: number): AckResult {
    let res: AckResult = { previous: 'unknown', withdrawn: 0 };
    this.tx(() => {
      const previous = this.st.escGet.get(alarmId) as EscalationState | undefined;
      if (previous === undefined) this.st.escAckInsert.run(alarmId, by, at, now);
      else this.st.escAck.run(by, at, now, alarmId);
      const withdrawn = this.st.escWithdraw.run(alarmId).changes;
      this.total -= withdrawn;
      res = { previous: previous ?? 'unknown', withdrawn };
    });
    return res;
  }

  escalationState(alarmId: string): EscalationState | undefined {
    return this.st.escGet.get(alarmId) as EscalationState | undefined;
  }

  get depth(): number {
    return this.total;
  }

  depthOf(channel: string): number {
    return this.st.countChannel.get(channel) as number;
  }

  oldestQueuedAt(channel: string): number | null {
    return (this.st.oldestOfChannel.get(channel) as number | null) ?? null;
  }

  depthByChannel(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.st.byChannel.all() as Array<{ channel: string; n: number }>) out[r.channel] = r.n;
    return out;
  }

  /** Drop counts per reason since the file was made. */
  droppedTotals(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.st.droppedAll.all() as Array<{ reason: string; n: number }>) out[r.reason] = r.n;
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

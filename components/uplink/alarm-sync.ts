/**
 * The Uplink's side of alarm synchronisation (docs/alarms.md). Every alarm source numbers its
 * transitions without gaps in its journal; here we keep, per source, the journal and the sequence
 * number up to which every transition is in the outbox (the watermark, persisted with the records
 * in the outbox's transaction). Whenever that cannot be true any more, we ask the sources on the
 * alarm sync topic to send the missing transitions again:
 *
 *  - at start (the Uplink was down: whatever was published meanwhile reached nobody);
 *  - when a transition arrives with a number above the watermark + 1 (one was lost on the way);
 *  - when a source's snapshot (published periodically) shows a newer head than the watermark,
 *    or another journal (the source's file was made anew: everything it holds is new to us).
 *
 * Requests are rate limited; replays are de-duplicated by the outbox on (alarmId, transitionSeq).
 * A gap the source no longer holds (older than its journal retention) is counted
 * (`alarm_journal_gap`) and logged, never waited for forever.
 */
import type { Bus } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import { CONTRACT_VERSION, topics, type AlarmMessage, type AlarmSnapshot, type AlarmSyncRequest } from '../lib/contract';
import { errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import type { SourcePosition } from './outbox';

export interface AlarmSyncOptions {
  bus: Bus;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  siteId: string;
  /** Our short name, the request's `requester`. */
  requester: string;
  /** At most one request per this many ms (default 2000). */
  minIntervalMs?: number;
}

interface Position {
  journalId: string;
  /** Every transition up to this one is in the outbox. */
  seq: number;
  /** Seen above the watermark (out of order, or after a gap). */
  above: Set<number>;
}

/** Seen-ahead numbers kept per source before the gap below them is given up as lost. */
const MAX_AHEAD = 10_000;

export class AlarmSync {
  private readonly positions = new Map<string, Position>();
  private readonly dirty = new Set<string>();
  private lastRequestAt = -Infinity;
  private timer: TimerHandle | undefined;
  private closed = false;
  private readonly minIntervalMs: number;
  readonly counters = { requests: 0, gaps: 0, lost: 0 };

  constructor(private readonly o: AlarmSyncOptions) {
    this.minIntervalMs = o.minIntervalMs ?? 2000;
  }

  /** Positions as persisted (outbox.sourcePositions()). */
  load(list: readonly SourcePosition[]): void {
    this.positions.clear();
    this.dirty.clear();
    for (const p of list) this.positions.set(p.source, { journalId: p.journalId, seq: p.seq, above: new Set() });
  }

  /** Positions changed since the last call, to persist with the records that moved them. */
  takeDirty(): SourcePosition[] {
    const out: SourcePosition[] = [];
    for (const source of this.dirty) {
      const p = this.positions.get(source);
      if (p) out.push({ source, journalId: p.journalId, seq: p.seq });
    }
    this.dirty.clear();
    return out;
  }

  position(source: string): { journalId: string; seq: number } | undefined {
    const p = this.positions.get(source);
    return p ? { journalId: p.journalId, seq: p.seq } : undefined;
  }

  /** A transition taken in (live or replayed). */
  observe(a: AlarmMessage): void {
    if (a.journalId === undefined || a.sourceSeq === undefined) return;
    const p = this.at(a.source, a.journalId);
    if (a.sourceSeq <= p.seq) return;
    p.above.add(a.sourceSeq);
    this.advance(a.source, p);
    if (p.above.size > 0) {
      this.counters.gaps++;
      this.request('gap');
    }
  }

  /** A source's snapshot: its head and oldest retained transition. */
  onSnapshot(s: AlarmSnapshot): void {
    const p = this.at(s.source, s.journalId);
    if (s.oldestSeq > p.seq + 1) {
      // The journal no longer holds what we miss: count it, move on.
      const lost = s.oldestSeq - p.seq - 1 - [...p.above].filter((x) => x < s.oldestSeq).length;
      if (lost > 0) {
        this.counters.lost += lost;
        this.o.metrics.drop('alarm_journal_gap', lost);
        this.o.logger.error('alarm transitions lost: older than the source journal keeps', { source: s.source, journalId: s.journalId, from: p.seq + 1, to: s.oldestSeq - 1, lost });
      }
      p.seq = s.oldestSeq - 1;
      this.dirty.add(s.source);
      this.advance(s.source, p);
    }
    if (s.headSeq > p.seq) this.request('snapshot');
  }

  /** Ask every source for its snapshot and for what follows our watermark (rate limited). */
  request(reason: string): void {
    if (this.closed) return;
    const now = this.o.clock.now();
    const wait = this.lastRequestAt + this.minIntervalMs - now;
    if (wait > 0) {
      this.timer ??= this.o.clock.setTimeout(() => {
        this.timer = undefined;
        this.request(reason);
      }, wait);
      return;
    }
    this.lastRequestAt = now;
    this.counters.requests++;
    const from: NonNullable<AlarmSyncRequest['from']> = {};
    for (const [source, p] of this.positions) from[source] = { journalId: p.journalId, seq: p.seq + 1 };
    const req: AlarmSyncRequest = { schemaVersion: CONTRACT_VERSION, siteId: this.o.siteId, ts: now, requester: this.o.requester, from };
    this.o.logger.debug('alarm sync requested', { reason, from });
    this.o.bus.publish(topics.alarmSync(this.o.siteId), req).catch((err: unknown) => {
      this.o.metrics.recordError(err);
      this.o.logger.warn('alarm sync request not published', { err: errorMessage(err) });
    });
  }

  close(): void {
    this.closed = true;
    this.o.clock.clearTimeout(this.timer);
  }

  private at(source: string, journalId: string): Position {
    let p = this.positions.get(source);
    if (!p || p.journalId !== journalId) {
      if (p) this.o.logger.info('alarm source has a new journal; taking it from its start', { source, was: p.journalId, now: journalId });
      p = { journalId, seq: 0, above: new Set() };
      this.positions.set(source, p);
      this.dirty.add(source);
    }
    return p;
  }

  private advance(source: string, p: Position): void {
    const before = p.seq;
    while (p.above.delete(p.seq + 1)) p.seq++;
    for (const x of p.above) if (x <= p.seq) p.above.delete(x);
    if (p.above.size > MAX_AHEAD) {
      const min = Math.min(...p.above);
      const lost = min - p.seq - 1;
      this.counters.lost += lost;
      this.o.metrics.drop('alarm_journal_gap', lost);
      this.o.logger.error('alarm transitions given up: the gap below was never filled', { source, from: p.seq + 1, to: min - 1 });
      p.seq = min - 1;
      while (p.above.delete(p.seq + 1)) p.seq++;
    }
    if (p.seq !== before) this.dirty.add(source);
  }
}

/** An alarm transition's identity (the cloud de-duplicates on it too). */
export function alarmKey(a: AlarmMessage): string {
  // Producers that predate transition counters: the state and time tell transitions apart.
  return a.transitionSeq !== undefined ? `${a.alarmId}#${a.transitionSeq}` : `${a.alarmId}#${a.state}@${a.ts}`;
}

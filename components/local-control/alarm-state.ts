/**
 * The site's active alarms as LocalControl knows them (docs/local-control.md "Knowing the site's
 * state"; docs/alarms.md for the journal, snapshots and sync).
 *
 * Automation acts on alarms as state (an over-temperature alarm is active until its clear), so
 * what matters is the active set, not every transition:
 *
 *  - live transitions update it, ordered per alarm by `transitionSeq` (a late or repeated one is
 *    ignored);
 *  - a source's snapshot is its whole active set: entries we did not know are added, and once
 *    every page of it arrived, our alarms of that source missing from it (with a sequence number
 *    the snapshot covers) are removed: their clear was lost on the way;
 *  - a gap in a source's `sourceSeq`, or a new journal, asks every source for a snapshot again
 *    (alarm sync without `from`: the state, not a replay), rate limited; so does `start`.
 *
 * A source is "heard" whenever a transition or snapshot of it arrives. Sources publish a snapshot
 * every minute, so a source silent for much longer (a crashed Processor) makes its alarms unknown,
 * and automation neither acts on them nor releases what it did because of them.
 */
import type { Bus } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import { CONTRACT_VERSION, topics, type AlarmMessage, type AlarmSnapshot, type AlarmSyncRequest } from '../lib/contract';
import { errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';

export interface AlarmStateOptions {
  bus: Bus;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  siteId: () => string;
  /** Our short name: the sync request's `requester`, and the source whose alarms are always current. */
  self: string;
  /** At most one sync request per this many ms (default 2000). */
  minSyncIntervalMs?: number;
}

interface SourcePos {
  journalId: string | undefined;
  seq: number;
  heardAt: number;
}

interface PageGroup {
  key: string;
  seen: Set<number>;
  pages: number;
  headSeq: number;
  journalId: string;
  ids: Set<string>;
}

/** Cleared alarm ids remembered (with their last transitionSeq) so a late copy does not revive them. */
const MAX_CLEARED = 20000;

export class AlarmState {
  private readonly activeById = new Map<string, AlarmMessage>();
  private readonly cleared = new Map<string, number>();
  private readonly sources = new Map<string, SourcePos>();
  private readonly groups = new Map<string, PageGroup>();
  private lastSyncAt = -Infinity;
  private syncTimer: TimerHandle | undefined;
  private closed = false;
  readonly counters = { syncRequests: 0, missedClears: 0, gaps: 0 };

  constructor(private readonly o: AlarmStateOptions) {}

  active(): IterableIterator<AlarmMessage> {
    return this.activeById.values();
  }

  get(alarmId: string): AlarmMessage | undefined {
    return this.activeById.get(alarmId);
  }

  get size(): number {
    return this.activeById.size;
  }

  /** When a transition or snapshot of `source` last arrived (our own alarms: now). */
  heardAt(source: string): number | undefined {
    if (source === this.o.self) return this.o.clock.now();
    return this.sources.get(source)?.heardAt;
  }

  /**
   * One transition (live or replayed). Returns true when it is news (not a repeat or an older
   * copy); the active set changed or the alarm's value did.
   */
  onTransition(a: AlarmMessage): boolean {
    if (this.closed) return false;
    const now = this.o.clock.now();
    this.hear(a.source, a.journalId, a.sourceSeq, a.replayed === true, now);
    return this.apply(a);
  }

  /** One snapshot page. Returns the alarms it taught us (unknown before, or newer than ours), and whether the active set changed. */
  onSnapshot(s: AlarmSnapshot): { fresh: AlarmMessage[]; changed: boolean } {
    if (this.closed) return { fresh: [], changed: false };
    const now = this.o.clock.now();
    // Its head: later live transitions continue from there (what we missed before it, the snapshot holds).
    this.hear(s.source, s.journalId, s.headSeq, true, now);
    const fresh: AlarmMessage[] = [];
    let changed = false;
    for (const a of s.active) {
      if (a.source !== s.source) continue;
      if (this.apply(a)) {
        fresh.push(a);
        changed = true;
      }
    }
    const key = `${s.journalId}|${s.headSeq}|${s.ts}|${s.pages}|${s.requestedBy ?? ''}`;
    let g = this.groups.get(`${s.source}|${key}`);
    if (!g) {
      g = { key, seen: new Set(), pages: s.pages, headSeq: s.headSeq, journalId: s.journalId, ids: new Set() };
      this.groups.set(`${s.source}|${key}`, g);
      // Keep a few incomplete groups per site; a lost page leaves its group to be dropped here.
      if (this.groups.size > 32) this.groups.delete(this.groups.keys().next().value as string);
    }
    g.seen.add(s.page);
    for (const a of s.active) g.ids.add(a.alarmId);
    if (g.seen.size >= g.pages) {
      this.groups.delete(`${s.source}|${key}`);
      changed = this.reconcile(s.source, g) || changed;
    }
    return { fresh, changed };
  }

  /** Ask every alarm source for its snapshot (rate limited; a request inside the interval is sent at its end). */
  requestSync(reason: string): void {
    if (this.closed) return;
    const now = this.o.clock.now();
    const wait = this.lastSyncAt + (this.o.minSyncIntervalMs ?? 2000) - now;
    if (wait > 0) {
      this.syncTimer ??= this.o.clock.setTimeout(() => {
        this.syncTimer = undefined;
        this.requestSync(reason);
      }, wait);
      return;
    }
    this.lastSyncAt = now;
    this.counters.syncRequests++;
    const req: AlarmSyncRequest = { schemaVersion: CONTRACT_VERSION, siteId: this.o.siteId(), ts: now, requester: this.o.self };
    this.o.logger.debug('alarm sync requested', { reason });
    this.o.bus.publish(topics.alarmSync(req.siteId), req).catch((err: unknown) => {
      this.o.metrics.recordError(err);
      this.o.logger.warn('alarm sync request not published', { err: errorMessage(err) });
    });
  }

  /** Forget everything (another site or database). */
  reset(): void {
    this.activeById.clear();
    this.cleared.clear();
    this.sources.clear();
    this.groups.clear();
  }

  close(): void {
    this.closed = true;
    this.o.clock.clearTimeout(this.syncTimer);
  }

  private hear(source: string, journalId: string | undefined, seq: number | undefined, replayed: boolean, now: number): void {
    let p = this.sources.get(source);
    if (!p) {
      p = { journalId, seq: 0, heardAt: now };
      this.sources.set(source, p);
    }
    p.heardAt = now;
    if (journalId === undefined) return;
    if (p.journalId !== journalId) {
      if (p.journalId !== undefined) {
        this.o.logger.info('alarm source has a new journal; asking for its state', { source, was: p.journalId, now: journalId });
        this.requestSync('new journal');
      }
      p.journalId = journalId;
      p.seq = seq ?? 0;
      return;
    }
    if (seq === undefined) return;
    if (!replayed && p.seq > 0 && seq > p.seq + 1) {
      this.counters.gaps++;
      this.requestSync('gap');
    }
    if (seq > p.seq) p.seq = seq;
  }

  /** True when `a` is newer than what we hold for its alarm. */
  private apply(a: AlarmMessage): boolean {
    const cur = this.activeById.get(a.alarmId);
    const clearedSeq = this.cleared.get(a.alarmId);
    const known = cur ? cur.transitionSeq : clearedSeq;
    if (a.transitionSeq !== undefined && known !== undefined) {
      if (a.transitionSeq <= known) return false;
    } else if (cur && a.transitionSeq === undefined) {
      // A producer without transition counters: the time orders its transitions.
      if (a.ts < cur.ts || (a.ts === cur.ts && a.state === cur.state)) return false;
    } else if (!cur && clearedSeq !== undefined && a.transitionSeq === undefined) {
      return false;
    }
    if (a.state === 'cleared') {
      this.activeById.delete(a.alarmId);
      this.rememberCleared(a.alarmId, a.transitionSeq ?? 0);
    } else {
      this.activeById.set(a.alarmId, a);
      this.cleared.delete(a.alarmId);
    }
    return true;
  }

  private rememberCleared(alarmId: string, seq: number): void {
    this.cleared.set(alarmId, seq);
    if (this.cleared.size > MAX_CLEARED) this.cleared.delete(this.cleared.keys().next().value as string);
  }

  /** A complete snapshot: our alarms of this source that it no longer lists had their clear lost. */
  private reconcile(source: string, g: PageGroup): boolean {
    let changed = false;
    for (const [id, a] of this.activeById) {
      if (a.source !== source || g.ids.has(id)) continue;
      const sameJournal = a.journalId === undefined || a.journalId === g.journalId;
      // Raised after the snapshot was taken (a live transition overtook it): keep it.
      if (sameJournal && a.sourceSeq !== undefined && a.sourceSeq > g.headSeq) continue;
      this.activeById.delete(id);
      this.rememberCleared(id, a.transitionSeq ?? 0);
      this.counters.missedClears++;
      this.o.logger.info('alarm no longer active at its source (its clear was missed)', { alarmId: id, source, type: a.type, assetId: a.assetId });
      changed = true;
    }
    return changed;
  }
}

/**
 * The store's commit path: what a durability ticket covers, what `append` tells the caller about
 * refused samples, and how a failing database is retried (backoff, bounded buffer, quiet log,
 * recovery on its own).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { createLogger } from '../../components/lib/logger';
import { openStore, type CommitInfo, type Store, type StoreConfig, type StoreSample } from '../../components/lib/store';

const T0 = Date.UTC(2026, 10, 26, 0, 0, 0);
const KEY = { assetId: 'inv-1', point: 'P' };

let dir: string;
let clock: FakeClock;
let lines: string[];
const open: Store[] = [];

function mk(config: Partial<StoreConfig> = {}, freeSpace?: (d: string) => number): Store {
  const logger = createLogger({}, { write: (l) => lines.push(l), now: () => clock.now() });
  const s = openStore({ path: path.join(dir, 'raw.db'), clock, logger, ...(freeSpace ? { freeSpace } : {}) }, { chunkSamples: 60, sealLagMs: 0, sealIntervalMs: 3600_000, ...config });
  open.push(s);
  return s;
}

function samples(from: number, n: number, stepMs = 1000, key = KEY): StoreSample[] {
  return Array.from({ length: n }, (_, i) => ({ ...key, ts: from + i * stepMs, v: i, q: 'good' as const }));
}

const stored = (s: Store): Set<number> => new Set(s.range(KEY, 0, 2 ** 46).map((x) => x.ts));
const errorLines = (): string[] => lines.filter((l) => (JSON.parse(l) as { level: string }).level === 'error');
const commitErrorLines = (): string[] => errorLines().filter((l) => (JSON.parse(l) as { msg: string }).msg.includes('commit failed'));

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-commit-'));
  clock = new FakeClock(T0 + 3600_000 * 2);
  lines = [];
});

afterEach(() => {
  for (const s of open.splice(0)) {
    try {
      s.db.pragma('query_only = 0');
    } catch {
      // already closed
    }
    s.close();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('durability tickets', () => {
  it('a commit forced in the middle of an append does not report that append durable', () => {
    const s = mk({ maxBatchSamples: 100 });
    const appends: Array<{ ticket: number; ts: number[] }> = [];
    const problems: string[] = [];
    s.onCommit((c) => {
      // Every sample of every append the commit reports must be in the database already.
      const inDb = stored(s);
      for (const a of appends) {
        if (a.ticket > c.ticket) continue;
        const missing = a.ts.filter((t) => !inDb.has(t)).length;
        if (missing) problems.push(`commit reported ticket ${c.ticket} with ${missing} samples of ticket ${a.ticket} not committed`);
      }
      if (s.durableTicket !== c.ticket) problems.push(`durableTicket ${s.durableTicket} during the commit of ${c.ticket}`);
    });
    const a1 = samples(T0, 10);
    appends.push({ ticket: s.append(a1), ts: a1.map((x) => x.ts) });
    const a2 = samples(T0 + 10_000, 250); // 2.6 buffers: commits at 100 and 200 samples
    const ticket2 = s.append(a2);
    appends.push({ ticket: ticket2, ts: a2.map((x) => x.ts) });
    expect(s.counters().commits).toBe(2);
    expect(s.durableTicket).toBe(appends[0]!.ticket);
    expect(s.durableTicket).toBeLessThan(ticket2);
    expect(s.pending).toBe(60);
    const c = s.flush();
    expect(c?.ticket).toBe(ticket2);
    expect(s.durableTicket).toBe(ticket2);
    expect(stored(s).size).toBe(260);
    expect(problems).toEqual([]);
  });
});

describe('refused samples', () => {
  it('tryAppend says how many samples were refused as disk_full, and none of them is stored', () => {
    let free = 10_000_000;
    const s = mk({ minFreeBytes: 50_000_000 }, () => free);
    expect(s.enforceRetention().diskFull).toBe(true);
    const r = s.tryAppend([...samples(T0, 3), { ...KEY, ts: T0 + 5, v: NaN, q: 'good' }]);
    expect(r).toEqual({ ticket: expect.any(Number), accepted: 0, rejected: 4, reasons: { disk_full: 4 } });
    s.flush();
    expect(stored(s).size).toBe(0);
    free = 100_000_000;
    expect(s.enforceRetention().diskFull).toBe(false);
    const ok = s.tryAppend([...samples(T0 + 10_000, 2), { ...KEY, ts: T0 + 5, v: NaN, q: 'good' }]);
    expect(ok).toEqual({ ticket: r.ticket + 1, accepted: 2, rejected: 1, reasons: { non_finite_value: 1 } });
    const c = s.flush();
    // The commit reports what the appends it covers refused: the first one's 4 and the NaN.
    expect(c).toMatchObject({ ticket: ok.ticket, samples: 2, rejected: 5 });
    expect(stored(s).size).toBe(2);
  });

  it('samples refused as store_unavailable while commits fail are reported, not durable, and the commit says so', () => {
    const s = mk({ maxBatchSamples: 10 });
    const commits: CommitInfo[] = [];
    s.onCommit((c) => commits.push(c));
    s.db.pragma('query_only = 1'); // every commit fails
    const a = s.tryAppend(samples(T0, 6));
    expect(s.flush()).toBeUndefined();
    expect(s.counters().commitErrors).toBe(1);
    const b = s.tryAppend(samples(T0 + 6_000, 8));
    expect(b).toEqual({ ticket: a.ticket + 1, accepted: 4, rejected: 4, reasons: { store_unavailable: 4 } });
    expect(s.pending).toBe(10);
    s.db.pragma('query_only = 0');
    const c = s.flush();
    expect(c).toMatchObject({ ticket: b.ticket, samples: 10, rejected: 4 });
    expect(commits).toHaveLength(1);
    // Exactly the accepted samples are durable: the first 10 timestamps.
    expect([...stored(s)].sort((x, y) => x - y)).toEqual(samples(T0, 10).map((x) => x.ts));
    expect(s.counters().rejected).toEqual({ store_unavailable: 4 });
  });

  it('append still returns the ticket alone, for callers that do not look at refusals', () => {
    const s = mk();
    const t = s.append(samples(T0, 2));
    expect(typeof t).toBe('number');
    expect(s.flush()?.ticket).toBe(t);
  });
});

describe('a failing database', () => {
  it('backs off instead of retrying on every append, keeps the buffer bounded, logs sparingly and recovers on its own', () => {
    const window = 250;
    const s = mk({ commitWindowMs: window, maxBatchSamples: 5_000 });
    const commits: CommitInfo[] = [];
    s.onCommit((c) => commits.push(c));
    s.db.pragma('query_only = 1');
    let ts = T0;
    let lastTicket = 0;
    // 1 000 appends of 10 samples, 1 ms apart: one second of a busy Processor.
    for (let i = 0; i < 1000; i++) {
      lastTicket = s.append(samples(ts, 10, 1));
      ts += 10;
      clock.advance(1);
    }
    const c1 = s.counters();
    // Backoff from the commit window: tries at ~0.2 s, then 125-250 ms, 250-500 ms, 500-1000 ms later.
    expect(c1.commitErrors).toBeGreaterThanOrEqual(2);
    expect(c1.commitErrors).toBeLessThanOrEqual(4);
    expect(s.pending).toBe(5_000); // bounded; the rest refused and counted
    expect(c1.rejected['store_unavailable']).toBe(10_000 - 5_000);
    expect(commitErrorLines()).toHaveLength(1);
    expect(JSON.parse(commitErrorLines()[0]!)).toMatchObject({ pending: expect.any(Number), retryInMs: expect.any(Number) });
    // Retention fails too on a read-only file (its own line, limited the same way).
    expect(errorLines().length).toBeLessThanOrEqual(2);
    expect(commits).toEqual([]);
    expect(s.failingCommits).toBe(c1.commitErrors);

    // A minute more of failure: the retries are capped at a few seconds apart, the log stays quiet.
    for (let i = 0; i < 60; i++) {
      s.append(samples(ts, 10, 1));
      ts += 10;
      clock.advance(1000);
    }
    const c2 = s.counters();
    // Delays double up to 5 s (jittered between half and all of it): 12-28 tries in 61 s, not 60 000.
    expect(c2.commitErrors - c1.commitErrors).toBeGreaterThanOrEqual(10);
    expect(c2.commitErrors - c1.commitErrors).toBeLessThanOrEqual(30);
    expect(commitErrorLines().length).toBeLessThanOrEqual(1 + 7); // at most one line per 10 s
    expect(errorLines().length).toBeLessThanOrEqual(2 * (1 + 7));
    const last = JSON.parse(commitErrorLines()[commitErrorLines().length - 1]!) as { suppressed: number; commitErrors: number };
    expect(last.suppressed).toBeGreaterThan(0);
    expect(last.commitErrors).toBeGreaterThan(c1.commitErrors);

    // The database works again: the store commits by itself within the longest backoff.
    s.db.pragma('query_only = 0');
    clock.advance(5_000);
    expect(commits).toHaveLength(1);
    expect(commits[0]).toMatchObject({ samples: 5_000, rejected: 10_000 - 5_000 + 60 * 10 });
    expect(s.pending).toBe(0);
    expect(s.failingCommits).toBe(0);
    expect(s.counters().commitErrors).toBe(c2.commitErrors);
    expect(lines.some((l) => (JSON.parse(l) as { msg: string }).msg.includes('recovered'))).toBe(true);
    // ... and is back to one commit per window.
    const t = s.append(samples(ts, 10, 1));
    clock.advance(window);
    expect(commits).toHaveLength(2);
    expect(s.durableTicket).toBe(t);
    expect(t).toBeGreaterThan(lastTicket);
  });

  it('treats a full file system (SQLITE_FULL) the same way', () => {
    const s = mk({ commitWindowMs: 100, maxBatchSamples: 20_000 });
    s.append(samples(T0, 10));
    s.flush();
    const pages = s.db.pragma('page_count', { simple: true }) as number;
    s.db.pragma(`max_page_count = ${pages}`);
    let ts = T0 + 100_000;
    for (let i = 0; i < 1000; i++) {
      s.append(samples(ts, 20, 1));
      ts += 20;
      clock.advance(1);
    }
    const c = s.counters();
    expect(c.commitErrors).toBeGreaterThanOrEqual(1);
    expect(c.commitErrors).toBeLessThanOrEqual(6);
    expect(commitErrorLines()).toHaveLength(1);
    expect(JSON.parse(commitErrorLines()[0]!)).toMatchObject({ error: expect.stringMatching(/full/i) });
    s.db.pragma('max_page_count = 1073741823');
    clock.advance(5_000);
    expect(s.pending).toBe(0);
    expect(stored(s).size).toBe(c.appended);
  });
});

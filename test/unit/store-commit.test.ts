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
import { openStore, type Store, type StoreConfig, type StoreSample } from '../../components/lib/store';

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

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-commit-'));
  clock = new FakeClock(T0 + 3600_000 * 2);
  lines = [];
});

afterEach(() => {
  for (const s of open.splice(0)) {
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

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { openStore, openStoreReader, type Sample, type Store, type StoreConfig, type StoreSample } from '../../components/lib/store';

const T0 = Date.UTC(2026, 10, 26, 0, 0, 0);
const KEY = { assetId: 'inv-1', point: 'P' };

let dir: string;
let clock: FakeClock;
const open: Store[] = [];

function mk(config: Partial<StoreConfig> = {}, freeSpace?: (d: string) => number): Store {
  const s = openStore({ path: path.join(dir, 'raw.db'), clock, ...(freeSpace ? { freeSpace } : {}) }, { chunkSamples: 60, sealLagMs: 0, ...config });
  open.push(s);
  return s;
}

function samples(from: number, n: number, stepMs = 1000, value = (i: number) => i / 10, key = KEY): StoreSample[] {
  return Array.from({ length: n }, (_, i) => ({ ...key, ts: from + i * stepMs, v: value(i), q: 'good' as const }));
}

function naive(all: StoreSample[], from: number, to: number): Sample[] {
  return all.filter((s) => s.ts >= from && s.ts <= to).sort((a, b) => a.ts - b.ts).map((s) => ({ ts: s.ts, v: s.v, q: s.q }));
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  clock = new FakeClock(T0 + 3600_000 * 2);
});

afterEach(() => {
  for (const s of open.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('store writes', () => {
  it('commits within the window on its own and tells the caller which ticket is durable', () => {
    const s = mk({ commitWindowMs: 250 });
    const seen: number[] = [];
    s.onCommit((c) => seen.push(c.ticket));
    const t = s.append(samples(T0, 10));
    expect(s.pending).toBe(10);
    clock.advance(199);
    expect(seen).toEqual([]);
    clock.advance(1); // 80 % of 250 ms
    expect(seen).toEqual([t]);
    expect(s.durableTicket).toBe(t);
    expect(s.pending).toBe(0);
    expect(s.range(KEY, T0, T0 + 10_000)).toHaveLength(10);
  });

  it('stores the same (series, ts) once, in the head and across seals (first write wins)', () => {
    const s = mk();
    const a = samples(T0, 120);
    s.append(a);
    s.append(a.slice(0, 50).map((x) => ({ ...x, v: 999 })));
    const c = s.flush();
    expect(c?.duplicates).toBe(50);
    s.seal();
    s.append(a.slice(10, 30).map((x) => ({ ...x, v: 777 })));
    s.flush();
    // Before the seal, the late duplicates sit in the head; reads already hide them.
    expect(s.range(KEY, T0, T0 + 200_000)).toEqual(naive(a, T0, T0 + 200_000));
    s.seal();
    const raw = s.rawTimestamps(KEY);
    expect(raw.head).toEqual([]);
    expect(raw.chunk).toHaveLength(120);
    expect(new Set(raw.chunk).size).toBe(120);
    expect(s.range(KEY, T0, T0 + 200_000)).toEqual(naive(a, T0, T0 + 200_000));
  });

  it('accepts out-of-order samples in the head and late samples older than sealed chunks', () => {
    const s = mk();
    const all = samples(T0, 300, 2000);
    const even = all.filter((_, i) => i % 2 === 0);
    const odd = all.filter((_, i) => i % 2 === 1);
    s.append([...even].reverse());
    s.flush();
    s.seal();
    const chunksBefore = (s.db.prepare('SELECT count(*) AS n FROM chunk').get() as { n: number }).n;
    expect(chunksBefore).toBeGreaterThan(1);
    s.append(odd); // all older than the last chunk's end: merged into the chunks holding them
    s.flush();
    expect(s.range(KEY, T0, T0 + 1e6)).toEqual(naive(all, T0, T0 + 1e6));
    s.seal();
    // All odd samples but the newest are older than the last chunk's end.
    expect(s.counters().lateSamples).toBe(odd.length - 1);
    expect(s.range(KEY, T0, T0 + 1e6)).toEqual(naive(all, T0, T0 + 1e6));
    // Chunks stay non-overlapping and within 2x the target.
    const rows = s.db.prepare('SELECT min_ts, max_ts, n FROM chunk ORDER BY max_ts').all() as Array<{ min_ts: number; max_ts: number; n: number }>;
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.min_ts).toBeGreaterThan(rows[i - 1]!.max_ts);
    for (const r of rows) expect(r.n).toBeLessThanOrEqual(120);
    // Late data before the first chunk and after a gap.
    const early = samples(T0 - 50_000, 5);
    s.append(early);
    s.seal();
    expect(s.range(KEY, T0 - 1e6, T0 + 1e6)).toEqual(naive([...all, ...early], T0 - 1e6, T0 + 1e6));
  });

  it('skips and counts invalid samples instead of storing them', () => {
    const s = mk();
    s.append([
      { ...KEY, ts: T0, v: NaN, q: 'good' },
      { ...KEY, ts: T0 + 1, v: Infinity, q: 'good' },
      { ...KEY, ts: 1.5, v: 1, q: 'good' },
      { ...KEY, ts: T0 + 2, v: 1, q: 'weird' as never },
      { assetId: '', point: 'x', ts: T0, v: 1, q: 'good' },
      { ...KEY, ts: T0 + 3, v: null, q: 'bad' },
    ]);
    s.flush();
    expect(s.counters().rejected).toEqual({ non_finite_value: 2, bad_timestamp: 1, bad_quality: 1, bad_series_key: 1 });
    expect(s.range(KEY, T0, T0 + 10)).toEqual([{ ts: T0 + 3, v: null, q: 'bad' }]);
  });
});

describe('store reads', () => {
  function filled(): { s: Store; all: StoreSample[] } {
    const s = mk();
    const all = samples(T0, 1000, 1000, (i) => Math.round(Math.sin(i / 50) * 1000) / 10);
    all[17] = { ...all[17]!, v: null, q: 'bad' };
    s.append(all.slice(0, 900));
    s.flush();
    s.seal(); // 900 in chunks of 60
    s.append(all.slice(900)); // 100 in the head
    s.flush();
    return { s, all };
  }

  it('a range spans chunks and the committed head, bounds inclusive', () => {
    const { s, all } = filled();
    for (const [a, b] of [
      [T0, T0 + 999_000],
      [T0 + 59_000, T0 + 61_000],
      [T0 + 850_500, T0 + 950_000],
      [T0 + 1_000, T0 + 1_000],
    ] as const) {
      expect(s.range(KEY, a, b)).toEqual(naive(all, a, b));
    }
    expect(s.range(KEY, T0 + 5, T0 + 1)).toEqual([]);
    expect(s.range({ assetId: 'nope', point: 'P' }, T0, T0 + 1e6)).toEqual([]);
  });

  it('downsampling equals a naive computation, with and without chunk statistics', () => {
    const { s, all } = filled();
    for (const bucketMs of [7_000, 60_000, 300_000]) {
      for (const agg of ['avg', 'min', 'max', 'last'] as const) {
        const from = T0 + 3_000;
        const to = T0 + 990_000;
        const groups = new Map<number, number[]>();
        for (const x of naive(all, from, to)) {
          const b = Math.floor(x.ts / bucketMs) * bucketMs;
          if (!groups.has(b)) groups.set(b, []);
          if (x.v !== null) groups.get(b)!.push(x.v);
        }
        const expected = [...groups.entries()].map(([ts, vs]) => {
          const v = agg === 'avg' ? vs.reduce((a, b) => a + b, 0) / vs.length : agg === 'min' ? Math.min(...vs) : agg === 'max' ? Math.max(...vs) : vs[vs.length - 1]!;
          return { ts, v, n: vs.length };
        });
        const got = s.range(KEY, from, to, { downsample: { bucketMs, agg } });
        expect(got.map((g) => g.ts)).toEqual(expected.map((e) => e.ts));
        got.forEach((g, i) => {
          expect(g.n).toBe(expected[i]!.n);
          expect(g.v).toBeCloseTo(expected[i]!.v, 9);
        });
      }
    }
  });

  it('chunkStats uses whole chunks undecoded and the rest as samples, and totals match', () => {
    const { s, all } = filled();
    const from = T0 + 30_000;
    const to = T0 + 960_000;
    const r = s.chunkStats(KEY, from, to);
    expect(r.chunks.length).toBe(14); // chunks starting at 60 s .. 840 s
    const inChunks = r.chunks.reduce((a, c) => a + c.n, 0);
    expect(inChunks + r.partial.length).toBe(naive(all, from, to).length);
    const vals = naive(all, from, to).flatMap((x) => (x.v === null ? [] : [x.v]));
    expect(r.total.count).toBe(vals.length);
    expect(r.total.min).toBe(Math.min(...vals));
    expect(r.total.max).toBe(Math.max(...vals));
    expect(r.total.sum).toBeCloseTo(vals.reduce((a, b) => a + b, 0), 6);
    expect(r.total.sumSq).toBeCloseTo(vals.reduce((a, b) => a + b * b, 0), 3);
    expect(r.total.first).toBe(vals[0]);
    expect(r.total.last).toBe(vals[vals.length - 1]);
  });

  it('reopens after close with everything, and a read-only reader sees the head too', () => {
    const { s, all } = filled();
    s.append(samples(T0 + 1_000_000, 3));
    s.close();
    const again = mk();
    expect(again.range(KEY, T0, T0 + 2e6)).toHaveLength(1003);
    expect(again.listSeries()).toEqual([{ id: 1, ...KEY, unit: null }]);
    const reader = openStoreReader(path.join(dir, 'raw.db'));
    try {
      expect(reader.range(KEY, T0, T0 + 999_000)).toEqual(naive(all, T0, T0 + 999_000));
      again.append(samples(T0 + 2_000_000, 1));
      again.flush();
      expect(reader.range(KEY, T0 + 2_000_000, T0 + 2_000_000)).toHaveLength(1);
    } finally {
      reader.close();
    }
  });
});

describe('retention', () => {
  it('deletes chunks older than the retention age', () => {
    const s = mk({ retentionMs: 3600_000 });
    s.append(samples(T0, 600)); // 2 h before now: expired
    s.append(samples(clock.now() - 600_000, 600)); // the last 10 minutes
    s.flush();
    s.seal();
    const r = s.enforceRetention();
    expect(r.deletedChunks).toBe(10);
    expect(s.range(KEY, 0, clock.now())).toHaveLength(600);
    expect(s.range(KEY, 0, clock.now())[0]!.ts).toBe(clock.now() - 600_000);
  });

  it('keeps the database under its byte budget, oldest first, and the file shrinks', () => {
    const s = mk({ chunkSamples: 720 });
    const r0 = Math.random;
    const all: StoreSample[] = [];
    for (let p = 0; p < 20; p++) all.push(...samples(T0, 3600, 1000, () => r0() * 1000, { assetId: 'a', point: `p${p}` }));
    s.append(all);
    s.flush();
    s.seal();
    s.db.pragma('incremental_vacuum');
    s.db.pragma('wal_checkpoint(TRUNCATE)');
    const file = path.join(dir, 'raw.db');
    const before = fs.statSync(file).size;
    const budget = Math.floor(before / 2);
    const limited = (s.close(), mk({ chunkSamples: 720, maxBytes: budget }));
    const r = limited.enforceRetention();
    expect(r.deletedChunks).toBeGreaterThan(0);
    expect(r.usedBytes).toBeLessThanOrEqual(budget);
    limited.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(fs.statSync(file).size).toBeLessThan(before * 0.7);
    // Oldest went first: what is left is the newest part of each series.
    const left = limited.range({ assetId: 'a', point: 'p0' }, 0, Infinity);
    expect(left.length).toBeGreaterThan(0);
    expect(left[left.length - 1]!.ts).toBe(T0 + 3599_000);
  });

  it('cuts to honour the free-disk floor, then refuses samples when nothing is left', () => {
    let free = 10_000_000;
    const s = mk({ minFreeBytes: 50_000_000 }, () => free);
    s.append(samples(T0, 600));
    s.flush();
    s.seal();
    const r = s.enforceRetention();
    expect(r.deletedChunks).toBe(10);
    expect(s.range(KEY, 0, Infinity)).toEqual([]);
    expect(s.enforceRetention().diskFull).toBe(true);
    s.append(samples(T0 + 1e6, 3));
    s.flush();
    expect(s.counters().rejected.disk_full).toBe(3);
    free = 100_000_000;
    expect(s.enforceRetention().diskFull).toBe(false);
    s.append(samples(T0 + 2e6, 3));
    s.flush();
    expect(s.range(KEY, 0, Infinity)).toHaveLength(3);
  });
});

describe('maintenance timer', () => {
  it('seals on its own schedule and close stops its timers', () => {
    const s = mk({ sealIntervalMs: 60_000, sealLagMs: 10_000 });
    s.append(samples(clock.now() - 120_000, 100));
    clock.advance(61_000);
    expect(s.counters().sealedSamples).toBe(100);
    s.close();
    expect(clock.pending).toBe(0);
  });
});

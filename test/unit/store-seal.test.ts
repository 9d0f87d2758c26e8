/**
 * Sealing: what it reads from the head and what it gives back to the file system afterwards.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { openStore, type Sample, type Store, type StoreConfig, type StoreSample } from '../../components/lib/store';

const T0 = Date.UTC(2026, 10, 26, 0, 0, 0);

let dir: string;
let clock: FakeClock;
const open: Store[] = [];

function mk(config: Partial<StoreConfig> = {}): Store {
  const s = openStore({ path: path.join(dir, 'raw.db'), clock }, { chunkSamples: 60, sealLagMs: 0, ...config });
  open.push(s);
  return s;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-seal-'));
  clock = new FakeClock(T0 + 3600_000 * 2);
});

afterEach(() => {
  for (const s of open.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('sealing', () => {
  it('reads head rows in key order, whatever order SQLite would return them in without ORDER BY', () => {
    const s = mk();
    // SQLite's own switch for finding code that relies on an unspecified row order.
    s.db.pragma('reverse_unordered_selects = ON');
    const all: StoreSample[] = [];
    for (let p = 0; p < 3; p++) for (let i = 0; i < 200; i++) all.push({ assetId: 'a', point: `p${p}`, ts: T0 + i * 500, v: i * 10 + p, q: 'good' });
    s.append(all);
    s.flush();
    s.seal();
    for (let p = 0; p < 3; p++) {
      const key = { assetId: 'a', point: `p${p}` };
      const want: Sample[] = all.filter((x) => x.point === key.point).map((x) => ({ ts: x.ts, v: x.v, q: x.q }));
      expect(s.rawTimestamps(key).head).toEqual([]);
      expect(s.range(key, 0, 2 ** 46)).toEqual(want);
    }
    const rows = s.db.prepare('SELECT series, min_ts, max_ts, n FROM chunk ORDER BY series, max_ts').all() as Array<{ series: number; min_ts: number; max_ts: number; n: number }>;
    for (const r of rows) expect(r.min_ts).toBeLessThan(r.max_ts);
    expect(rows.reduce((a, r) => a + r.n, 0)).toBe(600);
  });
});

describe('seal slices', () => {
  it('hold about sealSliceRows head rows each, whatever the rows per series, and seal everything', () => {
    const s = mk({ sealIntervalMs: 60_000, sealLagMs: 10_000, sealSliceSeries: 500, sealSliceRows: 1_000 });
    // 200 slow series (1 Hz) then 100 fast ones (20 Hz): 30 s of each.
    const all: StoreSample[] = [];
    const start = clock.now() - 40_000;
    for (let sec = 0; sec < 30; sec++) {
      for (let p = 0; p < 200; p++) all.push({ assetId: 'slow', point: `p${p}`, ts: start + sec * 1000, v: sec, q: 'good' });
      for (let k = 0; k < 20; k++) for (let p = 0; p < 100; p++) all.push({ assetId: 'fast', point: `p${p}`, ts: start + sec * 1000 + k * 50, v: k, q: 'good' });
    }
    s.append(all);
    s.flush();
    let largest = 0;
    let last = 0;
    for (let ms = 0; ms < 61_000; ms++) {
      clock.advance(1);
      const sealed = s.counters().sealedSamples;
      largest = Math.max(largest, sealed - last);
      last = sealed;
    }
    expect(last).toBe(all.length);
    // One slice per tick; a slice stops after the bucket that reaches the budget, so where the
    // density jumps 20x (slow series to fast ones) it overshoots by one bucket of its series at
    // most, not by the whole range (a fixed 500-series slice was all 78 000 rows at once).
    expect(largest).toBeLessThanOrEqual(2 * 1_000);
    expect(s.rawTimestamps({ assetId: 'fast', point: 'p99' }).head).toEqual([]);
  });
});

describe('giving space back', () => {
  const file = (): string => path.join(dir, 'raw.db');
  const size = (): number => fs.statSync(file()).size;
  const pages = (s: Store, what: 'page_count' | 'freelist_count'): number => s.db.pragma(what, { simple: true }) as number;

  /** `seconds` of `series` series at `hz`, timestamps ending now, in one-second messages; time moves with them. */
  function ingest(s: Store, series: number, hz: number, seconds: number): number {
    let n = 0;
    for (let sec = 0; sec < seconds; sec++) {
      const batch: StoreSample[] = [];
      for (let k = 0; k < hz; k++) {
        const ts = clock.now() + Math.floor((k * 1000) / hz);
        for (let p = 0; p < series; p++) batch.push({ assetId: `a${p % 10}`, point: `p${p}`, ts, v: Math.round(Math.sin(ts / 7e5 + p) * 1000) / 10, q: 'good' });
      }
      s.append(batch);
      n += batch.length;
      clock.advance(1000);
    }
    return n;
  }

  it('after a burst is sealed, the file shrinks back in bounded steps while nothing else is held up', () => {
    const s = mk({ sealIntervalMs: 60_000, sealLagMs: 10_000, chunkSamples: 720, reclaimPagesPerStep: 64 });
    const n = ingest(s, 500, 20, 50); // a 10k samples/s burst for 50 s: 500 000 samples
    s.flush();
    s.db.pragma('wal_checkpoint(PASSIVE)');
    const burst = size();
    expect(burst / n).toBeGreaterThan(15); // the head: ~30 bytes a sample
    // Let the maintenance timer seal (one slice a tick) and reclaim (one step a tick).
    let maxStep = 0;
    let last = pages(s, 'page_count');
    for (let ms = 0; ms < 90_000; ms++) {
      clock.advance(1);
      const now = pages(s, 'page_count');
      maxStep = Math.max(maxStep, last - now);
      last = now;
    }
    expect(s.rawTimestamps({ assetId: 'a0', point: 'p0' }).head).toEqual([]);
    expect(s.counters().sealedSamples).toBe(n);
    expect(s.counters().reclaimedPages).toBeGreaterThan(0);
    expect(maxStep).toBeGreaterThan(0);
    expect(maxStep).toBeLessThanOrEqual(64 + 1); // + a pointer-map page when a step crosses one
    expect(pages(s, 'freelist_count')).toBe(0);
    const chunkBytes = (s.db.prepare('SELECT sum(length(data)) AS b FROM chunk').get() as { b: number }).b;
    const rest = size();
    expect(rest).toBeLessThan(burst / 5);
    expect(rest / n).toBeLessThan(chunkBytes / n + 3);
    expect(s.range({ assetId: 'a3', point: 'p3' }, 0, 2 ** 46)).toHaveLength(50 * 20);
  });

  it('keeps one seal interval of free pages for the head under steady ingest, and gives them back when ingest stops', () => {
    const s = mk({ sealIntervalMs: 60_000, sealLagMs: 10_000, chunkSamples: 720 });
    const reclaimed: number[] = [];
    const free: number[] = [];
    for (let minute = 0; minute < 6; minute++) {
      ingest(s, 200, 10, 60); // 2 000 samples/s: ~900 pages of head a minute
      reclaimed.push(s.counters().reclaimedPages);
      free.push(pages(s, 'freelist_count'));
    }
    // The first two seal runs set the reserve; after them no page is moved, the head reuses them.
    expect(reclaimed[2]).toBeGreaterThan(0);
    expect(reclaimed[5]! - reclaimed[2]!).toBeLessThan(50);
    expect(Math.max(...free)).toBeLessThan(2 * 900);
    const steady = size();
    // Ingest stops: the next runs seal the rest, and the first that finds nothing gives the reserve back.
    for (let ms = 0; ms < 200_000; ms += 5) clock.advance(5);
    expect(s.counters().sealedSamples).toBe(6 * 60 * 2000);
    expect(pages(s, 'freelist_count')).toBe(0);
    expect(size()).toBeLessThan(steady / 2);
  });
});

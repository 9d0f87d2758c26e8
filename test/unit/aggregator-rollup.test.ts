/**
 * Aggregator rollups against a naive computation over the raw samples (docs/aggregator.md
 * "Exactness"), with the store half sealed into chunks and half in the head; bit-identical rows
 * whatever the seal state; restart idempotence; retention; energy. Late data: aggregator-late.test.ts.
 */
import fs from 'node:fs';
import type { StoreSample } from '../../components/lib/store';
import type { RollRow } from '../../components/aggregator/db';
import { validateAggregate, validateDailySummary } from '../../components/lib/contract';
import { aggRig, expectClose, naive, series, tmp, writeStore } from './aggregator-helpers';

const T0 = Date.UTC(2025, 0, 15, 10, 0, 0);
const H = 3_600_000;
const M = 60_000;
const Q = 15 * M;

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function dataset(): StoreSample[] {
  return [
    ...series('inv-1', 'W', T0, T0 + 2 * H, 1, 40_000),
    ...series('inv-1', 'TmpCab', T0, T0 + 2 * H, 2, 45),
    ...series('inv-2', 'W', T0, T0 + 2 * H, 3, 38_000),
    ...series('met-1', 'PF', T0, T0 + 2 * H, 4, 0.9),
  ];
}

function fill(dir: string, samples: StoreSample[], sealBefore: number | undefined): void {
  const store = writeStore(dir);
  const first = sealBefore === undefined ? samples : samples.filter((s) => s.ts < sealBefore);
  store.append(first);
  store.flush();
  if (sealBefore !== undefined) store.seal();
  store.append(samples.filter((s) => !first.includes(s)));
  store.flush();
  store.close();
}

function snapshot(rows: RollRow[]): string {
  return JSON.stringify(rows.map((r) => [r.start, r.sid, r.n, r.count, r.min, r.max, r.sum, r.m2, r.first, r.last, r.energy, r.rev]));
}

describe('Aggregator rollups', () => {
  const samples = dataset();
  let dir: string;

  beforeAll(() => {
    dir = tmp('agg-exact-');
    dirs.push(dir);
    fill(dir, samples, T0 + 70 * M); // first 70 minutes sealed into chunks, the rest in the head
  });

  test('1-minute and 15-minute rollups equal the naive computation over the raw samples', async () => {
    const rig = await aggRig(dir, T0 + 2 * H + 20_000, { initialBackfillMs: 2 * H + 20_000 });
    try {
      const m1 = rig.aggregates('1m');
      const q15 = rig.aggregates('15m');
      expect(m1.length).toBe(120 * 3); // 120 minutes x 3 assets
      expect(q15.length).toBe(8 * 3);
      for (const msg of [...m1, ...q15]) {
        expect(validateAggregate(msg).ok).toBe(true);
        expect(msg.end - msg.start).toBe(msg.interval === '1m' ? M : Q);
        for (const [point, st] of Object.entries(msg.series)) {
          const ref = naive(samples.filter((s) => s.assetId === msg.assetId && s.point === point), msg.start, msg.end);
          expect(st.count).toBe(ref.count);
          expect(st.min).toBe(ref.min);
          expect(st.max).toBe(ref.max);
          if (msg.interval === '1m') {
            // Same samples, same order, same two-pass formula: bit-exact.
            expect(st.avg).toBe(ref.avg);
            expect(st.stddev).toBe(ref.stddev);
            expect(st.sum).toBeUndefined();
          } else {
            expectClose(st.sum, ref.sum);
            expectClose(st.avg, ref.avg);
            expect(st.stddev).toBeUndefined();
          }
        }
      }
      // every series of every asset is in the messages
      expect(Object.keys(m1.find((m) => m.assetId === 'inv-1')?.series ?? {}).sort()).toEqual(['TmpCab', 'W']);
    } finally {
      await rig.close();
    }
  });

  test('rows are bit-identical whether the samples were sealed into chunks or still in the head', async () => {
    const other = tmp('agg-head-');
    dirs.push(other);
    fill(other, samples, undefined);
    const now = T0 + 2 * H + 20_000;
    const a = await aggRig(dir, now, { initialBackfillMs: 2 * H + 20_000, dbPath: `${other}/a.db` });
    const b = await aggRig(other, now, { initialBackfillMs: 2 * H + 20_000, dbPath: `${other}/b.db` });
    try {
      for (const level of ['1m', '15m'] as const) {
        const ra = a.agg.db?.rows(level, 0, now) ?? [];
        expect(ra.length).toBeGreaterThan(0);
        expect(snapshot(ra)).toBe(snapshot(b.agg.db?.rows(level, 0, now) ?? []));
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('late data and restarts', () => {
  test('stopping halfway and restarting gives the same rows as one run: no gap, no double', async () => {
    const dir = tmp('agg-restart-');
    dirs.push(dir);
    const data = [...series('inv-1', 'W', T0, T0 + H, 9, 500), ...series('inv-2', 'W', T0, T0 + H, 10, 700)];
    fill(dir, data, T0 + 20 * M);
    const end = T0 + H + 20_000;
    const one = await aggRig(dir, end, { initialBackfillMs: H + 20_000, dbPath: `${dir}/one.db` });
    const first = await aggRig(dir, T0 + 25 * M + 20_000, { initialBackfillMs: H + 20_000, dbPath: `${dir}/two.db` });
    try {
      expect(first.agg.engine?.watermark('1m')).toBe(T0 + 25 * M);
      await first.close();
      const second = await aggRig(dir, end, { initialBackfillMs: 0, dbPath: `${dir}/two.db` });
      try {
        for (const level of ['1m', '15m'] as const) expect(snapshot(second.agg.db?.rows(level, 0, end) ?? [])).toBe(snapshot(one.agg.db?.rows(level, 0, end) ?? []));
        const starts = [...first.aggregates('1m'), ...second.aggregates('1m')].filter((m) => m.assetId === 'inv-1').map((m) => m.start);
        expect(starts).toEqual(Array.from({ length: 60 }, (_, i) => T0 + i * M)); // each minute once, in order
      } finally {
        await second.close();
      }
    } finally {
      await one.close();
    }
  });

  test('retention removes 1-minute rows after retention1mMs and keeps the 15-minute ones', async () => {
    const dir = tmp('agg-ret-');
    dirs.push(dir);
    fill(dir, series('inv-1', 'W', T0, T0 + H, 11, 100), T0 + H);
    const rig = await aggRig(dir, T0 + H + 20_000, { initialBackfillMs: H + 20_000, retention1mMs: H });
    try {
      // the first tick already pruned minute T0 (older than 1 h at T0 + 1 h + 20 s)
      expect(rig.agg.db?.rows('1m', 0, Infinity).map((r) => r.start)[0]).toBe(T0 + M);
      expect(rig.agg.db?.rows('1m', 0, Infinity).length).toBe(59);
      rig.clock.t = T0 + 2 * H + 20_000; // an hour later (retention runs hourly): every minute of the data is older than 1 h
      await rig.agg.tick();
      expect(rig.agg.db?.rows('1m', 0, Infinity).length).toBe(0);
      expect(rig.agg.db?.rows('15m', 0, Infinity).length).toBe(4);
    } finally {
      await rig.close();
    }
  });
});

describe('daily rollups and summary', () => {
  test('a day of constant 1 kW and a counter gives 24 kWh both ways; the summary validates', async () => {
    const dir = tmp('agg-day-');
    dirs.push(dir);
    const day = Date.UTC(2025, 0, 15);
    const s: StoreSample[] = [];
    for (let t = day; t < day + 24 * H; t += 10_000) {
      s.push({ assetId: 'inv-1', point: 'W', ts: t, v: 1000, q: 'good' });
      s.push({ assetId: 'inv-1', point: 'WH', ts: t, v: 5e6 + (t - day) / 3600, q: 'good' });
    }
    fill(dir, s, day + 12 * H);
    const rig = await aggRig(dir, day + 24 * H + 6 * M, { initialBackfillMs: 24 * H + 6 * M, timeZone: 'UTC' });
    try {
      const d = rig.aggregates('1d');
      expect(d.length).toBe(1);
      expect(d[0]?.end).toBe(day + 24 * H);
      expect(d[0]?.series['W']?.energyWh).toBeCloseTo(24_000, 6);
      expect(d[0]?.series['W']?.max).toBe(1000);
      const sum = rig.summaries();
      expect(sum.length).toBe(1);
      expect(validateDailySummary(sum[0]).ok).toBe(true);
      expect(sum[0]?.day).toBe('2025-01-15');
      // counter increase wins over integrated power: last - first sample = 23:59:50 of energy
      expect(sum[0]?.assets['inv-1']?.energyWh).toBeCloseTo((24 * H - 10_000) / 3600, 6);
      expect(sum[0]?.assets['inv-1']?.peakW).toBe(1000);
    } finally {
      await rig.close();
    }
  });
});

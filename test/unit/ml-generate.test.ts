/**
 * The training data generator (scripts/training/generate.ts): reproducible from its seed, split by
 * whole days, and labels that follow the injected faults (checked against the plant's own state).
 */
import { FAULT_CLASSES, MINUTES_PER_DAY, SITE_COLUMNS, inverterColumns, planDays, simulateDay, type DaySpec } from '../../scripts/training/generate';

describe('ML training data: day plans', () => {
  const days = planDays({ days: 200, seed: 42 });

  test('the same seed gives the same plans, another seed others', () => {
    expect(planDays({ days: 200, seed: 42 })).toEqual(days);
    expect(planDays({ days: 200, seed: 43 })).not.toEqual(days);
  });

  test('every day is in exactly one split: 70 / 15 / 15 %', () => {
    const count = (s: string) => days.filter((d) => d.split === s).length;
    expect([count('train'), count('validation'), count('test')]).toEqual([140, 30, 30]);
  });

  test('weather varies: every regime, seeds and days of the year across the seasons', () => {
    expect(new Set(days.map((d) => d.regime))).toEqual(new Set(['clear', 'broken', 'overcast']));
    expect(new Set(days.map((d) => d.seed)).size).toBe(days.length);
    const doy = days.map((d) => d.dayOfYear);
    expect(Math.min(...doy)).toBeLessThan(40);
    expect(Math.max(...doy)).toBeGreaterThan(320);
  });

  test('every fault class is injected, each within the day and at most one per inverter', () => {
    const kinds = new Set(days.flatMap((d) => d.faults.map((f) => f.kind)));
    expect(kinds).toEqual(new Set(FAULT_CLASSES.filter((c) => c !== 'normal')));
    for (const d of days) {
      for (const f of d.faults) expect(0 <= f.onsetMin && f.onsetMin < f.endMin && f.endMin <= MINUTES_PER_DAY).toBe(true);
      const inv = d.faults.map((f) => f.inverter);
      expect(new Set(inv).size).toBe(inv.length);
    }
  });
});

describe('ML training data: one simulated day', () => {
  const strings = 4;
  const inv = inverterColumns(strings);
  const cols = SITE_COLUMNS.length + 3 * inv.length;
  const at = (a: Float32Array, m: number, i: number, c: string) => a[m * cols + SITE_COLUMNS.length + i * inv.length + inv.indexOf(c)];
  const site = (a: Float32Array, m: number, c: string) => a[m * cols + SITE_COLUMNS.indexOf(c as (typeof SITE_COLUMNS)[number])];
  const day: DaySpec = {
    index: 0,
    seed: 7,
    startMs: Date.UTC(2025, 5, 21),
    dayOfYear: 172,
    regime: 'clear',
    cloudiness: 0,
    ambientMeanC: 25,
    ambientSwingC: 7,
    split: 'test',
    faults: [
      { inverter: 0, kind: 'ground_fault', onsetMin: 600, endMin: 720, params: { string: 0 } },
      { inverter: 1, kind: 'comm_dropout', onsetMin: 600, endMin: 720, params: { enter: 0.5, stay: 0.8 } },
    ],
  };
  const a = simulateDay(day);

  test('a ground fault: the inverter trips (W 0, St FAULT) while it lasts, labelled and observable in daylight', () => {
    for (let m = 600; m < 720; m++) {
      expect(at(a, m, 0, 'faultClass')).toBe(FAULT_CLASSES.indexOf('ground_fault'));
      if (!at(a, m, 0, 'missing')) expect([at(a, m, 0, 'W'), at(a, m, 0, 'stFault'), at(a, m, 0, 'evtGroundFault')]).toEqual([0, 1, 1]);
      expect(at(a, m, 0, 'observable')).toBe(1);
    }
    expect(at(a, 590, 0, 'faultClass')).toBe(0);
    expect(at(a, 590, 0, 'W')).toBeGreaterThan(30000);
    expect(at(a, 730, 0, 'W')).toBeGreaterThan(30000);
  });

  test('a communication dropout: minutes without a sample (NaN), the plant still producing', () => {
    let lost = 0;
    for (let m = 600; m < 720; m++) {
      if (at(a, m, 1, 'missing')) {
        lost++;
        expect(at(a, m, 1, 'W')).toBeNaN();
        expect(at(a, m, 1, 'trueW')).toBeGreaterThan(30000);
      }
    }
    expect(lost).toBeGreaterThan(30);
  });

  test('the healthy inverter is labelled normal all day, and the site points are in range', () => {
    for (let m = 0; m < MINUTES_PER_DAY; m++) {
      expect(at(a, m, 2, 'faultClass')).toBe(0);
      expect(site(a, m, 'poa')).toBeGreaterThanOrEqual(0);
    }
    expect(Math.max(...Array.from({ length: MINUTES_PER_DAY }, (_, m) => site(a, m, 'clearSkyPoa')))).toBeGreaterThan(800);
  });

  test('the same day simulates to the same bytes', () => {
    expect(Buffer.from(simulateDay(day).buffer).equals(Buffer.from(a.buffer))).toBe(true);
  });
});

/**
 * Performance ratio, weather-corrected PR, availability and specific yield
 * (components/analytics/performance.ts). Fixtures are worked by hand in the comments; the
 * accumulators are fed samples the way the component feeds processed telemetry.
 */
import {
  availability,
  cellTempFromModule,
  cellTempSandia,
  InverterAccumulator,
  irradianceWeightedCellTemp,
  performanceRatio,
  prFromIntervals,
  specificYield,
  WeatherAccumulator,
  wcprFromIntervals,
  weatherCorrectedPr,
} from '../../components/analytics/performance';
import { localDay, rollingWindow } from '../../components/analytics/types';
import { ConfigError } from '../../components/lib/errors';

const MIN = 60_000;
const T0 = Date.UTC(2026, 5, 21, 10, 0, 0); // a whole minute
const P_STC = 72_000; // 4 MPPT inputs of 18 kWp, as the simulator's inverters

/** Samples every `stepMs` over [from, to] inclusive. */
function each(from: number, to: number, stepMs: number, fn: (t: number) => void): void {
  for (let t = from; t <= to; t += stepMs) fn(t);
}

/** A 15-minute window [T0, T0 + 15 min) with POA ramping 600 -> 900 W/m2 and a steady 45 kW inverter. */
function standardWindow(opts: { counter?: boolean; power?: boolean; unit?: 'W' | 'kW'; poaScale?: number; wScale?: number; stepMs?: number } = {}) {
  const { counter = true, power = true, unit = 'W', poaScale = 1, wScale = 1, stepMs = 10_000 } = opts;
  const weather = new WeatherAccumulator();
  const inv = new InverterAccumulator('INV-01', P_STC);
  const end = T0 + 15 * MIN;
  each(T0, end, stepMs, (t) => {
    expect(weather.addPoa(t, poaScale * (600 + (300 * (t - T0)) / (15 * MIN)), 'good', 'W/m2')).toBe('ok');
    // 45 000 W for 10 s = 125 Wh per 10 s sample.
    if (counter) expect(inv.addEnergy(t, 1_000_000 + (wScale * 45_000 * (t - T0)) / 3_600_000, 'good', 'Wh')).toBe('ok');
    if (power) expect(inv.addPower(t, unit === 'kW' ? wScale * 45 : wScale * 45_000, 'good', unit)).toBe('ok');
  });
  return { weather, inv, range: { from: T0, to: end, now: end } };
}

describe('performance ratio (IEC 61724-1)', () => {
  test('hand-worked 15-minute window', () => {
    // H_POA: POA rises linearly 600 -> 900 W/m2 over 0.25 h: trapezoid = (600 + 900) / 2 x 0.25 = 187.5 Wh/m2.
    // E_AC: counter rises 45 000 W x 0.25 h = 11 250 Wh.
    // PR = (E_AC / P_STC) / (H_POA / G_STC) = (11 250 / 72 000) / (187.5 / 1000) = 0.15625 / 0.1875 = 0.833333 -> 83.3333 %.
    const { weather, inv, range } = standardWindow();
    const r = performanceRatio(inv, weather, range);
    expect(r.reason).toBeNull();
    expect(r.u).toBe('%');
    expect(r.value).toBeCloseTo(83.3333, 3);
    expect(r.details).toMatchObject({ pStcW: 72_000, coverage: 1, binsUsed: 15, energySource: { counter: 15, power: 0 } });
    expect(r.details['eAcWh'] as number).toBeCloseTo(11_250, 6);
    expect(r.details['hPoaWhM2'] as number).toBeCloseTo(187.5, 6);
  });

  test('without a counter the power integral gives the same figure; kW is converted', () => {
    const w = standardWindow({ counter: false });
    const kw = standardWindow({ counter: false, unit: 'kW' });
    const a = performanceRatio(w.inv, w.weather, w.range);
    const b = performanceRatio(kw.inv, kw.weather, kw.range);
    expect(a.value).toBeCloseTo(83.3333, 3);
    expect(a.details['energySource']).toEqual({ counter: 0, power: 15 });
    expect(b.value).toBeCloseTo(a.value as number, 9);
  });

  test('an unknown unit is refused, not misread', () => {
    const inv = new InverterAccumulator('INV-01', P_STC);
    expect(inv.addPower(T0, 45, 'good', 'hp')).toBe('unknown_unit');
    expect(inv.addPower(T0 + 1000, 45, 'good', 'Wh')).toBe('unknown_unit');
    expect(inv.addEnergy(T0, 5, 'good', 'W')).toBe('unknown_unit');
  });

  test('a counter reset and a counter jump cost no energy and add none', () => {
    // Counter samples every 10 s; at T0+7 min the counter restarts from 0 (device replaced), at
    // T0+11 min one reading is 10 MWh too high then back. The reset interval (6:50-7:00) and the
    // jump's two intervals have no counter energy; those bins still have 50 or 40 of 60 s of
    // counter data (>= minBinCoverage 0.5) and are scaled to the bin: the same 45 kW.
    const weather = new WeatherAccumulator();
    const inv = new InverterAccumulator('INV-01', P_STC);
    const results: string[] = [];
    let offset = 1_000_000;
    each(T0, T0 + 15 * MIN, 10_000, (t) => {
      weather.addPoa(t, 600 + (300 * (t - T0)) / (15 * MIN), 'good');
      if (t === T0 + 7 * MIN) offset = -(45_000 * 7 * MIN) / 3_600_000; // counter reads 0 here
      const jump = t === T0 + 11 * MIN ? 10_000_000 : 0;
      results.push(inv.addEnergy(t, offset + jump + (45_000 * (t - T0)) / 3_600_000, 'good'));
    });
    expect(results.filter((x) => x === 'counter_reset')).toHaveLength(2); // the reset, and the fall back after the jump
    expect(results.filter((x) => x === 'counter_jump')).toHaveLength(1);
    const r = performanceRatio(inv, weather, { from: T0, to: T0 + 15 * MIN });
    expect(r.value).toBeCloseTo(83.3333, 3);
  });

  test('a counter stuck for a whole bin (bad reads) falls back to the power integral for that bin', () => {
    const weather = new WeatherAccumulator();
    const inv = new InverterAccumulator('INV-01', P_STC);
    each(T0, T0 + 15 * MIN, 10_000, (t) => {
      weather.addPoa(t, 800, 'good');
      inv.addPower(t, 45_000, 'good');
      const bad = t > T0 + 4 * MIN && t < T0 + 6 * MIN;
      expect(inv.addEnergy(t, bad ? null : (45_000 * (t - T0)) / 3_600_000, bad ? 'bad' : 'good')).toBe(bad ? 'no_value' : 'ok');
    });
    // The counter keeps its base across the bad reads: 4:00 -> 6:00 is one interval of 120 s, still
    // under maxGapMs, so it is spread evenly and every bin has counter energy.
    const r = performanceRatio(inv, weather, { from: T0, to: T0 + 15 * MIN });
    // H = 800 x 0.25 = 200 Wh/m2; PR = (11 250 / 72 000) / 0.2 = 0.78125.
    expect(r.value).toBeCloseTo(78.125, 6);
    expect(r.details['energySource']).toEqual({ counter: 15, power: 0 });
  });

  describe('null with a reason, never a wrong number', () => {
    function flat(poa: number | null, w: number | null, minutes = 15) {
      const weather = new WeatherAccumulator();
      const inv = new InverterAccumulator('INV-01', P_STC);
      each(T0, T0 + minutes * MIN, 10_000, (t) => {
        if (poa !== null) weather.addPoa(t, poa, 'good');
        if (w !== null) inv.addPower(t, w, 'good');
      });
      return { weather, inv };
    }
    const range = { from: T0, to: T0 + 15 * MIN };

    test('night', () => {
      const { weather, inv } = flat(0, 0);
      expect(performanceRatio(inv, weather, range)).toMatchObject({ value: null, reason: 'night', details: { reason: 'night' } });
    });
    test('dawn: a few W/m2 and a few watts give no PR', () => {
      // 30 W/m2 and 500 W: PR would be (125 / 72 000) / (7.5 / 1000) = 23 %, meaningless; the 50 W/m2 filter leaves no bin.
      const { weather, inv } = flat(30, 500);
      expect(performanceRatio(inv, weather, range)).toMatchObject({ value: null, reason: 'insufficient_irradiance' });
    });
    test('missing irradiance', () => {
      const { weather, inv } = flat(null, 45_000);
      expect(performanceRatio(inv, weather, range).reason).toBe('missing_irradiance');
      expect(performanceRatio(inv, weather, { ...range, now: range.to }).reason).toBe('missing_irradiance');
    });
    test('stale weather: the station stopped 7 minutes before now', () => {
      const { weather, inv } = flat(800, 45_000, 8);
      each(T0 + 8 * MIN, T0 + 15 * MIN, 10_000, (t) => inv.addPower(t, 45_000, 'good'));
      expect(performanceRatio(inv, weather, { ...range, now: range.to }).reason).toBe('stale_weather');
      // Without `now` (a past range) the gap shows as coverage: 8 of 15 bins usable.
      const r = performanceRatio(inv, weather, range);
      expect(r).toMatchObject({ value: null, reason: 'coverage_below_min' });
      expect(r.details['coverage']).toBeCloseTo(8 / 15, 9);
    });
    test('bad-quality irradiance counts as missing', () => {
      const weather = new WeatherAccumulator();
      const inv = new InverterAccumulator('INV-01', P_STC);
      each(T0, T0 + 15 * MIN, 10_000, (t) => {
        expect(weather.addPoa(t, 800, 'uncertain')).toBe('bad_quality');
        inv.addPower(t, 45_000, 'good');
      });
      expect(performanceRatio(inv, weather, range).reason).toBe('missing_irradiance');
    });
    test('missing energy', () => {
      const { weather, inv } = flat(800, null);
      expect(performanceRatio(inv, weather, range)).toMatchObject({ value: null, reason: 'missing_energy' });
    });
    test('coverage below the minimum: inverter data for 10 of 15 minutes', () => {
      const { weather, inv } = flat(800, null);
      each(T0, T0 + 10 * MIN, 10_000, (t) => inv.addPower(t, 45_000, 'good'));
      const r = performanceRatio(inv, weather, range);
      expect(r).toMatchObject({ value: null, reason: 'coverage_below_min' });
      expect(r.details['coverage']).toBeCloseTo(10 / 15, 9);
      // With the minimum lowered, the 10 minutes give the PR: (45 000 / 6 / 72 000) / (800 / 6 / 1000) = 78.125 %.
      expect(performanceRatio(inv, weather, range, { minCoverage: 0.6 }).value).toBeCloseTo(78.125, 6);
    });
    test('an irradiance gap longer than maxGapMs is not bridged', () => {
      const weather = new WeatherAccumulator({ maxGapMs: 120_000 });
      const inv = new InverterAccumulator('INV-01', P_STC);
      // POA samples at 0..5 min and 12..15 min only; a straight line across 7 minutes would invent irradiance.
      each(T0, T0 + 15 * MIN, 10_000, (t) => {
        if (t <= T0 + 5 * MIN || t >= T0 + 12 * MIN) weather.addPoa(t, 800, 'good');
        inv.addPower(t, 45_000, 'good');
      });
      const r = performanceRatio(inv, weather, range);
      expect(r.details['binsUsed']).toBe(8);
      expect(r.details['binsUnknown']).toBe(7);
      // With isDaylight saying it is night for those minutes, they stop counting against coverage.
      const dark = (ts: number) => ts < T0 + 5 * MIN || ts > T0 + 12 * MIN;
      expect(performanceRatio(inv, weather, range, { isDaylight: dark }).value).toBeCloseTo(78.125, 6);
    });
    test('out-of-order and duplicate samples are refused', () => {
      const weather = new WeatherAccumulator();
      expect(weather.addPoa(T0 + 1000, 800, 'good')).toBe('ok');
      expect(weather.addPoa(T0 + 1000, 800, 'good')).toBe('duplicate');
      expect(weather.addPoa(T0, 800, 'good')).toBe('out_of_order');
      expect(weather.addPoa(T0 + 2000, Number.NaN, 'good')).toBe('not_finite');
    });
  });

  describe('properties', () => {
    const base = standardWindow();
    const pr0 = performanceRatio(base.inv, base.weather, base.range).value as number;
    test.each([0.5, 1.5, 2])('energy x %p -> PR x the same', (k) => {
      const s = standardWindow({ wScale: k });
      expect(performanceRatio(s.inv, s.weather, s.range).value).toBeCloseTo(pr0 * k, 6);
    });
    test.each([0.5, 1.2])('irradiance x %p (all bins still above 50 W/m2) -> PR / the same', (k) => {
      const s = standardWindow({ poaScale: k });
      expect(performanceRatio(s.inv, s.weather, s.range).value).toBeCloseTo(pr0 / k, 6);
    });
    test('P_STC x 2 -> PR / 2', () => {
      const s = standardWindow();
      const big = new InverterAccumulator('INV-01', 2 * P_STC);
      each(T0, T0 + 15 * MIN, 10_000, (t) => big.addPower(t, 45_000, 'good'));
      expect(performanceRatio(big, s.weather, s.range).value).toBeCloseTo(pr0 / 2, 6);
    });
    test('the sample rate does not matter for linear signals (1 s vs 60 s)', () => {
      const fast = standardWindow({ stepMs: 1000 });
      const slow = standardWindow({ stepMs: 60_000 });
      expect(performanceRatio(fast.inv, fast.weather, fast.range).value).toBeCloseTo(pr0, 6);
      expect(performanceRatio(slow.inv, slow.weather, slow.range).value).toBeCloseTo(pr0, 6);
    });
    test('site PR of two inverters is Σ E / Σ P_STC: between the two, weighted by P_STC', () => {
      const s = standardWindow();
      const small = new InverterAccumulator('INV-02', 36_000);
      each(T0, T0 + 15 * MIN, 10_000, (t) => small.addPower(t, 18_000, 'good'));
      const one = performanceRatio(small, s.weather, s.range).value as number;
      // INV-02: (4 500 / 36 000) / 0.1875 = 66.667 %; site: (11 250 + 4 500) / 108 000 / 0.1875 = 77.778 %.
      expect(one).toBeCloseTo(66.6667, 3);
      const site = performanceRatio([s.inv, small], s.weather, s.range);
      expect(site.value).toBeCloseTo(77.7778, 3);
      expect(site.details).toMatchObject({ pStcW: 108_000, assets: ['INV-01', 'INV-02'] });
    });
  });

  test('prFromIntervals guards the division', () => {
    expect(prFromIntervals([], P_STC)).toBeNull();
    expect(prFromIntervals([{ eAcWh: 10, hPoaWhM2: 0 }], P_STC)).toBeNull();
    expect(prFromIntervals([{ eAcWh: 10, hPoaWhM2: 1 }], 0)).toBeNull();
  });

  test('bad options are ConfigErrors naming the key', () => {
    expect(() => new WeatherAccumulator({ binMs: 7000 })).toThrow(ConfigError);
    expect(() => new WeatherAccumulator({ binMs: 7000 })).toThrow(/binMs/);
    expect(() => new InverterAccumulator('X', 0)).toThrow(/pStcW/);
    const s = standardWindow();
    expect(() => performanceRatio(s.inv, s.weather, s.range, { minCoverage: 2 })).toThrow(/minCoverage/);
  });
});

describe('weather-corrected PR (NREL/TP-5200-57991)', () => {
  test('hand-worked two intervals with a configured T_cell_typ_avg', () => {
    // Interval 1: G 400 W/m2 for 0.5 h -> H 200 Wh/m2; T_m 30 °C -> T_cell = 30 + 0.4 x 3 = 31.2 °C; E 12 000 Wh.
    // Interval 2: G 800 W/m2 for 0.5 h -> H 400 Wh/m2; T_m 50 °C -> T_cell = 50 + 0.8 x 3 = 52.4 °C; E 22 000 Wh.
    // T_cell_typ_avg 45 °C, γ -0.0035 /K, P_STC 72 000 W:
    //   expected 1 = 72 000 x 0.2 x (1 + 0.0035 x (45 - 31.2)) = 14 400 x 1.0483 = 15 095.52 Wh
    //   expected 2 = 72 000 x 0.4 x (1 + 0.0035 x (45 - 52.4)) = 28 800 x 0.9741 = 28 054.08 Wh
    //   WCPR = 34 000 / 43 149.6 = 0.787956; plain PR = (34 000 / 72 000) / (600 / 1000) = 0.787037.
    const iv = [
      { eAcWh: 12_000, hPoaWhM2: 200, tCellC: cellTempFromModule(30, 400) },
      { eAcWh: 22_000, hPoaWhM2: 400, tCellC: cellTempFromModule(50, 800) },
    ];
    expect(iv[0]?.tCellC).toBeCloseTo(31.2, 9);
    expect(iv[1]?.tCellC).toBeCloseTo(52.4, 9);
    expect(wcprFromIntervals(iv, P_STC, -0.0035, 45)).toBeCloseTo(0.787956, 6);
    expect(prFromIntervals(iv, P_STC)).toBeCloseTo(0.787037, 6);
    // With T_cell_typ_avg taken from these same intervals, (200 x 31.2 + 400 x 52.4) / 600 = 45.333 °C,
    // the correction cancels: Σ H (1 - γ (T̄ - T_i)) = Σ H - γ (T̄ Σ H - Σ H T_i) = Σ H. WCPR = PR.
    const tBar = irradianceWeightedCellTemp(iv) as number;
    expect(tBar).toBeCloseTo(45.3333, 4);
    expect(wcprFromIntervals(iv, P_STC, -0.0035, tBar)).toBeCloseTo(prFromIntervals(iv, P_STC) as number, 12);
  });

  function steady(opts: { module?: boolean; ambient?: boolean } = { module: true }) {
    const weather = new WeatherAccumulator();
    const inv = new InverterAccumulator('INV-01', P_STC);
    each(T0, T0 + 15 * MIN, 10_000, (t) => {
      weather.addPoa(t, 800, 'good');
      if (opts.module) weather.addModuleTemp(t, 47, 'good', 'Cel');
      if (opts.ambient) {
        weather.addAmbientTemp(t, 25, 'good', 'C');
        weather.addWind(t, 2, 'good', 'm/s');
      }
      inv.addPower(t, 45_000, 'good');
    });
    return { weather, inv, range: { from: T0, to: T0 + 15 * MIN } };
  }

  test('from the module temperature, accumulated', () => {
    // G 800, T_m 47 -> T_cell = 47 + 2.4 = 49.4 °C; T_typ 25: factor 1 + 0.0035 x (25 - 49.4) = 0.9146.
    // expected = 72 000 x (200 / 1000) x 0.9146 = 13 170.24 Wh; E = 11 250 Wh -> 85.4199 %; plain PR 78.125 %.
    const { weather, inv, range } = steady();
    const r = weatherCorrectedPr(inv, weather, range, { tCellTypAvgC: 25 });
    expect(r.reason).toBeNull();
    expect(r.value).toBeCloseTo(85.4199, 3);
    expect(r.details).toMatchObject({ tCellRefSource: 'configured', tCellTypAvgC: 25, tCellSource: { module: 15, ambient: 0 } });
    expect(r.details['expectedWh'] as number).toBeCloseTo(13_170.24, 4);
    expect(r.details['prUncorrected'] as number).toBeCloseTo(78.125, 6);
  });

  test('from ambient and wind by the Sandia model', () => {
    // T_m = 800 x e^(-3.56 - 0.075 x 2) + 25 = 800 x e^-3.71 + 25 = 800 x 0.024475 + 25 = 44.582 °C;
    // T_cell = 44.582 + 2.4 = 46.982 °C; factor 1 + 0.0035 x (25 - 46.982) = 0.923063;
    // expected = 14 400 x 0.923063 = 13 292.11 Wh; WCPR = 11 250 / 13 292.11 = 84.637 %.
    expect(cellTempSandia(800, 25, 2)).toBeCloseTo(46.982, 3);
    const { weather, inv, range } = steady({ ambient: true });
    const r = weatherCorrectedPr(inv, weather, range, { tCellTypAvgC: 25 });
    expect(r.value).toBeCloseTo(84.637, 2);
    expect(r.details['tCellSource']).toEqual({ module: 0, ambient: 15 });
    expect(weatherCorrectedPr(inv, weather, range, { tCellTypAvgC: 25, cellTemperature: 'module' }).reason).toBe('missing_temperature');
  });

  test('default T_cell_typ_avg: trailing reference when it has enough irradiation, else the period (= PR)', () => {
    const { weather, inv, range } = steady();
    // 15 min at 800 W/m2 = 200 Wh/m2 < 3000: the period itself, so WCPR equals the plain PR.
    const r = weatherCorrectedPr(inv, weather, range);
    expect(r.details['tCellRefSource']).toBe('period');
    expect(r.value).toBeCloseTo(78.125, 6);
    // A reference threshold below 200 Wh/m2: the trailing week (here the same 15 min) is the reference.
    const t = weatherCorrectedPr(inv, weather, range, { minReferenceWhM2: 100 });
    expect(t.details['tCellRefSource']).toBe('trailing');
    expect(t.details['referenceWhM2'] as number).toBeCloseTo(200, 9);
    expect(t.details['tCellTypAvgC'] as number).toBeCloseTo(49.4, 6);
  });
});

describe('availability', () => {
  test('producing, faulted, then silent: comm loss is unknown, not unavailable', () => {
    // Lit all 15 minutes. 0:00-10:00 producing 45 kW; 10:00-13:00 W 0 with St FAULT; no data after 13:00.
    // available = 600 s, unavailable = 180 s, unknown = 120 s.
    // availability = 600 / (600 + 180) = 76.923 %; coverage 780 / 900 = 0.867;
    // bounds: all unknown unavailable 600 / 900 = 66.667 %, all available 720 / 900 = 80 %.
    const weather = new WeatherAccumulator();
    const inv = new InverterAccumulator('INV-01', P_STC);
    each(T0, T0 + 15 * MIN, 10_000, (t) => {
      weather.addPoa(t, 800, 'good');
      if (t > T0 + 13 * MIN) return;
      const faulted = t >= T0 + 10 * MIN;
      inv.addState(t, faulted ? 'FAULT' : 'MPPT', 'good');
      inv.addPower(t, faulted ? 0 : 45_000, 'good');
    });
    const r = availability(inv, weather, { from: T0, to: T0 + 15 * MIN });
    expect(r.value).toBeCloseTo(76.923, 3);
    expect(r.details).toMatchObject({ producingMs: 600_000, availableMs: 0, unavailableMs: 180_000, unknownMs: 120_000 });
    expect(r.details['lowerBound'] as number).toBeCloseTo(66.667, 3);
    expect(r.details['upperBound'] as number).toBeCloseTo(80, 9);
  });

  test('curtailed to 0 W (St THROTTLED, as a number) is available', () => {
    const weather = new WeatherAccumulator();
    const inv = new InverterAccumulator('INV-01', P_STC);
    each(T0, T0 + 15 * MIN, 10_000, (t) => {
      weather.addPoa(t, 800, 'good');
      inv.addState(t, 5, 'good'); // SunSpec 103 St 5 = THROTTLED
      inv.addPower(t, 0, 'good');
    });
    const r = availability(inv, weather, { from: T0, to: T0 + 15 * MIN });
    expect(r.value).toBe(100);
    expect(r.details).toMatchObject({ availableMs: 900_000, producingMs: 0 });
  });

  test('mostly silent: null with coverage_below_min', () => {
    const weather = new WeatherAccumulator();
    const inv = new InverterAccumulator('INV-01', P_STC);
    each(T0, T0 + 15 * MIN, 10_000, (t) => {
      weather.addPoa(t, 800, 'good');
      if (t <= T0 + 5 * MIN) inv.addPower(t, 45_000, 'good');
    });
    expect(availability(inv, weather, { from: T0, to: T0 + 15 * MIN })).toMatchObject({ value: null, reason: 'coverage_below_min' });
  });
});

describe('specific yield and local days', () => {
  test('a day with an hour of comm loss at noon: the counter still gives the day', () => {
    // Local day in UTC+02:00: 2026-06-21 00:00 local = 06-20 22:00 UTC. Lit 06:00-18:00 local (POA 600),
    // 30 kW throughout the lit hours: 12 h x 30 kW = 360 000 Wh; 360 000 / 72 000 = 5 kWh/kWp.
    // No inverter samples 12:00-13:00 local: the counter rise across the gap (30 kWh) is spread over it.
    const day = localDay(Date.UTC(2026, 5, 21, 10), '+02:00');
    expect(day).toEqual({ day: '2026-06-21', from: Date.UTC(2026, 5, 20, 22), to: Date.UTC(2026, 5, 21, 22) });
    const weather = new WeatherAccumulator();
    const inv = new InverterAccumulator('INV-01', P_STC);
    const H = 3_600_000;
    let wh = 5_000_000;
    each(day.from, day.to, MIN, (t) => {
      const local = (t - day.from) / H;
      const lit = local >= 6 && local < 18;
      weather.addPoa(t, lit ? 600 : 0, 'good');
      if (local > 12 && local < 13) {
        if (lit) wh += 30_000 / 60;
        return;
      }
      inv.addEnergy(t, wh, 'good');
      if (lit) wh += 30_000 / 60; // energy of the minute starting at t
    });
    const r = specificYield(inv, day, weather);
    expect(r.reason).toBeNull();
    expect(r.u).toBe('kWh/kWp');
    expect(r.value).toBeCloseTo(5, 6);
    expect(r.details['coverage']).toBe(1);
    // PR over the day excludes the gap hour (its bins have no pairable energy): 11 of 12 lit hours used.
    const pr = performanceRatio(inv, weather, day, { minCoverage: 0.9 });
    expect(pr.details['coverage']).toBeCloseTo(11 / 12, 2);
  });

  test('IANA day on a DST change has 23 hours; a bad zone is a ConfigError', () => {
    const d = localDay(Date.UTC(2026, 2, 29, 12), 'Europe/Berlin');
    expect(d.day).toBe('2026-03-29');
    expect(d.to - d.from).toBe(23 * 3_600_000);
    expect(localDay(Date.UTC(2026, 0, 1, 3), 'UTC-05:00').day).toBe('2025-12-31');
    expect(() => localDay(0, 'Mars/Olympus')).toThrow(ConfigError);
  });

  test('rollingWindow ends at the last complete bin', () => {
    expect(rollingWindow(T0 + 15 * MIN + 12_345, 15 * MIN, MIN)).toEqual({ from: T0, to: T0 + 15 * MIN });
  });
});

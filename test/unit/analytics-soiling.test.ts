/** Soiling ratio, loss, rate and the cleaning rule (components/analytics/soiling.ts). */
import { cleaningRecommendation, soilingLoss, soilingRate, soilingRatio, type SoilingInterval } from '../../components/analytics/soiling';
import { moduleTemperature, pvString } from '../../scripts/simulator/physics';

const Q = 15 * 60_000;
const P_STC = 72_000;

describe('soiling ratio', () => {
  // Clean output at 800 W/m2 and T_cell 45 °C: 72 000 x 0.8 x (1 - 0.0035 x 20) = 57 600 x 0.93 = 53 568 W.
  // 10 % soiling: 48 211.2 W.
  const soiled: SoilingInterval[] = [
    ...Array.from({ length: 4 }, () => ({ durationMs: Q, cleanIrradianceWm2: 800, cellTempC: 45, actualW: 48_211.2 })),
    { durationMs: Q, cleanIrradianceWm2: 300, cellTempC: 30, actualW: 1 }, // below 500 W/m2: not used
    { durationMs: Q, cleanIrradianceWm2: 800, cellTempC: 45, actualW: null }, // no power: not used
    { durationMs: Q, cleanIrradianceWm2: 800, cellTempC: 45, actualW: 10, excluded: true }, // curtailed: not used
  ];

  test('hand-worked: 48 211.2 / 53 568 = 90 %', () => {
    const r = soilingRatio(soiled, { pStcW: P_STC });
    expect(r.reason).toBeNull();
    expect(r.value).toBeCloseTo(90, 9);
    expect(r.details['usedMs']).toBe(4 * Q);
    // expected energy: 53 568 W x 1 h = 53 568 Wh.
    expect(r.details['expectedWh'] as number).toBeCloseTo(53_568, 6);
  });

  test('the baseline after cleaning (0.96) is divided out: 0.90 / 0.96 = 93.75 %', () => {
    expect(soilingRatio(soiled, { pStcW: P_STC, baselineRatio: 0.96 }).value).toBeCloseTo(93.75, 9);
  });

  test('clipping intervals are left out', () => {
    // clipW 60 000: 59 000 W >= 0.98 x 60 000 = 58 800 is clipping; the ratio stays 90 %.
    const r = soilingRatio([...soiled, { durationMs: Q, cleanIrradianceWm2: 1000, cellTempC: 50, actualW: 59_000 }], { pStcW: P_STC, clipW: 60_000 });
    expect(r.value).toBeCloseTo(90, 9);
    expect(r.details['clippedIntervals']).toBe(1);
  });

  test('null: too little light, too little data', () => {
    expect(soilingRatio([{ durationMs: Q, cleanIrradianceWm2: 300, cellTempC: 30, actualW: 15_000 }], { pStcW: P_STC }).reason).toBe('insufficient_irradiance');
    expect(soilingRatio(soiled.slice(0, 1), { pStcW: P_STC }).reason).toBe('missing_data'); // 15 min < 30 min
    expect(() => soilingRatio(soiled, { pStcW: 0 })).toThrow(/pStcW/);
  });

  test("the simulator's 25 % soiling fault reads about 75 %, a clean array about 100 %", () => {
    // The simulator's strings: P = Pstc G/1000 (1 - 0.0035 (T_m - 25)); soiling scales the modules' G by 0.75 and
    // lowers their temperature a little, which the station's (clean) module temperature does not see: +1.7 %.
    const intervals = (loss: number): SoilingInterval[] =>
      [600, 700, 800, 900].map((g) => {
        const tClean = moduleTemperature(g, 25, 3);
        const p = pvString(P_STC, 600, g * (1 - loss), moduleTemperature(g * (1 - loss), 25, 3)).w;
        return { durationMs: Q, cleanIrradianceWm2: g, cellTempC: tClean, actualW: p };
      });
    const soil = soilingRatio(intervals(0.25), { pStcW: P_STC }).value as number;
    expect(soil).toBeGreaterThan(75);
    expect(soil).toBeLessThan(77);
    expect(soilingRatio(intervals(0), { pStcW: P_STC }).value).toBeCloseTo(100, 6);
  });
});

describe('soiling loss and rate', () => {
  test('loss: 300 kWh at SR 0.9 -> 300 000 x (1/0.9 - 1) = 33 333.3 Wh, at 0.12 per kWh 4.00', () => {
    const l = soilingLoss(0.9, 300_000, 0.12);
    expect(l?.lossWh).toBeCloseTo(33_333.33, 2);
    expect(l?.lossMoney).toBeCloseTo(4, 9);
    expect(soilingLoss(1.01, 300_000, 0.12)).toEqual({ lossWh: 0, lossMoney: 0 });
    expect(soilingLoss(0, 300_000, 0.12)).toBeNull();
  });

  test('rate: slope since the last cleaning', () => {
    // Days 0..9 fall 0.004/day; cleaned on day 10 (0.964 -> 0.999, a rise > 0.02); then 0.003/day for 5 days.
    const days = [
      ...Array.from({ length: 10 }, (_, d) => ({ day: d, ratio: 1 - 0.004 * d })),
      ...Array.from({ length: 5 }, (_, k) => ({ day: 10 + k, ratio: 0.999 - 0.003 * k })),
    ];
    const r = soilingRate(days);
    expect(r.sinceDay).toBe(10);
    expect(r.days).toBe(5);
    expect(r.ratePerDay).toBeCloseTo(0.003, 12);
    expect(soilingRate(days.slice(0, 12)).ratePerDay).toBeNull(); // two days since the cleaning
  });
});

describe('cleaning recommendation', () => {
  const base = { ratePerDay: 0.003, pricePerKWh: 0.1, cleaningCost: 300, daysUntilNaturalCleaning: null };
  test('avoidable loss = price x E_daily x (1 - SR) x D against the cost', () => {
    // SR 0.95, 350 kWh/day, rain in 20 days: 0.1 x 350 x 0.05 x 20 = 35 < 300: wait for the rain.
    const wait = cleaningRecommendation({ ...base, soilingRatio: 0.95, expectedDailyKWh: 350, daysUntilNaturalCleaning: 20 });
    expect(wait.clean).toBe(false);
    expect(wait.avoidableLoss).toBeCloseTo(35, 9);
    // No rain forecast: 30-day horizon. SR 0.8, 500 kWh/day: 0.1 x 500 x 0.2 x 30 = 300, not more than 300.
    expect(cleaningRecommendation({ ...base, soilingRatio: 0.8, expectedDailyKWh: 500 }).clean).toBe(false);
    // SR 0.78: 0.1 x 500 x 0.22 x 30 = 330 > 300: clean.
    const go = cleaningRecommendation({ ...base, soilingRatio: 0.78, expectedDailyKWh: 500, lossSinceCleaning: 120 });
    expect(go).toMatchObject({ clean: true, horizonDays: 30, lossSinceCleaningExceedsCost: false });
    expect(go.avoidableLoss).toBeCloseTo(330, 9);
    // Optimal interval: sqrt(2 x 300 / (0.1 x 500 x 0.003)) = sqrt(4000) = 63.25 days.
    expect(go.optimalIntervalDays).toBeCloseTo(63.246, 3);
  });
  test('bad input is refused by key', () => {
    expect(() => cleaningRecommendation({ ...base, soilingRatio: 0, expectedDailyKWh: 1 })).toThrow(/soilingRatio/);
  });
});

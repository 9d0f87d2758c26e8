/** String current imbalance (components/analytics/strings.ts). */
import { peerRatios, StringImbalanceDetector, stringCurrents } from '../../components/analytics/strings';
import type { Point } from '../../components/lib/contract';

const MIN = 60_000;
const T0 = Date.UTC(2026, 5, 21, 10, 0, 0);

/** Feeds one update per 10 s from `from` for `minutes`; returns every event. */
function run(d: StringImbalanceDetector, from: number, minutes: number, currents: Record<string, number | null>, poa: number | null) {
  const events = [];
  for (let t = from; t < from + minutes * MIN; t += 10_000) events.push(...d.update(t, currents, poa).events);
  return events;
}

describe('peerRatios', () => {
  test('each input against the median of its peers', () => {
    // Inputs 8.0, 8.2, 7.8, 4.0 A. Input 4: peers 8.0, 8.2, 7.8 -> median 8.0 -> 0.5.
    // Input 1: peers 8.2, 7.8, 4.0 -> median 7.8 -> 8.0 / 7.8 = 1.0256 (the faulty peer does not pull it down).
    const r = peerRatios({ '1': 8, '2': 8.2, '3': 7.8, '4': 4 });
    expect(r['4']?.ratio).toBeCloseTo(0.5, 9);
    expect(r['4']?.peersMedianA).toBeCloseTo(8, 9);
    expect(r['1']?.ratio).toBeCloseTo(8 / 7.8, 9);
  });
  test('not judged: no value, too few peers, peers below the minimum current', () => {
    expect(peerRatios({ '1': 8, '2': null, '3': 8 })['1']).toBeNull(); // one peer only
    expect(peerRatios({ '1': 8, '2': null, '3': 8, '4': 8 })['2']).toBeNull();
    expect(peerRatios({ '1': 0.1, '2': 0.5, '3': 0.5 })['1']).toBeNull(); // peers' median 0.5 A < 1 A
  });
});

describe('StringImbalanceDetector', () => {
  const healthy = { '1': 8, '2': 8.2, '3': 7.8, '4': 8.1 };
  const weak = { ...healthy, '3': 5 }; // 5 / median(8, 8.2, 8.1) = 5 / 8.1 = 0.617

  test('raises after 15 minutes low with enough light, naming the string, and clears with hysteresis', () => {
    const d = new StringImbalanceDetector('INV-01');
    expect(run(d, T0, 10, healthy, 800)).toEqual([]);
    // Low from T0+10 min: raised at the first update 15 min later (T0+25 min).
    const raised = run(d, T0 + 10 * MIN, 16, weak, 800);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ transition: 'raised', assetId: 'INV-01', stringId: '3', ts: T0 + 25 * MIN, since: T0 + 10 * MIN, currentA: 5 });
    expect(raised[0]?.ratio).toBeCloseTo(5 / 8.1, 9);
    expect(d.flagged()).toEqual(['3']);
    // 0.85 is inside the hysteresis band (0.8 .. 0.9): no clear however long.
    expect(run(d, T0 + 26 * MIN, 20, { ...healthy, '3': 0.85 * 8.1 }, 800)).toEqual([]);
    expect(d.flagged()).toEqual(['3']);
    // Back to normal: cleared 5 minutes later.
    const cleared = run(d, T0 + 46 * MIN, 6, healthy, 800);
    expect(cleared).toHaveLength(1);
    expect(cleared[0]).toMatchObject({ transition: 'cleared', stringId: '3', ts: T0 + 51 * MIN, since: T0 + 46 * MIN });
  });

  test('low light and clouds: no raise; the pending time starts again', () => {
    const d = new StringImbalanceDetector('INV-01');
    // 10 min low at 800 W/m2, 1 min at 150 W/m2 (not judged), 10 min low again: never 15 min in a row.
    expect(run(d, T0, 10, weak, 800)).toEqual([]);
    expect(run(d, T0 + 10 * MIN, 1, weak, 150)).toEqual([]);
    expect(run(d, T0 + 11 * MIN, 10, weak, 800)).toEqual([]);
    expect(d.flagged()).toEqual([]);
    const r = d.update(T0 + 21 * MIN, weak, 150).result;
    expect(r).toMatchObject({ value: null, reason: 'insufficient_irradiance' });
  });

  test('a raised string stays raised at night and through a data gap', () => {
    const d = new StringImbalanceDetector('INV-01', { onDelayMs: 5 * MIN });
    expect(run(d, T0, 6, weak, 800)).toHaveLength(1);
    expect(run(d, T0 + 6 * MIN, 60, weak, 0)).toEqual([]);
    expect(run(d, T0 + 8 * 60 * MIN, 4, healthy, 800)).toEqual([]); // after a gap: 4 of the 5 min needed to clear
    expect(d.flagged()).toEqual(['3']);
  });

  test('a disconnected input (null) is not an imbalance', () => {
    const d = new StringImbalanceDetector('INV-01');
    expect(run(d, T0, 30, { ...healthy, '2': null }, 800)).toEqual([]);
  });

  test('result: the worst ratio in percent, every string in details', () => {
    const d = new StringImbalanceDetector('INV-01');
    const { result } = d.update(T0, weak, 800, { '3': 'MPPT3' });
    expect(result.value).toBeCloseTo((5 / 8.1) * 100, 9);
    expect(result.u).toBe('%');
    expect(result.details).toMatchObject({ worstString: '3', flagged: [], strings: { '3': { currentA: 5, flagged: false, name: 'MPPT3' } } });
    expect(d.update(T0 + 10_000, { '1': 8, '2': 8 }, 800).result.reason).toBe('too_few_strings');
    expect(d.update(T0 + 20_000, healthy, null).result.reason).toBe('missing_irradiance');
    expect(d.update(T0 + 30_000, { '1': 0.2, '2': 0.2, '3': 0.2 }, 800).result.reason).toBe('low_current');
    expect(d.update(T0, healthy, 800).result.details['ignored']).toBe('out_of_order');
  });

  test('bad options are refused by key', () => {
    expect(() => new StringImbalanceDetector('X', { clearRatio: 0.7 })).toThrow(/clearRatio/);
    expect(() => new StringImbalanceDetector('X', { thresholdRatio: 0 })).toThrow(/thresholdRatio/);
  });
});

describe('stringCurrents', () => {
  test('model 160 module currents by input number; OFF inputs and bad values left out', () => {
    const points: Record<string, Point> = {
      '103.W': { v: 40_000, u: 'W', q: 'good' },
      '160.module.1.DCA': { v: 8.5, u: 'A', q: 'good' },
      '160.module.1.IDStr': { v: 'MPPT1', q: 'good' },
      '160.module.2.DCA': { v: 0, u: 'A', q: 'good' },
      '160.module.2.DCSt': { v: 'OFF', q: 'good' },
      '160.module.3.DCA': { v: null, q: 'bad' },
      '160.module.4.DCA': { v: 8200, u: 'mA', q: 'good' },
    };
    expect(stringCurrents(points)).toEqual({ currents: { '1': 8.5, '2': null, '3': null, '4': 8.2 }, names: { '1': 'MPPT1' } });
  });
});

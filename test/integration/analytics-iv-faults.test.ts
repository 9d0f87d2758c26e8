/**
 * Every fault the simulator can put into a string's IV curve, scanned by its combiner box over
 * Modbus (modbus-serial) and classified by components/analytics/iv.ts against the datasheet model
 * of the simulator's module at the irradiance and temperature the box reported; the expected class
 * comes from the truth in `sim.state()`, at three times of day (low and high irradiance).
 */
import { analyzeIvCurve, type IvClass, type IvStringConfig } from '../../components/analytics/iv';
import type { FaultSpec, SiteState } from '../../scripts/simulator';
import { IV_CURVE_ADDRESS, IV_SCAN_MS, IV_SCAN_POINTS, SIM_LAYOUT, SIM_MODULE } from '../../scripts/simulator/combiner';
import { rig, stop, type Rig } from '../../scripts/simulator/testing/modbus-client';

const CFG: IvStringConfig = { module: SIM_MODULE, layout: SIM_LAYOUT };
const CB1 = 111;

/** What the truth says the string's curve should be classified as. */
function truthClass(s: SiteState, string: number): IvClass {
  const ch = s.combiners[0].strings[string - 1].iv;
  if (ch.shade < 1) return 'mismatch';
  if (ch.shuntFactor < 1) return 'low_shunt_resistance';
  if (ch.seriesFactor > 1) return 'high_series_resistance';
  if (ch.degradation > 0) return 'degradation';
  if (ch.irradiance < 0.99 * s.weather.poa) return 'soiling';
  return 'normal';
}

const FAULTS: [string, FaultSpec | null][] = [
  ['healthy', null],
  ['string-fault (factor 0.1)', { kind: 'string-fault', unit: 1, string: 2 }],
  ['string-fault (factor 0.5)', { kind: 'string-fault', unit: 1, string: 2, factor: 0.5 }],
  ['soiling 25 %', { kind: 'soiling', unit: 1 }],
  ['soiling 10 %', { kind: 'soiling', unit: 1, loss: 0.1 }],
  ['degradation 20 %', { kind: 'degradation', unit: 1, string: 2 }],
  ['degradation 10 %', { kind: 'degradation', unit: 1, string: 2, loss: 0.1 }],
  ['series resistance x4', { kind: 'series-resistance', unit: 1, string: 2 }],
  ['series resistance x3', { kind: 'series-resistance', unit: 1, string: 2, factor: 3 }],
  ['shunt resistance x0.05', { kind: 'shunt-resistance', unit: 1, string: 2 }],
  ['shunt resistance x0.2', { kind: 'shunt-resistance', unit: 1, string: 2, factor: 0.2 }],
];

describe.each([
  ['07:00 UTC (about 500 W/m2)', Date.UTC(2025, 5, 21, 7, 0, 0)],
  ['10:00 UTC (clear noon, about 990 W/m2)', Date.UTC(2025, 5, 21, 10, 0, 0)],
  ['17:00 UTC (low sun)', Date.UTC(2025, 5, 21, 17, 0, 0)],
])('IV faults classified at %s', (_when, start) => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig(start);
  });
  afterAll(async () => {
    await stop(r);
  });

  test.each(FAULTS)('%s', async (_name, fault) => {
    r.sim.clearFault();
    if (fault) r.sim.injectFault(fault);
    const c = r.client;
    c.setID(CB1);
    await c.writeRegister(16, 2);
    r.clock.t += IV_SCAN_MS;
    const [, state, string, , , g, t] = (await c.readHoldingRegisters(16, 7)).data;
    expect([state, string]).toEqual([2, 2]);
    const v = (await c.readInputRegisters(IV_CURVE_ADDRESS, IV_SCAN_POINTS)).data.map((x) => x * 0.1);
    const i = (await c.readInputRegisters(IV_CURVE_ADDRESS + IV_SCAN_POINTS, IV_SCAN_POINTS)).data.map((x) => x * 0.01);
    const truth = r.sim.state();
    const a = analyzeIvCurve({ v, i }, CFG, { irradiance: g * 0.1, temperature: ((t << 16) >> 16) * 0.1 });
    expect(a.classification).toBe(truthClass(truth, 2));
    // The figures behind it: resistances against the string's true circuit where they are the finding.
    const d = truth.combiners[0].strings[1].iv.diode;
    if (a.classification !== 'mismatch') {
      expect(Math.abs(a.measured.rsOhm! / d.rs - 1)).toBeLessThan(0.1);
      expect(Math.abs(a.measured.rshOhm / d.rsh - 1)).toBeLessThan(0.15);
    }
    if (a.classification === 'normal') expect(a.ratios.pmp).toBeGreaterThan(0.95);
  });
});

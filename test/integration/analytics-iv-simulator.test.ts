/**
 * The simulated combiner boxes' IV scans, read and triggered with modbus-serial's client (a real
 * client written by others) on loopback: a write of the string number to the trigger register
 * starts a sweep, the state register goes running -> done after IV_SCAN_MS of simulated time, the
 * string gives its inverter nothing meanwhile, and the curve (single-diode model at the string's
 * irradiance and cell temperature) is read from the input registers with its documented scales.
 * The string IV faults show in `sim.state()` and cost the plant the power they cost the curve.
 */
import { validateConfig } from '../../components/lib/config';
import { currentAt, voltageAt } from '../../components/analytics/iv';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import { COMBINER_MAP_NAME, UNIT_IDS } from '../../scripts/simulator';
import { COMBINER_IV_SCAN, IV_CURVE_ADDRESS, IV_SCAN_MS, IV_SCAN_POINTS } from '../../scripts/simulator/combiner';
import { inverter, modbusError, rig, stop, type Rig } from '../../scripts/simulator/testing/modbus-client';

const MORNING = Date.UTC(2025, 5, 21, 7, 0, 0); // lit, below clipping: the string's power reaches the AC side
const CB1 = UNIT_IDS.firstCombiner;
const TRIGGER = 16;

async function scanRegisters(r: Rig): Promise<{ trigger: number; state: number; string: number; points: number; sequence: number; irradiance: number; temperature: number }> {
  r.client.setID(CB1);
  const [trigger, state, string, points, sequence, irradiance, temperature] = (await r.client.readHoldingRegisters(TRIGGER, 7)).data;
  return { trigger, state, string, points, sequence, irradiance: irradiance * 0.1, temperature: ((temperature << 16) >> 16) * 0.1 };
}

async function readCurve(r: Rig): Promise<{ v: number[]; i: number[] }> {
  r.client.setID(CB1);
  const v = (await r.client.readInputRegisters(IV_CURVE_ADDRESS, IV_SCAN_POINTS)).data.map((x) => x * 0.1);
  const i = (await r.client.readInputRegisters(IV_CURVE_ADDRESS + IV_SCAN_POINTS, IV_SCAN_POINTS)).data.map((x) => x * 0.01);
  return { v, i };
}

describe('IV scans of the simulated combiner boxes', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig(MORNING);
  });
  afterEach(async () => {
    await stop(r);
  });

  it('declares the IV-scan block in the emitted device configuration, which the ModbusAdapter accepts', () => {
    const cfg = r.sim.deviceConfig();
    const map = cfg.registerMaps[COMBINER_MAP_NAME];
    expect(map.ivScan).toEqual(COMBINER_IV_SCAN);
    const valid = validateConfig(modbusConfigSpec, { siteId: 'site-1', ...cfg });
    const trigger = valid.registerMaps[COMBINER_MAP_NAME]!.points.find((p) => p.name === 'ivScan.trigger');
    expect(trigger).toMatchObject({ address: TRIGGER, functionCode: 3, writable: true, min: 1, max: 4 });
    // Only the disconnect coils and the trigger are writable.
    expect(valid.registerMaps[COMBINER_MAP_NAME]!.points.filter((p) => p.writable).map((p) => p.name)).toEqual(['string1.closed', 'string2.closed', 'string3.closed', 'string4.closed', 'ivScan.trigger']);
  });

  it('a trigger starts a sweep: the string drops out for IV_SCAN_MS, then the curve of the single-diode model is readable', async () => {
    expect(await scanRegisters(r)).toMatchObject({ state: 0, sequence: 0, points: IV_SCAN_POINTS });
    const before = await inverter(r.client, 1);
    const truth = r.sim.state();
    const s2 = truth.combiners[0].strings[1];
    expect(s2.a).toBeGreaterThan(10);

    r.client.setID(CB1);
    await r.client.writeRegister(TRIGGER, 2);
    expect(await scanRegisters(r)).toMatchObject({ state: 1, string: 2, sequence: 0 });
    // The sweep holds the string off its MPPT input: no current in the box, none in model 160, less AC.
    const during = r.sim.state();
    expect(during.combiners[0].strings[1].a).toBe(0);
    expect(during.combiners[0].strings[1].iv.scan).toBe('running');
    expect(during.combiners[0].strings[0].a).toBeCloseTo(truth.combiners[0].strings[0].a, 0);
    const mid = await inverter(r.client, 1);
    expect(mid['160'].groups.module[1].DCA.value).toBe(0);
    expect(mid['103'].points.W.value as number).toBeLessThan(0.85 * (before['103'].points.W.value as number));
    // A second trigger while it runs: SERVER DEVICE BUSY.
    r.client.setID(CB1);
    expect((await modbusError(r.client.writeRegister(TRIGGER, 3))).modbusCode).toBe(6);

    r.clock.t += IV_SCAN_MS - 100;
    expect((await scanRegisters(r)).state).toBe(1);
    r.clock.t += 100;
    const done = await scanRegisters(r);
    const after = r.sim.state();
    expect(done).toMatchObject({ state: 2, string: 2, sequence: 1, points: IV_SCAN_POINTS });
    expect(done.irradiance).toBeCloseTo(after.weather.poa, 0);
    expect(done.temperature).toBeCloseTo(after.combiners[0].strings[1].iv.cellTempC, 0);
    expect(after.combiners[0].strings[1].a).toBeCloseTo(s2.a, -1);
    expect(after.combiners[0].strings[1].iv.scan).toBe('done');

    const { v, i } = await readCurve(r);
    // From short circuit to open circuit, voltage rising, current falling.
    expect(v[0]).toBe(0);
    expect(i[IV_SCAN_POINTS - 1]).toBe(0);
    for (let k = 1; k < IV_SCAN_POINTS; k++) {
      expect(v[k]).toBeGreaterThanOrEqual(v[k - 1]);
      expect(i[k]).toBeLessThanOrEqual(i[k - 1]);
    }
    // The curve is the string's single-diode circuit now (within the registers' resolution).
    const d = after.combiners[0].strings[1].iv.diode;
    expect(i[0]).toBeCloseTo(currentAt(d, 0), 1);
    expect(v[IV_SCAN_POINTS - 1]).toBeCloseTo(voltageAt(d, 0), 0);
    for (const k of [20, 45, 60, 80]) expect(i[k]).toBeCloseTo(currentAt(d, v[k]), 0);
    // About an 18 kWp input at the morning's irradiance: its maximum power is near what the plant's string model makes.
    const pmp = Math.max(...v.map((x, k) => x * i[k]));
    expect(Math.abs(pmp / (s2.a * s2.v) - 1)).toBeLessThan(0.08);
    // Points along the whole curve, not only the knee: several in each flat part.
    expect(v.filter((x) => x < 0.5 * v[IV_SCAN_POINTS - 1]).length).toBeGreaterThanOrEqual(10);
    expect(i.filter((x) => x < 0.5 * i[0]).length).toBeGreaterThanOrEqual(10);
  });

  it('refuses a string the box does not have; an open string or darkness fails the scan', async () => {
    r.client.setID(CB1);
    expect((await modbusError(r.client.writeRegister(TRIGGER, 5))).modbusCode).toBe(3);
    expect((await modbusError(r.client.writeRegister(TRIGGER + 1, 1))).modbusCode).toBe(2);
    await r.client.writeCoil(2, false); // string 3 open
    await r.client.writeRegister(TRIGGER, 3);
    expect(await scanRegisters(r)).toMatchObject({ state: 3, string: 3, sequence: 0 });
    await r.client.writeCoil(2, true);
    await r.client.writeRegister(TRIGGER, 3);
    expect((await scanRegisters(r)).state).toBe(1);
    r.clock.t += IV_SCAN_MS;
    expect(await scanRegisters(r)).toMatchObject({ state: 2, sequence: 1 });
  });

  it('string IV faults: the truth in sim.state(), a lower string output, cleared to healthy', async () => {
    const healthy = r.sim.state().combiners[0].strings;
    r.sim.injectFault({ kind: 'series-resistance', unit: 1, string: 1 });
    r.sim.injectFault({ kind: 'shunt-resistance', unit: 1, string: 2, factor: 0.1 });
    r.sim.injectFault({ kind: 'degradation', unit: 1, string: 3, loss: 0.1 });
    const s = r.sim.state().combiners[0].strings;
    expect(s.map((c) => [c.iv.seriesFactor, c.iv.shuntFactor, c.iv.degradation])).toEqual([
      [4, 1, 0],
      [1, 0.1, 0],
      [1, 1, 0.1],
      [1, 1, 0],
    ]);
    expect(s[0].iv.diode.rs).toBeCloseTo(4 * healthy[0].iv.diode.rs, 6);
    expect(s[1].iv.diode.rsh).toBeCloseTo(0.1 * healthy[1].iv.diode.rsh, 6);
    for (const k of [0, 1, 2]) expect(s[k].a).toBeLessThan(0.97 * healthy[k].a);
    expect(s[3].a).toBeCloseTo(healthy[3].a, 3);
    expect(() => r.sim.injectFault({ kind: 'series-resistance', unit: 1, string: 1, factor: 0.5 })).toThrow(/factor is 1\.\.50/);
    expect(() => r.sim.injectFault({ kind: 'degradation', unit: 100, string: 1 })).toThrow(/not an inverter/);
    r.sim.clearFault();
    const cleared = r.sim.state().combiners[0].strings;
    expect(cleared.map((c) => [c.iv.seriesFactor, c.iv.shuntFactor, c.iv.degradation, c.iv.shade])).toEqual(healthy.map(() => [1, 1, 0, 1]));
    expect(cleared[0].a).toBeCloseTo(healthy[0].a, 3);
  });
});

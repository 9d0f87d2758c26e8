/**
 * The simulated combiner boxes (one per inverter, one channel per MPPT input string): read and
 * operated with modbus-serial's client (a real client written by others) on loopback, and by the
 * ModbusAdapter from the configuration the simulator emits. Opening a string's disconnect takes the
 * string off the inverter's DC input (model 160) and its AC output (model 103); closing it gives
 * back exactly the plant of a twin simulator that was never touched. String and ground faults show
 * in the box, so automation can name the faulty string.
 */
import type ModbusRTU from 'modbus-serial';
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import type { ControlCommand, ControlResult, TelemetryMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import type { DecodedModel } from '../../components/modbus-adapter/sunspec';
import { combinerMap, COMBINER_MAP_NAME, createSiteSimulator, UNIT_IDS, type MapPoint, type SiteSimulator } from '../../scripts/simulator';
import { closeClient, connect, inverter, mapValue, modbusError } from '../../scripts/simulator/testing/modbus-client';

const MORNING = Date.UTC(2025, 5, 21, 6, 30, 0); // below clipping (the tracked array clips from about 07:30): every string's power reaches the AC side
const MINUTE = 60e3;
const MAP: MapPoint[] = combinerMap(4);
const CB1 = UNIT_IDS.firstCombiner;

interface BoxRegisters {
  input: number[];
  holding: number[];
  coils: boolean[];
}

async function box(client: ModbusRTU, unit: number, strings = 4): Promise<BoxRegisters> {
  client.setID(unit);
  const endOf = (fc: number): number => Math.max(...MAP.filter((p) => p.functionCode === fc).map((p) => p.address + 1));
  return {
    input: (await client.readInputRegisters(0, endOf(4))).data,
    holding: (await client.readHoldingRegisters(0, endOf(3))).data,
    coils: (await client.readCoils(0, strings)).data.slice(0, strings),
  };
}
const current = (b: BoxRegisters, k: number): number => mapValue(b.input, `string${k}.current`, MAP);
const voltage = (b: BoxRegisters, k: number): number => mapValue(b.input, `string${k}.voltage`, MAP);
const insulation = (b: BoxRegisters, k: number): number => mapValue(b.input, `string${k}.insulation`, MAP);
function status(b: BoxRegisters, k: number): string[] {
  const p = MAP.find((q) => q.name === `string${k}.status`)!;
  const raw = b.holding[p.address];
  return (p.bits ?? []).filter((_n, bit) => (raw & (1 << bit)) !== 0);
}
const modules = (m: Record<string, DecodedModel>): DecodedModel['groups'][string] => m['160'].groups.module;

describe('combiner boxes in the device list and the ModbusAdapter configuration', () => {
  it('one per inverter at unit 110 + n, a register map the adapter accepts, only the disconnect coils writable', async () => {
    const sim = await createSiteSimulator({ startTime: new Date(MORNING), stringsPerInverter: 6 });
    try {
      const boxes = sim.devices().filter((d) => d.kind === 'combiner');
      expect(boxes.map((d) => [d.unitId, d.assetId, d.profile])).toEqual([
        [111, 'CB-01', COMBINER_MAP_NAME],
        [112, 'CB-02', COMBINER_MAP_NAME],
        [113, 'CB-03', COMBINER_MAP_NAME],
      ]);
      const cfg = sim.deviceConfig({ pollIntervalMs: 500 });
      expect(cfg.devices.filter((d) => d.assetId.startsWith('CB-')).map((d) => [d.unitId, d.profile])).toEqual(
        [111, 112, 113].map((u) => [u, { type: 'registerMap', map: COMBINER_MAP_NAME }]),
      );
      // The adapter's own validation (schema and cross-field checks) takes the emitted configuration as it is.
      const valid = validateConfig(modbusConfigSpec, { siteId: 'site-1', ...cfg });
      const points = valid.registerMaps[COMBINER_MAP_NAME]!.points;
      // Six strings per inverter here: six channels.
      expect(points.filter((p) => p.writable).map((p) => [p.name, p.functionCode, p.address])).toEqual([...[1, 2, 3, 4, 5, 6].map((k) => [`string${k}.closed`, 1, k - 1]), ['ivScan.trigger', 3, 16]]);
      expect(points.filter((p) => p.name.startsWith('string6.')).map((p) => p.name).sort()).toEqual(['string6.closed', 'string6.current', 'string6.insulation', 'string6.status', 'string6.voltage']);
      expect(points.find((p) => p.name === 'string1.current')).toMatchObject({ functionCode: 4, type: 'int16', scale: 0.01, unit: 'A' });
    } finally {
      await sim.close();
    }
  });
});

describe('combiner box over Modbus TCP', () => {
  const clock = {
    t: 1_000_000,
    now(): number {
      return this.t;
    },
  };
  let sim: SiteSimulator;
  let twin: SiteSimulator;
  let a: ModbusRTU;
  let b: ModbusRTU;

  beforeEach(async () => {
    const opts = { clock, startTime: new Date(MORNING), cloudiness: 0, minUpdateMs: 0, seed: 7 };
    [sim, twin] = await Promise.all([createSiteSimulator(opts), createSiteSimulator(opts)]);
    [a, b] = await Promise.all([connect(sim), connect(twin)]);
  });

  afterEach(async () => {
    await Promise.all([closeClient(a), closeClient(b)]);
    await Promise.all([sim.close(), twin.close()]);
  });

  it("reads each string's current as the inverter's model 160 module does; opening a disconnect takes the string off the DC input and the AC output; closing restores it", async () => {
    const before = await inverter(a, 1);
    const box0 = await box(a, CB1);
    await inverter(b, 1);
    expect(box0.coils).toEqual([true, true, true, true]);
    for (let k = 1; k <= 4; k++) {
      expect(current(box0, k)).toBeCloseTo(modules(before)[k - 1].DCA.value as number, 2);
      expect(current(box0, k)).toBeGreaterThan(10);
      expect(voltage(box0, k)).toBeCloseTo(modules(before)[k - 1].DCV.value as number, 1);
      expect(status(box0, k)).toEqual([]);
    }

    a.setID(CB1);
    await a.writeCoil(1, false); // open string 2
    const open = await inverter(a, 1);
    const box1 = await box(a, CB1);
    expect(box1.coils).toEqual([true, false, true, true]);
    expect(current(box1, 2)).toBe(0);
    expect(status(box1, 2)).toEqual(['open']);
    // The box measures on the string side of its switch: the lit string sits at open-circuit voltage.
    expect(voltage(box1, 2)).toBeGreaterThan(voltage(box0, 2));
    const m2 = modules(open)[1];
    expect([m2.DCA.value, m2.DCW.value, m2.DCV.value, m2.DCSt.symbol, m2.DCEvt.bits]).toEqual([0, 0, 0, 'OFF', ['DC_DISCONNECT']]);
    for (const k of [0, 2, 3]) expect(modules(open)[k].DCA.value as number).toBeCloseTo(modules(before)[k].DCA.value as number, 0);
    const dcw = (m: Record<string, DecodedModel>): number => m['103'].points.DCW.value as number;
    const w = (m: Record<string, DecodedModel>): number => m['103'].points.W.value as number;
    // The DC input lost exactly that string's power, and the AC output followed.
    expect(Math.abs(dcw(open) - (dcw(before) - (modules(before)[1].DCW.value as number))) / dcw(before)).toBeLessThan(0.01);
    expect(w(open)).toBeLessThan(0.8 * w(before));
    expect(Math.abs(w(open) / w(before) - dcw(open) / dcw(before))).toBeLessThan(0.02);
    expect(open['103'].points.St.symbol).toBe('MPPT');
    expect(sim.state().inverters[0].strings[1].closed).toBe(false);
    expect(sim.state().combiners[0].strings[1]).toMatchObject({ id: 2, closed: false, a: 0, status: ['open'] });
    // Other inverters and boxes are untouched.
    expect(await box(a, CB1 + 1)).toEqual(await box(b, CB1 + 1));

    // Ten minutes open: string 2 makes no energy, the others do.
    const wh0 = modules(open).map((m) => m.DCWH.value as number);
    clock.t += 10 * MINUTE;
    const later = await inverter(a, 1);
    await inverter(b, 1);
    expect(modules(later)[1].DCWH.value).toBe(wh0[1]);
    expect(modules(later)[0].DCWH.value as number).toBeGreaterThan(wh0[0]);

    a.setID(CB1);
    await a.writeCoil(1, true);
    const closed = await inverter(a, 1);
    const same = await inverter(b, 1);
    // Everything but the energy counters is the twin's again.
    expect(w(closed)).toBe(w(same));
    expect(dcw(closed)).toBe(dcw(same));
    const live = (m: Record<string, DecodedModel>): unknown[] => modules(m).map((x) => [x.DCA.value, x.DCV.value, x.DCW.value, x.DCSt.symbol, x.DCEvt.bits]);
    expect(live(closed)).toEqual(live(same));
    expect(await box(a, CB1)).toEqual(await box(b, CB1));
  });

  it('a string fault reads low in its channel; a ground fault on a string trips the inverter, the box names the string, and isolating it lets the inverter run on the others', async () => {
    sim.injectFault({ kind: 'string-fault', unit: 1, string: 3 });
    const sf = await box(a, CB1);
    expect(current(sf, 3)).toBeLessThan(0.15 * current(sf, 1));
    expect(current(sf, 3)).toBeGreaterThan(0);
    expect([1, 2, 3, 4].map((k) => status(sf, k))).toEqual([[], [], ['lowCurrent'], []]);
    sim.clearFault();
    expect(status(await box(a, CB1), 3)).toEqual([]);

    sim.injectFault({ kind: 'ground-fault', unit: 2, string: 4 });
    const inv2 = await inverter(a, 2);
    expect([inv2['103'].points.St.symbol, inv2['103'].points.W.value, inv2['103'].points.Evt1.bits]).toEqual(['FAULT', 0, ['GROUND_FAULT']]);
    const gf = await box(a, CB1 + 1);
    // Tripped: no string carries current; the box's insulation measurement names string 4.
    expect([1, 2, 3, 4].map((k) => current(gf, k))).toEqual([0, 0, 0, 0]);
    expect(insulation(gf, 4)).toBeLessThan(100);
    for (const k of [1, 2, 3]) expect(insulation(gf, k)).toBeGreaterThanOrEqual(1000);
    expect([1, 2, 3, 4].map((k) => status(gf, k))).toEqual([[], [], [], ['insulationFault']]);

    a.setID(CB1 + 1);
    await a.writeCoil(3, false); // isolate string 4
    const isolated = await inverter(a, 2);
    expect(isolated['103'].points.St.symbol).toBe('MPPT');
    expect(isolated['103'].points.Evt1.bits).toEqual([]);
    expect(isolated['103'].points.W.value as number).toBeGreaterThan(20000);
    const iso = await box(a, CB1 + 1);
    for (const k of [1, 2, 3]) expect(current(iso, k)).toBeGreaterThan(10);
    expect(current(iso, 4)).toBe(0);
    expect(status(iso, 4)).toEqual(['open', 'insulationFault']);
    // Closing the faulty string again trips the inverter again.
    await a.writeCoil(3, true);
    expect((await inverter(a, 2))['103'].points.St.symbol).toBe('FAULT');

    // A ground fault without a string is inside the inverter: the box cannot name a string, opening one does not help.
    sim.injectFault({ kind: 'ground-fault', unit: 3 });
    const g3 = await box(a, CB1 + 2);
    expect([1, 2, 3, 4].map((k) => status(g3, k))).toEqual([[], [], [], []]);
    a.setID(CB1 + 2);
    await a.writeCoil(0, false);
    expect((await inverter(a, 3))['103'].points.St.symbol).toBe('FAULT');
    expect(() => sim.injectFault({ kind: 'ground-fault', unit: 1, string: 5 })).toThrow(/string is the MPPT input number 1\.\.4/);
  });

  it('refuses what a combiner box does not have: coils past its strings, register writes', async () => {
    a.setID(CB1);
    expect((await modbusError(a.writeCoil(4, false))).modbusCode).toBe(2);
    expect((await modbusError(a.writeRegister(0, 1))).modbusCode).toBe(2);
    expect((await modbusError(a.readCoils(0, 5))).modbusCode).toBe(2);
    expect((await box(a, CB1)).coils).toEqual([true, true, true, true]);
  });
});

describe('combiner box through the ModbusAdapter', () => {
  const SITE = 'site-1';
  let sim: SiteSimulator;
  let adapter: ModbusAdapter;
  const bus = new RecordingBus();
  let n = 0;

  beforeAll(async () => {
    sim = await createSiteSimulator({ startTime: new Date(MORNING), cloudiness: 0 });
    const all = sim.deviceConfig({ pollIntervalMs: 200 });
    const config = validateConfig(modbusConfigSpec, { siteId: SITE, ...all, devices: all.devices.filter((d) => d.assetId === 'CB-01' || d.assetId === 'INV-01') });
    adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    await adapter.start();
  });

  afterAll(async () => {
    await adapter?.close();
    await sim?.close();
  });

  const latest = (assetId: string, after = 0): TelemetryMessage | undefined => bus.of<TelemetryMessage>('rawTelemetry', assetId).filter((m) => m.ts > after).at(-1);

  async function command(params: ControlCommand['params']): Promise<ControlResult> {
    const commandId = `cb-${++n}`;
    await bus.deliver('controlCommand', `site/${SITE}/control/CB-01/command`, { schemaVersion: 1, siteId: SITE, assetId: 'CB-01', commandId, ts: Date.now(), action: 'write', params, issuedBy: 'local-control' }, { strict: true });
    await bus.until(() => bus.of<ControlResult>('controlResult').some((r) => r.commandId === commandId), 10_000, `result of ${commandId}`);
    return bus.of<ControlResult>('controlResult').find((r) => r.commandId === commandId)!;
  }

  it('polls the string currents and states, opens and closes a disconnect by command, refuses a write to a measurement', async () => {
    await bus.until(() => latest('CB-01') !== undefined && latest('INV-01') !== undefined, 20_000, 'CB-01 and INV-01 polled');
    const t = latest('CB-01')!;
    const truth = sim.state().combiners[0];
    expect(t.points['string2.closed']).toMatchObject({ v: true, q: 'good' });
    expect(t.points['string2.current']).toMatchObject({ u: 'A', q: 'good' });
    expect(Math.abs((t.points['string2.current']!.v as number) - truth.strings[1].a) / truth.strings[1].a).toBeLessThan(0.05);
    expect(t.points['string2.status']!.v).toBe('');
    expect(t.points['string2.insulation']).toMatchObject({ u: 'kOhm' });

    const refused = await command({ point: 'string2.current', value: 0 });
    expect(refused.status).toBe('rejected');
    expect(refused.message).toMatch(/not writable/);

    const acBefore = sim.state().inverters[0].acW;
    const opened = await command({ point: 'string2.closed', value: false });
    expect(opened.status).toBe('succeeded');
    const sent = Date.now();
    expect(sim.state().combiners[0].strings[1].closed).toBe(false);
    expect(sim.state().inverters[0].acW).toBeLessThan(0.8 * acBefore);
    await bus.until(() => latest('CB-01', sent) !== undefined && latest('INV-01', sent) !== undefined, 10_000, 'a poll after the switch opened');
    expect(latest('CB-01', sent)!.points['string2.current']!.v).toBe(0);
    expect(latest('CB-01', sent)!.points['string2.status']!.v).toBe('open');
    expect(latest('INV-01', sent)!.points['160.module.2.DCA']!.v).toBe(0);

    expect((await command({ point: 'string2.closed', value: true })).status).toBe('succeeded');
    expect(sim.state().combiners[0].strings[1].closed).toBe(true);
    expect(bus.invalid).toEqual([]);
  });
});

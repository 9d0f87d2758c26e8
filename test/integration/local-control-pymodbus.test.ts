/**
 * LocalControl acting on Modbus devices written by others: pymodbus (Debian python3-pymodbus)
 * serves a SunSpec inverter (models 1, 103, 120 with WRtg, 123 with every control implemented,
 * 160) and, as a second server, an I/O module whose coils and inputs a register map of the test
 * describes (a vendor's map, not the site simulator's). The real ModbusAdapter polls both; the real
 * Processor turns its telemetry into alarms; the real LocalControl acts; all in this process.
 *
 * The three components talk over one FakeNucleus, each through its own real bus (createBus, as
 * runComponent builds it): every publish is routed by topic to the other clients' subscriptions and
 * goes through their bus's validation and dispatch, as IPC delivers it (not over a socket). An
 * observer bus on the same nucleus records what they say; tests wait on those messages.
 *
 *  - the cabinet temperature raised above 75 °C in pymodbus's registers -> the Processor's
 *    over_temperature alarm -> curtailment: WMaxLimPct = 50 % (register 500 at WMaxLimPct_SF -1),
 *    WMaxLim_Ena = ENABLED and WMaxLimPct_RvrtTms = the configured revert time read back from
 *    pymodbus, and nothing else in the image changed; cooled -> restored after the hold-off;
 *  - the inverter stops answering (pymodbus stopped with SIGSTOP) while a rule on its heat sink
 *    waits out its forMs: no command, and a `blocked` decision naming `stale_input`;
 *  - a critical Evt1 GROUND_FAULT bit -> the horn coil set on the I/O module (and the default rule
 *    shuts the inverter down: 123 Conn = DISCONNECT read back).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBus, type Bus } from '../../components/lib/bus';
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import { filters, type AlarmMessage, type ControlCommand, type ControlDecision, type ControlResult, type DeviceStatus, type TelemetryMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { DEFAULT_RULES, localControlConfigSpec, type RuleConfig } from '../../components/local-control/config';
import { createLocalControl, type LocalControl } from '../../components/local-control/local-control';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec, type MapPoint } from '../../components/modbus-adapter/config';
import { decodeModel, encodePoint, getModel, pointLocation, walkImage, type DecodedPoints, type PointDef } from '../../components/modbus-adapter/sunspec';
import { operatingInverterImage } from '../../components/modbus-adapter/testing/images';
import { startPymodbus, type PymodbusServer } from '../../components/modbus-adapter/testing/pymodbus';
import { createProcessor, type Processor } from '../../components/processor/processor';
import { processorConfigSpec } from '../../components/processor/config';

jest.setTimeout(60_000);

const SITE = 'pymodbus-site';
const BASE = 40000;
const IMAGE = operatingInverterImage();
const CHAIN = walkImage(IMAGE);
const POLL_MS = 100;
/** The inverter's own revert timer LocalControl asks for (10 s is the least it accepts). */
const REVERT_S = 30;
const HOLD_OFF_MS = 1500;
const MAX_INPUT_AGE_MS = 1000;
/** The heat-sink rule's forMs: longer than an input takes to go stale, so staleness comes first. */
const FOR_MS = 2000;

/** A vendor's 8-relay I/O module: relays as coils from 16, inputs as discrete inputs from 0. */
const IO_MAP: MapPoint[] = [
  { name: 'relay.alarmHorn', address: 16, functionCode: 1, type: 'bool', writable: true },
  { name: 'relay.beacon', address: 17, functionCode: 1, type: 'bool', writable: true },
  { name: 'relay.breakerTrip', address: 18, functionCode: 1, type: 'bool', writable: true },
  { name: 'di.fireAlarm', address: 0, functionCode: 2, type: 'bool' },
  { name: 'di.doorOpen', address: 1, functionCode: 2, type: 'bool' },
];
const HORN_COIL = 16;

/** Derate early: a rule on the inverter's own value, so its input is the inverter's telemetry. */
const HEAT_SINK_RULE: RuleConfig = {
  id: 'derate-hot-heat-sink',
  description: 'Curtail to 70 % when the heat sink has stayed above 70 °C for FOR_MS.',
  condition: { source: 'value', assets: ['INV-*'], points: ['103.TmpSnk'], op: 'above', limit: 70, forMs: FOR_MS },
  action: 'curtail',
  params: { percent: 70, revertSeconds: REVERT_S },
  release: { holdOffMs: HOLD_OFF_MS },
};

/** Absolute address of a model's top-group point, and its definition. */
function at(model: number, name: string): { address: number; point: PointDef } {
  const m = CHAIN.find((x) => x.id === model);
  const loc = pointLocation(getModel(model)!, name);
  if (!m || !loc) throw new Error(`model ${model} point ${name} is not in the image`);
  return { address: BASE + m.offset + 2 + loc.offset, point: loc.point };
}

/** Registers of an engineering value, as the device's scale factor encodes it. */
function encoded(model: number, name: string, value: number | string, sf?: number): number[] {
  return encodePoint(at(model, name).point, value, sf);
}

/** The image as pymodbus holds it now, and one model of it decoded. */
async function image(): Promise<number[]> {
  return (await inverter.get('hr', BASE, IMAGE.length)).map(Number);
}
function decoded(regs: number[], model: number): DecodedPoints {
  const m = CHAIN.find((x) => x.id === model)!;
  return decodeModel(getModel(model)!, regs.slice(m.offset + 2, m.offset + 2 + m.length)).points;
}
/** Registers that differ, by absolute address. */
function changed(before: number[], after: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  after.forEach((v, i) => {
    if (before[i] !== v) out[BASE + i] = v;
  });
  return out;
}

let inverter: PymodbusServer;
let io: PymodbusServer;
let dir: string;
const nucleus = new FakeNucleus({ componentName: 'com.test.LocalControlPymodbus' });
const buses: Bus[] = [];
let adapter: ModbusAdapter | undefined;
let processor: Processor | undefined;
let control: LocalControl | undefined;
const failures: unknown[] = [];

// --- what the components say, as an observer on the nucleus hears it ----------------------------

interface Heard {
  family: string;
  payload: unknown;
  at: number;
}
const heard: Heard[] = [];
const waiters = new Set<() => void>();

function hear(family: string) {
  return (payload: unknown): void => {
    heard.push({ family, payload, at: Date.now() });
    for (const w of [...waiters]) w();
  };
}

/** Messages of a family heard from index `from` on. */
function since<T>(from: number, family: 'alarms' | 'processedTelemetry' | 'controlCommand' | 'controlResult' | 'controlDecision' | 'deviceStatus'): T[] {
  return heard.slice(from).filter((h) => h.family === family).map((h) => h.payload as T);
}

/** Resolves with the first truthy `find()`, checked whenever a message arrives; rejects after `timeoutMs`. */
function until<T>(find: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    const check = (): void => {
      const v = find();
      if (v === undefined || v === false) return;
      done();
      resolve(v);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    waiters.add(check);
    check();
  });
}

async function newBus(): Promise<{ bus: Bus; metrics: ReturnType<typeof createMetrics> }> {
  const metrics = createMetrics({ clock: systemClock });
  const bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock: systemClock });
  buses.push(bus);
  await bus.connect();
  return { bus, metrics };
}

beforeAll(async () => {
  [inverter, io] = await Promise.all([
    startPymodbus({ hr: { [BASE]: IMAGE } }),
    startPymodbus({ co: { 16: [false, false, false, false, false, false, false, false] }, di: { 0: [false, false, false, false] } }),
  ]);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-pymodbus-'));

  const observer = await newBus();
  for (const family of ['alarms', 'processedTelemetry', 'controlCommand', 'controlResult', 'controlDecision', 'deviceStatus'] as const) {
    await observer.bus.subscribe(filters[family](SITE), hear(family));
  }

  const fail = (err: unknown): void => void failures.push(err);
  const p = await newBus();
  processor = createProcessor(
    { bus: p.bus, logger: silentLogger, metrics: p.metrics, clock: systemClock, component: 'processor', fail, workDir: dir },
    validateConfig(processorConfigSpec, { siteId: SITE, storePath: path.join(dir, 'raw.db'), assets: ['INV-01', 'IO-01'], alarmTickMs: 200 }),
  );
  await processor.start();

  const c = await newBus();
  const rules = [...DEFAULT_RULES.map((r) => (r.id === 'curtail-over-temperature' ? { ...r, params: { ...r.params, revertSeconds: REVERT_S }, release: { holdOffMs: HOLD_OFF_MS } } : r)), HEAT_SINK_RULE];
  control = createLocalControl(
    { bus: c.bus, logger: silentLogger, metrics: c.metrics, clock: systemClock, component: 'local-control', fail, workDir: dir },
    validateConfig(localControlConfigSpec, {
      siteId: SITE,
      dbPath: path.join(dir, 'local-control.db'),
      rules,
      maxInputAgeMs: MAX_INPUT_AGE_MS,
      // One inverter is the whole site: the default cap (half the site) would block every curtailment.
      maxCurtailedShare: 1,
      tickMs: 100,
      startupSettleMs: 300,
    }),
  );
  await control.start();

  const a = await newBus();
  adapter = createModbusAdapter(
    { bus: a.bus, logger: silentLogger, metrics: a.metrics, clock: systemClock },
    validateConfig(modbusConfigSpec, {
      siteId: SITE,
      registerMaps: { 'vendor-io-8': { points: IO_MAP } },
      devices: [
        { assetId: 'INV-01', connection: { type: 'tcp', host: '127.0.0.1', port: inverter.port }, unitId: 1, pollIntervalMs: POLL_MS, timeoutMs: 200, profile: { type: 'sunspec' } },
        { assetId: 'IO-01', connection: { type: 'tcp', host: '127.0.0.1', port: io.port }, unitId: 1, pollIntervalMs: POLL_MS, timeoutMs: 200, profile: { type: 'registerMap', map: 'vendor-io-8' } },
      ],
      // A device that answers again is polled again within half a second.
      reconnectInitialMs: 100,
      reconnectMaxMs: 500,
    }),
  );
  await adapter.start();

  // Both devices online, the inverter's rating in LocalControl's inputs, and LocalControl's
  // start-up relay writes (horn and beacon off) done, so later steps start from a quiet site.
  await until(() => ['INV-01', 'IO-01'].every((id) => since<DeviceStatus>(0, 'deviceStatus').some((s) => s.assetId === id && s.state === 'online')), 20_000, 'both devices online');
  await until(() => since<TelemetryMessage>(0, 'processedTelemetry').some((t) => t.assetId === 'INV-01' && t.points['120.WRtg']?.v === 10000), 10_000, 'the rating 120.WRtg processed');
  await until(
    () => ['relay.alarmHorn', 'relay.beacon'].every((pt) => since<ControlDecision>(0, 'controlDecision').some((d) => d.assetId === 'IO-01' && d.params['point'] === pt && d.params['value'] === false && d.outcome === 'succeeded')),
    10_000,
    'horn and beacon written off at start',
  );
});

afterAll(async () => {
  await adapter?.close();
  await control?.close();
  await processor?.close();
  await Promise.all(buses.map((b) => b.close()));
  await Promise.all([inverter?.stop(), io?.stop()]);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  expect(failures).toEqual([]);
});

test('over-temperature in the pymodbus registers: curtailed to 50 % with the configured revert time, read back from pymodbus; restored after the hold-off', async () => {
  const before = await image();
  expect(decoded(before, 123)['WMaxLimPct_SF']?.value).toBe(-1);
  const mark = heard.length;
  const tmpCab = at(103, 'TmpCab').address;
  await inverter.set('hr', tmpCab, encoded(103, 'TmpCab', 80, -1)); // 80.0 °C

  const raised = await until(() => since<AlarmMessage>(mark, 'alarms').find((a) => a.assetId === 'INV-01' && a.type === 'over_temperature' && a.transition === 'raised'), 10_000, 'over_temperature raised');
  expect(raised).toMatchObject({ source: 'processor', severity: 'high', point: '103.TmpCab', value: 80 });
  const done = await until(() => since<ControlDecision>(mark, 'controlDecision').find((d) => d.ruleId === 'curtail-over-temperature' && d.assetId === 'INV-01' && (d.outcome === 'succeeded' || d.outcome === 'failed' || d.outcome === 'blocked')), 10_000, 'the curtailment decided');
  expect(done).toMatchObject({ outcome: 'succeeded', action: 'curtail', params: { percent: 50, revertSeconds: REVERT_S } });
  const cmd = since<ControlCommand>(mark, 'controlCommand').find((c) => c.commandId === done.commandId);
  expect(cmd).toMatchObject({ assetId: 'INV-01', action: 'curtail', params: { percent: 50, revertSeconds: REVERT_S }, issuedBy: 'local-control' });

  // What pymodbus holds now: the revert time, the limit as its scale factor encodes it, the enable;
  // besides the temperature the test wrote, nothing else in the whole image.
  const curtailed = await image();
  const m123 = decoded(curtailed, 123);
  expect(m123['WMaxLimPct']).toMatchObject({ raw: 500, value: 50 });
  expect(m123['WMaxLim_Ena']).toMatchObject({ raw: 1, symbol: 'ENABLED' });
  expect(m123['WMaxLimPct_RvrtTms']).toMatchObject({ value: REVERT_S });
  expect(changed(before, curtailed)).toEqual({
    [tmpCab]: 800,
    [at(123, 'WMaxLimPct').address]: 500,
    [at(123, 'WMaxLimPct_RvrtTms').address]: REVERT_S,
    [at(123, 'WMaxLim_Ena').address]: 1,
  });

  // Cooled below the alarm's deadband: the alarm clears, the curtailment is held for the hold-off, then restored.
  const mark2 = heard.length;
  await inverter.set('hr', tmpCab, encoded(103, 'TmpCab', 40, -1));
  const cleared = await until(() => since<AlarmMessage>(mark2, 'alarms').find((a) => a.alarmId === raised.alarmId && a.transition === 'cleared'), 10_000, 'over_temperature cleared');
  const restored = await until(() => since<ControlDecision>(mark2, 'controlDecision').find((d) => d.ruleId === 'curtail-over-temperature' && d.action === 'restore' && (d.outcome === 'succeeded' || d.outcome === 'failed' || d.outcome === 'blocked')), HOLD_OFF_MS + 10_000, 'the restore decided');
  expect(restored.outcome).toBe('succeeded');
  const restore = since<ControlCommand>(mark2, 'controlCommand').find((c) => c.commandId === restored.commandId)!;
  expect(restore).toMatchObject({ assetId: 'INV-01', action: 'restore' });
  expect(restore.ts - cleared.ts).toBeGreaterThanOrEqual(HOLD_OFF_MS);
  expect(restore.ts - cleared.ts).toBeLessThan(HOLD_OFF_MS + 2000);
  expect(since<ControlDecision>(mark2, 'controlDecision').find((d) => d.ruleId === 'curtail-over-temperature' && d.outcome === 'released')?.reason).toMatch(/holdOffMs 1500/);
  // Nothing went to the inverter between the clear and the restore.
  expect(since<ControlCommand>(mark2, 'controlCommand').filter((c) => c.assetId === 'INV-01' && c.ts < restore.ts)).toEqual([]);
  const after = decoded(await image(), 123);
  expect(after['WMaxLim_Ena']).toMatchObject({ raw: 0, symbol: 'DISABLED' });
});

test('the inverter stops answering while a rule waits on its heat sink: no command, and a blocked decision naming stale_input', async () => {
  const tmpSnk = at(103, 'TmpSnk').address;
  const before = await image();
  const mark = heard.length;
  await inverter.set('hr', tmpSnk, encoded(103, 'TmpSnk', 72, -1)); // above the rule's 70 °C, below the Processor's 75 °C alarm
  const hot = await until(() => since<TelemetryMessage>(mark, 'processedTelemetry').find((t) => t.assetId === 'INV-01' && t.points['103.TmpSnk']?.v === 72), 5_000, 'the hot heat sink processed');
  inverter.pause();

  const blocked = await until(() => since<ControlDecision>(mark, 'controlDecision').find((d) => d.ruleId === HEAT_SINK_RULE.id), MAX_INPUT_AGE_MS + 5_000, 'a decision of the heat-sink rule');
  expect(blocked).toMatchObject({ outcome: 'blocked', assetId: 'INV-01', action: 'curtail', params: { percent: 70, revertSeconds: REVERT_S } });
  expect(blocked.reason).toMatch(new RegExp(`^stale_input: INV-01/103\\.TmpSnk is \\d+ ms old \\(maxInputAgeMs ${MAX_INPUT_AGE_MS}\\)`));
  expect(blocked.inputs[0]).toMatchObject({ source: 'value', ref: 'INV-01/103.TmpSnk', value: 72 });
  // The adapter finds the inverter gone; the Processor's communication_loss turns the beacon on.
  await until(() => since<DeviceStatus>(mark, 'deviceStatus').some((s) => s.assetId === 'INV-01' && s.state === 'offline'), 5_000, 'INV-01 offline');
  await until(() => since<AlarmMessage>(mark, 'alarms').some((a) => a.assetId === 'INV-01' && a.type === 'communication_loss' && a.transition === 'raised'), 5_000, 'communication_loss raised');
  // The value stays "above 70" all along: acting on it stale, the rule would have curtailed once
  // its forMs was over. Absence needs that long to pass, so the inverter stays silent until then.
  const forOver = hot.ts + FOR_MS + 500;
  if (Date.now() < forOver) await new Promise((r) => setTimeout(r, forOver - Date.now()));
  expect(since<ControlCommand>(mark, 'controlCommand').filter((c) => c.assetId === 'INV-01')).toEqual([]);

  // It answers again, cool: no action follows, and nothing was written to it.
  inverter.resume();
  await inverter.set('hr', tmpSnk, encoded(103, 'TmpSnk', 45, -1));
  const mark2 = heard.length;
  await until(() => since<DeviceStatus>(mark2, 'deviceStatus').some((s) => s.assetId === 'INV-01' && s.state === 'online'), 10_000, 'INV-01 online again');
  await until(() => since<TelemetryMessage>(mark2, 'processedTelemetry').some((t) => t.assetId === 'INV-01' && t.points['103.TmpSnk']?.v === 45), 5_000, 'the cool heat sink processed');
  await until(() => since<AlarmMessage>(mark2, 'alarms').some((a) => a.assetId === 'INV-01' && a.type === 'communication_loss' && a.transition === 'cleared'), 5_000, 'communication_loss cleared');
  expect(since<ControlCommand>(mark, 'controlCommand').filter((c) => c.assetId === 'INV-01')).toEqual([]);
  expect(changed(before, await image())).toEqual({});
});

test('a critical GROUND_FAULT bit in Evt1: the horn coil set on the I/O module, read back from pymodbus; the inverter shut down', async () => {
  expect((await io.get('co', HORN_COIL, 1)).map(Boolean)).toEqual([false]);
  const mark = heard.length;
  await inverter.set('hr', at(103, 'Evt1').address, encoded(103, 'Evt1', 'GROUND_FAULT'));

  const alarm = await until(() => since<AlarmMessage>(mark, 'alarms').find((a) => a.assetId === 'INV-01' && a.type === 'ground_fault' && a.transition === 'raised'), 10_000, 'ground_fault raised');
  expect(alarm).toMatchObject({ source: 'processor', severity: 'critical' });
  const horn = await until(
    () => since<ControlDecision>(mark, 'controlDecision').find((d) => d.assetId === 'IO-01' && d.params['point'] === 'relay.alarmHorn' && d.params['value'] === true && (d.outcome === 'succeeded' || d.outcome === 'failed')),
    10_000,
    'the horn written',
  );
  expect(horn).toMatchObject({ outcome: 'succeeded', ruleId: 'relay-critical', action: 'write' });
  expect(horn.inputs.map((i) => i.ref)).toContain(`INV-01/ground_fault/${alarm.alarmId}`);
  const result = since<ControlResult>(mark, 'controlResult').find((r) => r.commandId === horn.commandId);
  expect(result).toMatchObject({ assetId: 'IO-01', status: 'succeeded' });
  // The coil itself, in the module: the horn (and the beacon, critical is above high); the trip relay untouched.
  expect((await io.get('co', HORN_COIL, 3)).map(Boolean)).toEqual([true, true, false]);

  // The default rule's emergency shutdown of the faulted inverter, through model 123 Conn.
  const shutdown = await until(() => since<ControlDecision>(mark, 'controlDecision').find((d) => d.ruleId === 'shutdown-ground-fault' && (d.outcome === 'succeeded' || d.outcome === 'failed')), 10_000, 'the shutdown decided');
  expect(shutdown).toMatchObject({ outcome: 'succeeded', assetId: 'INV-01', action: 'shutdown' });
  expect(decoded(await image(), 123)['Conn']).toMatchObject({ raw: 0, symbol: 'DISCONNECT' });
});

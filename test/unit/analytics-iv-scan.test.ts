/**
 * The ModbusAdapter's `iv_scan` action against the in-memory Modbus peer on the FakeClock: trigger
 * written only as a declared writable point, state read until done (a previous scan's "done" is
 * not taken for this one), the curve read in as few requests as the read limit allows, the result
 * carrying it (validated by the contract), timeouts and failures answered `failed`, refusals
 * before any write, and the IV-scan block's configuration checks.
 */
import type { ControlCommand, ControlResult } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { configProblems, modbusConfigSpec, MODBUS_DEFAULTS, type IvScanBlock, type MapPoint } from '../../components/modbus-adapter/config';
import { MemoryModbus } from '../../components/modbus-adapter/testing/memory-modbus';

const SITE = 'site-1';
const UNIT = 7;
const N = 100;
const POINTS: MapPoint[] = [
  { name: 'current', address: 0, functionCode: 3, type: 'uint16', scale: 0.01, unit: 'A' },
  { name: 'scan.trigger', address: 10, functionCode: 3, type: 'uint16', writable: true, min: 1, max: 4 },
  { name: 'scan.state', address: 11, functionCode: 3, type: 'uint16' },
  { name: 'scan.sequence', address: 12, functionCode: 3, type: 'uint16' },
  { name: 'scan.string', address: 13, functionCode: 3, type: 'uint16' },
  { name: 'scan.points', address: 14, functionCode: 3, type: 'uint16' },
  { name: 'scan.irradiance', address: 15, functionCode: 3, type: 'uint16', scale: 0.1 },
  { name: 'scan.temperature', address: 16, functionCode: 3, type: 'int16', scale: 0.1 },
];
const BLOCK: IvScanBlock = {
  trigger: 'scan.trigger',
  state: 'scan.state',
  sequence: 'scan.sequence',
  string: 'scan.string',
  pointCount: 'scan.points',
  irradiance: 'scan.irradiance',
  temperature: 'scan.temperature',
  curve: { functionCode: 4, maxPoints: N, voltage: { address: 200, type: 'uint16', scale: 0.1 }, current: { address: 300, type: 'uint16', scale: 0.01 } },
  timeoutMs: 5000,
  statePollMs: 250,
};
/** A curve as a device would hold it: 0..700 V, 30..0 A. */
const V = Array.from({ length: N }, (_, k) => Math.round((7000 * k) / (N - 1)));
const I = Array.from({ length: N }, (_, k) => Math.round(3000 * (1 - (k / (N - 1)) ** 8)));

interface Rig {
  clock: FakeClock;
  bus: RecordingBus;
  mem: MemoryModbus;
  adapter: ModbusAdapter;
  send(commandId: string, params: ControlCommand['params'], assetId?: string): Promise<void>;
  result(commandId: string): ControlResult | undefined;
  /** The device finishes the scan of string k (sequence + 1). */
  finish(k: number, count?: number): void;
}

async function rig(o: { block?: IvScanBlock; maxRegistersPerRead?: number } = {}): Promise<Rig> {
  const clock = new FakeClock();
  const bus = new RecordingBus();
  const mem = new MemoryModbus();
  mem.set(UNIT, 0, new Array<number>(17).fill(0));
  mem.set(UNIT, 14, [N, 9500, 412]);
  mem.set(UNIT, 200, new Array<number>(400).fill(0));
  mem.set(8, 0, [0]);
  const config = validateConfig(modbusConfigSpec, {
    siteId: SITE,
    registerMaps: { box: { points: POINTS, ivScan: o.block ?? BLOCK }, plain: { points: [POINTS[0]] } },
    devices: [
      { assetId: 'CB-1', connection: { type: 'tcp', host: 'box', port: 502 }, unitId: UNIT, pollIntervalMs: 1000, timeoutMs: 500, ...(o.maxRegistersPerRead ? { maxRegistersPerRead: o.maxRegistersPerRead } : {}), profile: { type: 'registerMap', map: 'box' } },
      { assetId: 'PLAIN', connection: { type: 'tcp', host: 'box', port: 502 }, unitId: 8, pollIntervalMs: 1000, profile: { type: 'registerMap', map: 'plain' } },
    ],
  });
  const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock }), clock, transport: mem.factory, spreadStarts: false }, config);
  await adapter.start();
  await clock.advanceAsync(0);
  return {
    clock,
    bus,
    mem,
    adapter,
    async send(commandId, params, assetId = 'CB-1') {
      const cmd: ControlCommand = { schemaVersion: 1, siteId: SITE, assetId, commandId, ts: clock.now(), action: 'iv_scan', params, issuedBy: 'analytics' };
      await bus.deliver('controlCommand', `site/${SITE}/control/${assetId}/command`, cmd, { strict: true });
      await clock.advanceAsync(0);
    },
    result: (id) => bus.of<ControlResult>('controlResult').find((r) => r.commandId === id),
    finish(k, count = N) {
      const seq = mem.get(UNIT, 12) ?? 0;
      mem.set(UNIT, 200, V);
      mem.set(UNIT, 300, I);
      mem.set(UNIT, 11, [2, seq + 1, k, count]);
    },
  };
}

const curveReads = (mem: MemoryModbus): { address: number; count: number }[] => mem.requests.filter((q) => q.op === 'read' && q.unit === UNIT && q.address >= 200).map((q) => ({ address: q.address, count: q.count }));

describe('ModbusAdapter iv_scan (in-memory peer)', () => {
  let r: Rig;
  afterEach(async () => {
    await r.adapter.close();
    expect(r.bus.invalid).toEqual([]);
  });

  test('writes the string to the trigger, waits for done, reads the curve in two requests and returns it', async () => {
    r = await rig();
    await r.send('s1', { string: 2 });
    // The trigger written with the string number, nothing else.
    expect(r.mem.writes(UNIT)).toEqual([expect.objectContaining({ address: 10, count: 1 })]);
    expect(r.mem.get(UNIT, 10)).toBe(2);
    r.mem.set(UNIT, 11, [1]); // running
    await r.clock.advanceAsync(1500);
    expect(r.result('s1')).toBeUndefined();
    r.finish(2);
    await r.clock.advanceAsync(250);
    const res = r.result('s1');
    expect(res).toMatchObject({ status: 'succeeded', message: expect.stringMatching(/IV scan of string 2: 100 points read in 2 requests/) });
    expect(res?.data).toEqual({ kind: 'iv_curve', string: 2, v: V.map((x) => x / 10), i: I.map((x) => x / 100), irradiance: 950, temperature: 41.2 });
    // 200 registers: 125 + 75, the most one FC 4 read may carry.
    expect(curveReads(r.mem)).toEqual([
      { address: 200, count: 125 },
      { address: 325, count: 75 },
    ]);
    // Poll slots during the scan were skipped, not counted as overruns.
    const st = r.adapter.stats().find((s) => s.assetId === 'CB-1')!;
    expect(st.scanSkips).toBeGreaterThanOrEqual(1);
    expect(st.overruns).toBe(0);
  });

  test('float32 values and maxRegistersPerRead 60: seven reads, none splitting a value; fewer points when the device says so', async () => {
    const block: IvScanBlock = { ...BLOCK, curve: { functionCode: 3, maxPoints: N, voltage: { address: 200, type: 'float32' }, current: { address: 400, type: 'float32', wordOrder: 'little' } } };
    r = await rig({ block, maxRegistersPerRead: 60 });
    await r.send('f1', { string: 1 });
    const f = (x: number, little = false): number[] => {
      const b = Buffer.alloc(4);
      b.writeFloatBE(x);
      const w = [b.readUInt16BE(0), b.readUInt16BE(2)];
      return little ? [w[1], w[0]] : w;
    };
    r.mem.set(UNIT, 200, V.flatMap((x) => f(x / 10)));
    r.mem.set(UNIT, 400, I.flatMap((x) => f(x / 100, true)));
    r.mem.set(UNIT, 11, [2, 1, 1, N]);
    await r.clock.advanceAsync(250);
    const res = r.result('f1');
    expect(res?.status).toBe('succeeded');
    expect(res?.data?.v.map((x) => Math.round(x * 10))).toEqual(V);
    expect(res?.data?.i.map((x) => Math.round(x * 100))).toEqual(I);
    const reads = curveReads(r.mem);
    expect(reads).toHaveLength(Math.ceil(400 / 60));
    for (const q of reads) {
      expect(q.count).toBeLessThanOrEqual(60);
      expect(q.count % 2).toBe(0);
    }
    // The device has only 50 points this time: only those are read.
    r.mem.requests.length = 0;
    await r.send('f2', { string: 1 });
    r.mem.set(UNIT, 11, [2, 2, 1, 50]);
    await r.clock.advanceAsync(250);
    expect(r.result('f2')?.data?.v).toHaveLength(50);
    expect(curveReads(r.mem).reduce((n, q) => n + q.count, 0)).toBe(200);
  });

  test("a previous scan's done is not this scan's: with the sequence unchanged the command waits, and fails at timeoutMs", async () => {
    r = await rig();
    r.mem.set(UNIT, 11, [2, 5, 1]); // done, sequence 5, string 1: an earlier scan
    await r.send('t1', { string: 1 });
    await r.clock.advanceAsync(4900);
    expect(r.result('t1')).toBeUndefined();
    await r.clock.advanceAsync(200);
    expect(r.result('t1')).toMatchObject({ status: 'failed', message: expect.stringMatching(/IV scan of string 1 not done after 5000 ms \(scan.state 2; ivScan.timeoutMs 5000\)/) });
    expect(r.result('t1')?.data).toBeUndefined();
    expect(curveReads(r.mem)).toEqual([]);
  });

  test('the device reporting failure, or the wrong string, is a failed command', async () => {
    r = await rig();
    await r.send('x1', { string: 3 });
    r.mem.set(UNIT, 11, [3]);
    await r.clock.advanceAsync(250);
    expect(r.result('x1')).toMatchObject({ status: 'failed', message: expect.stringMatching(/reports the IV scan of string 3 failed/) });
    r.mem.set(UNIT, 11, [0]); // the device leaves "failed" when triggered again
    await r.send('x2', { string: 3 });
    r.finish(4);
    await r.clock.advanceAsync(250);
    expect(r.result('x2')).toMatchObject({ status: 'failed', message: expect.stringMatching(/scanned string 4, not 3/) });
  });

  test('refused before any write: string out of the trigger point\'s range, no string, a scan running, a device without an IV-scan block', async () => {
    r = await rig();
    await r.send('r1', { string: 5 });
    await r.send('r2', {});
    await r.send('r3', { string: 1 }, 'PLAIN');
    r.mem.set(UNIT, 11, [1]);
    await r.send('r4', { string: 1 });
    await r.clock.advanceAsync(0);
    expect(r.result('r1')).toMatchObject({ status: 'rejected', message: expect.stringMatching(/scan.trigger: 5 is outside 1..4/) });
    expect(r.result('r2')).toMatchObject({ status: 'rejected', message: expect.stringMatching(/params.string/) });
    expect(r.result('r3')).toMatchObject({ status: 'rejected', message: expect.stringMatching(/no ivScan block|has none/) });
    expect(r.result('r4')).toMatchObject({ status: 'rejected', message: expect.stringMatching(/already running/) });
    expect(r.mem.writes()).toEqual([]);
  });
});

describe('IV-scan block configuration', () => {
  const check = (block: unknown, points: MapPoint[] = POINTS): string[] => configProblems({ ...MODBUS_DEFAULTS, siteId: SITE, registerMaps: { box: { points, ivScan: block as IvScanBlock } } });

  test('the trigger must be a declared writable holding-register point; references must exist; the blocks must not overlap', () => {
    expect(check(BLOCK)).toEqual([]);
    expect(check({ ...BLOCK, trigger: 'scan.state' })).toEqual([expect.stringMatching(/^registerMaps.box.ivScan.trigger: 'scan.state' must be a writable numeric holding-register point/)]);
    expect(check({ ...BLOCK, trigger: 'nope' })).toEqual(["registerMaps.box.ivScan.trigger: 'nope' is not a point of this map"]);
    expect(check({ ...BLOCK, sequence: 'missing' })).toEqual(["registerMaps.box.ivScan.sequence: 'missing' is not a point of this map"]);
    expect(check({ ...BLOCK, states: { done: 1 } })).toEqual(['registerMaps.box.ivScan.states: idle, running, done and failed need four different values']);
    expect(check({ ...BLOCK, curve: { ...BLOCK.curve, current: { address: 250, type: 'uint16' } } })).toEqual(['registerMaps.box.ivScan.curve: the voltage (200..299) and current (250..349) blocks overlap']);
    // The schema: a curve longer than a result may carry, an unknown key.
    expect(() => validateConfig(modbusConfigSpec, { siteId: SITE, registerMaps: { box: { points: POINTS, ivScan: { ...BLOCK, curve: { ...BLOCK.curve, maxPoints: 1001 } } } } })).toThrow(/maxPoints/);
    expect(() => validateConfig(modbusConfigSpec, { siteId: SITE, registerMaps: { box: { points: POINTS, ivScan: { ...BLOCK, trig: 'x' } } } })).toThrow(/ivScan/);
    expect(() => validateConfig(modbusConfigSpec, { siteId: SITE, registerMaps: { box: { points: POINTS, ivScan: { ...BLOCK, trigger: 'scan.state' } } } })).toThrow(/ivScan.trigger/);
  });
});

/**
 * Plant safety: writes are deny-by-default. Only points declared writable may be written (a
 * register-map point with `writable: true`, a SunSpec point with access RW, including RW points
 * inside repeating groups), each resolved to every register it spans. Table-driven against
 * pymodbus: every refused command is answered `rejected` and leaves every register of the device
 * as it was (read back from pymodbus); every allowed one is written, read back by the adapter, and
 * changes exactly the registers of its point.
 */
import { systemClock } from '../../components/lib/clock';
import type { ControlCommand, ControlResult } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import { getModel, pointLocation, walkImage } from '../../components/modbus-adapter/sunspec';
import { controlsImage } from '../../components/modbus-adapter/testing/images';
import { startPymodbus, type PymodbusServer } from '../../components/modbus-adapter/testing/pymodbus';

jest.setTimeout(60_000);

const SITE = 'site-1';
const BASE = 40000;
const IMAGE = controlsImage();
const CHAIN = walkImage(IMAGE);
/** Registers outside SunSpec that pymodbus also serves (a vendor block at 0). */
const VENDOR = Array.from({ length: 20 }, (_v, i) => 0x1100 + i);

/** Absolute address of a model's ID register. */
function modelAt(id: number): number {
  const m = CHAIN.find((x) => x.id === id);
  if (!m) throw new Error(`model ${id} not in the image`);
  return BASE + m.offset;
}
/** Absolute address of a top-group point. */
function top(id: number, name: string): number {
  const loc = pointLocation(getModel(id)!, name);
  if (!loc) throw new Error(`model ${id} has no point ${name}`);
  return modelAt(id) + 2 + loc.offset;
}
// Repeating groups, counted by hand from the SunSpec model definitions (offsets after the header):
// 160: fixed part 8 registers, then modules of 20 (ID 1, IDStr 8, DCA ...): module n DCA at 8 + 20(n-1) + 9.
const m160DCA = (n: number): number => modelAt(160) + 2 + 8 + 20 * (n - 1) + 9;
// 126: fixed part 10, curve of 54 (ActPt, DeptRef, V1, VAr1 ... V20, VAr20, CrvNam 8, 3 ramps, ReadOnly).
const m126 = (offsetInCurve: number): number => modelAt(126) + 2 + 10 + offsetInCurve;
// 705: fixed part 13, curves of 16: ActPt 0, DeptRef 1, Pri 2, VRef 3, VRefAuto 4, VRefAutoEna 5,
// VRefAutoTms 6, RspTms 7-8 (uint32), ReadOnly 9, then NPt = 3 points (V, Var) from 10.
const m705Crv = (crv: number, offsetInCurve: number): number => modelAt(705) + 2 + 13 + 16 * (crv - 1) + offsetInCurve;
const m705Pt = (crv: number, pt: number, which: 'V' | 'Var'): number => m705Crv(crv, 10 + 2 * (pt - 1) + (which === 'Var' ? 1 : 0));

type Params = ControlCommand['params'];
interface Case {
  name: string;
  params: Params;
  /** Refused: the reason; allowed: the registers it must change (address -> value), nothing else. */
  refused?: RegExp;
  writes?: Record<number, number>;
}

describe('writes are deny-by-default (pymodbus over TCP)', () => {
  let sunspec: PymodbusServer;
  let mapped: PymodbusServer;
  let adapter: ModbusAdapter | undefined;
  const bus = new RecordingBus();
  let n = 0;

  beforeAll(async () => {
    [sunspec, mapped] = await Promise.all([
      startPymodbus({ hr: { 0: VENDOR, [BASE]: IMAGE } }),
      startPymodbus({ hr: { 0: Array.from({ length: 32 }, (_v, i) => 0x2200 + i) }, co: { 0: [false, false, false, false, false, false, false, false] } }),
    ]);
    // The image's own numbers are what the hand-counted offsets above say they are.
    expect(IMAGE[m160DCA(2) - BASE]).toBe(81);
    expect(IMAGE[m705Crv(2, 3) - BASE]).toBe(232);
    expect(IMAGE[m705Pt(2, 1, 'V') - BASE]).toBe(94);
    expect(IMAGE[m126(2) - BASE]).toBe(95);
    const config = validateConfig(modbusConfigSpec, {
      siteId: SITE,
      registerMaps: {
        plc: {
          points: [
            { name: 'SetP', address: 10, functionCode: 3, type: 'uint16', writable: true, min: 0, max: 1000 },
            { name: 'Lim', address: 12, functionCode: 3, type: 'int32', writable: true },
            { name: 'Meas', address: 14, functionCode: 3, type: 'uint16' },
            { name: 'Ratio', address: 16, functionCode: 3, type: 'float32' },
            { name: 'Gain', address: 18, functionCode: 3, type: 'uint16', writable: true, scale: 0.1 },
            { name: 'relay.1', address: 0, functionCode: 1, type: 'bool', writable: true },
            { name: 'relay.2', address: 1, functionCode: 1, type: 'bool' },
          ],
        },
      },
      devices: [
        { assetId: 'inv-1', connection: { type: 'tcp', host: '127.0.0.1', port: sunspec.port }, unitId: 1, pollIntervalMs: 500, timeoutMs: 1000, profile: { type: 'sunspec' } },
        { assetId: 'plc-1', connection: { type: 'tcp', host: '127.0.0.1', port: mapped.port }, unitId: 1, pollIntervalMs: 500, timeoutMs: 1000, profile: { type: 'registerMap', map: 'plc' } },
      ],
    });
    adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    await adapter.start();
    await bus.until(() => bus.of('rawTelemetry', 'inv-1').length > 0 && bus.of('rawTelemetry', 'plc-1').length > 0, 20_000, 'both devices polled');
  });

  afterAll(async () => {
    await adapter?.close();
    await Promise.all([sunspec?.stop(), mapped?.stop()]);
  });

  /** Every register (and coil) the server holds, by address. */
  async function snapshot(server: PymodbusServer, ranges: Array<[number, number]>, coils = 0): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [from, count] of ranges) (await server.get('hr', from, count)).forEach((v, i) => out.set(`hr${from + i}`, Number(v)));
    if (coils > 0) (await server.get('co', 0, coils)).forEach((v, i) => out.set(`co${i}`, Number(v)));
    return out;
  }

  async function run(assetId: string, params: Params): Promise<ControlResult> {
    const commandId = `w${++n}`;
    await bus.deliver('controlCommand', `site/${SITE}/control/${assetId}/command`, { schemaVersion: 1, siteId: SITE, assetId, commandId, ts: Date.now(), action: 'write', params, issuedBy: 'local-control' }, { strict: true });
    await bus.until(() => bus.of<ControlResult>('controlResult').some((r) => r.commandId === commandId), 10_000, `result of ${commandId}`);
    return bus.of<ControlResult>('controlResult').find((r) => r.commandId === commandId)!;
  }

  function changed(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of after) if (before.get(k) !== v) out[k] = v;
    return out;
  }

  const sunspecCases: Case[] = [
    { name: 'a vendor register outside every model', params: { address: 5, value: 1 }, refused: /not inside any SunSpec model/ },
    { name: "the 'SunS' marker", params: { address: BASE, value: 1 }, refused: /not inside any SunSpec model/ },
    { name: 'the end-of-chain marker', params: { address: BASE + IMAGE.length - 2, value: 1 }, refused: /not inside any SunSpec model/ },
    { name: "a model's header (ID)", params: { address: modelAt(123), value: 123 }, refused: /header/ },
    { name: 'a read-only top-group point (103 W)', params: { address: top(103, 'W'), value: 1 }, refused: /103 point W, which is not writable/ },
    { name: 'a read-only point in a repeating group (160 module 2 DCA)', params: { address: m160DCA(2), value: 1 }, refused: /160 point module\.2\.DCA, which is not writable/ },
    { name: 'a read-only point inside an RW curve (705 Crv 1 VRefAuto)', params: { address: m705Crv(1, 4), value: 1 }, refused: /705 point Crv\.1\.VRefAuto, which is not writable/ },
    { name: 'a read-only point at the end of a count-0 curve (126 curve 1 ReadOnly)', params: { address: m126(53), value: 1 }, refused: /126 point curve\.1\.ReadOnly, which is not writable/ },
    { name: 'the second register of a 32-bit RW point (705 RvrtTms)', params: { address: top(705, 'RvrtTms') + 1, value: 1 }, refused: /inside point RvrtTms .*whole point/ },
    { name: 'one register of a 32-bit RW point (type uint16)', params: { address: top(705, 'RvrtTms'), value: 1, type: 'uint16' }, refused: /2 registers/ },
    { name: 'a 32-bit write over a 16-bit RW point (runs past it)', params: { address: top(123, 'WMaxLimPct_WinTms'), value: 1, type: 'uint32' }, refused: /1 register/ },
    { name: 'a read-only point by name', params: { point: 'W', value: 1 }, refused: /not writable/ },
    { name: 'a read-only group point by name', params: { point: 'module.2.DCA', value: 1 }, refused: /not writable/ },
    { name: 'a count point by name (705 NCrv)', params: { point: 'NCrv', value: 3 }, refused: /not writable/ },
    { name: 'a curve the device does not have (705 Crv 3)', params: { point: 'Crv.3.Pt.1.V', model: 705, value: 100 }, refused: /has no point Crv\.3\.Pt\.1\.V/ },
    { name: 'a coil', params: { address: 0, value: true, functionCode: 1 }, refused: /no coils/ },
    { name: 'an enum value that is not one of its symbols, by address', params: { address: top(123, 'Conn'), value: 7 }, refused: /not one of its symbols/ },
    { name: 'WMaxLimPct above 100 %', params: { point: 'WMaxLimPct', model: 123, value: 101 }, refused: /outside 0\.\.100/ },
  ];

  const sunspecAllowed: Case[] = [
    { name: 'a 16-bit RW top-group point by address (123 WMaxLimPct_WinTms)', params: { address: top(123, 'WMaxLimPct_WinTms'), value: 60 }, writes: { [top(123, 'WMaxLimPct_WinTms')]: 60 } },
    { name: 'a 32-bit RW top-group point by address, both registers (705 RvrtTms)', params: { address: top(705, 'RvrtTms'), value: 70000 }, writes: { [top(705, 'RvrtTms')]: 1, [top(705, 'RvrtTms') + 1]: 4464 } },
    { name: 'a signed 32-bit RW point by name with its scale factor (704 WSet)', params: { point: 'WSet', value: -2 }, writes: { [top(704, 'WSet')]: 0xffff, [top(704, 'WSet') + 1]: 0xfffe } },
    { name: 'a curve point by address (705 Crv 2 Pt 3 V)', params: { address: m705Pt(2, 3, 'V'), value: 110 }, writes: { [m705Pt(2, 3, 'V')]: 110 } },
    { name: 'a curve point by name (705 Crv 1 Pt 2 Var)', params: { point: 'Crv.1.Pt.2.Var', value: -12 }, writes: { [m705Pt(1, 2, 'Var')]: 0x10000 - 12 } },
    { name: 'a curve point by its telemetry name (705.Crv.2.VRef)', params: { point: '705.Crv.2.VRef', value: 240 }, writes: { [m705Crv(2, 3)]: 240 } },
    { name: 'a 32-bit point in a curve by name (705 Crv 2 RspTms)', params: { point: 'Crv.2.RspTms', value: 65537 }, writes: { [m705Crv(2, 7)]: 1, [m705Crv(2, 8)]: 1 } },
    { name: 'a point of a count-0 curve by address (126 curve 1 V1)', params: { address: m126(2), value: 96 }, writes: { [m126(2)]: 96 } },
    { name: 'an enum by symbol name (123 Conn)', params: { point: 'Conn', value: 'DISCONNECT' }, writes: { [top(123, 'Conn')]: 0 } },
  ];

  const SUNSPEC_RANGES: Array<[number, number]> = [
    [0, VENDOR.length],
    [BASE, IMAGE.length],
  ];

  it.each(sunspecCases)('SunSpec, refused: $name', async ({ params, refused }) => {
    const before = await snapshot(sunspec, SUNSPEC_RANGES);
    const r = await run('inv-1', params);
    expect({ status: r.status, message: r.message }).toEqual({ status: 'rejected', message: expect.stringMatching(refused!) });
    expect(changed(before, await snapshot(sunspec, SUNSPEC_RANGES))).toEqual({});
  });

  it.each(sunspecAllowed)('SunSpec, allowed: $name', async ({ params, writes }) => {
    const before = await snapshot(sunspec, SUNSPEC_RANGES);
    const r = await run('inv-1', params);
    expect(r).toMatchObject({ status: 'succeeded' });
    expect(changed(before, await snapshot(sunspec, SUNSPEC_RANGES))).toEqual(Object.fromEntries(Object.entries(writes!).map(([a, v]) => [`hr${a}`, v])));
  });

  const mapCases: Case[] = [
    { name: 'an unmapped register', params: { address: 20, value: 1 }, refused: /not a writable point/ },
    { name: 'a register in a gap between points', params: { address: 11, value: 1 }, refused: /not a writable point/ },
    { name: 'a read-only register point', params: { address: 14, value: 1 }, refused: /Meas.*not writable/ },
    { name: 'a read-only point by name', params: { point: 'Meas', value: 1 }, refused: /Meas is not writable/ },
    { name: 'the second register of a writable int32', params: { address: 13, value: 1 }, refused: /inside point Lim .*whole point/ },
    { name: 'one register of a writable int32 (type uint16)', params: { address: 12, value: 1, type: 'uint16' }, refused: /Lim is int32/ },
    { name: 'a 32-bit write over a 16-bit point (runs past it)', params: { address: 10, value: 1, type: 'uint32' }, refused: /SetP is uint16/ },
    { name: 'a value outside the point min/max', params: { point: 'SetP', value: 1001 }, refused: /outside 0\.\.1000/ },
    { name: 'a read-only coil', params: { address: 1, value: true, functionCode: 1 }, refused: /relay\.2.*not writable/ },
    { name: 'an unmapped coil', params: { address: 5, value: true, functionCode: 1 }, refused: /not a writable point/ },
    { name: 'an input register function code', params: { address: 10, value: 1, functionCode: 4 }, refused: /function code 4 cannot be written/ },
    { name: 'an unknown point name', params: { point: 'Nope', value: 1 }, refused: /no point Nope/ },
    { name: 'neither point nor address', params: { value: 1 }, refused: /params\.point or params\.address/ },
  ];

  const mapAllowed: Case[] = [
    { name: 'a writable uint16 by name', params: { point: 'SetP', value: 500 }, writes: { 10: 500 } },
    { name: 'a writable uint16 by address', params: { address: 10, value: 7 }, writes: { 10: 7 } },
    { name: 'a writable int32 by address: both registers', params: { address: 12, value: 70000 }, writes: { 12: 1, 13: 4464 } },
    { name: 'a writable int32 by name, negative', params: { point: 'Lim', value: -2 }, writes: { 12: 0xffff, 13: 0xfffe } },
    { name: 'a scaled point by name (engineering value)', params: { point: 'Gain', value: 2.5 }, writes: { 18: 25 } },
    { name: 'a writable coil by address', params: { address: 0, value: true, functionCode: 1 }, writes: { 0: 1 } },
    { name: 'a writable coil by name', params: { point: 'relay.1', value: false }, writes: { 0: 0 } },
  ];

  const MAP_RANGES: Array<[number, number]> = [[0, 32]];

  it.each(mapCases)('register map, refused: $name', async ({ params, refused }) => {
    const before = await snapshot(mapped, MAP_RANGES, 8);
    const r = await run('plc-1', params);
    expect({ status: r.status, message: r.message }).toEqual({ status: 'rejected', message: expect.stringMatching(refused!) });
    expect(changed(before, await snapshot(mapped, MAP_RANGES, 8))).toEqual({});
  });

  it.each(mapAllowed)('register map, allowed: $name', async ({ params, writes }) => {
    const before = await snapshot(mapped, MAP_RANGES, 8);
    const r = await run('plc-1', params);
    expect(r).toMatchObject({ status: 'succeeded' });
    const coil = params['functionCode'] === 1 || String(params['point']).startsWith('relay');
    const expected = Object.fromEntries(Object.entries(writes!).map(([a, v]) => [`${coil ? 'co' : 'hr'}${a}`, v]));
    expect(changed(before, await snapshot(mapped, MAP_RANGES, 8))).toEqual(expected);
  });

  it('published only valid results', () => {
    expect(bus.invalid).toEqual([]);
  });
});

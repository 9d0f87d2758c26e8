/**
 * What a device profile is (a named register map, or SunSpec discovery), and the named register map
 * implementation. SunSpec lives in sunspec-profile.ts.
 */
import type { ControlResultData, Point } from '../lib/contract';
import type { MapPoint, RegisterMap } from './config';
import { planBlocks, type Block } from './planner';
import { decodeBitPoint, decodeMapPoint, encodeMapPoint, pointWidth, RegisterValueError } from './register-map';
import { ModbusException } from './transport';
import { ivScan } from './iv-scan';

/** Reads and writes for one device (its unit id and timeout bound in), through its link. */
export interface DeviceIo {
  readRegisters(fc: 3 | 4, address: number, count: number): Promise<number[]>;
  readBits(fc: 1 | 2, address: number, count: number): Promise<boolean[]>;
  writeRegisters(address: number, values: number[]): Promise<void>;
  writeCoil(address: number, value: boolean): Promise<void>;
  /** Wait on the adapter's clock (actions that wait for the device, `iv_scan`); absent in tools without one. */
  wait?(ms: number): Promise<void>;
  now?(): number;
}

/** A write's outcome when it measured something (`iv_scan`): the message and the data for the result. */
export interface WriteDone {
  message: string;
  data?: ControlResultData;
}

export interface PollResult {
  points: Record<string, Point>;
  /** Parts that failed while the device answered (exception responses): the poll is partial. */
  problems: string[];
  /** `points` carries the static models' values (read now, or repeated on request). */
  static?: boolean;
}

export interface PollOptions {
  /** Add the static models' last values to this poll's points (SunSpec; see sunspec-profile.ts). */
  withStatic?: boolean;
}

export type WriteParams = Readonly<Record<string, number | string | boolean>>;

/** A write the profile refuses before any I/O (not writable, out of range, unknown point). */
export class WriteRefused extends Error {
  readonly code = 'WRITE_REFUSED';
}

export interface Profile {
  readonly kind: 'sunspec' | 'registerMap';
  /** Whether poll() can run (SunSpec: after discovery). */
  readonly ready: boolean;
  /** Discovery; resolves with a description for the device status. No-op for register maps. */
  prepare(io: DeviceIo): Promise<string | undefined>;
  /** Forget discovery (a re-walk of the model chain is due). */
  reset(): void;
  poll(io: DeviceIo, opts?: PollOptions): Promise<PollResult>;
  /** Read the static models (and model 1) again at the next poll: a new connection (SunSpec only). */
  refreshStatic?(): void;
  /** Execute a control command's write; resolves with a message saying what was written and read back (and data it measured). */
  write(io: DeviceIo, action: string, params: WriteParams): Promise<string | WriteDone>;
  /** SunSpec model ids found (empty for maps). */
  models(): number[];
}

/** Read back after a write and compare (the device may clamp or refuse silently). */
export async function verifyRegisters(io: DeviceIo, address: number, expected: number[]): Promise<void> {
  const back = await io.readRegisters(3, address, expected.length);
  if (back.some((v, i) => (v & 0xffff) !== (expected[i] ?? -1))) {
    throw new Error(`read back [${back.join(', ')}] at ${address}, wrote [${expected.join(', ')}]`);
  }
}

/** A parameter that must be an integer register address. */
export function addressParam(params: WriteParams): number | undefined {
  const address = params['address'];
  if (address === undefined) return undefined;
  if (typeof address !== 'number' || !Number.isInteger(address) || address < 0 || address > 65535) throw new WriteRefused('params.address must be an integer 0..65535');
  return address;
}

const REGISTER_TYPES = new Set<string>(['int16', 'uint16', 'int32', 'uint32', 'float32']);

/**
 * The point a register-map write goes to, deny-by-default: `{ point }` names a point, `{ address,
 * functionCode? }` must be the first register (or the coil) of a point declared `writable`, and
 * the write covers exactly that point's registers. A `type` given with an address must be the
 * point's own (a narrower or wider write would cover part of it or run past it). Every other
 * address, including registers the map does not list, is refused before any I/O.
 */
export function mapWriteTarget(map: RegisterMap, byName: ReadonlyMap<string, MapPoint>, params: WriteParams): MapPoint {
  const name = params['point'];
  if (name !== undefined) {
    if (typeof name !== 'string') throw new WriteRefused('params.point must be a point name');
    const p = byName.get(name);
    if (!p) throw new WriteRefused(`no point ${name} in this device's register map`);
    if (!p.writable) throw new WriteRefused(`point ${p.name} is not writable`);
    return p;
  }
  const address = addressParam(params);
  if (address === undefined) throw new WriteRefused('params.point or params.address is required');
  const fcParam = params['functionCode'];
  if (fcParam !== undefined && fcParam !== 1 && fcParam !== 3) throw new WriteRefused(`function code ${String(fcParam)} cannot be written (coils: 1, holding registers: 3)`);
  const tables: Array<1 | 3> = fcParam === 1 || fcParam === 3 ? [fcParam] : [3, 1];
  const covering = map.points.filter((p) => tables.includes(p.functionCode as 1 | 3) && address >= p.address && address < p.address + pointWidth(p));
  if (fcParam === undefined && new Set(covering.map((p) => p.functionCode)).size > 1) throw new WriteRefused(`address ${address} is both a coil and a holding register here: give params.functionCode (1 or 3)`);
  const writable = covering.find((p) => p.writable && p.address === address);
  if (!writable) {
    const ro = covering.find((p) => !p.writable);
    if (ro) throw new WriteRefused(`address ${address} is point ${ro.name}, which is not writable`);
    const inside = covering[0];
    if (inside) throw new WriteRefused(`address ${address} is inside point ${inside.name} (${inside.address}..${inside.address + pointWidth(inside) - 1}); a write must cover the whole point, from ${inside.address}`);
    throw new WriteRefused(`address ${address} is not a writable point of this device's register map (only points declared writable may be written)`);
  }
  const typeParam = params['type'];
  if (typeParam !== undefined && writable.functionCode === 3 && typeParam !== writable.type) {
    if (typeof typeParam !== 'string' || !REGISTER_TYPES.has(typeParam)) throw new WriteRefused(`params.type must be one of ${[...REGISTER_TYPES].join(', ')}`);
    throw new WriteRefused(`point ${writable.name} is ${writable.type} (${pointWidth(writable)} register${pointWidth(writable) > 1 ? 's' : ''}), not ${typeParam}: a write must cover exactly the point`);
  }
  // A writable point that overlaps a read-only one (aliases in a map) would change it too.
  const end = writable.address + pointWidth(writable);
  const ro = writable.functionCode === 3 ? map.points.find((q) => q.functionCode === 3 && !q.writable && q.address < end && q.address + pointWidth(q) > writable.address) : undefined;
  if (ro) throw new WriteRefused(`a write of ${writable.name} would cover part of read-only point ${ro.name}`);
  return writable;
}

/** Registers (or the coil value) for writing `value` (engineering units) to a map point. */
export function encodeMapWrite(p: MapPoint, value: unknown): { registers: number[]; coil?: boolean } {
  if (value === undefined) throw new WriteRefused('params.value is required');
  if (p.functionCode === 1) {
    if (typeof value !== 'boolean' && value !== 0 && value !== 1) throw new WriteRefused('a coil takes true/false or 0/1');
    return { registers: [], coil: value === true || value === 1 };
  }
  if (typeof value !== 'number' && typeof value !== 'string' && typeof value !== 'boolean') throw new WriteRefused('params.value must be a number, string or boolean');
  try {
    return { registers: encodeMapPoint(p, value) };
  } catch (err) {
    if (err instanceof RegisterValueError) throw new WriteRefused(err.message);
    throw err;
  }
}

/** A device read with a named register map: blocks planned once from the map. */
export function registerMapProfile(map: RegisterMap, limits: { maxRegisters: number; maxGap: number }): Profile {
  const ranges = map.points.map((p) => ({ fc: p.functionCode, address: p.address, width: pointWidth(p), ref: p }));
  const blocks: Block<MapPoint>[] = planBlocks(ranges, { maxRegisters: limits.maxRegisters, maxGap: limits.maxGap });
  const byName = new Map(map.points.map((p) => [p.name, p]));

  return {
    kind: 'registerMap',
    ready: true,
    prepare: () => Promise.resolve(undefined),
    reset: () => undefined,
    models: () => [],
    async poll(io) {
      const points: Record<string, Point> = {};
      const problems: string[] = [];
      for (const b of blocks) {
        try {
          if (b.fc === 1 || b.fc === 2) {
            const bits = await io.readBits(b.fc, b.address, b.count);
            for (const r of b.ranges) points[r.ref.name] = decodeBitPoint(r.ref, bits, r.address - b.address);
          } else {
            const regs = await io.readRegisters(b.fc, b.address, b.count);
            for (const r of b.ranges) points[r.ref.name] = decodeMapPoint(r.ref, regs, r.address - b.address);
          }
        } catch (err) {
          // The device answered with an exception: these points are bad, the others still count.
          if (!(err instanceof ModbusException)) throw err;
          problems.push(err.message);
          for (const r of b.ranges) points[r.ref.name] = { v: null, ...(r.ref.unit ? { u: r.ref.unit } : {}), q: 'bad' };
        }
      }
      return { points, problems };
    },
    async write(io, action, params) {
      if (action === 'iv_scan') return ivScan(io, map, byName, params, limits.maxRegisters);
      if (action !== 'write') throw new WriteRefused(`action ${action} needs a SunSpec device; a register-map device takes 'write' (and 'iv_scan' when its map declares an ivScan block)`);
      const p = mapWriteTarget(map, byName, params);
      const w = encodeMapWrite(p, params['value']);
      if (p.functionCode === 1) {
        await io.writeCoil(p.address, w.coil === true);
        const back = await io.readBits(1, p.address, 1);
        if (back[0] !== w.coil) throw new Error(`coil ${p.address} reads ${String(back[0])} after writing ${String(w.coil)}`);
        return `coil ${p.address} (${p.name}) set to ${String(w.coil)} and read back`;
      }
      await io.writeRegisters(p.address, w.registers);
      await verifyRegisters(io, p.address, w.registers);
      return `wrote [${w.registers.join(', ')}] at ${p.address} (${p.name}) and read it back`;
    },
  };
}

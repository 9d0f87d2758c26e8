/**
 * What a device profile is (a named register map, or SunSpec discovery), and the named register map
 * implementation. SunSpec lives in sunspec-profile.ts.
 */
import type { Point } from '../lib/contract';
import type { MapPoint, RegisterMap } from './config';
import { planBlocks, type Block } from './planner';
import { decodeBitPoint, decodeMapPoint, encodeMapPoint, pointWidth, RegisterValueError } from './register-map';
import { ModbusException } from './transport';

/** Reads and writes for one device (its unit id and timeout bound in), through its link. */
export interface DeviceIo {
  readRegisters(fc: 3 | 4, address: number, count: number): Promise<number[]>;
  readBits(fc: 1 | 2, address: number, count: number): Promise<boolean[]>;
  writeRegisters(address: number, values: number[]): Promise<void>;
  writeCoil(address: number, value: boolean): Promise<void>;
}

export interface PollResult {
  points: Record<string, Point>;
  /** Parts that failed while the device answered (exception responses): the poll is partial. */
  problems: string[];
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
  poll(io: DeviceIo): Promise<PollResult>;
  /** Execute a control command's write; resolves with a message saying what was written and read back. */
  write(io: DeviceIo, action: string, params: WriteParams): Promise<string>;
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

/** A register write by address: `{ address, value, type?, functionCode? }` (raw register values). */
export function addressWrite(params: WriteParams, known?: MapPoint): { address: number; fc: 1 | 3; registers: number[]; coil?: boolean } {
  const address = params['address'];
  if (typeof address !== 'number' || !Number.isInteger(address) || address < 0 || address > 65535) throw new WriteRefused('params.address must be an integer 0..65535');
  const fc = params['functionCode'] ?? known?.functionCode ?? 3;
  if (fc !== 1 && fc !== 3) throw new WriteRefused(`function code ${String(fc)} cannot be written (coils: 1, holding registers: 3)`);
  const value = params['value'];
  if (value === undefined) throw new WriteRefused('params.value is required');
  if (fc === 1) {
    if (typeof value !== 'boolean' && value !== 0 && value !== 1) throw new WriteRefused('a coil takes true/false or 0/1');
    return { address, fc, registers: [], coil: value === true || value === 1 };
  }
  const typeParam = params['type'];
  const point: MapPoint = known ?? {
    name: `reg${address}`,
    address,
    functionCode: 3,
    type: typeParam === 'int16' || typeParam === 'int32' || typeParam === 'uint32' || typeParam === 'float32' ? typeParam : 'uint16',
  };
  try {
    return { address, fc, registers: encodeMapPoint(point, value) };
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
      if (action !== 'write') throw new WriteRefused(`action ${action} needs a SunSpec device; a register-map device takes 'write'`);
      const name = params['point'];
      let p: MapPoint | undefined;
      if (typeof name === 'string') {
        p = byName.get(name);
        if (!p) throw new WriteRefused(`no point ${name} in this device's register map`);
      } else if (typeof params['address'] === 'number') {
        p = map.points.find((x) => x.functionCode !== 2 && x.functionCode !== 4 && x.address === params['address']);
      }
      if (p && !p.writable) throw new WriteRefused(`point ${p.name} is not writable`);
      const w = addressWrite(p ? { ...params, address: p.address } : params, p);
      if (w.fc === 1) {
        await io.writeCoil(w.address, w.coil === true);
        const back = await io.readBits(1, w.address, 1);
        if (back[0] !== w.coil) throw new Error(`coil ${w.address} reads ${String(back[0])} after writing ${String(w.coil)}`);
        return `coil ${w.address} set to ${String(w.coil)} and read back`;
      }
      await io.writeRegisters(w.address, w.registers);
      await verifyRegisters(io, w.address, w.registers);
      return `wrote [${w.registers.join(', ')}] at ${w.address}${p ? ` (${p.name})` : ''} and read it back`;
    },
  };
}

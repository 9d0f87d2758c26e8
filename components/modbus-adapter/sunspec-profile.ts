/**
 * SunSpec devices: discovery, decoding and writes (SunSpec Modbus specification, "Device
 * Discovery", "Model Layout"; the model definitions and codecs are in ./sunspec).
 *
 * Discovery reads two registers at 40000, then 0, then 50000 (or only the configured base) looking
 * for 'SunS'; an exception or another value there means "not here". It then walks the chain: each
 * model is `ID, L, <L registers>`, the next one starts after it, and ID 0xFFFF ends the chain. A
 * chain that runs off the device (an exception reading a header) ends there. Every poll re-reads
 * each model whole, so scale factors are always the current ones.
 */
import type { Point } from '../lib/contract';
import { splitSpan } from './planner';
import { WriteRefused, type DeviceIo, type PollResult, type Profile, type WriteParams } from './profile';
import { roundScaled } from './register-map';
import { decodeModel, END_MODEL_ID, getModel, SUNS_MARKER, SUNSPEC_BASES, SunSpecError, type DecodedModel, type DecodedPoint, type ModelDef } from './sunspec';
import { sunspecWrite } from './sunspec-writes';
import { ModbusException } from './transport';

export interface ModelEntry {
  id: number;
  /** Address of the model's ID register. */
  address: number;
  length: number;
  def: ModelDef | undefined;
  /** Why the model is not polled (unknown id, length past address 65535, model 1 unreadable). */
  problem?: string;
  /** The problem is the device's fault (a broken chain), not ours (a model we do not ship): it degrades the device. */
  fault?: boolean;
}

export interface Discovery {
  base: number;
  models: ModelEntry[];
  /** Model 1 (common) points, read once at discovery. */
  common: Record<string, string | number>;
}

/** Bound on the chain walk: a device that never ends its chain cannot keep us walking. */
const MAX_MODELS = 256;

export class DiscoveryError extends Error {
  readonly code = 'SUNSPEC_NOT_FOUND';
}

/**
 * Exception responses that mean "nothing here" when probing a base address or a model header:
 * 1 ILLEGAL FUNCTION, 2 ILLEGAL DATA ADDRESS, 3 ILLEGAL DATA VALUE (Modbus Application Protocol
 * v1.1b3 §7). Any other (4 device failure, 6 busy, 10/11 gateway) says the device is in trouble,
 * not that the map ends: discovery fails and is retried.
 */
function meansNotHere(err: unknown): err is ModbusException {
  return err instanceof ModbusException && err.exceptionCode >= 1 && err.exceptionCode <= 3;
}

async function readSpan(io: DeviceIo, address: number, count: number, maxRegisters: number): Promise<number[]> {
  const out: number[] = [];
  for (const s of splitSpan(address, count, maxRegisters)) out.push(...(await io.readRegisters(3, s.address, s.count)));
  return out;
}

/** Discover a SunSpec device. Transport errors propagate (the device is unreachable, not "not SunSpec"). */
export async function discover(io: DeviceIo, opts: { bases?: readonly number[]; maxRegisters: number }): Promise<Discovery> {
  const tried: string[] = [];
  for (const base of opts.bases ?? SUNSPEC_BASES) {
    let marker: number[];
    try {
      marker = await io.readRegisters(3, base, 2);
    } catch (err) {
      if (meansNotHere(err)) {
        tried.push(`${base}: exception ${err.exceptionCode}`);
        continue;
      }
      throw err;
    }
    if (marker[0] !== SUNS_MARKER[0] || marker[1] !== SUNS_MARKER[1]) {
      tried.push(`${base}: 0x${(marker[0] ?? 0).toString(16)} 0x${(marker[1] ?? 0).toString(16)}`);
      continue;
    }
    const models: ModelEntry[] = [];
    let addr = base + 2;
    while (models.length < MAX_MODELS && addr + 2 <= 65536) {
      let header: number[];
      try {
        header = await io.readRegisters(3, addr, 2);
      } catch (err) {
        if (meansNotHere(err)) break; // the chain runs off the device without an end marker
        throw err;
      }
      const id = header[0] ?? END_MODEL_ID;
      const length = header[1] ?? 0;
      if (id === END_MODEL_ID) break;
      const entry: ModelEntry = { id, address: addr, length, def: getModel(id) };
      if (!entry.def) entry.problem = `model ${id} is not known to this adapter`;
      if (addr + 2 + length > 65536) {
        entry.problem = `model ${id} at ${addr} with length ${length} runs past address 65535`;
        entry.fault = true;
      }
      models.push(entry);
      addr += 2 + length;
    }
    const common: Record<string, string | number> = {};
    const m1 = models.find((m) => m.id === 1 && !m.problem && m.def);
    if (m1?.def) {
      try {
        const d = decodeModel(m1.def, await readSpan(io, m1.address + 2, m1.length, opts.maxRegisters));
        for (const [k, p] of Object.entries(d.points)) if (p.implemented && p.value !== null && k !== 'Pad') common[k] = p.value;
      } catch (err) {
        if (!meansNotHere(err) && !(err instanceof SunSpecError)) throw err;
        m1.problem = `model 1 at ${m1.address}: ${err.message}`;
        m1.fault = true;
      }
    }
    return { base, models, common };
  }
  throw new DiscoveryError(`no SunSpec marker 'SunS' (tried ${tried.join('; ')})`);
}

/** Telemetry name of a group key: `module` [i] -> `module.<i+1>`, `Crv[0].Pt` -> `Crv.1.Pt`. */
function groupPrefix(key: string, i: number): string {
  return `${key.replace(/\[(\d+)\]/g, (_m, n: string) => `.${Number(n) + 1}`)}.${i + 1}`;
}

/**
 * One decoded point as telemetry. Not implemented: `v: null, q: 'not_implemented'`. A scale factor
 * that is not implemented or outside -10..10 makes the value unknowable (the raw number without its
 * power of ten is off by orders of magnitude, dangerous for alarms and control): `v: null, q: 'bad'`,
 * never the raw number, in the top group and in repeating groups alike. Writes to such a point are
 * refused.
 */
export function pointOf(p: DecodedPoint): Point | undefined {
  const u = p.units ? { u: p.units } : {};
  if (!p.implemented) return { v: null, ...u, q: 'not_implemented' };
  if (p.badScaleFactor) return { v: null, ...u, q: 'bad' };
  if (p.bits) return { v: p.bits.join('|'), q: 'good' };
  if (p.symbol !== undefined) return { v: p.symbol, q: 'good' };
  if (typeof p.value === 'number') return Number.isFinite(p.value) ? { v: roundScaled(p.value), ...u, q: 'good' } : { v: null, ...u, q: 'bad' };
  return { v: p.value, ...u, q: 'good' };
}

/**
 * Points of one decoded model as telemetry: `<model>.<point>`, groups `<model>.<group>.<n>.<point>`.
 * Scale-factor points, in the top group or inside a group (model 63001 `repeating.sunssf_8`), are
 * applied, not published; pads are not decoded at all.
 */
export function modelPoints(m: DecodedModel, def: ModelDef, out: Record<string, Point>): void {
  const scaleFactors = (g: ModelDef['group'] | undefined): Set<string> => new Set((g?.points ?? []).filter((p) => p.type === 'sunssf').map((p) => p.name));
  const topSf = scaleFactors(def.group);
  for (const [name, p] of Object.entries(m.points)) {
    if (topSf.has(name)) continue;
    const v = pointOf(p);
    if (v) out[`${m.id}.${name}`] = v;
  }
  for (const [key, instances] of Object.entries(m.groups)) {
    // `Crv[1].Pt` -> the definition of Crv's group Pt.
    let g: ModelDef['group'] | undefined = def.group;
    for (const name of key.replace(/\[\d+\]/g, '').split('.')) g = g?.groups.find((sg) => sg.name === name);
    const sf = scaleFactors(g);
    instances.forEach((pts, i) => {
      for (const [name, p] of Object.entries(pts)) {
        if (sf.has(name)) continue;
        const v = pointOf(p);
        if (v) out[`${m.id}.${groupPrefix(key, i)}.${name}`] = v;
      }
    });
  }
}

export function sunspecProfile(opts: { baseAddress?: number; models?: readonly number[]; maxRegisters: number }): Profile {
  let found: Discovery | undefined;
  const polled = (): ModelEntry[] => (found?.models ?? []).filter((m) => !m.problem && m.def && m.id !== 1 && (!opts.models || opts.models.includes(m.id)));

  const readModel = async (io: DeviceIo, m: ModelEntry): Promise<DecodedModel> => {
    const regs = await readSpan(io, m.address + 2, m.length, opts.maxRegisters);
    return decodeModel(m.def as ModelDef, regs);
  };

  return {
    kind: 'sunspec',
    get ready() {
      return found !== undefined;
    },
    async prepare(io) {
      found = await discover(io, { ...(opts.baseAddress !== undefined ? { bases: [opts.baseAddress] } : {}), maxRegisters: opts.maxRegisters });
      const problems = found.models.filter((m) => m.problem).map((m) => m.problem);
      const id = ['Mn', 'Md', 'SN'].map((k) => found?.common[k]).filter((x) => x !== undefined).join(' ');
      return `SunSpec at ${found.base}: models ${found.models.map((m) => m.id).join(', ')}${id ? ` (${id})` : ''}${problems.length ? `; ${problems.join('; ')}` : ''}`;
    },
    reset() {
      found = undefined;
    },
    models: () => (found?.models ?? []).map((m) => m.id),
    async poll(io): Promise<PollResult> {
      const points: Record<string, Point> = {};
      const problems = (found?.models ?? []).filter((m) => m.fault && m.problem).map((m) => m.problem as string);
      for (const m of polled()) {
        try {
          modelPoints(await readModel(io, m), m.def as ModelDef, points);
        } catch (err) {
          // An exception response for this model (its length runs past what the device serves, or
          // the device is busy) or registers that do not decode: this poll is partial. The model
          // stays in the list, so it reads again once the device serves it; a changed chain is
          // found by the periodic re-walk.
          if (err instanceof ModbusException) problems.push(`model ${m.id} at ${m.address} (length ${m.length}): ${err.message}`);
          else if (err instanceof SunSpecError) problems.push(`model ${m.id} at ${m.address}: ${err.message}`);
          else throw err;
        }
      }
      return { points, problems };
    },
    async write(io, action, params: WriteParams) {
      if (!found) throw new WriteRefused('the device has not been discovered yet');
      return sunspecWrite(io, { found, maxRegisters: opts.maxRegisters, chainChanged: () => void (found = undefined) }, action, params);
    },
  };
}

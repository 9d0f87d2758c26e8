/**
 * SunSpec devices: discovery, decoding and writes (SunSpec Modbus specification, "Device
 * Discovery", "Model Layout"; the model definitions and codecs are in ./sunspec).
 *
 * Discovery reads two registers at 40000, then 0, then 50000 (or only the configured base) looking
 * for 'SunS'; an exception or another value there means "not here". It then walks the chain: each
 * model is `ID, L, <L registers>`, the next one starts after it, and ID 0xFFFF ends the chain. A
 * chain that runs off the device (an exception reading a header) ends there. Every poll re-reads
 * each polled model whole, so scale factors are always the current ones.
 *
 * Static models (1 common and 120 nameplate ratings, always, and those listed in `staticModels`)
 * are not read every poll: after each discovery, and again at the first poll after the device's
 * link reconnected (`refreshStatic`; the device behind it may have restarted or been swapped).
 * Model 1 is read at discovery (the device status message names the device from it) and on a
 * refresh; if it names another device then (manufacturer, model or serial number differ), the poll
 * fails with SUNSPEC_DEVICE_CHANGED and the chain is walked again at the next poll. The other
 * static models' points are published with the poll that read them and, on request
 * (`withStatic`), again with later polls from the values last read (the device asks every
 * `statusHeartbeatMs`). A static model that answers with an exception makes the poll partial and
 * is read again at the next poll. A device's `models` filter limits the polled models only.
 */
import type { Point } from '../lib/contract';
import { splitSpan } from './planner';
import { WriteRefused, type DeviceIo, type PollResult, type Profile, type WriteParams } from './profile';
import { roundScaled } from './register-map';
import { decodeModel, END_MODEL_ID, getModel, SUNS_MARKER, SUNSPEC_BASES, SunSpecError, type DecodedModel, type DecodedPoint, type ModelDef } from './sunspec';
import { sunspecWrite } from './sunspec-writes';
import { TransientError } from '../lib/errors';
import { ModbusException } from './transport';

/** SunSpec models every device treats as static: 1 common, 120 nameplate ratings. */
export const BUILTIN_STATIC_MODELS: readonly number[] = Object.freeze([1, 120]);

/** Model 1 points that say which device this is. */
const IDENTITY = ['Mn', 'Md', 'SN'] as const;

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
  /** Model 1 (common) points, read at discovery (and again on a reconnect, see the file comment). */
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

export function sunspecProfile(opts: { baseAddress?: number; models?: readonly number[]; staticModels?: readonly number[]; maxRegisters: number }): Profile {
  let found: Discovery | undefined;
  const statics = new Set([...BUILTIN_STATIC_MODELS, ...(opts.staticModels ?? [])]);
  const usable = (m: ModelEntry): boolean => !m.problem && m.def !== undefined;
  const polled = (): ModelEntry[] => (found?.models ?? []).filter((m) => usable(m) && !statics.has(m.id) && (!opts.models || opts.models.includes(m.id)));
  const staticOnes = (): ModelEntry[] => (found?.models ?? []).filter((m) => usable(m) && statics.has(m.id) && m.id !== 1);
  /** Points of the static models as last read. */
  let staticPoints: Record<string, Point> = {};
  /** Static models to be read at the next poll; `checkIdentity`: model 1 too. */
  let staticDue = false;
  let checkIdentity = false;

  const readModel = async (io: DeviceIo, m: ModelEntry): Promise<DecodedModel> => {
    const regs = await readSpan(io, m.address + 2, m.length, opts.maxRegisters);
    return decodeModel(m.def as ModelDef, regs);
  };

  /** A model's failure that makes the poll partial (its message), or rethrown. */
  const problemOf = (err: unknown, m: ModelEntry): string => {
    if (err instanceof ModbusException) return `model ${m.id} at ${m.address} (length ${m.length}): ${err.message}`;
    if (err instanceof SunSpecError) return `model ${m.id} at ${m.address}: ${err.message}`;
    throw err;
  };

  const identity = (common: Record<string, string | number>): string => IDENTITY.map((k) => common[k] ?? '').join(' ');

  /** Model 1 again: the same device? Throws SUNSPEC_DEVICE_CHANGED (and forgets the chain) if not. */
  const verifyIdentity = async (io: DeviceIo, d: Discovery, problems: string[]): Promise<boolean> => {
    const m1 = d.models.find((m) => m.id === 1 && usable(m));
    if (!m1) return true;
    let decoded: DecodedModel;
    try {
      decoded = await readModel(io, m1);
    } catch (err) {
      problems.push(problemOf(err, m1));
      return false;
    }
    const now: Record<string, string | number> = {};
    for (const [k, p] of Object.entries(decoded.points)) if (p.implemented && p.value !== null && k !== 'Pad') now[k] = p.value as string | number;
    if (identity(now) !== identity(d.common)) {
      found = undefined;
      throw new TransientError('SUNSPEC_DEVICE_CHANGED', `model 1 names another device (was ${identity(d.common)}, now ${identity(now)}): its models are walked again`);
    }
    d.common = now;
    return true;
  };

  return {
    kind: 'sunspec',
    get ready() {
      return found !== undefined;
    },
    async prepare(io) {
      found = await discover(io, { ...(opts.baseAddress !== undefined ? { bases: [opts.baseAddress] } : {}), maxRegisters: opts.maxRegisters });
      // Model 1 was just read by discovery; the other static models are read at the next poll.
      staticPoints = {};
      staticDue = true;
      checkIdentity = false;
      const problems = found.models.filter((m) => m.problem).map((m) => m.problem);
      const id = ['Mn', 'Md', 'SN'].map((k) => found?.common[k]).filter((x) => x !== undefined).join(' ');
      return `SunSpec at ${found.base}: models ${found.models.map((m) => m.id).join(', ')}${id ? ` (${id})` : ''}${problems.length ? `; ${problems.join('; ')}` : ''}`;
    },
    reset() {
      found = undefined;
    },
    refreshStatic() {
      if (!found) return;
      staticDue = true;
      checkIdentity = true;
    },
    models: () => (found?.models ?? []).map((m) => m.id),
    async poll(io, pollOpts = {}): Promise<PollResult> {
      const points: Record<string, Point> = {};
      const problems = (found?.models ?? []).filter((m) => m.fault && m.problem).map((m) => m.problem as string);
      let staticRead = false;
      if (staticDue && found) {
        let complete = !checkIdentity || (await verifyIdentity(io, found, problems));
        const fresh: Record<string, Point> = {};
        for (const m of staticOnes()) {
          try {
            modelPoints(await readModel(io, m), m.def as ModelDef, fresh);
          } catch (err) {
            problems.push(problemOf(err, m));
            complete = false;
          }
        }
        // A model that failed keeps its last values; it is read again at the next poll.
        staticPoints = { ...staticPoints, ...fresh };
        staticRead = Object.keys(fresh).length > 0;
        if (complete) {
          staticDue = false;
          checkIdentity = false;
        }
      }
      const withStatic = staticRead || (pollOpts.withStatic === true && Object.keys(staticPoints).length > 0);
      if (withStatic) Object.assign(points, staticPoints);
      for (const m of polled()) {
        try {
          modelPoints(await readModel(io, m), m.def as ModelDef, points);
        } catch (err) {
          // An exception response for this model (its length runs past what the device serves, or
          // the device is busy) or registers that do not decode: this poll is partial. The model
          // stays in the list, so it reads again once the device serves it; a changed chain is
          // found by the periodic re-walk.
          problems.push(problemOf(err, m));
        }
      }
      return { points, problems, ...(withStatic ? { static: true } : {}) };
    },
    async write(io, action, params: WriteParams) {
      if (!found) throw new WriteRefused('the device has not been discovered yet');
      return sunspecWrite(io, { found, maxRegisters: opts.maxRegisters, chainChanged: () => void (found = undefined) }, action, params);
    },
  };
}

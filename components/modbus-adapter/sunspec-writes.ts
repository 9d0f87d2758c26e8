/**
 * Writes to SunSpec devices, deny-by-default: only a point whose model definition gives it access
 * RW may be written, wherever it is (the model's top group, or a repeating group such as the
 * curves of models 126 and 705, per-module or per-port groups), and a write covers exactly the
 * registers of that one point. Anything else (an address outside every model, a model header, a
 * read-only point, part of a point, a write that runs past a point) is refused before any I/O.
 *
 * Where a point is depends on the device: repeating groups repeat as often as a count point says
 * (model 705 `NCrv`, `NPt`) or as fit in the model length (count 0, SunSpec Information Model
 * Specification, "Groups"). So every write first reads the whole model it touches (header
 * included), checks the header still is the one discovery found, decodes the model and lays its
 * points out at their addresses from the counts it holds now. The same read gives the scale
 * factors (looked up in the point's group instance, then the enclosing ones) a write by name
 * encodes with.
 */
import { splitSpan } from './planner';
import { addressParam, verifyRegisters, WriteRefused, type DeviceIo, type WriteParams } from './profile';
import { decodeModel, encodePoint, pointLocation, SunSpecError, type DecodedModel, type DecodedPoints, type GroupDef, type ModelDef, type PointDef } from './sunspec';
import type { Discovery, ModelEntry } from './sunspec-profile';

/** One point of a model on the device. */
export interface PointSlot {
  /** Its name as in telemetry after `<model>.`: `WMaxLimPct`, `module.2.DCA`, `Crv.2.Pt.3.V` (instances from 1). */
  path: string;
  point: PointDef;
  /** Modbus address of its first register. */
  address: number;
  /** Decoded points of its group instance, then of the enclosing ones (scale-factor lookup). */
  scope: DecodedPoints[];
}

/** Every point of a decoded model at its address: points of a group first, then its groups, as the model is laid out. */
export function modelSlots(modelAddress: number, def: ModelDef, decoded: DecodedModel): PointSlot[] {
  const out: PointSlot[] = [];
  let at = modelAddress + 2;
  const visit = (g: GroupDef, path: string, key: string, scope: DecodedPoints[]): void => {
    for (const p of g.points) {
      out.push({ path: path + p.name, point: p, address: at, scope });
      at += p.size;
    }
    for (const sg of g.groups) {
      // Keys as DecodedModel.groups has them: `Crv`, `Crv[0].Pt`.
      const k = key === '' ? sg.name : `${key}.${sg.name}`;
      (decoded.groups[k] ?? []).forEach((pts, i) => visit(sg, `${path}${sg.name}.${i + 1}.`, `${k}[${i}]`, [pts, ...scope]));
    }
  };
  visit(def.group, '', '', [decoded.points]);
  return out;
}

const TYPE_WIDTH: Readonly<Record<string, number>> = { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2 };
const plural = (n: number): string => `${n} register${n === 1 ? '' : 's'}`;

/** High-level actions on SunSpec controls: model 123 (Immediate Controls) or 704 (DER AC Controls) / 703. */
/**
 * Curtailment points per model, with the device's own revert timer: a limit written with a revert
 * time is dropped by the inverter itself when it is not refreshed in time, so a plant is never left
 * curtailed by a gateway that died (SunSpec model 123 WMaxLimPct_RvrtTms, model 704
 * WMaxLimPctRvrtTms, seconds).
 */
const CURTAIL = [
  { model: 123, pct: 'WMaxLimPct', ena: 'WMaxLim_Ena', revert: 'WMaxLimPct_RvrtTms' },
  { model: 704, pct: 'WMaxLimPct', ena: 'WMaxLimPctEna', revert: 'WMaxLimPctRvrtTms' },
];
const CONNECT = [
  { model: 123, point: 'Conn' },
  { model: 703, point: 'ES' },
];

export interface SunSpecWriteContext {
  found: Discovery;
  maxRegisters: number;
  /** The device's chain no longer matches discovery: forget it (the next poll walks it again). */
  chainChanged(): void;
}

type Known = ModelEntry & { def: ModelDef };

/** Read the whole model (header included), check the header, decode, lay out. */
async function load(io: DeviceIo, ctx: SunSpecWriteContext, m: Known): Promise<PointSlot[]> {
  const regs: number[] = [];
  for (const s of splitSpan(m.address, m.length + 2, ctx.maxRegisters)) regs.push(...(await io.readRegisters(3, s.address, s.count)));
  if (regs[0] !== m.id || regs[1] !== m.length) {
    ctx.chainChanged();
    throw new WriteRefused(`model ${m.id} is no longer at ${m.address} (found ID ${String(regs[0])} L ${String(regs[1])}): the device's model chain changed, it is walked again`);
  }
  try {
    return modelSlots(m.address, m.def, decodeModel(m.def, regs.slice(2)));
  } catch (err) {
    if (err instanceof SunSpecError) throw new WriteRefused(`model ${m.id} at ${m.address} does not decode (${err.message}): its points cannot be located`);
    throw err;
  }
}

function scaleFactor(m: Known, slot: PointSlot): number | undefined {
  const sf = slot.point.sf;
  if (sf === undefined || typeof sf === 'number') return sf;
  for (const pts of slot.scope) {
    const d = pts[sf];
    if (!d) continue;
    if (!d.implemented || typeof d.value !== 'number' || !Number.isInteger(d.value) || d.value < -10 || d.value > 10) {
      throw new WriteRefused(`model ${m.id} ${slot.path}: its scale factor ${sf} is not implemented (${String(d.raw)})`);
    }
    return d.value;
  }
  throw new WriteRefused(`model ${m.id} ${slot.path}: scale factor ${sf} not found`);
}

function encode(slot: PointSlot, value: number | string, sf: number | undefined): number[] {
  try {
    return encodePoint(slot.point, value, sf);
  } catch (err) {
    if (err instanceof SunSpecError) throw new WriteRefused(err.message);
    throw err;
  }
}

async function put(io: DeviceIo, address: number, registers: number[]): Promise<void> {
  await io.writeRegisters(address, registers);
  await verifyRegisters(io, address, registers);
}

/** Write one point by its path (scale factor read from the device now), then read it back. */
async function writeNamed(io: DeviceIo, ctx: SunSpecWriteContext, m: Known, path: string, value: number | string): Promise<string> {
  const slots = await load(io, ctx, m);
  const slot = slots.find((s) => s.path === path);
  if (!slot) throw new WriteRefused(`model ${m.id} has no point ${path}${path.includes('.') ? ` (${instancesOf(slots, path)})` : ''}`);
  if (slot.point.access !== 'RW') throw new WriteRefused(`model ${m.id} point ${path} is not writable`);
  // The limit itself is a percentage; its timers (WMaxLimPct_RvrtTms, _WinTms, _RmpTms) are not.
  if (typeof value === 'number' && slot.point.name === 'WMaxLimPct' && (value < 0 || value > 100)) throw new WriteRefused(`${path} ${value} is outside 0..100 %`);
  await put(io, slot.address, encode(slot, value, scaleFactor(m, slot)));
  return `${m.id}.${path}=${String(value)}`;
}

/** How many instances of the path's first group the device has, for a message. */
function instancesOf(slots: PointSlot[], path: string): string {
  const group = path.split('.')[0] ?? '';
  const n = new Set(slots.filter((s) => s.path.startsWith(`${group}.`)).map((s) => s.path.split('.')[1])).size;
  return `${n} ${group} on this device`;
}

/** Write raw register value(s) by address: the address must be the first register of an RW point. */
async function writeAddress(io: DeviceIo, ctx: SunSpecWriteContext, address: number, params: WriteParams): Promise<string> {
  const fc = params['functionCode'];
  if (fc === 1) throw new WriteRefused('SunSpec devices have no coils');
  if (fc !== undefined && fc !== 3) throw new WriteRefused(`function code ${String(fc)} cannot be written (SunSpec points are holding registers, 3)`);
  const m = ctx.found.models.find((x) => address >= x.address && address < x.address + 2 + x.length);
  if (!m) throw new WriteRefused(`address ${address} is not inside any SunSpec model of this device (only points with access RW may be written)`);
  if (address < m.address + 2) throw new WriteRefused(`address ${address} is model ${m.id}'s header`);
  if (!m.def || m.fault) throw new WriteRefused(`address ${address} is in model ${m.id} at ${m.address}, whose points this adapter cannot check (${m.problem ?? 'unknown model'})`);
  const known = m as Known;
  const slots = await load(io, ctx, known);
  const slot = slots.find((s) => address >= s.address && address < s.address + s.point.size);
  if (!slot) throw new WriteRefused(`address ${address} is in model ${m.id} but in none of its points`);
  if (slot.point.access !== 'RW') throw new WriteRefused(`address ${address} is model ${m.id} point ${slot.path}, which is not writable`);
  if (slot.address !== address) throw new WriteRefused(`address ${address} is inside point ${slot.path} (${slot.address}..${slot.address + slot.point.size - 1}) of model ${m.id}; a write must cover the whole point, from ${slot.address}`);
  const type = params['type'];
  if (type !== undefined) {
    const width = typeof type === 'string' ? TYPE_WIDTH[type] : undefined;
    if (width === undefined) throw new WriteRefused(`params.type must be one of ${Object.keys(TYPE_WIDTH).join(', ')}`);
    if (width !== slot.point.size) throw new WriteRefused(`model ${m.id} point ${slot.path} is ${slot.point.type} (${plural(slot.point.size)}), not ${type} (${plural(width)}): a write must cover exactly the point`);
  }
  const value = params['value'];
  if (typeof value !== 'number' && typeof value !== 'string') throw new WriteRefused('params.value must be a number (raw, before scale factor) or a symbol name');
  const registers = encode(slot, value, 0);
  await put(io, address, registers);
  return `wrote [${registers.join(', ')}] at ${address} (${m.id}.${slot.path}, raw) and read it back`;
}

/** `705.Crv.1.Pt.2.V` (a telemetry name) or `Crv.1.Pt.2.V` with `params.model`. */
function namedTarget(ctx: SunSpecWriteContext, name: string, modelParam: unknown): { m: Known; path: string } {
  if (modelParam !== undefined && (typeof modelParam !== 'number' || !Number.isInteger(modelParam))) throw new WriteRefused('params.model must be a SunSpec model id');
  let modelId = modelParam as number | undefined;
  let path = name;
  const prefixed = /^(\d+)\.(.+)$/.exec(name);
  if (prefixed && (modelId === undefined || modelId === Number(prefixed[1]))) {
    modelId = Number(prefixed[1]);
    path = prefixed[2] as string;
  }
  const first = path.split('.')[0] ?? '';
  const has = (def: ModelDef): boolean => (path.includes('.') ? def.group.groups.some((g) => g.name === first) : pointLocation(def, path) !== undefined);
  const m = ctx.found.models.find((x) => x.def && !x.problem && (modelId === undefined || x.id === modelId) && has(x.def));
  if (!m) throw new WriteRefused(`no discovered model${modelId !== undefined ? ` ${modelId}` : ''} has a point ${path}`);
  return { m: m as Known, path };
}

function firstModel(ctx: SunSpecWriteContext, candidates: readonly { model: number }[]): Known {
  for (const c of candidates) {
    const m = ctx.found.models.find((x) => x.id === c.model && !x.problem && x.def);
    if (m) return m as Known;
  }
  throw new WriteRefused(`the device has none of the models ${candidates.map((c) => c.model).join(', ')}`);
}

/** Execute one control action on a discovered SunSpec device; resolves with what was written. */
export async function sunspecWrite(io: DeviceIo, ctx: SunSpecWriteContext, action: string, params: WriteParams): Promise<string> {
  const value = params['value'];
  switch (action) {
    case 'curtail': {
      const pct = params['percent'] ?? value;
      if (typeof pct !== 'number') throw new WriteRefused('curtail needs params.percent (0..100)');
      const m = firstModel(ctx, CURTAIL);
      const c = CURTAIL.find((x) => x.model === m.id);
      if (!c) throw new WriteRefused('no curtailment control');
      const revert = params['revertSeconds'];
      if (revert !== undefined && (typeof revert !== 'number' || !Number.isInteger(revert) || revert < 0 || revert > 65535)) throw new WriteRefused('params.revertSeconds must be an integer 0..65535 (0: no revert)');
      const done: string[] = [];
      // The revert time first: the limit must never be on without it.
      if (revert !== undefined) done.push(await writeNamed(io, ctx, m, c.revert, revert));
      done.push(await writeNamed(io, ctx, m, c.pct, pct), await writeNamed(io, ctx, m, c.ena, 1));
      return done.join(', ');
    }
    case 'restore': {
      const m = firstModel(ctx, CURTAIL);
      const c = CURTAIL.find((x) => x.model === m.id);
      if (!c) throw new WriteRefused('no curtailment control');
      return writeNamed(io, ctx, m, c.ena, 0);
    }
    case 'shutdown':
    case 'start': {
      const m = firstModel(ctx, CONNECT);
      const c = CONNECT.find((x) => x.model === m.id);
      if (!c) throw new WriteRefused('no connect control');
      return writeNamed(io, ctx, m, c.point, action === 'start' ? 1 : 0);
    }
    case 'write': {
      const name = params['point'];
      if (name !== undefined) {
        if (typeof name !== 'string') throw new WriteRefused('params.point must be a point name');
        if (typeof value !== 'number' && typeof value !== 'string') throw new WriteRefused('params.value must be a number or a symbol name');
        const t = namedTarget(ctx, name, params['model']);
        return writeNamed(io, ctx, t.m, t.path, value);
      }
      const address = addressParam(params);
      if (address === undefined) throw new WriteRefused('params.point or params.address is required');
      return writeAddress(io, ctx, address, params);
    }
    case 'iv_scan':
      throw new WriteRefused('iv_scan needs a register-map device whose map declares an ivScan block (no SunSpec model carries IV scans here)');
    default:
      throw new WriteRefused(`action ${action} is not supported by this adapter`);
  }
}

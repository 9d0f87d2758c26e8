/**
 * A whole model <-> its registers (after the 2-register header), per the SunSpec Information Model
 * Specification: a group's points come first, then its groups in order; a group repeats `count`
 * times, where `count` is absent (once), a number (0 = as many as fit in what is left of the model
 * length L), or the name of a point holding the count. Scale-factor and count points are looked up
 * in the group instance itself, then in the enclosing ones (in the shipped models they are all in
 * the model's top group).
 */
import { applyScale, decodeRaw, encodePoint, isValidScaleFactor, RawDecoded, sentinelRegisters } from './point-codec';
import { DecodedModel, DecodedPoint, DecodedPoints, GroupDef, ModelDef, PointDef, SunSpecError } from './types';

type Value = number | string | null;
export interface ModelValues {
  points?: Record<string, Value>;
  /** Keyed like DecodedModel.groups: `module`, `Crv[0].Pt`. */
  groups?: Record<string, Record<string, Value>[]>;
}

/** Registers of the group's points plus its fixed-count groups (what one instance takes at least). */
export function staticSize(g: GroupDef): number {
  let n = 0;
  for (const p of g.points) n += p.size;
  for (const sg of g.groups) {
    if (sg.count === undefined) n += staticSize(sg);
    else if (typeof sg.count === 'number') n += sg.count * staticSize(sg);
  }
  return n;
}

/** The part every instance of the model has: the top group's points and its groups of fixed count (model 704's sync groups). */
export function fixedSize(def: ModelDef): number {
  return staticSize(def.group);
}

function childKey(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}.${name}`;
}

// ---------------------------------------------------------------- decode

interface DecodeScope {
  raws: Map<string, RawDecoded>;
}

function lookup(chain: DecodeScope[], name: string): RawDecoded | undefined {
  for (const s of chain) {
    const r = s.raws.get(name);
    if (r !== undefined) return r;
  }
  return undefined;
}

/**
 * The point's scale factor: undefined when it has none; null when it is unknowable (the sunssf
 * point is not implemented, outside -10..10, or missing); else the exponent.
 */
function resolveSf(p: PointDef, chain: DecodeScope[]): number | null | undefined {
  if (p.sf === undefined) return undefined;
  if (typeof p.sf === 'number') return isValidScaleFactor(p.sf) ? p.sf : null;
  const r = lookup(chain, p.sf);
  if (r === undefined || !r.implemented || typeof r.plain !== 'number' || !isValidScaleFactor(r.plain)) return null;
  return r.plain;
}

function symbolName(p: PointDef, v: number): string | undefined {
  return p.symbols?.find((s) => s.value === v)?.name;
}

/** Names of the set bits, from the exact raw value (a bitfield64 does not fit a double). */
function bitNames(p: PointDef, raw: number | bigint): string[] {
  const v = BigInt(raw);
  const out: string[] = [];
  const width = p.type === 'bitfield16' ? 16 : p.type === 'bitfield32' ? 32 : 64;
  for (let bit = 0; bit < width; bit++) {
    if (((v >> BigInt(bit)) & 1n) === 1n) out.push(p.symbols?.find((s) => s.value === bit)?.name ?? `BIT${bit}`);
  }
  return out;
}

/**
 * A point's decoded value. A value whose scale factor is unknowable is null (flagged
 * `badScaleFactor`), never the raw number: without its power of ten it would be off by orders of
 * magnitude. The scale factor is resolved even when the point itself reads "not implemented",
 * because a write to it needs the scale factor (and is refused when it is bad).
 */
function finish(p: PointDef, r: RawDecoded, chain: DecodeScope[]): DecodedPoint {
  const d: DecodedPoint = { value: r.plain, raw: r.raw, implemented: r.implemented };
  if (p.units !== undefined) d.units = p.units;
  const sf = resolveSf(p, chain);
  if (sf === null) d.badScaleFactor = true;
  else if (sf !== undefined) d.sf = sf;
  if (!r.implemented) {
    d.value = null;
    return d;
  }
  if (typeof r.plain === 'number') {
    if (p.type.startsWith('enum')) {
      const s = symbolName(p, r.plain);
      if (s !== undefined) d.symbol = s;
    } else if (p.type.startsWith('bitfield') && typeof r.raw !== 'string') {
      d.bits = bitNames(p, r.raw);
    }
    if (sf === null) d.value = null;
    else if (sf !== undefined) d.value = applyScale(r.plain, sf);
  } else if (sf === null) {
    d.value = null;
  }
  return d;
}

function resolveCount(sg: GroupDef, chain: DecodeScope[], remaining: number): number {
  if (sg.count === undefined) return 1;
  if (typeof sg.count === 'number') {
    if (sg.count > 0) return sg.count;
    const size = staticSize(sg);
    return size > 0 ? Math.floor(remaining / size) : 0;
  }
  const r = lookup(chain, sg.count);
  return r !== undefined && r.implemented && typeof r.plain === 'number' ? r.plain : 0;
}

function decodeInstance(
  def: ModelDef,
  g: GroupDef,
  regs: ArrayLike<number>,
  offset: number,
  end: number,
  outer: DecodeScope[],
  prefix: string,
  groupsOut: DecodedModel['groups'],
): { points: DecodedPoints; next: number } {
  const raws = new Map<string, RawDecoded>();
  let o = offset;
  for (const p of g.points) {
    if (o + p.size > end) {
      throw new SunSpecError('GROUP_OVERRUN', `model ${def.id}: ${prefix || 'fixed part'} point ${p.name} at offset ${o} runs past the model length ${end}`);
    }
    raws.set(p.name, decodeRaw(p, regs, o));
    o += p.size;
  }
  const chain = [{ raws }, ...outer];
  const points: DecodedPoints = {};
  for (const p of g.points) {
    if (p.type === 'pad') continue;
    points[p.name] = finish(p, raws.get(p.name) as RawDecoded, chain);
  }
  for (const sg of g.groups) {
    const key = childKey(prefix, sg.name);
    const n = resolveCount(sg, chain, end - o);
    const arr: DecodedPoints[] = [];
    groupsOut[key] = arr;
    for (let i = 0; i < n; i++) {
      const r = decodeInstance(def, sg, regs, o, end, chain, `${key}[${i}]`, groupsOut);
      arr.push(r.points);
      o = r.next;
    }
  }
  return { points, next: o };
}

/**
 * Decode a model. `regs` = the model's registers after the 2-register header (ID, L); its length
 * is taken as L. Throws SunSpecError MODEL_TOO_SHORT when L is shorter than the model's fixed part,
 * GROUP_OVERRUN when a counted group runs past L. Registers past the last group are ignored
 * (SunSpec lets a model be longer than its points).
 */
export function decodeModel(def: ModelDef, regs: Uint16Array | number[]): DecodedModel {
  const length = regs.length;
  const fixed = fixedSize(def);
  if (length < fixed) {
    throw new SunSpecError('MODEL_TOO_SHORT', `model ${def.id} (${def.name}): length ${length} is shorter than its fixed part (${fixed} registers)`);
  }
  const groups: DecodedModel['groups'] = {};
  const top = decodeInstance(def, def.group, regs, 0, length, [], '', groups);
  return { id: def.id, name: def.name, length, points: top.points, groups };
}

// ---------------------------------------------------------------- encode

interface EncodeScope {
  values: Map<string, Value>;
}

function lookupValue(chain: EncodeScope[], name: string): Value | undefined {
  for (const s of chain) if (s.values.has(name)) return s.values.get(name);
  return undefined;
}

/** Count points left out by the caller are filled from the arrays given for their groups. */
function fillCounts(def: ModelDef, values: ModelValues): Record<string, Value> {
  const points = { ...(values.points ?? {}) };
  const given = values.groups ?? {};
  const lengthOf = (pattern: string): number => {
    let n = 0;
    for (const [k, arr] of Object.entries(given)) if (k.replace(/\[\d+\]/g, '') === pattern) n = Math.max(n, arr.length);
    return n;
  };
  const namedCounts = new Set<string>();
  const collect = (g: GroupDef): void => {
    for (const sg of g.groups) {
      if (typeof sg.count === 'string') namedCounts.add(sg.count);
      collect(sg);
    }
  };
  collect(def.group);
  const visit = (g: GroupDef, path: string): void => {
    for (const sg of g.groups) {
      const p = childKey(path, sg.name);
      if (typeof sg.count === 'string' && points[sg.count] === undefined) points[sg.count] = lengthOf(p);
      // A `count` point beside a count-0 group (model 160 N, 401 N) states how many there are; a
      // `count` point that another group's count names (model 64413 IVLen) is that group's.
      if (sg.count === 0 && path === '') {
        const cp = def.group.points.find((x) => x.type === 'count' && !namedCounts.has(x.name));
        if (cp !== undefined && points[cp.name] === undefined) points[cp.name] = lengthOf(p);
      }
      visit(sg, p);
    }
  };
  visit(def.group, '');
  return points;
}

function encodeInstance(
  def: ModelDef,
  g: GroupDef,
  values: Record<string, Value> | undefined,
  outer: EncodeScope[],
  prefix: string,
  groupsIn: NonNullable<ModelValues['groups']>,
  scaleFactors: Record<string, number>,
  out: number[],
): void {
  const scope: EncodeScope = { values: new Map() };
  for (const p of g.points) {
    let v: Value | undefined = values?.[p.name];
    if (p.type === 'sunssf') {
      // Absent scale factors are 0 (so given values encode unscaled); an explicit null is "not implemented".
      v = scaleFactors[p.name] ?? (v === undefined ? 0 : v);
    }
    if (v !== undefined) scope.values.set(p.name, v);
  }
  const chain = [scope, ...outer];
  for (const p of g.points) {
    const v = scope.values.get(p.name);
    if (v === undefined || v === null || p.type === 'pad') {
      out.push(...sentinelRegisters(p));
      continue;
    }
    let sf: number | undefined;
    if (typeof p.sf === 'number') sf = p.sf;
    else if (typeof p.sf === 'string' && typeof v === 'number') {
      const s = lookupValue(chain, p.sf);
      if (typeof s !== 'number') throw new SunSpecError('BAD_SCALE_FACTOR', `model ${def.id}: ${p.name} has a value but its scale factor ${p.sf} is not implemented`);
      sf = s;
    }
    out.push(...encodePoint(p, v, sf));
  }
  for (const sg of g.groups) {
    const key = childKey(prefix, sg.name);
    const arr = groupsIn[key] ?? [];
    let n: number;
    if (sg.count === undefined) n = 1;
    else if (typeof sg.count === 'number') n = sg.count > 0 ? sg.count : arr.length;
    else {
      const c = lookupValue(chain, sg.count);
      n = typeof c === 'number' ? c : 0;
    }
    for (let i = 0; i < n; i++) encodeInstance(def, sg, arr[i], chain, `${key}[${i}]`, groupsIn, scaleFactors, out);
  }
}

/**
 * The inverse of decodeModel, for simulators and tests: values after scale factor -> registers
 * (without the header). Scale factors come from `opts.scaleFactors`, else `values.points`, else 0;
 * a point left out gets its not-implemented value. Repeating groups take as many entries as given
 * (their count points are filled in when left out).
 */
export function encodeModel(def: ModelDef, values: ModelValues, opts: { scaleFactors?: Record<string, number> } = {}): Uint16Array {
  const out: number[] = [];
  encodeInstance(def, def.group, fillCounts(def, values), [], '', values.groups ?? {}, opts.scaleFactors ?? {}, out);
  return Uint16Array.from(out);
}

/** Where a point of the model's top group lives: offset in registers after the header. */
export function pointLocation(def: ModelDef, pointName: string): { offset: number; size: number; point: PointDef } | undefined {
  let offset = 0;
  for (const p of def.group.points) {
    if (p.name === pointName) return { offset, size: p.size, point: p };
    offset += p.size;
  }
  return undefined;
}

/**
 * Registers for writing one top-group point: checks that it exists and is writable (`access: RW`),
 * then encodes the value (after scale factor) with `scaleFactor` (read from the device). Offsets
 * are after the header: the Modbus address is model start + 2 + offset.
 */
export function encodeWrite(def: ModelDef, pointName: string, value: number | string, scaleFactor?: number): { offset: number; registers: number[]; point: PointDef } {
  const loc = pointLocation(def, pointName);
  if (loc === undefined) throw new SunSpecError('UNKNOWN_POINT', `model ${def.id} (${def.name}) has no point ${pointName}`);
  if (loc.point.access !== 'RW') throw new SunSpecError('NOT_WRITABLE', `model ${def.id} point ${pointName} is read-only`);
  let sf = scaleFactor;
  const named = typeof loc.point.sf === 'string';
  if (typeof loc.point.sf === 'number') sf ??= loc.point.sf;
  // A number for a scaled point means nothing without the device's scale factor: refuse rather
  // than write it unscaled (symbol names for enums and bitfields carry no scale).
  if (named && typeof value === 'number' && (sf === undefined || !isValidScaleFactor(sf))) {
    throw new SunSpecError('BAD_SCALE_FACTOR', `model ${def.id} point ${pointName}: its scale factor ${String(loc.point.sf)} is ${sf === undefined ? 'unknown (not implemented on the device)' : `${sf}, outside -10..10`}; the value cannot be written`);
  }
  return { offset: loc.offset, registers: encodePoint(loc.point, value, sf), point: loc.point };
}

/**
 * The SunSpec model definitions this project ships (model-files.ts: every model of the SunSpec
 * information model library), checked and normalised into `ModelDef` once, when the module loads
 * (see types.ts for what normalising means).
 *
 * The check is strict on purpose: the decoder relies on what it verifies (every scale factor and
 * count names a point it can find, a count-0 group is the last one and of fixed size, sizes match
 * types), so a definition that passes decodes unambiguously. The shipped files are all checked by
 * test/unit/sunspec.test.ts; `normaliseModel` is exported for that and for vendor models.
 */
import { MODEL_FILES } from './model-files';
import { isValidScaleFactor, TYPE_SIZE } from './point-codec';
import { GroupDef, ModelDef, PointDef, PointType, SunSpecError } from './types';

/** The JSON as published: loose types, `mandatory: "M"`, `static: "S"`, `access: "RW"`. */
interface JsonPoint {
  name: string;
  type: string;
  size: number;
  sf?: string | number;
  units?: string;
  access?: string;
  mandatory?: string;
  static?: string;
  value?: unknown;
  symbols?: { name: string; value: number }[];
  label?: string;
}
interface JsonGroup {
  name: string;
  type: string;
  count?: number | string;
  label?: string;
  points?: JsonPoint[];
  groups?: JsonGroup[];
}
interface JsonModel {
  id: number;
  group: JsonGroup;
}

/** Every point type of the SunSpec JSON model format (TYPE_SIZE has all but `string`). */
const POINT_TYPES = new Set<string>([...Object.keys(TYPE_SIZE), 'string']);

/** Largest value of an enum type that is not its not-implemented value. */
const ENUM_MAX: Partial<Record<PointType, number>> = { enum16: 0xfffe, enum32: 0xfffffffe };
const BITFIELD_WIDTH: Partial<Record<PointType, number>> = { bitfield16: 16, bitfield32: 32, bitfield64: 64 };

function bad(modelId: unknown, where: string, why: string): never {
  throw new SunSpecError('BAD_MODEL', `SunSpec model ${String(modelId)}: ${where}: ${why}`);
}

function normalisePoint(modelId: number, path: string, p: JsonPoint): PointDef {
  const where = `${path}.${String(p?.name)}`;
  if (typeof p !== 'object' || p === null || typeof p.name !== 'string' || p.name === '') bad(modelId, where, 'a point needs a name');
  if (!POINT_TYPES.has(p.type)) bad(modelId, where, `unknown type ${String(p.type)} (allowed: ${[...POINT_TYPES].join(', ')})`);
  const type = p.type as PointType;
  if (!Number.isInteger(p.size) || p.size < 1) bad(modelId, where, `size ${String(p.size)} is not a positive integer`);
  const width = type === 'string' ? undefined : TYPE_SIZE[type];
  if (width !== undefined && width !== p.size) bad(modelId, where, `${type} has size ${p.size}, expected ${width}`);
  if (p.sf !== undefined && typeof p.sf !== 'string' && !(typeof p.sf === 'number' && isValidScaleFactor(p.sf))) {
    bad(modelId, where, `scale factor ${String(p.sf)} is neither a point name nor an integer in -10..10`);
  }
  for (const s of p.symbols ?? []) {
    const max = ENUM_MAX[type];
    const bits = BITFIELD_WIDTH[type];
    const ok = Number.isInteger(s.value) && s.value >= 0 && (max !== undefined ? s.value <= max : bits !== undefined ? s.value < bits : false);
    if (!ok) bad(modelId, where, `symbol ${String(s.name)} = ${String(s.value)} does not fit ${type}`);
  }
  const out: PointDef = {
    name: p.name,
    type,
    size: p.size,
    access: p.access === 'RW' ? 'RW' : 'R',
    mandatory: p.mandatory === 'M',
    static: p.static === 'S',
  };
  if (p.sf !== undefined) out.sf = p.sf;
  if (p.units !== undefined) out.units = p.units;
  if (p.symbols !== undefined) out.symbols = p.symbols.map((s) => ({ name: s.name, value: s.value }));
  if (p.label !== undefined) out.label = p.label;
  return out;
}

function normaliseGroup(modelId: number, g: JsonGroup, path: string, top: boolean): GroupDef {
  if (typeof g !== 'object' || g === null || typeof g.name !== 'string') bad(modelId, path, 'a group needs a name');
  if (g.type !== 'group' && g.type !== 'sync') bad(modelId, path, `group type ${String(g.type)} is not group or sync`);
  let points = (g.points ?? []).map((p) => normalisePoint(modelId, path, p));
  // The header (ID, L) is not part of the model's registers as decodeModel sees them.
  if (top) {
    if (points[0]?.name !== 'ID' || points[1]?.name !== 'L') bad(modelId, path, 'the top group does not start with the header points ID and L');
    const id = g.points?.[0]?.value;
    if (id !== undefined && id !== modelId) bad(modelId, path, `ID point has value ${String(id)}`);
    points = points.slice(2);
  }
  const names = new Set<string>();
  for (const p of points) {
    if (names.has(p.name)) bad(modelId, path, `point ${p.name} is defined twice`);
    names.add(p.name);
  }
  const out: GroupDef = {
    name: g.name,
    type: g.type,
    points,
    groups: (g.groups ?? []).map((sg) => normaliseGroup(modelId, sg, `${path}.${String(sg?.name)}`, false)),
  };
  if (g.count !== undefined) {
    if (typeof g.count === 'number' ? !(Number.isInteger(g.count) && g.count >= 0) : typeof g.count !== 'string') bad(modelId, path, `count ${String(g.count)} is not a point name or an integer >= 0`);
    out.count = g.count;
  }
  return out;
}

/**
 * Check what the decoder relies on, with the scopes it will use (the group, then enclosing ones):
 * scale factors name a `sunssf` point; counts name an integer point of an enclosing group (it is
 * read before the group); a count-0 group ("as many as fit in L") is the last group of its parent
 * and has no variable part, so "as many as fit" is well defined.
 */
function checkReferences(modelId: number, g: GroupDef, path: string, outer: GroupDef[]): void {
  const scopes = [g, ...outer];
  const find = (name: string, among: GroupDef[]): PointDef | undefined => {
    for (const s of among) {
      const p = s.points.find((x) => x.name === name);
      if (p !== undefined) return p;
    }
    return undefined;
  };
  for (const p of g.points) {
    if (typeof p.sf !== 'string') continue;
    const sf = find(p.sf, scopes);
    if (sf?.type !== 'sunssf') bad(modelId, `${path}.${p.name}`, `scale factor ${p.sf} is ${sf ? `a ${sf.type}, not a sunssf` : 'not a point of this group or an enclosing one'}`);
  }
  g.groups.forEach((sg, i) => {
    const where = `${path}.${sg.name}`;
    if (typeof sg.count === 'string') {
      const c = find(sg.count, scopes);
      if (c === undefined || !['uint16', 'count'].includes(c.type)) bad(modelId, where, `count ${sg.count} is ${c ? `a ${c.type}, not uint16 or count` : 'not a point of an enclosing group'}`);
    } else if (sg.count === 0) {
      if (i !== g.groups.length - 1) bad(modelId, where, 'a group repeated to the end of the model (count 0) must be the last group');
      if (hasVariablePart(sg)) bad(modelId, where, 'a group repeated to the end of the model (count 0) cannot contain counted groups');
    }
    checkReferences(modelId, sg, where, scopes);
  });
}

function hasVariablePart(g: GroupDef): boolean {
  return g.groups.some((sg) => typeof sg.count === 'string' || sg.count === 0 || hasVariablePart(sg));
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * One SunSpec JSON model definition (the sunspec/models `json/` format) -> a checked, frozen
 * ModelDef. Throws SunSpecError BAD_MODEL naming the point or group and what is wrong.
 */
export function normaliseModel(json: unknown): ModelDef {
  const m = json as JsonModel;
  if (typeof m !== 'object' || m === null || !Number.isInteger(m.id) || m.id < 1 || m.id >= 0xffff) bad((m as { id?: unknown })?.id, 'model', 'id is not an integer 1..65534');
  if (typeof m.group !== 'object' || m.group === null) bad(m.id, 'model', 'no top group');
  const group = normaliseGroup(m.id, m.group, m.group.name, true);
  if (group.count !== undefined) bad(m.id, group.name, 'the top group cannot repeat');
  checkReferences(m.id, group, group.name, []);
  const def: ModelDef = { id: m.id, name: m.group.name, group };
  if (m.group.label !== undefined) def.label = m.group.label;
  return deepFreeze(def);
}

const MODELS = new Map<number, ModelDef>();
for (const json of MODEL_FILES) {
  const def = normaliseModel(json);
  if (MODELS.has(def.id)) throw new SunSpecError('BAD_MODEL', `SunSpec model ${def.id} is shipped twice`);
  MODELS.set(def.id, def);
}

/** Model ids this library can decode, ascending. */
export const SUPPORTED_MODELS: readonly number[] = Object.freeze([...MODELS.keys()].sort((a, b) => a - b));

/** The (frozen) definition of a model, or undefined when this library does not ship it. */
export function getModel(id: number): ModelDef | undefined {
  return MODELS.get(id);
}

/**
 * The SunSpec model definitions this project ships (JSON from sunspec/models, Apache-2.0; see
 * README.md), loaded by static import so esbuild bundles them into the component, and normalised
 * into `ModelDef` (see types.ts for what normalising means).
 */
import m1 from './models/model_1.json';
import m101 from './models/model_101.json';
import m102 from './models/model_102.json';
import m103 from './models/model_103.json';
import m111 from './models/model_111.json';
import m112 from './models/model_112.json';
import m113 from './models/model_113.json';
import m120 from './models/model_120.json';
import m121 from './models/model_121.json';
import m122 from './models/model_122.json';
import m123 from './models/model_123.json';
import m124 from './models/model_124.json';
import m125 from './models/model_125.json';
import m126 from './models/model_126.json';
import m160 from './models/model_160.json';
import m201 from './models/model_201.json';
import m202 from './models/model_202.json';
import m203 from './models/model_203.json';
import m204 from './models/model_204.json';
import m701 from './models/model_701.json';
import m702 from './models/model_702.json';
import m703 from './models/model_703.json';
import m704 from './models/model_704.json';
import m705 from './models/model_705.json';
import m706 from './models/model_706.json';
import m707 from './models/model_707.json';
import m708 from './models/model_708.json';
import m709 from './models/model_709.json';
import m710 from './models/model_710.json';
import m711 from './models/model_711.json';
import m712 from './models/model_712.json';
import m713 from './models/model_713.json';
import m714 from './models/model_714.json';
import m715 from './models/model_715.json';
import { GroupDef, ModelDef, PointDef, PointType } from './types';
import { TYPE_SIZE } from './point-codec';

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

const RAW_MODELS: readonly JsonModel[] = [m1, m101, m102, m103, m111, m112, m113, m120, m121, m122, m123, m124, m125, m126, m160, m201, m202, m203, m204, m701, m702, m703, m704, m705, m706, m707, m708, m709, m710, m711, m712, m713, m714, m715];

const POINT_TYPES = new Set<string>(['int16', 'uint16', 'count', 'acc16', 'enum16', 'bitfield16', 'pad', 'sunssf', 'int32', 'uint32', 'acc32', 'enum32', 'bitfield32', 'ipaddr', 'int64', 'uint64', 'acc64', 'ipv6addr', 'float32', 'float64', 'string', 'eui48']);

function normalisePoint(modelId: number, p: JsonPoint): PointDef {
  if (!POINT_TYPES.has(p.type)) throw new Error(`SunSpec model ${modelId}: point ${p.name} has unknown type ${p.type}`);
  const type = p.type as PointType;
  const width = TYPE_SIZE[type];
  if (width !== undefined && type !== 'pad' && width !== p.size) throw new Error(`SunSpec model ${modelId}: point ${p.name} (${type}) has size ${p.size}, expected ${width}`);
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

function normaliseGroup(modelId: number, g: JsonGroup, top: boolean): GroupDef {
  let points = (g.points ?? []).map((p) => normalisePoint(modelId, p));
  // The header (ID, L) is not part of the model's registers as decodeModel sees them.
  if (top) points = points.filter((p, i) => !(i < 2 && (p.name === 'ID' || p.name === 'L')));
  const out: GroupDef = {
    name: g.name,
    type: g.type === 'sync' ? 'sync' : 'group',
    points,
    groups: (g.groups ?? []).map((sg) => normaliseGroup(modelId, sg, false)),
  };
  if (g.count !== undefined) out.count = g.count;
  return out;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

const MODELS = new Map<number, ModelDef>();
for (const m of RAW_MODELS) {
  const def: ModelDef = { id: m.id, name: m.group.name, group: normaliseGroup(m.id, m.group, true) };
  if (m.group.label !== undefined) def.label = m.group.label;
  MODELS.set(m.id, deepFreeze(def));
}

/** Model ids this library can decode, ascending. */
export const SUPPORTED_MODELS: readonly number[] = Object.freeze([...MODELS.keys()].sort((a, b) => a - b));

/** The (frozen) definition of a model, or undefined when this library does not ship it. */
export function getModel(id: number): ModelDef | undefined {
  return MODELS.get(id);
}

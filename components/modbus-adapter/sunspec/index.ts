/**
 * The SunSpec model library: model definitions (the shipped JSON models), decoding a model's
 * registers into named values after scale factor, and the inverse for writes, simulators and tests.
 *
 * Device layout (SunSpec Modbus specification, "Device Discovery" and "Model Layout"): at a base
 * address (40000, else 0, else 50000) the two registers 'SunS' (0x5375 0x6E53), then models one
 * after another, each `ID, L, <L registers>`, ending with ID 0xFFFF and L 0.
 */
import { getModel } from './models';
import { encodeModel, ModelValues } from './model-codec';
import { DecodedModel, DecodedPoint, SunSpecError } from './types';

export type { PointType, PointDef, GroupDef, ModelDef, DecodedPoint, DecodedPoints, DecodedModel, SunSpecErrorCode } from './types';
export { SunSpecError } from './types';
export { getModel, normaliseModel, SUPPORTED_MODELS } from './models';
export { decodeModel, encodeModel, encodeWrite, pointLocation, fixedSize } from './model-codec';
export type { ModelValues } from './model-codec';
export { encodePoint, applyScale } from './point-codec';

/** Base addresses tried in discovery, in order (SunSpec Modbus specification, "Device Discovery"). */
export const SUNSPEC_BASES: readonly number[] = Object.freeze([40000, 0, 50000]);
/** 'SunS' in two registers. */
export const SUNS_MARKER: readonly [number, number] = Object.freeze([0x5375, 0x6e53]) as readonly [number, number];
/** The model ID that ends the chain (its L is 0). */
export const END_MODEL_ID = 0xffff;
/** Registers one Modbus read may ask for (Modbus application protocol, FC 3: 1..125). */
export const MAX_READ_REGISTERS = 125;

/**
 * A full device register image: 'SunS', then each model (ID, L, registers), then the end marker.
 * Index 0 is the base address (serve it at 40000, 0 or 50000).
 */
export function buildImage(models: { id: number; values: ModelValues; scaleFactors?: Record<string, number> }[]): Uint16Array {
  const out: number[] = [SUNS_MARKER[0], SUNS_MARKER[1]];
  for (const m of models) {
    const def = getModel(m.id);
    if (def === undefined) throw new SunSpecError('UNKNOWN_MODEL', `SunSpec model ${m.id} is not shipped with this library`);
    const regs = encodeModel(def, m.values, m.scaleFactors === undefined ? {} : { scaleFactors: m.scaleFactors });
    out.push(m.id, regs.length, ...regs);
  }
  out.push(END_MODEL_ID, 0);
  return Uint16Array.from(out);
}

/** One entry of a model chain: `offset` is where the model's ID register is, relative to the base. */
export interface ModelHeader {
  id: number;
  length: number;
  offset: number;
}

/**
 * Walk the model chain of an image held in memory (for tests and simulators; the adapter walks
 * over Modbus reads). Throws when the marker is missing or a model runs past the image.
 */
export function walkImage(image: ArrayLike<number>): ModelHeader[] {
  if (image.length < 2 || image[0] !== SUNS_MARKER[0] || image[1] !== SUNS_MARKER[1]) {
    throw new SunSpecError('VALUE_INVALID', "image does not start with the 'SunS' marker");
  }
  const out: ModelHeader[] = [];
  let o = 2;
  while (o + 2 <= image.length) {
    const id = image[o];
    const length = image[o + 1];
    if (id === END_MODEL_ID) return out;
    if (o + 2 + length > image.length) throw new SunSpecError('GROUP_OVERRUN', `model ${id} at offset ${o} (length ${length}) runs past the image`);
    out.push({ id, length, offset: o });
    o += 2 + length;
  }
  throw new SunSpecError('GROUP_OVERRUN', 'image ends before the end marker');
}

/** A decoded group instance as a tree: points by name, nested groups by name as arrays. */
export interface TreeInstance {
  [name: string]: DecodedPoint | TreeInstance[];
}

/**
 * The decoded model as one nested tree (what a commissioning tool prints): implemented points by
 * name, repeating groups as arrays under their name, nested groups inside their parent instance.
 * Points that are not implemented are left out.
 */
export function toTree(m: DecodedModel): TreeInstance {
  const pick = (points: Record<string, DecodedPoint>): TreeInstance => {
    const t: TreeInstance = {};
    for (const [k, p] of Object.entries(points)) if (p.implemented) t[k] = p;
    return t;
  };
  const root = pick(m.points);
  // Keys are `a`, `a[0].b`, `a[0].b[1].c`: attach each array to the instance its prefix names.
  const keys = Object.keys(m.groups).sort((a, b) => a.split('.').length - b.split('.').length);
  const instances = new Map<string, TreeInstance>([['', root]]);
  for (const key of keys) {
    const dot = key.lastIndexOf('.');
    const parent = instances.get(dot === -1 ? '' : key.slice(0, dot));
    const name = dot === -1 ? key : key.slice(dot + 1);
    const arr = m.groups[key].map((pts, i) => {
      const inst = pick(pts);
      instances.set(`${key}[${i}]`, inst);
      return inst;
    });
    if (parent !== undefined) parent[name] = arr;
  }
  return root;
}

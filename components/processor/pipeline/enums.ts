/**
 * Enum and bitfield values to numbers for the store (docs/store.md: "Booleans and enums are stored
 * as numbers (SunSpec St, Evt1); strings are not stored"). The ModbusAdapter publishes SunSpec
 * enums by symbol name (`103.St` = "FAULT") and bitfields as the set bits' names joined by `|`
 * (`103.Evt1` = "GROUND_FAULT|OVER_TEMP", unnamed bits `BIT<n>`), docs/modbus-adapter.md. The
 * numeric value is the one the SunSpec model defines (St FAULT = 7; Evt1 = sum of 2^bit), looked
 * up in the SunSpec model library by the point name `<model>.<...>.<point>`.
 *
 * Strings of points that are not SunSpec enums/bitfields (register-map bitfields, station names)
 * have no numbering the store could keep stable, so they travel in processed telemetry and feed
 * alarm rules but are not stored.
 */
import { getModel, type GroupDef, type PointDef } from '../../modbus-adapter/sunspec';

interface EnumInfo {
  kind: 'enum' | 'bitfield';
  symbols: Map<string, number>;
}

const cache = new Map<string, EnumInfo | null>();
const MAX_CACHE = 4096;

function findPoint(g: GroupDef, name: string): PointDef | undefined {
  const p = g.points.find((x) => x.name === name);
  if (p) return p;
  for (const sg of g.groups) {
    const q = findPoint(sg, name);
    if (q) return q;
  }
  return undefined;
}

function lookup(point: string): EnumInfo | null {
  const dot = point.indexOf('.');
  if (dot <= 0) return null;
  const id = Number(point.slice(0, dot));
  if (!Number.isInteger(id)) return null;
  const model = getModel(id);
  if (!model) return null;
  const def = findPoint(model.group, point.slice(point.lastIndexOf('.') + 1));
  if (!def || !def.symbols) return null;
  const kind = def.type.startsWith('enum') ? 'enum' : def.type.startsWith('bitfield') ? 'bitfield' : undefined;
  if (!kind) return null;
  return { kind, symbols: new Map(def.symbols.map((s) => [s.name, s.value])) };
}

function infoFor(point: string): EnumInfo | null {
  // Cache by the point's shape: `160.module.3.DCSt` and `160.module.1.DCSt` share one entry.
  const key = point.replace(/\.\d+\./g, '.#.');
  let info = cache.get(key);
  if (info === undefined) {
    info = lookup(point);
    if (cache.size >= MAX_CACHE) cache.clear();
    cache.set(key, info);
  }
  return info;
}

/** The stored number of an enum/bitfield string, or undefined when there is none. */
export function symbolicToNumber(point: string, v: string): number | undefined {
  const info = infoFor(point);
  if (!info) return undefined;
  if (info.kind === 'enum') return info.symbols.get(v);
  if (v === '') return 0;
  let n = 0;
  for (const name of v.split('|')) {
    const bit = info.symbols.get(name) ?? (/^BIT(\d{1,2})$/.exec(name) ? Number(name.slice(3)) : undefined);
    if (bit === undefined || bit > 31) return undefined;
    n += 2 ** bit;
  }
  return n;
}

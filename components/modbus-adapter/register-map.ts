/**
 * Named register maps: decode the registers (or bits) a point occupies into an engineering value,
 * and encode a value for a write.
 *
 * Modbus Application Protocol v1.1b3 §4.2: a register is 16 bits, sent big-endian. The protocol
 * says nothing about values wider than a register, so the word order of 32-bit values is per map
 * (`big`: the most significant register at the lower address, the common convention and the one
 * SunSpec mandates; `little`: swapped, as some meters do). Strings are two characters per
 * register, high byte first, NUL padded.
 */
import type { MapPoint, MapPointType } from './config';
import type { Point } from '../lib/contract';

export function pointWidth(p: Pick<MapPoint, 'type' | 'length'>): number {
  switch (p.type) {
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'string':
      return p.length ?? 1;
    default:
      return 1;
  }
}

export class RegisterValueError extends Error {
  readonly code = 'VALUE_INVALID';
}

function words32(regs: ArrayLike<number>, at: number, order: 'big' | 'little'): Buffer {
  const hi = order === 'big' ? regs[at] : regs[at + 1];
  const lo = order === 'big' ? regs[at + 1] : regs[at];
  const b = Buffer.alloc(4);
  b.writeUInt16BE((hi ?? 0) & 0xffff, 0);
  b.writeUInt16BE((lo ?? 0) & 0xffff, 2);
  return b;
}

/** Raw value of a register point (before scale/offset); strings and bitfields keep their shape. */
export function decodeRaw(type: MapPointType, regs: ArrayLike<number>, at: number, opts: { wordOrder?: 'big' | 'little'; length?: number } = {}): number | string {
  const r = (i: number): number => (regs[at + i] ?? 0) & 0xffff;
  switch (type) {
    case 'int16':
      return (r(0) << 16) >> 16;
    case 'uint16':
    case 'bitfield':
      return r(0);
    case 'int32':
      return words32(regs, at, opts.wordOrder ?? 'big').readInt32BE(0);
    case 'uint32':
      return words32(regs, at, opts.wordOrder ?? 'big').readUInt32BE(0);
    case 'float32':
      return words32(regs, at, opts.wordOrder ?? 'big').readFloatBE(0);
    case 'string': {
      const n = opts.length ?? 1;
      const b = Buffer.alloc(n * 2);
      for (let i = 0; i < n; i++) b.writeUInt16BE(r(i), i * 2);
      const nul = b.indexOf(0);
      return b.toString('latin1', 0, nul === -1 ? b.length : nul).trimEnd();
    }
    case 'bool':
      return r(0) ? 1 : 0;
  }
}

/** Engineering value and quality of one point from the registers of its block. */
export function decodeMapPoint(p: MapPoint, regs: ArrayLike<number>, at: number): Point {
  const raw = decodeRaw(p.type, regs, at, { ...(p.wordOrder ? { wordOrder: p.wordOrder } : {}), ...(p.length ? { length: p.length } : {}) });
  const unit = p.unit ? { u: p.unit } : {};
  if (typeof raw === 'string') return { v: raw, ...unit, q: 'good' };
  if (p.type === 'bitfield') {
    // Bits as names (set ones joined by '|'), so alarms can match on them; unnamed bits as BIT<n>.
    const names: string[] = [];
    for (let bit = 0; bit < 16; bit++) if (raw & (1 << bit)) names.push(p.bits?.[bit] ?? `BIT${bit}`);
    return { v: names.join('|'), q: 'good' };
  }
  if (!Number.isFinite(raw)) return { v: null, ...unit, q: 'bad' };
  const v = raw * (p.scale ?? 1) + (p.offset ?? 0);
  return { v: roundScaled(v), ...unit, q: 'good' };
}

/** Float noise from scaling (2345 * 0.1 = 234.50000000000003) is trimmed to 12 significant digits. */
export function roundScaled(v: number): number {
  return Number.isInteger(v) ? v : Number(v.toPrecision(12));
}

export function decodeBitPoint(p: MapPoint, bits: ArrayLike<boolean>, at: number): Point {
  return { v: Boolean(bits[at]), ...(p.unit ? { u: p.unit } : {}), q: 'good' };
}

const INT_RANGE: Partial<Record<MapPointType, [number, number]>> = {
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  bitfield: [0, 0xffff],
  int32: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
};

/**
 * Registers for writing `value` (engineering units) to a register point: raw = (value - offset) /
 * scale, rounded to the nearest integer for integer types. Throws RegisterValueError when the
 * value is outside the point's configured min/max or the type's range.
 */
export function encodeMapPoint(p: MapPoint, value: number | string | boolean): number[] {
  if (p.type === 'string') {
    if (typeof value !== 'string') throw new RegisterValueError(`${p.name}: a string point needs a string value`);
    const n = p.length ?? 1;
    if (value.length > n * 2) throw new RegisterValueError(`${p.name}: at most ${n * 2} characters`);
    const b = Buffer.alloc(n * 2);
    b.write(value, 'latin1');
    return Array.from({ length: n }, (_x, i) => b.readUInt16BE(i * 2));
  }
  const num = typeof value === 'boolean' ? (value ? 1 : 0) : typeof value === 'number' ? value : Number.NaN;
  if (!Number.isFinite(num)) throw new RegisterValueError(`${p.name}: value must be a finite number`);
  if ((p.min !== undefined && num < p.min) || (p.max !== undefined && num > p.max)) {
    throw new RegisterValueError(`${p.name}: ${num} is outside ${p.min ?? '-inf'}..${p.max ?? 'inf'}`);
  }
  const raw = (num - (p.offset ?? 0)) / (p.scale ?? 1);
  if (p.type === 'float32') {
    const b = Buffer.alloc(4);
    b.writeFloatBE(raw, 0);
    const hi = b.readUInt16BE(0);
    const lo = b.readUInt16BE(2);
    return p.wordOrder === 'little' ? [lo, hi] : [hi, lo];
  }
  const int = Math.round(raw);
  const [lo, hi] = INT_RANGE[p.type] ?? [0, 1];
  if (int < lo || int > hi) throw new RegisterValueError(`${p.name}: raw ${int} does not fit ${p.type} (${lo}..${hi})`);
  if (p.type === 'int32' || p.type === 'uint32') {
    const u = int < 0 ? int + 0x100000000 : int;
    const words = [Math.floor(u / 0x10000), u % 0x10000];
    return p.wordOrder === 'little' ? [words[1] ?? 0, words[0] ?? 0] : words;
  }
  return [int < 0 ? int + 0x10000 : int];
}

/**
 * One point <-> registers, following the SunSpec Information Model Specification's point types:
 *
 * - Multi-register numbers are big-endian in both bytes and words (the most significant register
 *   first), as Modbus and SunSpec require.
 * - Every type has a "not implemented" value (SunSpec Information Model Specification, "Unimplemented
 *   Registers"): int16/sunssf 0x8000, uint16/count/enum16/bitfield16 0xFFFF, acc16/acc32/acc64 0
 *   ("not accumulated"), int32 0x80000000, uint32/enum32/bitfield32 0xFFFFFFFF, int64
 *   0x8000000000000000, uint64/bitfield64 0xFFFFFFFFFFFFFFFF, ipaddr 0, ipv6addr all zero, float32/float64
 *   NaN (0x7FC00000 / 0x7FF8000000000000), string all NUL, eui48 all 0xFFFF. A pad register
 *   carries 0x8000 and no value.
 * - Scale factors (`sunssf`) are int16 exponents of ten in -10..10: value = raw x 10^sf.
 * - Strings are ASCII, two characters per register (high byte first), NUL padded.
 */
import { PointDef, PointType, SunSpecError } from './types';

export type RawValue = number | bigint | string;

const U16 = 0xffff;
const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;

/** The sentinel each numeric integer type uses for "not implemented". */
const INT_SENTINEL: Partial<Record<PointType, bigint>> = {
  int16: -0x8000n,
  sunssf: -0x8000n,
  uint16: 0xffffn,
  count: 0xffffn,
  enum16: 0xffffn,
  bitfield16: 0xffffn,
  acc16: 0n,
  int32: -0x80000000n,
  uint32: 0xffffffffn,
  enum32: 0xffffffffn,
  bitfield32: 0xffffffffn,
  acc32: 0n,
  ipaddr: 0n,
  int64: INT64_MIN,
  uint64: UINT64_MAX,
  bitfield64: UINT64_MAX,
  acc64: 0n,
};

const SIGNED = new Set<PointType>(['int16', 'sunssf', 'int32', 'int64']);

/** Register width of every fixed-size type (a string takes its size from the model). */
export const TYPE_SIZE: Readonly<Record<Exclude<PointType, 'string'>, number>> = {
  int16: 1, uint16: 1, count: 1, acc16: 1, enum16: 1, bitfield16: 1, sunssf: 1, pad: 1,
  int32: 2, uint32: 2, acc32: 2, enum32: 2, bitfield32: 2, ipaddr: 2, float32: 2,
  int64: 4, uint64: 4, acc64: 4, bitfield64: 4, float64: 4, eui48: 4, ipv6addr: 8,
};

/** Register width of a point: its type's, or the model's size for strings. */
function widthOf(t: PointType, size: number): number {
  return t === 'string' ? size : TYPE_SIZE[t];
}

export function isIntegerType(t: PointType): boolean {
  return INT_SENTINEL[t] !== undefined;
}

function readUnsigned(regs: ArrayLike<number>, offset: number, size: number): bigint {
  let v = 0n;
  for (let i = 0; i < size; i++) v = (v << 16n) | BigInt(regs[offset + i] & U16);
  return v;
}

function writeUnsigned(v: bigint, size: number): number[] {
  const out = new Array<number>(size);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffffn);
    v >>= 16n;
  }
  return out;
}

function toSigned(v: bigint, bits: number): bigint {
  return v >= 1n << BigInt(bits - 1) ? v - (1n << BigInt(bits)) : v;
}

function regsToBytes(regs: ArrayLike<number>, offset: number, size: number): Buffer {
  const b = Buffer.alloc(size * 2);
  for (let i = 0; i < size; i++) b.writeUInt16BE(regs[offset + i] & U16, i * 2);
  return b;
}

function bytesToRegs(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 2) out.push(b.readUInt16BE(i));
  return out;
}

export interface RawDecoded {
  /** Integer types: number (bigint for 64-bit); floats: number; strings/addresses: string. */
  raw: RawValue;
  implemented: boolean;
  /** The value before scale factor (64-bit integers as a number, addresses formatted). */
  plain: number | string | null;
}

/** Decode one point's registers (no scale factor). `regs` must hold `point.size` registers at `offset`. */
export function decodeRaw(point: PointDef, regs: ArrayLike<number>, offset: number): RawDecoded {
  const t = point.type;
  const size = point.size;
  switch (t) {
    case 'pad':
      return { raw: regs[offset] & U16, implemented: false, plain: null };
    case 'string': {
      const b = regsToBytes(regs, offset, size);
      const nul = b.indexOf(0);
      const s = b.toString('latin1', 0, nul === -1 ? b.length : nul);
      return { raw: s, implemented: s.length > 0, plain: s.length > 0 ? s : null };
    }
    case 'float32': {
      const f = regsToBytes(regs, offset, 2).readFloatBE(0);
      return { raw: f, implemented: !Number.isNaN(f), plain: Number.isNaN(f) ? null : f };
    }
    case 'float64': {
      const f = regsToBytes(regs, offset, 4).readDoubleBE(0);
      return { raw: f, implemented: !Number.isNaN(f), plain: Number.isNaN(f) ? null : f };
    }
    case 'ipv6addr': {
      const b = regsToBytes(regs, offset, 8);
      const hex = b.toString('hex');
      const impl = /[^0]/.test(hex);
      const groups = [];
      for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
      return { raw: hex, implemented: impl, plain: impl ? groups.join(':') : null };
    }
    case 'eui48': {
      // 4 registers; the 48-bit identifier is in the low 6 bytes.
      const b = regsToBytes(regs, offset, 4);
      const hex = b.toString('hex');
      const impl = hex !== 'ffffffffffffffff';
      const mac = (hex.slice(4).match(/../g) ?? []).join(':');
      return { raw: hex, implemented: impl, plain: impl ? mac : null };
    }
    default: {
      const width = widthOf(t, size);
      let v = readUnsigned(regs, offset, width);
      if (SIGNED.has(t)) v = toSigned(v, width * 16);
      const implemented = v !== INT_SENTINEL[t];
      const raw: number | bigint = width === 4 ? v : Number(v);
      let plain: number | string | null = implemented ? Number(v) : null;
      if (t === 'ipaddr' && implemented) {
        const n = Number(v);
        plain = [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
      }
      return { raw, implemented, plain };
    }
  }
}

/** raw x 10^sf, computed so that decimal results are the nearest double (2345, -1 -> 234.5). */
export function applyScale(raw: number, sf: number): number {
  if (sf === 0) return raw;
  return sf > 0 ? raw * 10 ** sf : raw / 10 ** -sf;
}

export function isValidScaleFactor(sf: number): boolean {
  return Number.isInteger(sf) && sf >= -10 && sf <= 10;
}

/** The "not implemented" registers of a point (pad: 0x8000). */
export function sentinelRegisters(point: PointDef): number[] {
  const t = point.type;
  if (t === 'pad') return new Array<number>(point.size).fill(0x8000);
  if (t === 'string' || t === 'ipv6addr') return new Array<number>(point.size).fill(0);
  if (t === 'eui48') return [U16, U16, U16, U16];
  if (t === 'float32') return [0x7fc0, 0];
  if (t === 'float64') return [0x7ff8, 0, 0, 0];
  const s = INT_SENTINEL[t];
  const width = widthOf(t, point.size);
  if (s === undefined) return new Array<number>(width).fill(0);
  return writeUnsigned(s < 0n ? s + (1n << BigInt(width * 16)) : s, width);
}

/** Valid range of raw integer values for a type, excluding its not-implemented sentinel. */
function rawRange(t: PointType): { min: bigint; max: bigint } {
  const width = BigInt(widthOf(t, 1) * 16);
  if (SIGNED.has(t)) return { min: -(1n << (width - 1n)) + 1n, max: (1n << (width - 1n)) - 1n };
  const s = INT_SENTINEL[t];
  const top = (1n << width) - 1n;
  // Accumulators: 0 means "not accumulated", so the smallest writable value is 1.
  if (s === 0n) return { min: 1n, max: top };
  return { min: 0n, max: top - 1n };
}

function symbolValue(point: PointDef, name: string): number | undefined {
  return point.symbols?.find((s) => s.name === name)?.value;
}

function fail(point: PointDef, code: 'VALUE_OUT_OF_RANGE' | 'VALUE_INVALID', why: string): never {
  throw new SunSpecError(code, `${point.name} (${point.type}): ${why}`);
}

/** Turn a symbol name or names ('GROUND_FAULT|OVER_TEMP') into the enum value or bit mask. */
function symbolic(point: PointDef, value: string): bigint {
  if (point.type.startsWith('enum')) {
    const v = symbolValue(point, value);
    if (v === undefined) fail(point, 'VALUE_INVALID', `'${value}' is not one of its symbols`);
    return BigInt(v);
  }
  if (point.type.startsWith('bitfield')) {
    let mask = 0n;
    for (const name of value.split(/[|,]/).map((s) => s.trim()).filter((s) => s.length > 0)) {
      // Bits the model does not name are written as BIT<n>, as decoding names them.
      const unnamed = /^BIT(\d+)$/.exec(name);
      const bit = symbolValue(point, name) ?? (unnamed ? Number(unnamed[1]) : undefined);
      if (bit === undefined || bit >= widthOf(point.type, 1) * 16) fail(point, 'VALUE_INVALID', `'${name}' is not one of its bits`);
      mask |= 1n << BigInt(bit);
    }
    return mask;
  }
  return fail(point, 'VALUE_INVALID', `a string value is only accepted for enums, bitfields and strings`);
}

/**
 * Encode one value (after scale factor) to the point's registers, for a write or an image.
 * Integer types are divided by 10^sf and rounded, then range-checked; the type's not-implemented
 * value is refused (it cannot be written as data). The caller checks `point.access` for writes.
 */
export function encodePoint(point: PointDef, value: number | string, scaleFactor?: number): number[] {
  const t = point.type;
  if (t === 'pad') return sentinelRegisters(point);
  if (t === 'string') {
    if (typeof value !== 'string') fail(point, 'VALUE_INVALID', 'expects a string');
    // eslint-disable-next-line no-control-regex
    if (!/^[\x20-\x7e]*$/.test(value)) fail(point, 'VALUE_INVALID', 'strings are printable ASCII');
    if (value.length > point.size * 2) fail(point, 'VALUE_OUT_OF_RANGE', `'${value}' is longer than ${point.size * 2} characters`);
    const b = Buffer.alloc(point.size * 2);
    b.write(value, 'latin1');
    return bytesToRegs(b);
  }
  if (t === 'float32' || t === 'float64') {
    const n = typeof value === 'number' ? value : Number(value);
    if (!Number.isFinite(n)) fail(point, 'VALUE_INVALID', `${String(value)} is not a finite number`);
    const sf = scaleFactor ?? 0;
    if (!isValidScaleFactor(sf)) throw new SunSpecError('BAD_SCALE_FACTOR', `${point.name}: scale factor ${sf} is outside -10..10`);
    const scaled = sf === 0 ? n : n / 10 ** sf;
    const b = Buffer.alloc(t === 'float32' ? 4 : 8);
    if (t === 'float32') {
      if (Math.abs(scaled) > 3.4028234663852886e38) fail(point, 'VALUE_OUT_OF_RANGE', `${n} does not fit a float32`);
      b.writeFloatBE(scaled);
    } else b.writeDoubleBE(scaled);
    return bytesToRegs(b);
  }
  if (t === 'ipaddr' && typeof value === 'string') {
    const parts = value.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) fail(point, 'VALUE_INVALID', `'${value}' is not an IPv4 address`);
    return writeUnsigned(BigInt(((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0), 2);
  }
  if (t === 'ipv6addr' || t === 'eui48') {
    if (typeof value !== 'string') fail(point, 'VALUE_INVALID', 'expects a hex string');
    // ipv6addr: eight colon-separated hex groups (no '::' shorthand) or 32 hex digits; eui48: six bytes.
    const hex = t === 'eui48' ? '0000' + value.replace(/[:-]/g, '') : value.includes(':') ? value.split(':').map((g) => g.padStart(4, '0')).join('') : value;
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== point.size * 4) fail(point, 'VALUE_INVALID', `'${value}' is not a ${t}`);
    return bytesToRegs(Buffer.from(hex, 'hex'));
  }
  let raw: bigint;
  if (typeof value === 'string') {
    raw = symbolic(point, value);
  } else {
    if (!Number.isFinite(value)) fail(point, 'VALUE_INVALID', `${value} is not a finite number`);
    const sf = scaleFactor ?? 0;
    if (!isValidScaleFactor(sf)) throw new SunSpecError('BAD_SCALE_FACTOR', `${point.name}: scale factor ${sf} is outside -10..10`);
    const scaled = sf === 0 ? value : sf > 0 ? value / 10 ** sf : value * 10 ** -sf;
    raw = BigInt(Math.round(scaled));
  }
  const { min, max } = rawRange(t);
  if (raw < min || raw > max) {
    const sfText = scaleFactor ? ` at scale factor ${scaleFactor}` : '';
    fail(point, 'VALUE_OUT_OF_RANGE', `${String(value)}${sfText} is raw ${raw}, outside ${min}..${max}`);
  }
  if (point.type.startsWith('enum') && point.symbols && point.symbols.length > 0 && !point.symbols.some((s) => BigInt(s.value) === raw)) {
    fail(point, 'VALUE_INVALID', `${raw} is not one of its symbols (${point.symbols.map((s) => `${s.name}=${s.value}`).join(', ')})`);
  }
  const width = widthOf(t, point.size);
  return writeUnsigned(raw < 0n ? raw + (1n << BigInt(width * 16)) : raw, width);
}

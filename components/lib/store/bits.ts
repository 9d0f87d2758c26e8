/**
 * Bit-level writer and reader for the chunk codec (most significant bit first).
 *
 * JS bit operators work on 32 bits, so every call moves at most 32 bits; 64-bit quantities
 * (float64 XORs, 48-bit delta-of-deltas) are written as a high and a low part by the codec.
 */

/** Thrown when a chunk ends early or carries an impossible field: the blob is corrupt. */
export class ChunkCorruptError extends Error {
  readonly code = 'STORE_CHUNK_CORRUPT';
}

export class BitWriter {
  private buf: Uint8Array;
  private pos = 0;
  /** Bits already used in buf[pos] (0..7). */
  private used = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }

  /** Writes the low `n` bits of `value` (0 <= n <= 32), most significant first. */
  write(value: number, n: number): void {
    while (n > 0) {
      if (this.pos >= this.buf.length) this.grow();
      const free = 8 - this.used;
      const take = n < free ? n : free;
      const part = (value >>> (n - take)) & ((1 << take) - 1);
      this.buf[this.pos] = (this.buf[this.pos] ?? 0) | (part << (free - take));
      this.used += take;
      n -= take;
      if (this.used === 8) {
        this.pos += 1;
        this.used = 0;
      }
    }
  }

  bit(b: boolean | number): void {
    this.write(b ? 1 : 0, 1);
  }

  /** Unsigned LEB128-style varint, byte aligned is not required (it is just 8-bit groups). */
  varint(v: number): void {
    // v is a non-negative safe integer; division keeps it exact past 2^32.
    while (v >= 0x80) {
      this.write((v % 0x80) | 0x80, 8);
      v = Math.floor(v / 0x80);
    }
    this.write(v, 8);
  }

  get bitLength(): number {
    return this.pos * 8 + this.used;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos + (this.used > 0 ? 1 : 0));
  }

  private grow(): void {
    const next = new Uint8Array(this.buf.length * 2);
    next.set(this.buf);
    this.buf = next;
  }
}

export class BitReader {
  private pos = 0;
  private used = 0;

  constructor(private readonly buf: Uint8Array) {}

  /** Reads `n` bits (0 <= n <= 32) as an unsigned integer. */
  read(n: number): number {
    let out = 0;
    while (n > 0) {
      if (this.pos >= this.buf.length) throw new ChunkCorruptError('chunk ended early');
      const free = 8 - this.used;
      const take = n < free ? n : free;
      const byte = this.buf[this.pos] as number;
      const part = (byte >>> (free - take)) & ((1 << take) - 1);
      out = ((out << take) | part) >>> 0;
      this.used += take;
      n -= take;
      if (this.used === 8) {
        this.pos += 1;
        this.used = 0;
      }
    }
    return out >>> 0;
  }

  bit(): number {
    return this.read(1);
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.read(8);
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 0x80;
    }
    throw new ChunkCorruptError('varint too long');
  }
}

/** Writes a signed integer of |x| < 2^(bits-1) in two's complement over `bits` (33..53) bits. */
export function writeSignedWide(w: BitWriter, x: number, bits: number): void {
  const mod = 2 ** bits;
  const u = x < 0 ? x + mod : x;
  const hi = Math.floor(u / 0x100000000);
  w.write(hi, bits - 32);
  w.write(u - hi * 0x100000000, 32);
}

export function readSignedWide(r: BitReader, bits: number): number {
  const hi = r.read(bits - 32);
  const u = hi * 0x100000000 + r.read(32);
  return u >= 2 ** (bits - 1) ? u - 2 ** bits : u;
}

/** Signed integer in `bits` (<= 32) bits, two's complement. */
export function writeSigned(w: BitWriter, x: number, bits: number): void {
  w.write(x < 0 ? x + 2 ** bits : x, bits);
}

export function readSigned(r: BitReader, bits: number): number {
  const u = r.read(bits);
  return u >= 2 ** (bits - 1) ? u - 2 ** bits : u;
}

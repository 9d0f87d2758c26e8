/**
 * Column codecs of a chunk, after the Gorilla paper (Pelkonen et al., VLDB 2015): timestamps as
 * delta-of-delta with variable-width buckets, float64 values as the XOR with the previous value
 * (leading/trailing-zero window), plus two additions of ours:
 *
 *  - decimal mode: Modbus/SunSpec values are integers times a power-of-ten scale factor
 *    (SunSpec `*_SF` registers), e.g. 734.2 W/m2. Their float64 XORs have ~40 meaningful bits, but
 *    the scaled integers (7342) differ by small deltas. When every value of a chunk is exactly
 *    `int / 10^k` for one k in 0..6 (checked bit for bit), the chunk stores integer deltas instead.
 *    The chunk writer encodes both and keeps the smaller.
 *  - qualities as run lengths: a series is almost always `good`, so a chunk's qualities cost a
 *    few bytes whatever its length.
 *
 * The XOR codec round-trips any float64 bit pattern (NaN payloads, +-Infinity, -0); the store
 * itself refuses non-finite values at append because they would poison the chunk statistics.
 */
import { BitReader, BitWriter, ChunkCorruptError, readSigned, readSignedWide, writeSigned, writeSignedWide } from './bits';

/** Timestamps are integer ms in [0, 2^47) (until year 6429): deltas and delta-of-deltas stay exact. */
export const MAX_TS = 2 ** 47;

// Views over one float64 for bit access. Every target (x64, aarch64) is little-endian.
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('the chunk codec assumes a little-endian CPU');

export function encodeTimestamps(w: BitWriter, ts: ArrayLike<number>, n: number): void {
  if (n === 0) return;
  w.varint(ts[0] as number);
  let prev = ts[0] as number;
  let prevDelta = 0;
  for (let i = 1; i < n; i++) {
    const t = ts[i] as number;
    const delta = t - prev;
    const dod = delta - prevDelta;
    // Buckets sized for polling: 0 for a steady rate, 7 bits for ms jitter, wider for gaps.
    if (dod === 0) w.write(0, 1);
    else if (dod >= -64 && dod <= 63) {
      w.write(0b10, 2);
      writeSigned(w, dod, 7);
    } else if (dod >= -256 && dod <= 255) {
      w.write(0b110, 3);
      writeSigned(w, dod, 9);
    } else if (dod >= -2048 && dod <= 2047) {
      w.write(0b1110, 4);
      writeSigned(w, dod, 12);
    } else {
      w.write(0b1111, 4);
      writeSignedWide(w, dod, 49);
    }
    prev = t;
    prevDelta = delta;
  }
}

export function decodeTimestamps(r: BitReader, n: number, out: Float64Array): void {
  if (n === 0) return;
  let prev = r.varint();
  out[0] = prev;
  let delta = 0;
  for (let i = 1; i < n; i++) {
    let dod: number;
    if (r.bit() === 0) dod = 0;
    else if (r.bit() === 0) dod = readSigned(r, 7);
    else if (r.bit() === 0) dod = readSigned(r, 9);
    else if (r.bit() === 0) dod = readSigned(r, 12);
    else dod = readSignedWide(r, 49);
    delta += dod;
    prev += delta;
    out[i] = prev;
  }
}

function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** Writes the `sig` meaningful bits of the 64-bit (hi, lo) after dropping `trail` trailing zeros. */
function writeWindow(w: BitWriter, hi: number, lo: number, trail: number, sig: number): void {
  let sh: number;
  let sl: number;
  if (trail === 0) {
    sh = hi;
    sl = lo;
  } else if (trail >= 32) {
    sh = 0;
    sl = hi >>> (trail - 32);
  } else {
    sh = hi >>> trail;
    sl = ((lo >>> trail) | (hi << (32 - trail))) >>> 0;
  }
  if (sig > 32) {
    w.write(sh, sig - 32);
    w.write(sl, 32);
  } else w.write(sl, sig);
}

export function encodeXorValues(w: BitWriter, v: ArrayLike<number>, n: number): void {
  if (n === 0) return;
  f64[0] = v[0] as number;
  let prevHi = u32[1] as number;
  let prevLo = u32[0] as number;
  w.write(prevHi, 32);
  w.write(prevLo, 32);
  let prevLead = -1;
  let prevTrail = 0;
  for (let i = 1; i < n; i++) {
    f64[0] = v[i] as number;
    const hi = u32[1] as number;
    const lo = u32[0] as number;
    const xh = (hi ^ prevHi) >>> 0;
    const xl = (lo ^ prevLo) >>> 0;
    prevHi = hi;
    prevLo = lo;
    if (xh === 0 && xl === 0) {
      w.write(0, 1);
      continue;
    }
    let lead = xh !== 0 ? Math.clz32(xh) : 32 + Math.clz32(xl);
    const trail = xl !== 0 ? ctz32(xl) : 32 + ctz32(xh);
    if (lead > 31) lead = 31; // 5-bit field, as in the paper
    if (prevLead >= 0 && lead >= prevLead && trail >= prevTrail) {
      // Fits the previous window: no header, just the window's bits.
      w.write(0b10, 2);
      writeWindow(w, xh, xl, prevTrail, 64 - prevLead - prevTrail);
    } else {
      const sig = 64 - lead - trail;
      w.write(0b11, 2);
      w.write(lead, 5);
      w.write(sig - 1, 6);
      writeWindow(w, xh, xl, trail, sig);
      prevLead = lead;
      prevTrail = trail;
    }
  }
}

function readWindow(r: BitReader, trail: number, sig: number): void {
  let sh = 0;
  let sl: number;
  if (sig > 32) {
    sh = r.read(sig - 32);
    sl = r.read(32);
  } else sl = r.read(sig);
  let xh: number;
  let xl: number;
  if (trail === 0) {
    xh = sh;
    xl = sl;
  } else if (trail >= 32) {
    xh = sl << (trail - 32);
    xl = 0;
  } else {
    xh = (sh << trail) | (sl >>> (32 - trail));
    xl = sl << trail;
  }
  u32[1] = ((u32[1] as number) ^ xh) >>> 0;
  u32[0] = ((u32[0] as number) ^ xl) >>> 0;
}

export function decodeXorValues(r: BitReader, n: number, out: Float64Array): void {
  if (n === 0) return;
  u32[1] = r.read(32);
  u32[0] = r.read(32);
  out[0] = f64[0] as number;
  // Copy the bits through a Uint32 pair kept across iterations: reading a NaN back out of a
  // Float64Array and writing it again may not preserve its payload, so the previous value's bits
  // live in the integer view, not in `out`.
  let hi = u32[1] as number;
  let lo = u32[0] as number;
  let lead = 0;
  let trail = 0;
  for (let i = 1; i < n; i++) {
    u32[1] = hi;
    u32[0] = lo;
    if (r.bit() !== 0) {
      if (r.bit() !== 0) {
        lead = r.read(5);
        trail = 64 - lead - (r.read(6) + 1);
        if (trail < 0) throw new ChunkCorruptError('XOR window out of range');
      }
      readWindow(r, trail, 64 - lead - trail);
    }
    hi = u32[1] as number;
    lo = u32[0] as number;
    out[i] = f64[0] as number;
  }
}

/** Largest scaled integer decimal mode accepts (keeps deltas within the 53-bit escape). */
const DECIMAL_LIMIT = 2 ** 50;
const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000];

/**
 * The smallest k (0..6) such that every value is exactly `Math.round(v * 10^k) / 10^k`, or -1.
 * -0 has no integer image, so a chunk with -0 uses the XOR codec.
 */
export function decimalScale(v: ArrayLike<number>, n: number): number {
  let k = 0;
  for (let i = 0; i < n; i++) {
    const x = v[i] as number;
    while (k < POW10.length) {
      const s = POW10[k] as number;
      const m = Math.round(x * s);
      if (Math.abs(m) <= DECIMAL_LIMIT && m / s === x && !Object.is(x, -0)) break;
      k += 1;
    }
    if (k >= POW10.length) return -1;
  }
  // A k found late must hold for the earlier values too (x = m/10^j implies x = (m*10^(k-j))/10^k
  // only when that product is exact), so check the whole column once more at the final k.
  const s = POW10[k] as number;
  for (let i = 0; i < n; i++) {
    const x = v[i] as number;
    const m = Math.round(x * s);
    if (Math.abs(m) > DECIMAL_LIMIT || m / s !== x) return -1;
  }
  return k;
}

export function encodeDecimalValues(w: BitWriter, v: ArrayLike<number>, n: number, k: number): void {
  if (n === 0) return;
  const s = POW10[k] as number;
  let prev = Math.round((v[0] as number) * s);
  writeSignedWide(w, prev, 53);
  for (let i = 1; i < n; i++) {
    const m = Math.round((v[i] as number) * s);
    const d = m - prev;
    prev = m;
    if (d === 0) w.write(0, 1);
    else if (d >= -32 && d <= 31) {
      w.write(0b10, 2);
      writeSigned(w, d, 6);
    } else if (d >= -2048 && d <= 2047) {
      w.write(0b110, 3);
      writeSigned(w, d, 12);
    } else if (d >= -524288 && d <= 524287) {
      w.write(0b1110, 4);
      writeSigned(w, d, 20);
    } else {
      w.write(0b1111, 4);
      writeSignedWide(w, d, 53);
    }
  }
}

export function decodeDecimalValues(r: BitReader, n: number, k: number, out: Float64Array): void {
  if (n === 0) return;
  const s = POW10[k];
  if (s === undefined) throw new ChunkCorruptError(`bad decimal scale ${k}`);
  let m = readSignedWide(r, 53);
  out[0] = m / s;
  for (let i = 1; i < n; i++) {
    if (r.bit() !== 0) {
      if (r.bit() === 0) m += readSigned(r, 6);
      else if (r.bit() === 0) m += readSigned(r, 12);
      else if (r.bit() === 0) m += readSigned(r, 20);
      else m += readSignedWide(r, 53);
    }
    out[i] = m / s;
  }
}

/** Run-length encoding of small codes (0..15): number of runs, then (code, length) pairs. */
export function encodeRuns(w: BitWriter, codes: ArrayLike<number>, n: number): void {
  let runs = 0;
  for (let i = 0; i < n; i++) if (i === 0 || codes[i] !== codes[i - 1]) runs += 1;
  w.varint(runs);
  let i = 0;
  while (i < n) {
    const c = codes[i] as number;
    let j = i + 1;
    while (j < n && codes[j] === c) j += 1;
    w.write(c, 4);
    w.varint(j - i);
    i = j;
  }
}

export function decodeRuns(r: BitReader, n: number, out: Uint8Array): void {
  const runs = r.varint();
  let i = 0;
  for (let k = 0; k < runs; k++) {
    const c = r.read(4);
    const len = r.varint();
    if (i + len > n) throw new ChunkCorruptError('quality runs longer than the chunk');
    out.fill(c, i, i + len);
    i += len;
  }
  if (i !== n) throw new ChunkCorruptError('quality runs shorter than the chunk');
}

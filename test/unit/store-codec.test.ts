import { BitReader, BitWriter, ChunkCorruptError } from '../../components/lib/store/bits';
import { allocColumns, computeStats, decodeChunk, encodeChunk, mergeColumns, NULL_FLAG, type Columns } from '../../components/lib/store/chunk';
import { decimalScale, decodeXorValues, encodeXorValues } from '../../components/lib/store/gorilla';
import { mulberry32 as rng } from '../../components/lib/random';


function columns(ts: number[], v: number[], q?: number[]): Columns {
  const c = allocColumns(ts.length);
  c.ts.set(ts);
  c.v.set(v);
  if (q) c.q.set(q);
  return c;
}

function roundTrip(c: Columns): Columns {
  const { data } = encodeChunk(c);
  return decodeChunk(data);
}

function expectSameBits(actual: Float64Array, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) throw new Error(`value ${i}: ${actual[i]} !== ${expected[i]}`);
  }
}

const T0 = Date.UTC(2026, 10, 26);

describe('bit writer/reader', () => {
  it('round-trips fields of every width and varints past 2^32', () => {
    const w = new BitWriter(1);
    const r0 = rng(1);
    const fields: Array<[number, number]> = [];
    for (let i = 0; i < 2000; i++) {
      const n = 1 + Math.floor(r0() * 32);
      const v = Math.floor(r0() * 2 ** n);
      fields.push([v, n]);
      w.write(v, n);
    }
    w.varint(2 ** 47 - 1);
    w.varint(0);
    const r = new BitReader(w.finish());
    for (const [v, n] of fields) expect(r.read(n)).toBe(v);
    expect(r.varint()).toBe(2 ** 47 - 1);
    expect(r.varint()).toBe(0);
  });

  it('reports a truncated stream as corrupt', () => {
    const r = new BitReader(new Uint8Array([0xff]));
    expect(() => r.read(16)).toThrow(ChunkCorruptError);
  });
});

describe('chunk codec round trips', () => {
  it('a random walk of floats', () => {
    const r = rng(2);
    const ts: number[] = [];
    const v: number[] = [];
    let x = 500;
    for (let i = 0; i < 1000; i++) {
      ts.push(T0 + i * 1000 + Math.floor(r() * 7) - 3); // ms jitter
      x += (r() - 0.5) * 3.7;
      v.push(x);
    }
    const out = roundTrip(columns(ts, v));
    expect(Array.from(out.ts)).toEqual(ts);
    expectSameBits(out.v, v);
  });

  it('a steady rate and a constant value cost about one bit each per sample', () => {
    const ts = Array.from({ length: 720 }, (_, i) => T0 + i * 1000);
    const c = columns(ts, ts.map(() => 42.5));
    const { data } = encodeChunk(c);
    expect(data.length).toBeLessThan((720 * 2) / 8 + 40);
    expectSameBits(decodeChunk(data).v, c.v);
  });

  it('NaN, +-Infinity, -0, subnormals and extremes keep their exact value', () => {
    const v = [0, -0, NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MAX_VALUE, Number.MAX_VALUE, 1e-310, 3, NaN, -0];
    const ts = v.map((_, i) => T0 + i);
    expectSameBits(roundTrip(columns(ts, v)).v, v);
    // And through the XOR codec alone (decimal mode never applies to these).
    const w = new BitWriter();
    encodeXorValues(w, v, v.length);
    const out = new Float64Array(v.length);
    decodeXorValues(new BitReader(w.finish()), v.length, out);
    expectSameBits(out, v);
  });

  it('big gaps, negative values, integers and timestamps near the limit', () => {
    const ts = [0, 1, 2, 86_400_000 * 365, 86_400_000 * 365 + 1, 2 ** 47 - 10, 2 ** 47 - 1];
    const v = [-1e6, -123456789, 2 ** 50, -(2 ** 50), 17, 0, -3];
    const out = roundTrip(columns(ts, v));
    expect(Array.from(out.ts)).toEqual(ts);
    expectSameBits(out.v, v);
  });

  it('decimal-scaled values (int / 10^k) use decimal mode and stay bit-exact', () => {
    const r = rng(3);
    const ts: number[] = [];
    const v: number[] = [];
    let m = 7342;
    for (let i = 0; i < 720; i++) {
      ts.push(T0 + i * 1000);
      m += Math.round((r() - 0.5) * 40);
      v.push(m / 10);
    }
    expect(decimalScale(v, v.length)).toBe(1);
    const { data } = encodeChunk(columns(ts, v));
    // XOR of such values needs ~5-6 bytes each; decimal deltas about 1.
    expect(data.length / 720).toBeLessThan(1.6);
    expectSameBits(decodeChunk(data).v, v);
  });

  it('values that only look decimal (0.1 * 3) fall back to XOR and stay exact', () => {
    const v = [0.1 * 3, 0.7, 1 / 3];
    expect(decimalScale(v, v.length)).toBe(-1);
    expectSameBits(roundTrip(columns([1, 2, 3], v)).v, v);
  });

  it('qualities and nulls survive as run lengths', () => {
    const ts = Array.from({ length: 300 }, (_, i) => T0 + i * 1000);
    const q = ts.map((_, i) => (i < 100 ? 0 : i < 110 ? 2 | NULL_FLAG : i < 200 ? 1 : 4));
    const out = roundTrip(columns(ts, ts.map((_, i) => i), q));
    expect(Array.from(out.q)).toEqual(q);
  });

  it('stored statistics equal a naive computation', () => {
    const r = rng(4);
    const n = 500;
    const c = allocColumns(n);
    for (let i = 0; i < n; i++) {
      c.ts[i] = T0 + i * 1000;
      c.v[i] = (r() - 0.3) * 100;
      c.q[i] = r() < 0.1 ? 2 | NULL_FLAG : 0;
    }
    const s = computeStats(c);
    const vals = Array.from(c.v).filter((_, i) => !((c.q[i] as number) & NULL_FLAG));
    expect(s.count).toBe(vals.length);
    expect(s.n).toBe(n);
    expect(s.min).toBe(Math.min(...vals));
    expect(s.max).toBe(Math.max(...vals));
    expect(s.sum).toBeCloseTo(vals.reduce((a, b) => a + b, 0), 9);
    expect(s.sumSq).toBeCloseTo(vals.reduce((a, b) => a + b * b, 0), 6);
    expect(s.first).toBe(vals[0]);
    expect(s.last).toBe(vals[vals.length - 1]);
    expect(s.minTs).toBe(T0);
    expect(s.maxTs).toBe(T0 + (n - 1) * 1000);
  });

  it('merging keeps the stored sample on a duplicate ts', () => {
    const a = columns([1, 3, 5], [10, 30, 50]);
    const b = columns([2, 3, 6], [20, 99, 60]);
    const { merged, duplicates } = mergeColumns(a, b);
    expect(Array.from(merged.ts)).toEqual([1, 2, 3, 5, 6]);
    expect(Array.from(merged.v)).toEqual([10, 20, 30, 50, 60]);
    expect(duplicates).toBe(1);
  });

  it('rejects an unknown chunk format', () => {
    const { data } = encodeChunk(columns([1], [1]));
    data[0] = 99;
    expect(() => decodeChunk(data)).toThrow(/format/);
  });
});

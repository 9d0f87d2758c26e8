/**
 * The metadata a model carries (ONNX ModelProto `metadata_props`, written by the training
 * pipeline): onnxruntime-node does not expose it, so this reads it from the file's protobuf
 * encoding directly (Protocol Buffers encoding: varint, 64-bit, length-delimited and 32-bit wire
 * types; ModelProto field 14 is `repeated StringStringEntryProto metadata_props`, whose key is
 * field 1 and value field 2, per onnx.proto). Only the top level and those entries are walked;
 * every other field is skipped by its wire type, so a file cut short or not protobuf at all fails
 * here with a message saying where.
 */

export class OnnxFormatError extends Error {}

const METADATA_PROPS = 14;

interface Cursor {
  buf: Uint8Array;
  pos: number;
  end: number;
}

function varint(c: Cursor): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (c.pos >= c.end) throw new OnnxFormatError(`truncated varint at byte ${c.pos}`);
    const b = c.buf[c.pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return result;
    mul *= 128;
  }
  throw new OnnxFormatError(`varint longer than 10 bytes at byte ${c.pos}`);
}

function skip(c: Cursor, wire: number): void {
  if (wire === 0) varint(c);
  else if (wire === 1) c.pos += 8;
  else if (wire === 2) {
    const n = varint(c); // read before c.pos is: `c.pos += varint(c)` would add to the old position
    c.pos += n;
  }
  else if (wire === 5) c.pos += 4;
  else throw new OnnxFormatError(`unsupported protobuf wire type ${wire} at byte ${c.pos}`);
  if (c.pos > c.end) throw new OnnxFormatError(`field runs past the end of the data (byte ${c.pos} of ${c.end})`);
}

function bytes(c: Cursor): Uint8Array {
  const n = varint(c);
  if (c.pos + n > c.end) throw new OnnxFormatError(`length-delimited field of ${n} bytes runs past the end (byte ${c.pos} of ${c.end})`);
  const out = c.buf.subarray(c.pos, c.pos + n);
  c.pos += n;
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

function entry(data: Uint8Array): [string, string] {
  const c: Cursor = { buf: data, pos: 0, end: data.length };
  let key = '';
  let value = '';
  while (c.pos < c.end) {
    const tag = varint(c);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 2 && field === 1) key = utf8.decode(bytes(c));
    else if (wire === 2 && field === 2) value = utf8.decode(bytes(c));
    else skip(c, wire);
  }
  return [key, value];
}

/**
 * The model's metadata_props as a map. Throws OnnxFormatError when the data is not a whole
 * protobuf message (a truncated or corrupt file).
 */
export function readOnnxMetadata(data: Uint8Array): Map<string, string> {
  const c: Cursor = { buf: data, pos: 0, end: data.length };
  const out = new Map<string, string>();
  if (data.length === 0) throw new OnnxFormatError('empty file');
  while (c.pos < c.end) {
    const tag = varint(c);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 0) throw new OnnxFormatError(`field number 0 at byte ${c.pos}: not an ONNX model`);
    if (field === METADATA_PROPS && wire === 2) {
      const [k, v] = entry(bytes(c));
      out.set(k, v);
    } else {
      skip(c, wire);
    }
  }
  return out;
}

/**
 * Header encoding of `vnd.amazon.eventstream` (docs/local-runtime.md "Framing"): `u8 nameLen`, name
 * (UTF-8), `u8 type`, value. Limits from aws-c-event-stream `event_stream.h`: values at most
 * 32767 bytes, at most 1024 headers per message. Message framing is in ./codec.ts.
 */

export const MAX_HEADERS = 1024;
/** INT16_MAX in aws-c-event-stream: the largest byte-buffer or string header value. */
export const MAX_HEADER_VALUE_BYTES = 32767;
export const MAX_HEADER_NAME_BYTES = 255;

export type FrameErrorCode =
  | 'PRELUDE_CRC'
  | 'MESSAGE_CRC'
  | 'TOTAL_LENGTH_TOO_SMALL'
  | 'HEADERS_LENGTH'
  | 'MESSAGE_TOO_LARGE'
  | 'TOO_MANY_HEADERS'
  | 'HEADER_VALUE_TOO_LONG'
  | 'HEADER_MALFORMED'
  | 'INVALID_HEADER';

/** A framing violation (decoding) or an unencodable message (encoding). */
export class FrameError extends Error {
  readonly code: FrameErrorCode;
  constructor(code: FrameErrorCode, message: string) {
    super(message);
    this.name = 'FrameError';
    this.code = code;
  }
}

/** Wire type codes of header values ("Framing"). */
const TYPE_CODES = {
  boolTrue: 0,
  boolFalse: 1,
  byte: 2,
  int16: 3,
  int32: 4,
  int64: 5,
  bytes: 6,
  string: 7,
  timestamp: 8,
  uuid: 9,
} as const;

export type HeaderValue =
  | { type: 'bool'; value: boolean }
  | { type: 'byte'; value: number }
  | { type: 'int16'; value: number }
  | { type: 'int32'; value: number }
  | { type: 'int64'; value: bigint }
  | { type: 'bytes'; value: Buffer }
  | { type: 'string'; value: string }
  /** Milliseconds since the epoch (int64 on the wire). */
  | { type: 'timestamp'; value: number }
  /** Exactly 16 bytes. */
  | { type: 'uuid'; value: Buffer };

export type HeaderType = HeaderValue['type'];
export type Header = { name: string } & HeaderValue;

/** Header constructors, so call sites read `hdr.int32(':stream-id', 1)`. */
export const hdr = {
  bool: (name: string, value: boolean): Header => ({ name, type: 'bool', value }),
  byte: (name: string, value: number): Header => ({ name, type: 'byte', value }),
  int16: (name: string, value: number): Header => ({ name, type: 'int16', value }),
  int32: (name: string, value: number): Header => ({ name, type: 'int32', value }),
  int64: (name: string, value: bigint): Header => ({ name, type: 'int64', value }),
  bytes: (name: string, value: Buffer): Header => ({ name, type: 'bytes', value }),
  string: (name: string, value: string): Header => ({ name, type: 'string', value }),
  timestamp: (name: string, value: number): Header => ({ name, type: 'timestamp', value }),
  uuid: (name: string, value: Buffer): Header => ({ name, type: 'uuid', value }),
};

// ---------------------------------------------------------------------------------------------
// Encoding

function checkInt(h: Header, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new FrameError('INVALID_HEADER', `header ${h.name}: ${h.type} value ${value} out of range`);
  }
}

/** Bytes one header takes on the wire; validates the value on the way. */
export function headerWireSize(h: Header, nameBytes: number): number {
  const base = 1 + nameBytes + 1;
  switch (h.type) {
    case 'bool':
      return base;
    case 'byte':
      checkInt(h, h.value, -128, 127);
      return base + 1;
    case 'int16':
      checkInt(h, h.value, -32768, 32767);
      return base + 2;
    case 'int32':
      checkInt(h, h.value, -2147483648, 2147483647);
      return base + 4;
    case 'int64':
      if (h.value < -(2n ** 63n) || h.value >= 2n ** 63n) {
        throw new FrameError('INVALID_HEADER', `header ${h.name}: int64 value out of range`);
      }
      return base + 8;
    case 'timestamp':
      if (!Number.isSafeInteger(h.value)) {
        throw new FrameError('INVALID_HEADER', `header ${h.name}: timestamp must be an integer number of ms`);
      }
      return base + 8;
    case 'uuid':
      if (h.value.length !== 16) throw new FrameError('INVALID_HEADER', `header ${h.name}: uuid must be 16 bytes`);
      return base + 16;
    case 'bytes':
    case 'string': {
      const len = h.type === 'bytes' ? h.value.length : Buffer.byteLength(h.value, 'utf8');
      if (len > MAX_HEADER_VALUE_BYTES) {
        throw new FrameError('HEADER_VALUE_TOO_LONG', `header ${h.name}: value of ${len} bytes exceeds ${MAX_HEADER_VALUE_BYTES}`);
      }
      return base + 2 + len;
    }
  }
}

/** Writes one header at `offset` (its size already checked by headerWireSize); returns the end offset. */
export function writeHeader(buf: Buffer, offset: number, h: Header, name: Buffer): number {
  let o = buf.writeUInt8(name.length, offset);
  o += name.copy(buf, o);
  switch (h.type) {
    case 'bool':
      return buf.writeUInt8(h.value ? TYPE_CODES.boolTrue : TYPE_CODES.boolFalse, o);
    case 'byte':
      o = buf.writeUInt8(TYPE_CODES.byte, o);
      return buf.writeInt8(h.value, o);
    case 'int16':
      o = buf.writeUInt8(TYPE_CODES.int16, o);
      return buf.writeInt16BE(h.value, o);
    case 'int32':
      o = buf.writeUInt8(TYPE_CODES.int32, o);
      return buf.writeInt32BE(h.value, o);
    case 'int64':
      o = buf.writeUInt8(TYPE_CODES.int64, o);
      return buf.writeBigInt64BE(h.value, o);
    case 'timestamp':
      o = buf.writeUInt8(TYPE_CODES.timestamp, o);
      return buf.writeBigInt64BE(BigInt(h.value), o);
    case 'uuid':
      o = buf.writeUInt8(TYPE_CODES.uuid, o);
      return o + h.value.copy(buf, o);
    case 'bytes':
      o = buf.writeUInt8(TYPE_CODES.bytes, o);
      o = buf.writeUInt16BE(h.value.length, o);
      return o + h.value.copy(buf, o);
    case 'string': {
      o = buf.writeUInt8(TYPE_CODES.string, o);
      const len = buf.write(h.value, o + 2, 'utf8');
      buf.writeUInt16BE(len, o);
      return o + 2 + len;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

function need(end: number, limit: number, what: string): void {
  if (end > limit) throw new FrameError('HEADER_MALFORMED', `truncated ${what}`);
}

/** Decodes the header block `buf[start, end)`; throws FrameError on any inconsistency. */
export function decodeHeaders(buf: Buffer, start: number, end: number): Header[] {
  const headers: Header[] = [];
  let o = start;
  while (o < end) {
    if (headers.length === MAX_HEADERS) {
      throw new FrameError('TOO_MANY_HEADERS', `more than ${MAX_HEADERS} headers`);
    }
    const nameLen = buf.readUInt8(o);
    o += 1;
    need(o + nameLen + 1, end, 'header name');
    const name = buf.toString('utf8', o, o + nameLen);
    o += nameLen;
    const code = buf.readUInt8(o);
    o += 1;
    switch (code) {
      case TYPE_CODES.boolTrue:
      case TYPE_CODES.boolFalse:
        headers.push(hdr.bool(name, code === TYPE_CODES.boolTrue));
        break;
      case TYPE_CODES.byte:
        need(o + 1, end, `header ${name}`);
        headers.push(hdr.byte(name, buf.readInt8(o)));
        o += 1;
        break;
      case TYPE_CODES.int16:
        need(o + 2, end, `header ${name}`);
        headers.push(hdr.int16(name, buf.readInt16BE(o)));
        o += 2;
        break;
      case TYPE_CODES.int32:
        need(o + 4, end, `header ${name}`);
        headers.push(hdr.int32(name, buf.readInt32BE(o)));
        o += 4;
        break;
      case TYPE_CODES.int64:
        need(o + 8, end, `header ${name}`);
        headers.push(hdr.int64(name, buf.readBigInt64BE(o)));
        o += 8;
        break;
      case TYPE_CODES.timestamp:
        need(o + 8, end, `header ${name}`);
        // Lossy only beyond 2^53 ms (~285,000 years): not worth a bigint in the API.
        headers.push(hdr.timestamp(name, Number(buf.readBigInt64BE(o))));
        o += 8;
        break;
      case TYPE_CODES.uuid:
        need(o + 16, end, `header ${name}`);
        headers.push(hdr.uuid(name, Buffer.from(buf.subarray(o, o + 16))));
        o += 16;
        break;
      case TYPE_CODES.bytes:
      case TYPE_CODES.string: {
        need(o + 2, end, `header ${name}`);
        const len = buf.readUInt16BE(o);
        o += 2;
        if (len > MAX_HEADER_VALUE_BYTES) {
          throw new FrameError('HEADER_VALUE_TOO_LONG', `header ${name}: value of ${len} bytes exceeds ${MAX_HEADER_VALUE_BYTES}`);
        }
        need(o + len, end, `header ${name}`);
        headers.push(
          code === TYPE_CODES.bytes
            ? hdr.bytes(name, Buffer.from(buf.subarray(o, o + len)))
            : hdr.string(name, buf.toString('utf8', o, o + len)),
        );
        o += len;
        break;
      }
      default:
        throw new FrameError('HEADER_MALFORMED', `header ${name}: unknown value type ${code}`);
    }
  }
  return headers;
}

/**
 * `vnd.amazon.eventstream` framing: the binary message format under Greengrass IPC.
 *
 * Layout (https://smithy.io/2.0/aws/amazon-eventstream.html; docs/local-runtime.md "Framing"):
 *   u32 total length | u32 headers length | u32 prelude CRC | headers | payload | u32 message CRC
 * Both CRCs are CRC-32 (IEEE, the zlib one). The message CRC covers every byte before it,
 * the prelude CRC included. Limits follow aws-c-event-stream `event_stream.h`: header values at
 * most 32767 bytes, at most 1024 headers (see ./headers.ts); the message limit is configurable
 * (16 MiB default, the lower of the two limits shipped by aws-c-event-stream releases).
 *
 * This module knows nothing about RPC (message types, stream ids): see ./rpc.ts.
 */
import zlib from 'node:zlib';
import {
  decodeHeaders,
  FrameError,
  headerWireSize,
  MAX_HEADER_NAME_BYTES,
  MAX_HEADERS,
  writeHeader,
  type Header,
} from './headers';

export {
  FrameError,
  hdr,
  MAX_HEADER_VALUE_BYTES,
  MAX_HEADERS,
  type FrameErrorCode,
  type Header,
  type HeaderType,
  type HeaderValue,
} from './headers';

export const PRELUDE_BYTES = 12;
/** Prelude plus the trailing message CRC: the size of a message with no headers and no payload. */
export const MIN_MESSAGE_BYTES = 16;
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface Message {
  headers: Header[];
  payload: Buffer;
}

/**
 * First header with this name. Names compare case-insensitively, as aws-c-event-stream does
 * (`event_stream_rpc.c`); the JS client itself always sends lower-case names.
 */
export function findHeader(message: Message, name: string): Header | undefined {
  const wanted = name.toLowerCase();
  return message.headers.find((h) => h.name.toLowerCase() === wanted);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Encode one message. Throws FrameError if a header is invalid or the message exceeds maxMessageBytes. */
export function encodeMessage(message: Message, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): Buffer {
  if (message.headers.length > MAX_HEADERS) {
    throw new FrameError('TOO_MANY_HEADERS', `${message.headers.length} headers exceed ${MAX_HEADERS}`);
  }
  const names: Buffer[] = [];
  let headersLength = 0;
  for (const h of message.headers) {
    const name = Buffer.from(h.name, 'utf8');
    if (name.length > MAX_HEADER_NAME_BYTES) {
      throw new FrameError('INVALID_HEADER', `header name of ${name.length} bytes exceeds ${MAX_HEADER_NAME_BYTES}`);
    }
    names.push(name);
    headersLength += headerWireSize(h, name.length);
  }
  const total = MIN_MESSAGE_BYTES + headersLength + message.payload.length;
  if (total > maxMessageBytes) {
    throw new FrameError('MESSAGE_TOO_LARGE', `message of ${total} bytes exceeds the maximum of ${maxMessageBytes}`);
  }
  const buf = Buffer.allocUnsafe(total);
  buf.writeUInt32BE(total, 0);
  buf.writeUInt32BE(headersLength, 4);
  buf.writeUInt32BE(zlib.crc32(buf.subarray(0, 8)), 8);
  let o = PRELUDE_BYTES;
  message.headers.forEach((h, i) => {
    o = writeHeader(buf, o, h, names[i] as Buffer);
  });
  o += message.payload.copy(buf, o);
  buf.writeUInt32BE(zlib.crc32(buf.subarray(0, o)), o);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Decoding

interface Prelude {
  total: number;
  headersLength: number;
}

/** Validate the 12-byte prelude before buffering the rest, so a bogus length never allocates. */
function checkPrelude(buf: Buffer, maxMessageBytes: number): Prelude {
  const total = buf.readUInt32BE(0);
  const headersLength = buf.readUInt32BE(4);
  const crc = buf.readUInt32BE(8);
  if (zlib.crc32(buf.subarray(0, 8)) !== crc) {
    throw new FrameError('PRELUDE_CRC', 'prelude CRC mismatch');
  }
  if (total < MIN_MESSAGE_BYTES) {
    throw new FrameError('TOTAL_LENGTH_TOO_SMALL', `total length ${total} is below ${MIN_MESSAGE_BYTES}`);
  }
  if (headersLength > total - MIN_MESSAGE_BYTES) {
    throw new FrameError('HEADERS_LENGTH', `headers length ${headersLength} does not fit in a ${total}-byte message`);
  }
  if (total > maxMessageBytes) {
    throw new FrameError('MESSAGE_TOO_LARGE', `message of ${total} bytes exceeds the maximum of ${maxMessageBytes}`);
  }
  return { total, headersLength };
}

/**
 * Decode exactly one complete message. The payload is a view into `buf` (no copy), so callers
 * that keep it must not reuse `buf`.
 */
export function decodeMessage(buf: Buffer, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): Message {
  if (buf.length < PRELUDE_BYTES) {
    throw new FrameError('TOTAL_LENGTH_TOO_SMALL', `buffer of ${buf.length} bytes holds no prelude`);
  }
  const { total, headersLength } = checkPrelude(buf, maxMessageBytes);
  if (buf.length !== total) {
    throw new FrameError('HEADERS_LENGTH', `buffer of ${buf.length} bytes does not match total length ${total}`);
  }
  return decodeBody(buf, headersLength);
}

function decodeBody(frame: Buffer, headersLength: number): Message {
  const crcAt = frame.length - 4;
  if (zlib.crc32(frame.subarray(0, crcAt)) !== frame.readUInt32BE(crcAt)) {
    throw new FrameError('MESSAGE_CRC', 'message CRC mismatch');
  }
  const headersEnd = PRELUDE_BYTES + headersLength;
  return { headers: decodeHeaders(frame, PRELUDE_BYTES, headersEnd), payload: frame.subarray(headersEnd, crcAt) };
}

/**
 * Streaming reader: feed it socket chunks, get whole messages back. It buffers partial frames,
 * splits several frames out of one chunk, and copies each byte at most once (a large frame is
 * assembled into a buffer of its exact size, allocated only after its prelude CRC checks out).
 *
 * After a FrameError the byte stream cannot be re-synchronised (there is no frame marker), so
 * the decoder stays failed and every later push rethrows: the caller closes the connection.
 */
export class FrameDecoder {
  private readonly maxMessageBytes: number;
  private readonly prelude = Buffer.alloc(PRELUDE_BYTES);
  private preludeFill = 0;
  private frame: Buffer | undefined;
  private frameFill = 0;
  private headersLength = 0;
  private failure: FrameError | undefined;

  constructor(opts: { maxMessageBytes?: number } = {}) {
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.frame ? this.frameFill : this.preludeFill;
  }

  push(chunk: Buffer): Message[] {
    if (this.failure) throw this.failure;
    try {
      return this.consume(chunk);
    } catch (err) {
      if (err instanceof FrameError) this.failure = err;
      this.frame = undefined;
      throw err;
    }
  }

  private consume(chunk: Buffer): Message[] {
    const out: Message[] = [];
    let o = 0;
    while (o < chunk.length) {
      if (!this.frame) {
        // Fast path: a whole frame sits in the chunk; decode it in place without copying.
        if (this.preludeFill === 0 && chunk.length - o >= PRELUDE_BYTES) {
          const p = checkPrelude(chunk.subarray(o, o + PRELUDE_BYTES), this.maxMessageBytes);
          if (chunk.length - o >= p.total) {
            out.push(decodeBody(chunk.subarray(o, o + p.total), p.headersLength));
            o += p.total;
            continue;
          }
        }
        const n = Math.min(PRELUDE_BYTES - this.preludeFill, chunk.length - o);
        chunk.copy(this.prelude, this.preludeFill, o, o + n);
        this.preludeFill += n;
        o += n;
        if (this.preludeFill < PRELUDE_BYTES) break;
        const p = checkPrelude(this.prelude, this.maxMessageBytes);
        this.frame = Buffer.allocUnsafe(p.total);
        this.prelude.copy(this.frame, 0);
        this.frameFill = PRELUDE_BYTES;
        this.headersLength = p.headersLength;
        this.preludeFill = 0;
      }
      const frame: Buffer = this.frame;
      const n = Math.min(frame.length - this.frameFill, chunk.length - o);
      chunk.copy(frame, this.frameFill, o, o + n);
      this.frameFill += n;
      o += n;
      if (this.frameFill === frame.length) {
        this.frame = undefined;
        out.push(decodeBody(frame, this.headersLength));
      }
    }
    return out;
  }
}

/**
 * The Stream Manager's wire protocol (protocol version 1.1.0, as the AWS Stream Manager SDKs for
 * JavaScript, Python and Java speak it): after TCP connect each side sends one raw byte, the
 * connect version 0x01; then frames in both directions:
 *
 *   int32 big-endian  L = payload length + 1 (the op byte counts)
 *   int8              operation
 *   L-1 bytes         one CBOR map with camelCase text keys (absent fields are left out)
 *
 * The decoder is streaming: it keeps the chunks of the frame being received and joins them only
 * once the frame is complete, so a connection costs what its frames cost, never a preallocated
 * gigabyte (the SDK client reads with a 1 GiB high-water mark; a server cannot afford that per
 * connection). A frame announcing more than `maxFrameBytes` is a protocol violation: the caller
 * closes the connection and logs why.
 */
import cbor from 'cbor';

export const CONNECT_VERSION = 1;
export const PROTOCOL_VERSION = '1.1.0';
export const SUPPORTED_PROTOCOL_VERSIONS = ['1.1.0', '1.0.0'];
/** The protocol's own ceiling for one frame (2^30 bytes). */
export const PROTOCOL_MAX_FRAME = 1 << 30;

export const Op = {
  Unknown: 0,
  Connect: 1,
  CreateMessageStream: 2,
  DeleteMessageStream: 3,
  AppendMessage: 4,
  ReadMessages: 5,
  ConnectResponse: 6,
  CreateMessageStreamResponse: 7,
  DeleteMessageStreamResponse: 8,
  AppendMessageResponse: 9,
  ReadMessagesResponse: 10,
  ListStreams: 11,
  ListStreamsResponse: 12,
  DescribeMessageStream: 13,
  DescribeMessageStreamResponse: 14,
  UpdateMessageStream: 15,
  UpdateMessageStreamResponse: 16,
  UnknownOperationError: 17,
} as const;

export const Status = {
  Success: 0,
  UnknownFailure: 1,
  Unauthorized: 2,
  InvalidRequest: 3,
  RequestPayloadTooLarge: 4,
  ResourceNotFound: 5,
  ServerTimeout: 6,
  ResponsePayloadTooLarge: 7,
  UnsupportedConnectVersion: 8,
  UnexpectedOperation: 9,
  UnsupportedProtocolVersion: 10,
  InvalidProtocolVersion: 11,
  FailedToConnect: 12,
  NotEnoughMessages: 13,
  MessageStoreReadError: 14,
  OutOfMemoryError: 15,
  UpdateFailed: 16,
  UpdateNotAllowed: 17,
  UnknownOperation: 18,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/** The pattern every name and request id must match (the SDKs' validation maps). */
export const NAME_PATTERN = /^[\w ,.\-_]*$/;

/** A request the server refuses with a status code; the message becomes the response's errorMessage. */
export class RequestError extends Error {
  constructor(
    readonly status: StatusCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Frame {
  op: number;
  payload: Buffer;
}

export function encodeFrame(op: number, body: Record<string, unknown>): Buffer {
  // Absent fields are left out, not sent as null (the SDKs' asMap() does the same).
  const clean: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (v !== undefined && v !== null) clean[k] = v;
  // cbor 5's encode() silently drops every piece pushed after its output passed the stream's
  // high-water mark (16 KiB): a read response of many messages would be cut. An explicit mark as
  // large as any frame keeps responses whole.
  const payload = cbor.Encoder.encodeOne(clean, { highWaterMark: PROTOCOL_MAX_FRAME });
  const header = Buffer.alloc(5);
  header.writeInt32BE(payload.length + 1, 0);
  header.writeInt8(op, 4);
  return Buffer.concat([header, payload]);
}

export function decodePayload(payload: Buffer): Record<string, unknown> {
  const v: unknown = payload.length === 0 ? {} : cbor.decodeFirstSync(payload);
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Buffer.isBuffer(v)) throw new Error('the frame payload is not a CBOR map');
  return v as Record<string, unknown>;
}

/**
 * The requestId of a request whose CBOR does not decode, found by its text key, so the request can
 * still be answered (AWS's JS client 1.7.0 encodes with cbor 5's encode(), which drops what follows
 * once its output passes 16 KiB; its appends put the payload last and arrive whole, but a request
 * built of many pieces would arrive as a whole frame of truncated CBOR).
 */
export function salvageRequestId(payload: Buffer): string | undefined {
  const key = Buffer.from([0x69, ...Buffer.from('requestId')]);
  const at = payload.indexOf(key);
  if (at < 0) return undefined;
  let p = at + key.length;
  const h = payload[p];
  if (h === undefined) return undefined;
  let len: number;
  if (h >= 0x60 && h <= 0x77) len = h - 0x60;
  else if (h === 0x78 && payload[p + 1] !== undefined) {
    len = payload[p + 1]!;
    p += 1;
  } else return undefined;
  const id = payload.subarray(p + 1, p + 1 + len).toString('utf8');
  return id.length === len && NAME_PATTERN.test(id) ? id : undefined;
}

export class FrameTooLargeError extends Error {}

/**
 * Incremental decoder: push() socket chunks, get whole frames back. `expectConnectByte` makes it
 * first consume the one raw connect-version byte (returned as a frame with op -1).
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1;
  private awaitingVersion: boolean;

  constructor(
    private readonly maxFrameBytes: number,
    expectConnectByte: boolean,
  ) {
    this.awaitingVersion = expectConnectByte;
  }

  /** Bytes held for the frame in progress. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer): Frame[] {
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.awaitingVersion) {
        if (this.buffered < 1) break;
        const b = this.take(1);
        this.awaitingVersion = false;
        out.push({ op: -1, payload: b });
        continue;
      }
      if (this.need < 0) {
        if (this.buffered < 4) break;
        const len = this.take(4).readInt32BE(0);
        if (len < 1) throw new Error(`invalid frame length ${len}`);
        if (len > this.maxFrameBytes) throw new FrameTooLargeError(`frame of ${len} bytes is over the limit of ${this.maxFrameBytes}`);
        this.need = len;
      }
      if (this.buffered < this.need) break;
      const body = this.take(this.need);
      this.need = -1;
      out.push({ op: body.readInt8(0), payload: body.subarray(1) });
    }
    return out;
  }

  private take(n: number): Buffer {
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}

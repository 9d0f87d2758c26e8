/**
 * Event-stream RPC layer over the framing in ./codec.ts: the reserved headers every message
 * carries and builders for the server's messages.
 *
 * Follows aws-c-event-stream `event_stream_rpc.c` / `event_stream_rpc_server.c` and the Java
 * server (`aws-iot-device-sdk-java-v2: sdk/greengrass/event-stream-rpc-server`), as summarised in
 * docs/local-runtime.md "The IPC wire protocol"; quoted section names below are that page's.
 */
import { findHeader, hdr, type Header, type Message } from './codec';

/** `:message-type` values ("RPC headers"). */
export const MessageType = {
  ApplicationMessage: 0,
  ApplicationError: 1,
  Ping: 2,
  PingResponse: 3,
  Connect: 4,
  ConnectAck: 5,
  ProtocolError: 6,
  InternalError: 7,
} as const;

/** `:message-flags` bits ("RPC headers"). */
export const MessageFlags = { ConnectionAccepted: 1, TerminateStream: 2 } as const;

export const H_MESSAGE_TYPE = ':message-type';
export const H_MESSAGE_FLAGS = ':message-flags';
export const H_STREAM_ID = ':stream-id';
export const H_OPERATION = 'operation';
export const H_VERSION = ':version';
export const H_CONTENT_TYPE = ':content-type';
export const H_SERVICE_MODEL_TYPE = 'service-model-type';

export const RPC_VERSION = '0.1.0';
export const CONTENT_JSON = 'application/json';
export const CONTENT_TEXT = 'text/plain';
export const SERVICE_NAMESPACE = 'aws.greengrass#';
export const SERVICE_ID = 'aws.greengrass#GreengrassCoreIPC';

export interface RpcMeta {
  type: number;
  flags: number;
  streamId: number;
  /** Only meaningful on the first message of a stream. */
  operation: string | undefined;
}

/**
 * Reads the three required int32 headers (and `operation`). Returns an error text instead of
 * throwing when one is missing or mistyped: the caller answers that with a ProtocolError, as
 * `aws_event_stream_rpc_extract_message_metadata` failing does in the C server.
 */
export function readRpcMeta(msg: Message): RpcMeta | string {
  const ints: number[] = [];
  for (const name of [H_MESSAGE_TYPE, H_MESSAGE_FLAGS, H_STREAM_ID]) {
    const h = findHeader(msg, name);
    if (!h) return `missing required header ${name}`;
    if (h.type !== 'int32') return `header ${name} must be int32, got ${h.type}`;
    ints.push(h.value);
  }
  const op = findHeader(msg, H_OPERATION);
  return {
    type: ints[0] as number,
    flags: ints[1] as number,
    streamId: ints[2] as number,
    operation: op && op.type === 'string' ? op.value : undefined,
  };
}

/** A JSON object (what every request, response and document field must be, "JSON bodies"). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function stringHeader(msg: Message, name: string): string | undefined {
  const h = findHeader(msg, name);
  return h && h.type === 'string' ? h.value : undefined;
}

function rpc(type: number, flags: number, streamId: number, extra: Header[], payload: Buffer): Message {
  return {
    headers: [hdr.int32(H_MESSAGE_TYPE, type), hdr.int32(H_MESSAGE_FLAGS, flags), hdr.int32(H_STREAM_ID, streamId), ...extra],
    payload,
  };
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');

/** "Connect handshake": accept = flags 1, reject = flags 0 (then the server closes). No payload either way. */
export function connectAck(accepted: boolean): Message {
  return rpc(MessageType.ConnectAck, accepted ? MessageFlags.ConnectionAccepted : 0, 0, [], Buffer.alloc(0));
}

/** "Errors", connection level: type 6 (or 7) on stream 0 with `{"message": ...}`, then close. */
export function connectionError(text: string, type: number = MessageType.ProtocolError): Message {
  return rpc(type, 0, 0, [hdr.string(H_CONTENT_TYPE, CONTENT_JSON)], json({ message: text }));
}

/** "Errors", Ping: answer with PingResponse echoing the payload and the application (non-`:`) headers. */
export function pingResponse(ping: Message): Message {
  const echoed = ping.headers.filter((h) => !h.name.startsWith(':'));
  return rpc(MessageType.PingResponse, 0, 0, echoed, ping.payload);
}

/** An application message carrying a JSON body typed by `service-model-type` ("Streams"). */
export function applicationJson(streamId: number, shape: string, body: Buffer, terminate: boolean, type: number = MessageType.ApplicationMessage): Message {
  return rpc(
    type,
    terminate ? MessageFlags.TerminateStream : 0,
    streamId,
    [hdr.string(H_CONTENT_TYPE, CONTENT_JSON), hdr.string(H_SERVICE_MODEL_TYPE, shape)],
    body,
  );
}

/**
 * "Errors", unmodeled failure (the Java catch-all): text/plain `InternalServerError`, no shape header.
 * The JS client turns it into an InternalError quoting the text.
 */
export function unmodeledError(streamId: number): Message {
  return rpc(
    MessageType.ApplicationError,
    MessageFlags.TerminateStream,
    streamId,
    [hdr.string(H_CONTENT_TYPE, CONTENT_TEXT)],
    Buffer.from('InternalServerError', 'utf8'),
  );
}

import zlib from 'node:zlib';
import {
  decodeMessage,
  encodeMessage,
  FrameDecoder,
  FrameError,
  findHeader,
  hdr,
  MAX_HEADERS,
  type FrameErrorCode,
  type Header,
  type Message,
} from '../../scripts/runtime/ipc/codec';

function expectFrameError(fn: () => unknown, code: FrameErrorCode): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(FrameError);
  expect((caught as FrameError).code).toBe(code);
}

/** Rewrites the prelude and both CRCs after a test has tampered with the lengths or the body. */
function refreshCrcs(buf: Buffer): Buffer {
  buf.writeUInt32BE(zlib.crc32(buf.subarray(0, 8)), 8);
  buf.writeUInt32BE(zlib.crc32(buf.subarray(0, buf.length - 4)), buf.length - 4);
  return buf;
}

const uuid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const allHeaders: Header[] = [
  hdr.bool('t', true),
  hdr.bool('f', false),
  hdr.byte('byte', -7),
  hdr.int16('i16', -12345),
  hdr.int32(':stream-id', 2147483647),
  hdr.int64('i64', -(2n ** 62n) - 3n),
  hdr.bytes('bin', Buffer.from([0, 1, 2, 255])),
  hdr.string('operation', 'aws.greengrass#PublishToTopic ünïcødé'),
  hdr.timestamp('ts', 1700000000123),
  hdr.uuid('id', uuid),
];

describe('eventstream codec', () => {
  it('round-trips every header type and the payload', () => {
    const payload = Buffer.from('{"topic":"a/b"}');
    const buf = encodeMessage({ headers: allHeaders, payload });
    const msg = decodeMessage(buf);
    expect(msg.headers).toEqual(allHeaders);
    expect(msg.payload.equals(payload)).toBe(true);
    expect(findHeader(msg, ':STREAM-ID')).toEqual(hdr.int32(':stream-id', 2147483647));
  });

  it('writes the documented layout: lengths, prelude CRC and message CRC', () => {
    const buf = encodeMessage({ headers: [hdr.int32(':message-type', 4)], payload: Buffer.from('xy') });
    const headersLength = 1 + ':message-type'.length + 1 + 4;
    expect(buf.readUInt32BE(0)).toBe(buf.length);
    expect(buf.readUInt32BE(4)).toBe(headersLength);
    expect(buf.length).toBe(16 + headersLength + 2);
    expect(buf.readUInt32BE(8)).toBe(zlib.crc32(buf.subarray(0, 8)));
    expect(buf.readUInt32BE(buf.length - 4)).toBe(zlib.crc32(buf.subarray(0, buf.length - 4)));
    expect(buf.subarray(buf.length - 6, buf.length - 4).toString()).toBe('xy');
  });

  it('encodes an empty message as 16 bytes', () => {
    const buf = encodeMessage({ headers: [], payload: Buffer.alloc(0) });
    expect(buf.length).toBe(16);
    expect(decodeMessage(buf)).toEqual({ headers: [], payload: Buffer.alloc(0) });
  });

  it('detects a corrupted prelude CRC', () => {
    const buf = encodeMessage({ headers: allHeaders, payload: Buffer.from('p') });
    buf[9] = (buf[9] as number) ^ 0xff;
    expectFrameError(() => decodeMessage(buf), 'PRELUDE_CRC');
  });

  it('detects a corrupted payload byte through the message CRC', () => {
    const buf = encodeMessage({ headers: allHeaders, payload: Buffer.from('payload') });
    buf[buf.length - 6] = (buf[buf.length - 6] as number) ^ 0x01;
    expectFrameError(() => decodeMessage(buf), 'MESSAGE_CRC');
  });

  it('rejects a total length below 16 and an inconsistent headers length', () => {
    const small = Buffer.alloc(16);
    small.writeUInt32BE(15, 0);
    expectFrameError(() => decodeMessage(refreshCrcs(small)), 'TOTAL_LENGTH_TOO_SMALL');

    const buf = encodeMessage({ headers: [hdr.string('a', 'b')], payload: Buffer.alloc(0) });
    buf.writeUInt32BE(buf.length, 4); // headers longer than the message can hold
    expectFrameError(() => decodeMessage(refreshCrcs(buf)), 'HEADERS_LENGTH');
  });

  it('rejects headers that overrun their declared length or use an unknown type', () => {
    const buf = encodeMessage({ headers: [hdr.int32('abc', 1)], payload: Buffer.from('zz') });
    buf.writeUInt32BE(buf.readUInt32BE(4) - 2, 4); // cut the int32 short
    expectFrameError(() => decodeMessage(refreshCrcs(buf)), 'HEADER_MALFORMED');

    const bad = encodeMessage({ headers: [hdr.bool('x', true)], payload: Buffer.alloc(0) });
    bad[12 + 1 + 1] = 42; // the type byte
    expectFrameError(() => decodeMessage(refreshCrcs(bad)), 'HEADER_MALFORMED');
  });

  it('enforces the maximum message size on both sides', () => {
    const msg: Message = { headers: [], payload: Buffer.alloc(1000) };
    expectFrameError(() => encodeMessage(msg, 1000), 'MESSAGE_TOO_LARGE');
    const buf = encodeMessage(msg);
    expectFrameError(() => decodeMessage(buf, 1000), 'MESSAGE_TOO_LARGE');
    expect(decodeMessage(buf, 1016).payload.length).toBe(1000);
  });

  it('limits header values to 32767 bytes', () => {
    const ok = hdr.bytes('v', Buffer.alloc(32767, 1));
    expect(decodeMessage(encodeMessage({ headers: [ok], payload: Buffer.alloc(0) })).headers[0]).toEqual(ok);
    expectFrameError(
      () => encodeMessage({ headers: [hdr.string('v', 'x'.repeat(32768))], payload: Buffer.alloc(0) }),
      'HEADER_VALUE_TOO_LONG',
    );
    // A peer that sends one anyway: patch the u16 length of a 32767-byte value to 32768.
    const buf = Buffer.concat([
      encodeMessage({ headers: [ok], payload: Buffer.alloc(0) }).subarray(0, -4),
      Buffer.alloc(1),
      Buffer.alloc(4),
    ]);
    buf.writeUInt32BE(buf.length, 0);
    buf.writeUInt32BE(buf.readUInt32BE(4) + 1, 4);
    buf.writeUInt16BE(32768, 12 + 1 + 1 + 1);
    expectFrameError(() => decodeMessage(refreshCrcs(buf)), 'HEADER_VALUE_TOO_LONG');
  });

  it('limits a message to 1024 headers', () => {
    const many = Array.from({ length: MAX_HEADERS }, (_, i) => hdr.bool(`h${i}`, true));
    expect(decodeMessage(encodeMessage({ headers: many, payload: Buffer.alloc(0) })).headers).toHaveLength(MAX_HEADERS);
    const tooMany = [...many, hdr.bool('x', false)];
    expectFrameError(() => encodeMessage({ headers: tooMany, payload: Buffer.alloc(0) }), 'TOO_MANY_HEADERS');
    // Build the 1025-header frame by hand: 1024 encoded ones plus one more appended.
    const base = encodeMessage({ headers: many, payload: Buffer.alloc(0) });
    const extra = Buffer.from([1, 0x78, 0]); // name "x", type bool true
    const buf = Buffer.concat([base.subarray(0, base.length - 4), extra, Buffer.alloc(4)]);
    buf.writeUInt32BE(buf.length, 0);
    buf.writeUInt32BE(base.readUInt32BE(4) + extra.length, 4);
    expectFrameError(() => decodeMessage(refreshCrcs(buf)), 'TOO_MANY_HEADERS');
  });

  it('rejects out-of-range values when encoding', () => {
    expectFrameError(() => encodeMessage({ headers: [hdr.int32('x', 2 ** 31)], payload: Buffer.alloc(0) }), 'INVALID_HEADER');
    expectFrameError(() => encodeMessage({ headers: [hdr.uuid('x', Buffer.alloc(15))], payload: Buffer.alloc(0) }), 'INVALID_HEADER');
    expectFrameError(() => encodeMessage({ headers: [hdr.byte('x', 200)], payload: Buffer.alloc(0) }), 'INVALID_HEADER');
  });
});

describe('FrameDecoder', () => {
  const messages: Message[] = [0, 1, 2].map((i) => ({
    headers: [hdr.int32(':stream-id', i), hdr.string('n', `m${i}`)],
    payload: Buffer.from(`payload-${i}`.repeat(i + 1)),
  }));
  const wire = Buffer.concat(messages.map((m) => encodeMessage(m)));

  it('splits several frames delivered in one chunk', () => {
    const out = new FrameDecoder().push(wire);
    expect(out).toEqual(messages);
  });

  it('reassembles frames delivered one byte at a time', () => {
    const dec = new FrameDecoder();
    const out: Message[] = [];
    for (let i = 0; i < wire.length; i++) out.push(...dec.push(wire.subarray(i, i + 1)));
    expect(out).toEqual(messages);
    expect(dec.bufferedBytes).toBe(0);
  });

  it('handles every split point of a two-frame stream', () => {
    const two = wire.subarray(0, encodeMessage(messages[0] as Message).length + encodeMessage(messages[1] as Message).length);
    for (let cut = 1; cut < two.length; cut++) {
      const dec = new FrameDecoder();
      const out = [...dec.push(two.subarray(0, cut)), ...dec.push(two.subarray(cut))];
      expect(out).toEqual(messages.slice(0, 2));
    }
  });

  it('rejects an oversized frame from its prelude alone and stays failed', () => {
    const dec = new FrameDecoder({ maxMessageBytes: 64 });
    const big = encodeMessage({ headers: [], payload: Buffer.alloc(100) });
    expectFrameError(() => dec.push(big.subarray(0, 12)), 'MESSAGE_TOO_LARGE');
    expectFrameError(() => dec.push(encodeMessage({ headers: [], payload: Buffer.alloc(0) })), 'MESSAGE_TOO_LARGE');
  });

  it('rejects garbage at once rather than waiting for the claimed length', () => {
    const dec = new FrameDecoder();
    expectFrameError(() => dec.push(Buffer.from('GET / HTTP/1.1\r\n')), 'PRELUDE_CRC');
  });

  it('detects a bad message CRC in a frame split across chunks', () => {
    const frame = encodeMessage(messages[2] as Message);
    frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 0x80;
    const dec = new FrameDecoder();
    expect(dec.push(frame.subarray(0, 20))).toEqual([]);
    expectFrameError(() => dec.push(frame.subarray(20)), 'MESSAGE_CRC');
  });

  it('decodes a large frame arriving in many chunks', () => {
    const payload = Buffer.alloc(3 * 1024 * 1024, 7);
    payload[payload.length - 1] = 9;
    const frame = encodeMessage({ headers: [hdr.string('k', 'v')], payload });
    const dec = new FrameDecoder();
    const out: Message[] = [];
    for (let o = 0; o < frame.length; o += 65536) out.push(...dec.push(frame.subarray(o, o + 65536)));
    expect(out).toHaveLength(1);
    expect((out[0] as Message).payload.equals(payload)).toBe(true);
  });
});

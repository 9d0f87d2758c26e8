/**
 * A small, deliberately misbehaving Modbus TCP server for the ModbusAdapter fault tests, on
 * node:net, 127.0.0.1, port 0. It serves holding registers (FC 3 reads, FC 16 writes) from a
 * sparse register image and can be told to misbehave in one of the ways field devices do.
 *
 * Framing follows the Modbus Messaging on TCP/IP Implementation Guide v1.0b §3.1.3 (MBAP header:
 * transaction id, protocol id 0, length = unit id + PDU bytes, unit id) and the Modbus Application
 * Protocol v1.1b3 §6.3 (FC 3), §6.12 (FC 16) and §7 (exception responses: function code | 0x80).
 *
 * A fault applies to every request, or only to requests whose register range overlaps
 * `[from, to)`; `setFault({ kind: 'none' })` clears it.
 *
 * With `framing: 'rtu'` it speaks RTU frames instead (Modbus over Serial Line v1.02 §2.5.1: unit,
 * PDU, CRC-16 low byte first, §6.2.2) on the TCP socket, for a socat pty bridge; the MBAP faults
 * (bad-length, bad-tid) do not apply there.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';

export type Fault =
  | { kind: 'none' }
  /** Answer with exception `code` (§7). */
  | { kind: 'exception'; code: number; from?: number; to?: number }
  /** Read the request, answer nothing. */
  | { kind: 'silent'; from?: number; to?: number }
  /** Send the first `bytes` bytes of the answer, then nothing more. */
  | { kind: 'truncated'; bytes: number; from?: number; to?: number }
  /** A complete MBAP frame whose PDU is short: the byte count promises more registers than follow. */
  | { kind: 'short-pdu'; from?: number; to?: number }
  /** MBAP length field off by `delta` bytes (positive: the client waits for bytes that never come). */
  | { kind: 'bad-length'; delta: number; from?: number; to?: number }
  /** The answer carries another transaction id. */
  | { kind: 'bad-tid'; from?: number; to?: number }
  /** The answer carries another function code (4 for 3). */
  | { kind: 'bad-fc'; from?: number; to?: number }
  /** Send half of the answer, then close the connection (a device reset mid-read). */
  | { kind: 'drop'; from?: number; to?: number }
  /** Answer correctly after `delayMs` (only the next `times` requests, if given). */
  | { kind: 'slow'; delayMs: number; from?: number; to?: number; times?: number }
  /** Accept connections and close them at once (a device whose TCP stack is up but not its server). */
  | { kind: 'refuse' };

export interface FaultyServerStats {
  connections: number;
  requests: number;
  /** Most requests seen waiting for an answer at one time, over all connections. */
  maxOutstanding: number;
  faulted: number;
}

export class FaultyModbusServer extends EventEmitter {
  private readonly server = net.createServer((s) => this.accept(s));
  private readonly sockets = new Set<net.Socket>();
  private readonly registers = new Map<number, number>();
  private faults: Fault[] = [];
  private outstanding = 0;
  readonly stats: FaultyServerStats = { connections: 0, requests: 0, maxOutstanding: 0, faulted: 0 };
  port = 0;

  /** Holding registers: start address -> values. */
  private readonly framing: 'mbap' | 'rtu';

  constructor(image: Record<number, ArrayLike<number>> = {}, opts: { framing?: 'mbap' | 'rtu' } = {}) {
    super();
    this.framing = opts.framing ?? 'mbap';
    for (const [start, values] of Object.entries(image)) this.set(Number(start), values);
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** One fault, or several (the first whose range covers a request applies to it). */
  setFault(f: Fault | Fault[]): void {
    this.faults = (Array.isArray(f) ? f : [f]).filter((x) => x.kind !== 'none');
  }

  set(address: number, values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) this.registers.set(address + i, (values[i] ?? 0) & 0xffff);
  }

  /** Remove registers (so reads of them answer exception 2). */
  unset(address: number, count: number): void {
    for (let i = 0; i < count; i++) this.registers.delete(address + i);
  }

  get(address: number, count: number): number[] {
    return Array.from({ length: count }, (_v, i) => this.registers.get(address + i) ?? 0);
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** Drop every open connection now. */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  private accept(socket: net.Socket): void {
    this.stats.connections += 1;
    if (this.faults.some((f) => f.kind === 'refuse')) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    let buf = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (this.framing === 'rtu') {
        // FC 16 requests carry a byte count at offset 6; every other request here is 8 bytes.
        while (buf.length >= 8) {
          const size = buf[1] === 16 ? 9 + (buf[6] ?? 0) : 8;
          if (buf.length < size) return;
          const frame = buf.subarray(0, size);
          buf = buf.subarray(size);
          if (crc16(frame.subarray(0, size - 2)) !== frame.readUInt16LE(size - 2)) {
            buf = Buffer.alloc(0); // lost sync: a real device waits for the next silence
            return;
          }
          // Re-shape as an MBAP frame (transaction id 0) so one handler serves both framings.
          const mbap = Buffer.alloc(6 + size - 2);
          mbap.writeUInt16BE(size - 2, 4);
          frame.copy(mbap, 6, 0, size - 2);
          this.handle(socket, mbap);
        }
        return;
      }
      // MBAP: 7 header bytes; length counts the unit id and the PDU (§3.1.3).
      while (buf.length >= 7) {
        const length = buf.readUInt16BE(4);
        if (buf.length < 6 + length) return;
        const frame = buf.subarray(0, 6 + length);
        buf = buf.subarray(6 + length);
        this.handle(socket, frame);
      }
    });
  }

  private handle(socket: net.Socket, frame: Buffer): void {
    this.stats.requests += 1;
    const tid = frame.readUInt16BE(0);
    const unit = frame.readUInt8(6);
    const fc = frame.readUInt8(7);
    const address = frame.length >= 10 ? frame.readUInt16BE(8) : 0;
    const count = frame.length >= 12 ? frame.readUInt16BE(10) : 0;
    this.emit('request', { fc, address, count });
    const pdu = this.answer(fc, address, count, frame);
    const f = this.faults.find((x) => x.kind !== 'none' && x.kind !== 'refuse' && overlaps(x, address, count)) ?? { kind: 'none' };
    const applies = f.kind !== 'none';
    if (applies) {
      this.stats.faulted += 1;
      if (f.kind === 'slow' && f.times !== undefined && --f.times <= 0) this.faults = this.faults.filter((x) => x !== f);
    }
    const mbap = (t: number, body: Buffer, lengthDelta = 0): Buffer => {
      if (this.framing === 'rtu') {
        const out = Buffer.alloc(body.length + 3);
        out.writeUInt8(unit, 0);
        body.copy(out, 1);
        out.writeUInt16LE(crc16(out.subarray(0, body.length + 1)), body.length + 1);
        return out;
      }
      const h = Buffer.alloc(7);
      h.writeUInt16BE(t, 0);
      h.writeUInt16BE(0, 2);
      h.writeUInt16BE(body.length + 1 + lengthDelta, 4);
      h.writeUInt8(unit, 6);
      return Buffer.concat([h, body]);
    };
    const good = mbap(tid, pdu);
    if (!applies) return void socket.write(good);
    switch (f.kind) {
      case 'exception':
        return void socket.write(mbap(tid, Buffer.from([fc | 0x80, f.code])));
      case 'silent':
        return;
      case 'truncated':
        return void socket.write(good.subarray(0, Math.min(f.bytes, good.length - 1)));
      case 'short-pdu': {
        // Keep the byte count, send half the data, and make the MBAP length agree with what is sent.
        const cut = pdu.subarray(0, Math.max(3, Math.floor(pdu.length / 2)));
        return void socket.write(mbap(tid, cut));
      }
      case 'bad-length':
        return void socket.write(mbap(tid, pdu, f.delta));
      case 'bad-tid':
        return void socket.write(mbap((tid + 17) & 0xffff, pdu));
      case 'bad-fc': {
        const wrong = Buffer.from(pdu);
        wrong.writeUInt8(fc === 3 ? 4 : 3, 0);
        return void socket.write(mbap(tid, wrong));
      }
      case 'drop':
        socket.write(good.subarray(0, Math.floor(good.length / 2)));
        socket.destroy();
        return;
      case 'slow': {
        this.outstanding += 1;
        this.stats.maxOutstanding = Math.max(this.stats.maxOutstanding, this.outstanding);
        setTimeout(() => {
          this.outstanding -= 1;
          if (!socket.destroyed) socket.write(good);
        }, f.delayMs);
        return;
      }
    }
  }

  /** The correct PDU for a request (FC 3 and 16; anything else is exception 1, §7). */
  private answer(fc: number, address: number, count: number, frame: Buffer): Buffer {
    const exception = (code: number): Buffer => Buffer.from([fc | 0x80, code]);
    if (fc === 3) {
      // §6.3: quantity 1..125, else exception 3; an address not served: exception 2.
      if (count < 1 || count > 125) return exception(3);
      for (let i = 0; i < count; i++) if (!this.registers.has(address + i)) return exception(2);
      const out = Buffer.alloc(2 + count * 2);
      out.writeUInt8(3, 0);
      out.writeUInt8(count * 2, 1);
      for (let i = 0; i < count; i++) out.writeUInt16BE(this.registers.get(address + i) ?? 0, 2 + i * 2);
      return out;
    }
    if (fc === 16) {
      // §6.12: address, quantity, byte count, values; the answer echoes address and quantity.
      if (count < 1 || count > 123 || frame.length < 13 + count * 2) return exception(3);
      for (let i = 0; i < count; i++) if (!this.registers.has(address + i)) return exception(2);
      for (let i = 0; i < count; i++) this.registers.set(address + i, frame.readUInt16BE(13 + i * 2));
      const out = Buffer.alloc(5);
      out.writeUInt8(16, 0);
      out.writeUInt16BE(address, 1);
      out.writeUInt16BE(count, 3);
      return out;
    }
    return exception(1);
  }
}

function overlaps(f: { from?: number; to?: number }, address: number, count: number): boolean {
  const from = f.from ?? 0;
  const to = f.to ?? 65536;
  return address < to && address + Math.max(1, count) > from;
}

/** CRC-16/MODBUS (Modbus over Serial Line v1.02 §6.2.2): init 0xFFFF, reflected polynomial 0xA001. */
export function crc16(data: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/**
 * A small Modbus TCP server on node:net for the simulator (Modbus Application Protocol v1.1b3 and
 * Modbus Messaging on TCP/IP Implementation Guide v1.0b). One port serves many devices: the MBAP
 * unit identifier selects the device, as a Modbus TCP gateway does.
 *
 * Function codes 1, 2, 3, 4, 5, 6, 15, 16. Exceptions: 01 illegal function, 02 illegal data
 * address, 03 illegal data value, 04 server device failure, 0B gateway target failed to respond
 * (unknown unit id). A device may also not answer at all (communication loss).
 */
import net from 'node:net';
import type { Logger } from '../../components/lib/logger';

export const ModbusExceptionCode = {
  ILLEGAL_FUNCTION: 0x01,
  ILLEGAL_DATA_ADDRESS: 0x02,
  ILLEGAL_DATA_VALUE: 0x03,
  SERVER_DEVICE_FAILURE: 0x04,
  GATEWAY_TARGET_FAILED: 0x0b,
} as const;

export class ModbusException extends Error {
  constructor(
    readonly exceptionCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'ModbusException';
  }
}

export type RegisterTable = 'holding' | 'input';
export type BitTable = 'coils' | 'discrete';

/** What the server asks of a device. Throw ModbusException to answer with an exception. */
export interface ModbusDevice {
  /** false: the request is dropped without an answer (communication loss). */
  answering(): boolean;
  readRegisters(table: RegisterTable, address: number, quantity: number): number[];
  readBits(table: BitTable, address: number, quantity: number): boolean[];
  writeRegisters(address: number, values: number[]): void;
  writeCoils(address: number, values: boolean[]): void;
}

export interface ModbusTcpServer {
  readonly port: number;
  close(): Promise<void>;
}

const MAX_ADU = 260;

function exception(fc: number, code: number): Buffer {
  return Buffer.from([fc | 0x80, code]);
}

function packBits(bits: boolean[]): Buffer {
  const b = Buffer.alloc(Math.ceil(bits.length / 8));
  bits.forEach((v, i) => {
    if (v) b[i >> 3] |= 1 << (i & 7);
  });
  return b;
}

/** Answer one PDU (throws ModbusException for an exception response). */
function handlePdu(device: ModbusDevice, pdu: Buffer): Buffer {
  const fc = pdu[0];
  const need = (n: number): void => {
    if (pdu.length < n) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_VALUE, `function ${fc}: PDU too short`);
  };
  switch (fc) {
    case 1:
    case 2: {
      need(5);
      const addr = pdu.readUInt16BE(1);
      const qty = pdu.readUInt16BE(3);
      if (qty < 1 || qty > 2000) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_VALUE, `quantity ${qty} outside 1..2000`);
      const bits = packBits(device.readBits(fc === 1 ? 'coils' : 'discrete', addr, qty));
      return Buffer.concat([Buffer.from([fc, bits.length]), bits]);
    }
    case 3:
    case 4: {
      need(5);
      const addr = pdu.readUInt16BE(1);
      const qty = pdu.readUInt16BE(3);
      if (qty < 1 || qty > 125) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_VALUE, `quantity ${qty} outside 1..125`);
      const regs = device.readRegisters(fc === 3 ? 'holding' : 'input', addr, qty);
      const out = Buffer.alloc(2 + regs.length * 2);
      out[0] = fc;
      out[1] = regs.length * 2;
      regs.forEach((r, i) => out.writeUInt16BE(r & 0xffff, 2 + i * 2));
      return out;
    }
    case 5: {
      need(5);
      const v = pdu.readUInt16BE(3);
      if (v !== 0xff00 && v !== 0) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_VALUE, `coil value 0x${v.toString(16)}`);
      device.writeCoils(pdu.readUInt16BE(1), [v === 0xff00]);
      return Buffer.from(pdu.subarray(0, 5));
    }
    case 6: {
      need(5);
      device.writeRegisters(pdu.readUInt16BE(1), [pdu.readUInt16BE(3)]);
      return Buffer.from(pdu.subarray(0, 5));
    }
    case 15: {
      need(6);
      const qty = pdu.readUInt16BE(3);
      const count = pdu[5];
      if (qty < 1 || qty > 1968 || count !== Math.ceil(qty / 8) || pdu.length < 6 + count) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_VALUE, 'bad coil count');
      const bits: boolean[] = [];
      for (let i = 0; i < qty; i++) bits.push(((pdu[6 + (i >> 3)] >> (i & 7)) & 1) === 1);
      device.writeCoils(pdu.readUInt16BE(1), bits);
      return Buffer.from(pdu.subarray(0, 5));
    }
    case 16: {
      need(6);
      const qty = pdu.readUInt16BE(3);
      const count = pdu[5];
      if (qty < 1 || qty > 123 || count !== qty * 2 || pdu.length < 6 + count) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_VALUE, 'bad register count');
      const regs: number[] = [];
      for (let i = 0; i < qty; i++) regs.push(pdu.readUInt16BE(6 + i * 2));
      device.writeRegisters(pdu.readUInt16BE(1), regs);
      return Buffer.from(pdu.subarray(0, 5));
    }
    default:
      throw new ModbusException(ModbusExceptionCode.ILLEGAL_FUNCTION, `function code ${fc} not supported`);
  }
}

export function createModbusTcpServer(opts: {
  host: string;
  port: number;
  device: (unit: number) => ModbusDevice | undefined;
  logger: Logger;
}): Promise<ModbusTcpServer> {
  const sockets = new Set<net.Socket>();
  const log = opts.logger;

  const respond = (sock: net.Socket, adu: Buffer): void => {
    const tid = adu.readUInt16BE(0);
    const unit = adu[6];
    const pdu = adu.subarray(7);
    const dev = opts.device(unit);
    let out: Buffer;
    if (dev === undefined) {
      out = exception(pdu[0] ?? 0, ModbusExceptionCode.GATEWAY_TARGET_FAILED);
    } else {
      if (!dev.answering()) return;
      try {
        out = handlePdu(dev, pdu);
      } catch (e) {
        if (e instanceof ModbusException) {
          log.debug('modbus exception', { unit, fc: pdu[0], code: e.exceptionCode, reason: e.message });
          out = exception(pdu[0], e.exceptionCode);
        } else {
          log.error('device failed', { unit, fc: pdu[0], err: e instanceof Error ? e : String(e) });
          out = exception(pdu[0], ModbusExceptionCode.SERVER_DEVICE_FAILURE);
        }
      }
    }
    const header = Buffer.alloc(7);
    header.writeUInt16BE(tid, 0);
    header.writeUInt16BE(0, 2);
    header.writeUInt16BE(out.length + 1, 4);
    header[6] = unit;
    if (!sock.destroyed) sock.write(Buffer.concat([header, out]));
  };

  const server = net.createServer((sock) => {
    sockets.add(sock);
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 7) {
        const len = buf.readUInt16BE(4);
        // MBAP: protocol id 0, length counts the unit id and the PDU (Modbus TCP guide §3.1.3).
        if (buf.readUInt16BE(2) !== 0 || len < 2 || len + 6 > MAX_ADU) {
          log.warn('bad MBAP header, closing connection', { remote: sock.remoteAddress });
          sock.destroy();
          return;
        }
        if (buf.length < 6 + len) break;
        const adu = buf.subarray(0, 6 + len);
        buf = buf.subarray(6 + len);
        respond(sock, adu);
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : opts.port;
      let closing: Promise<void> | undefined;
      resolve({
        port,
        close: () => {
          closing ??= new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          });
          return closing;
        },
      });
    });
  });
}

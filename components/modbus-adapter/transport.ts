/**
 * One Modbus connection (a TCP socket or a serial port) over `modbus-serial`, behind a small
 * interface so links, pollers and tests do not depend on the library's shapes.
 *
 * Errors are classified for what they call for:
 *  - `ModbusException`: the device answered with an exception response (Modbus Application
 *    Protocol v1.1b3 §7: 1 illegal function, 2 illegal data address, 3 illegal data value, 4 server
 *    device failure, 6 busy...). The link is healthy.
 *  - `TransientError` MODBUS_TIMEOUT / MODBUS_IO: no answer, a garbled or truncated frame, a lost
 *    connection. On TCP the connection is dropped and re-opened, because a late or partial answer
 *    would otherwise be matched to the next request.
 */
import ModbusRTU from 'modbus-serial';
import type { ResolvedConnection } from './config';
import { TransientError } from '../lib/errors';

export const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: 'ILLEGAL FUNCTION',
  2: 'ILLEGAL DATA ADDRESS',
  3: 'ILLEGAL DATA VALUE',
  4: 'SERVER DEVICE FAILURE',
  5: 'ACKNOWLEDGE',
  6: 'SERVER DEVICE BUSY',
  8: 'MEMORY PARITY ERROR',
  10: 'GATEWAY PATH UNAVAILABLE',
  11: 'GATEWAY TARGET DEVICE FAILED TO RESPOND',
};

export class ModbusException extends Error {
  readonly code: string;
  constructor(readonly exceptionCode: number, what: string) {
    super(`${what}: exception ${exceptionCode} (${EXCEPTION_NAMES[exceptionCode] ?? 'unknown'})`);
    this.name = 'ModbusException';
    this.code = `MODBUS_EXCEPTION_${exceptionCode}`;
  }
}

export const ModbusErrorCode = {
  TIMEOUT: 'MODBUS_TIMEOUT',
  IO: 'MODBUS_IO',
  CONNECT: 'MODBUS_CONNECT',
  BACKOFF: 'MODBUS_BACKOFF',
  LINK_BUSY: 'MODBUS_LINK_BUSY',
  CLOSED: 'MODBUS_CLOSED',
} as const;

export interface Transport {
  readonly isOpen: boolean;
  open(): Promise<void>;
  close(): Promise<void>;
  /** FC 3/4: registers; FC 1/2: bits. */
  readRegisters(unitId: number, fc: 3 | 4, address: number, count: number, timeoutMs: number): Promise<number[]>;
  readBits(unitId: number, fc: 1 | 2, address: number, count: number, timeoutMs: number): Promise<boolean[]>;
  /** FC 16 (Write Multiple Registers, §6.12). */
  writeRegisters(unitId: number, address: number, values: number[], timeoutMs: number): Promise<void>;
  /** FC 5 (Write Single Coil, §6.5). */
  writeCoil(unitId: number, address: number, value: boolean, timeoutMs: number): Promise<void>;
  /** Called once when the peer closes the connection. */
  onClose(listener: () => void): void;
}

export type TransportFactory = (conn: ResolvedConnection) => Transport;

/** What modbus-serial rejects with, loosely: it throws Errors with extra fields. */
function classify(err: unknown, what: string): Error {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { modbusCode?: unknown; name?: unknown; errno?: unknown; message?: unknown };
  if (typeof e.modbusCode === 'number') return new ModbusException(e.modbusCode, what);
  const msg = typeof e.message === 'string' ? e.message : String(err);
  if (e.name === 'TransactionTimedOutError' || e.errno === 'ETIMEDOUT') return new TransientError(ModbusErrorCode.TIMEOUT, `${what}: timed out`, { cause: err });
  return new TransientError(ModbusErrorCode.IO, `${what}: ${msg}`, { cause: err });
}

const PARITY = { none: 'none', even: 'even', odd: 'odd' } as const;

/** The real transport: modbus-serial's TCP client or its buffered RTU client on a serial port. */
export function modbusSerialTransport(conn: ResolvedConnection): Transport {
  let client: ModbusRTU | undefined;
  const closeListeners: Array<() => void> = [];
  const where = conn.type === 'tcp' ? `${conn.host}:${conn.port}` : conn.path;

  const call = async <T>(unitId: number, timeoutMs: number, what: string, fn: (c: ModbusRTU) => Promise<T>): Promise<T> => {
    const c = client;
    if (!c || !c.isOpen) throw new TransientError(ModbusErrorCode.IO, `${where}: not connected`);
    c.setID(unitId);
    c.setTimeout(timeoutMs);
    try {
      return await fn(c);
    } catch (err) {
      throw classify(err, `${where} unit ${unitId} ${what}`);
    }
  };

  return {
    get isOpen() {
      return client?.isOpen === true;
    },
    async open() {
      const c = new ModbusRTU();
      client = c;
      c.on('close', () => {
        if (client === c) for (const l of closeListeners) l();
      });
      // modbus-serial emits 'error' on the client for socket errors; unhandled it would throw.
      c.on('error', () => undefined);
      try {
        if (conn.type === 'tcp') await c.connectTCP(conn.host, { port: conn.port });
        else await c.connectRTUBuffered(conn.path, { baudRate: conn.baudRate, parity: PARITY[conn.parity], stopBits: conn.stopBits, dataBits: conn.dataBits });
      } catch (err) {
        client = undefined;
        closeQuietly(c);
        throw new TransientError(ModbusErrorCode.CONNECT, `${where}: cannot connect: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    },
    async close() {
      const c = client;
      client = undefined;
      if (c) await closeQuietly(c);
    },
    readRegisters(unitId, fc, address, count, timeoutMs) {
      return call(unitId, timeoutMs, `FC${fc} ${address}+${count}`, async (c) => {
        const r = fc === 3 ? await c.readHoldingRegisters(address, count) : await c.readInputRegisters(address, count);
        if (!Array.isArray(r.data) || r.data.length < count) throw new TransientError(ModbusErrorCode.IO, `short answer: ${Array.isArray(r.data) ? r.data.length : 0} of ${count} registers`);
        return r.data.slice(0, count);
      });
    },
    readBits(unitId, fc, address, count, timeoutMs) {
      return call(unitId, timeoutMs, `FC${fc} ${address}+${count}`, async (c) => {
        const r = fc === 1 ? await c.readCoils(address, count) : await c.readDiscreteInputs(address, count);
        if (!Array.isArray(r.data) || r.data.length < count) throw new TransientError(ModbusErrorCode.IO, `short answer: ${Array.isArray(r.data) ? r.data.length : 0} of ${count} bits`);
        return r.data.slice(0, count);
      });
    },
    async writeRegisters(unitId, address, values, timeoutMs) {
      await call(unitId, timeoutMs, `FC16 ${address}+${values.length}`, (c) => c.writeRegisters(address, values));
    },
    async writeCoil(unitId, address, value, timeoutMs) {
      await call(unitId, timeoutMs, `FC5 ${address}`, (c) => c.writeCoil(address, value));
    },
    onClose(listener) {
      closeListeners.push(listener);
    },
  };
}

function closeQuietly(c: ModbusRTU): Promise<void> {
  return new Promise((resolve) => {
    try {
      if (!c.isOpen) {
        // A socket still connecting has no open port yet; destroy what is there.
        (c as unknown as { destroy?: (cb: () => void) => void }).destroy?.(() => undefined);
        resolve();
        return;
      }
      c.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

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
 *
 * TCP uses a socket we open ourselves (modbus-serial `linkTCP`): modbus-serial does not tell its
 * caller about a reset (it only clears its open flag) nor fail the requests in flight when the
 * socket goes, so we watch the socket and fail them at once instead of at their timeout.
 */
import net from 'node:net';
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
  /** Every read of a poll answered with an exception. */
  NO_DATA: 'MODBUS_NO_DATA',
  /** Some reads of a poll answered with an exception (the poll is partial). */
  PARTIAL: 'MODBUS_PARTIAL_POLL',
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

/** Bound on a TCP connect (a device that drops SYNs would otherwise hold the link for minutes). */
export const CONNECT_TIMEOUT_MS = 3000;

/** Our own socket, handed to modbus-serial (linkTCP), so a close or reset is always seen. */
function connectSocket(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no connection in ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    s.once('error', fail);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', fail);
      resolve(s);
    });
  });
}

/** The real transport: modbus-serial's TCP client or its buffered RTU client on a serial port. */
export function modbusSerialTransport(conn: ResolvedConnection): Transport {
  let client: ModbusRTU | undefined;
  const closeListeners: Array<() => void> = [];
  const where = conn.type === 'tcp' ? `${conn.host}:${conn.port}` : conn.path;
  // Requests in flight fail as soon as the connection closes: modbus-serial would otherwise leave
  // them to their timeout (it does not answer pending transactions when the socket goes).
  const inFlight = new Set<(err: Error) => void>();
  const lost = (why: string): void => {
    for (const reject of [...inFlight]) reject(new TransientError(ModbusErrorCode.IO, `${where}: ${why}`));
    inFlight.clear();
  };

  const call = async <T>(unitId: number, timeoutMs: number, what: string, fn: (c: ModbusRTU) => Promise<T>): Promise<T> => {
    const c = client;
    if (!c || !c.isOpen) throw new TransientError(ModbusErrorCode.IO, `${where}: not connected`);
    c.setID(unitId);
    c.setTimeout(timeoutMs);
    if (conn.type === 'rtu') discardInput(c);
    // The MBAP transaction id this request goes out with (read before the library increments it).
    const tid = conn.type === 'tcp' ? transactionIdOf(c) : undefined;
    let reject: ((err: Error) => void) | undefined;
    const closed = new Promise<never>((_resolve, r) => {
      reject = r;
    });
    if (reject) inFlight.add(reject);
    try {
      return await Promise.race([fn(c), closed]);
    } catch (err) {
      if (err instanceof TransientError) throw new TransientError(err.code, `${err.message} during unit ${unitId} ${what}`, { cause: err });
      throw classify(err, `${where} unit ${unitId} ${what}`);
    } finally {
      if (reject) inFlight.delete(reject);
      // One request is outstanding per connection (link.ts), so this entry is finished with: an
      // answer to it after a timeout finds no entry and is ignored (the link drops the connection
      // anyway).
      if (tid !== undefined) releaseTransaction(c, tid);
    }
  };

  return {
    get isOpen() {
      return client?.isOpen === true;
    },
    async open() {
      const c = new ModbusRTU();
      client = c;
      let notified = false;
      const onClosed = (why: string): void => {
        if (client !== c || notified) return;
        notified = true;
        lost(why);
        for (const l of closeListeners) l();
      };
      c.on('close', () => onClosed('connection closed'));
      // modbus-serial emits 'error' on the client for port errors; unhandled it would throw.
      c.on('error', () => undefined);
      let socket: net.Socket | undefined;
      try {
        if (conn.type === 'tcp') {
          socket = await connectSocket(conn.host, conn.port);
          socket.on('error', () => undefined);
          socket.once('close', () => onClosed('connection closed by the device'));
          await c.linkTCP(socket, { port: conn.port });
        } else await c.connectRTUBuffered(conn.path, { baudRate: conn.baudRate, parity: PARITY[conn.parity], stopBits: conn.stopBits, dataBits: conn.dataBits });
      } catch (err) {
        client = undefined;
        socket?.destroy();
        void closeQuietly(c);
        throw new TransientError(ModbusErrorCode.CONNECT, `${where}: cannot connect: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    },
    async close() {
      const c = client;
      if (c) lost('connection closed');
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

/**
 * Drop bytes received before this request. modbus-serial's buffered RTU port (8.0.x) keeps what it
 * received in `_buffer` and scans it for the next answer without clearing it when a request is
 * sent, so a stale frame (a late answer) would be taken for the answer (see link.ts, recovery
 * pause). This is private state: modbus-serial is pinned exactly, and
 * test/integration/modbus-serial-private.test.ts fails if the version or this shape changes.
 * Returns what it found: `unknown` means the port is not shaped as expected (nothing cleared).
 */
export function discardInput(c: ModbusRTU): 'cleared' | 'empty' | 'unknown' {
  const port = (c as unknown as { _port?: { _buffer?: unknown } })._port;
  if (!port || !Buffer.isBuffer(port._buffer)) return 'unknown';
  if (port._buffer.length === 0) return 'empty';
  port._buffer = Buffer.alloc(0);
  return 'cleared';
}

/**
 * The MBAP transaction id the next TCP request goes out with: modbus-serial's TCP port (8.0.x)
 * keeps it in `_port._transactionIdWrite` (1 at open, +1 per request, wrapping at 256) and keys its
 * per-request entry in `_transactions` by it. Undefined when the port is not shaped so.
 */
export function transactionIdOf(c: ModbusRTU): number | undefined {
  const id = (c as unknown as { _port?: { _transactionIdWrite?: unknown } })._port?._transactionIdWrite;
  return typeof id === 'number' && Number.isInteger(id) ? id : undefined;
}

/**
 * Delete the client's entry for a finished request. modbus-serial (8.0.x) stores one entry per
 * transaction id in `_transactions` and never deletes it; the entry holds the request's callback
 * and, through the settled promise behind it, the answer. With ids wrapping at 256 that is 256
 * answers per TCP connection kept for nothing (about 0.45 MB per connection polling SunSpec
 * inverters; 512 devices on connections of their own: about 230 MB). Private state: modbus-serial
 * is pinned exactly, and test/integration/modbus-serial-private.test.ts fails if the version or
 * this shape changes. Returns `unknown` when `_transactions` is not shaped as expected (nothing
 * deleted).
 */
export function releaseTransaction(c: ModbusRTU, id: number | undefined): 'released' | 'absent' | 'unknown' {
  const map = (c as unknown as { _transactions?: unknown })._transactions;
  if (id === undefined || typeof map !== 'object' || map === null) return 'unknown';
  const entries = map as Record<number, unknown>;
  if (!(id in entries)) return 'absent';
  delete entries[id];
  return 'released';
}

/** How long a graceful close may take before the port is destroyed. */
const CLOSE_GRACE_MS = 1000;

/**
 * Close without throwing and without hanging: a TCP close is a FIN that a broken peer may never
 * answer (modbus-serial calls back only on 'close'), so after a grace period the port is destroyed.
 */
function closeQuietly(c: ModbusRTU): Promise<void> {
  const destroy = (): void => {
    try {
      (c as unknown as { destroy?: (cb: () => void) => void }).destroy?.(() => undefined);
    } catch {
      // already gone
    }
  };
  return new Promise((resolve) => {
    if (!c.isOpen) {
      // A socket still connecting, or one the peer reset: destroy what is there.
      destroy();
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      destroy();
      resolve();
    }, CLOSE_GRACE_MS);
    timer.unref();
    try {
      c.close(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      destroy();
      resolve();
    }
  });
}

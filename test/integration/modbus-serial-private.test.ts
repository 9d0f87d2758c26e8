/**
 * transport.ts reaches into modbus-serial's private state twice, and modbus-serial is pinned
 * exactly for that; this test fails when the pin is loosened or the installed version differs from
 * it, and when either private shape changes.
 *
 * - RTU: `discardInput` empties the receive buffer (`_port._buffer`) of the buffered RTU port
 *   before each request, so a late answer is never taken for the next one (link.ts, recovery
 *   pause). The test opens the buffered RTU client on a real pseudo-terminal (socat) whose other
 *   end is a TCP socket held here, puts a stale answer into the port, and checks the field exists,
 *   holds what arrived, is what discardInput clears, and is what the library reads answers from
 *   (without the clear, the stale frame is taken for the answer).
 * - TCP: `releaseTransaction` deletes the client's entry for a finished request from
 *   `_transactions` (keyed by the MBAP transaction id, `_port._transactionIdWrite` when the request
 *   was sent). modbus-serial never deletes these entries, and each keeps its request's callback and
 *   through it the last answer: 256 entries per connection (ids wrap at 256). The test talks to
 *   pymodbus over TCP and checks the id's place and wrap, that entries pile up to 256 without the
 *   release, that an entry keeps its answer reachable (a WeakRef that survives a forced GC), and
 *   that after releaseTransaction no entry and no answer remain.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import ModbusRTU from 'modbus-serial';
import { crc16 } from '../../components/modbus-adapter/testing/faulty-server';
import { startPymodbus, type PymodbusServer } from '../../components/modbus-adapter/testing/pymodbus';
import { startPtyBridge, type PtyBridge } from '../../components/modbus-adapter/testing/serial-line';
import { discardInput, releaseTransaction, transactionIdOf } from '../../components/modbus-adapter/transport';

jest.setTimeout(30_000);

const root = path.resolve(__dirname, '../..');

/** An RTU answer to FC 3 (unit, fc, byte count, registers, CRC low byte first). */
function answer(unit: number, ...values: number[]): Buffer {
  const b = Buffer.alloc(5 + 2 * values.length);
  b.writeUInt8(unit, 0);
  b.writeUInt8(3, 1);
  b.writeUInt8(2 * values.length, 2);
  values.forEach((v, i) => b.writeUInt16BE(v, 3 + 2 * i));
  b.writeUInt16LE(crc16(b.subarray(0, b.length - 2)), b.length - 2);
  return b;
}

interface PrivatePort {
  _buffer?: unknown;
  _client?: { on(event: 'data', l: (d: Buffer) => void): void; off(event: 'data', l: (d: Buffer) => void): void };
  constructor: { name: string };
}

describe('modbus-serial: the pinned version and the private state transport.ts touches', () => {
  it('is pinned to an exact version, and that version is the one installed', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const pinned = pkg.dependencies['modbus-serial'];
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = (JSON.parse(fs.readFileSync(path.join(root, 'node_modules/modbus-serial/package.json'), 'utf8')) as { version: string }).version;
    expect(installed).toBe(pinned);
  });

  describe('buffered RTU port on a socat pty', () => {
    let server: net.Server;
    let peer: net.Socket | undefined;
    let peerConnected: Promise<net.Socket>;
    let bridge: PtyBridge;
    let client: ModbusRTU;

    beforeAll(async () => {
      let connected: (s: net.Socket) => void = () => undefined;
      peerConnected = new Promise((r) => (connected = r));
      server = net.createServer((s) => {
        peer = s;
        s.on('error', () => undefined);
        connected(s);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      bridge = await startPtyBridge((server.address() as net.AddressInfo).port);
      client = new ModbusRTU();
      await client.connectRTUBuffered(bridge.path, { baudRate: 9600 });
      client.setID(1);
      client.setTimeout(2000);
      await peerConnected;
    });

    afterAll(async () => {
      await new Promise<void>((r) => client.close(() => r()));
      peer?.destroy();
      await bridge.stop();
      await new Promise<void>((r) => server.close(() => r()));
    });

    const port = (): PrivatePort => (client as unknown as { _port: PrivatePort })._port;

    /** Send bytes from the far end and resolve once the serial port has received them all. */
    async function arrive(bytes: Buffer): Promise<void> {
      const serial = port()._client;
      if (!serial) throw new Error('modbus-serial RTUBufferedPort has no _client (SerialPort) any more');
      let got = 0;
      await new Promise<void>((resolve) => {
        const onData = (d: Buffer): void => {
          got += d.length;
          if (got >= bytes.length) {
            serial.off('data', onData);
            resolve();
          }
        };
        serial.on('data', onData);
        peer?.write(bytes);
      });
    }

    /**
     * A read of registers 0.., answered from the far end with `values` once the request arrives.
     * Resolves with what the library returned, after the whole answer has reached the port.
     */
    async function readAnswering(...values: number[]): Promise<number[]> {
      const s = peer as net.Socket;
      const serial = port()._client as NonNullable<PrivatePort['_client']>;
      const frame = answer(1, ...values);
      let got = 0;
      const delivered = new Promise<void>((resolve) => {
        const onData = (d: Buffer): void => {
          got += d.length;
          if (got < frame.length) return;
          serial.off('data', onData);
          resolve();
        };
        s.once('data', () => {
          serial.on('data', onData);
          s.write(frame);
        });
      });
      const r = await client.readHoldingRegisters(0, values.length);
      await delivered;
      return r.data;
    }

    it('keeps received bytes in _port._buffer (a Buffer), which discardInput empties', async () => {
      expect(port().constructor.name).toBe('RTUBufferedPort');
      expect(Buffer.isBuffer(port()._buffer)).toBe(true);
      // Nothing asked yet: bytes that arrive stay in the buffer.
      const stale = answer(1, 42);
      await arrive(stale);
      expect(port()._buffer).toEqual(stale);
      expect(discardInput(client)).toBe('cleared');
      expect((port()._buffer as Buffer).length).toBe(0);
      expect(discardInput(client)).toBe('empty');
    });

    it('reads answers from that buffer: a stale frame left there is taken for the answer, a cleared one is not', async () => {
      // After a 2-register read the port waits for 9-byte answers, so a late 1-register answer
      // (7 bytes) arriving now stays in the buffer ...
      expect(await readAnswering(1, 2)).toEqual([1, 2]);
      await arrive(answer(1, 42));
      expect((port()._buffer as Buffer).length).toBe(7);
      // ... and is taken for the answer to the next 1-register read: what discardInput prevents.
      expect(await readAnswering(7)).toEqual([42]);
      discardInput(client);
      expect(await readAnswering(1, 2)).toEqual([1, 2]);
      await arrive(answer(1, 42));
      expect(discardInput(client)).toBe('cleared');
      expect(await readAnswering(7)).toEqual([7]);
    });
  });

  describe('TCP client against pymodbus: _transactions and _port._transactionIdWrite', () => {
    let server: PymodbusServer;
    let socket: net.Socket;
    let client: ModbusRTU;
    /** A forced GC in this process (jest runs without --expose-gc). */
    let gc: () => void;

    beforeAll(async () => {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as () => void;
      server = await startPymodbus({ hr: { 0: Array.from({ length: 125 }, (_v, i) => i) } });
      socket = net.connect({ host: '127.0.0.1', port: server.port });
      await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('error', reject));
      client = new ModbusRTU();
      // As transport.ts opens it: our own socket, handed over.
      await client.linkTCP(socket, { port: server.port });
      client.setID(1);
      client.setTimeout(2000);
    });

    afterAll(async () => {
      await new Promise<void>((r) => client.close(() => r()));
      socket.destroy();
      await server.stop();
    });

    const entries = (): Record<string, { next?: unknown }> => (client as unknown as { _transactions: Record<string, { next?: unknown }> })._transactions;

    it('keys each request by _port._transactionIdWrite, which counts up and wraps at 256', async () => {
      expect(typeof entries()).toBe('object');
      const first = transactionIdOf(client);
      expect(typeof first).toBe('number');
      await client.readHoldingRegisters(0, 2);
      expect(entries()[String(first)]).toEqual(expect.objectContaining({ next: expect.any(Function) }));
      expect(transactionIdOf(client)).toBe(((first as number) + 1) % 256);
      expect(releaseTransaction(client, first)).toBe('released');
      expect(releaseTransaction(client, first)).toBe('absent');
    });

    /**
     * `n` reads of 125 registers; a WeakRef to the last answer. The answers are not kept here
     * (this function's frame is gone when it returns), so only the library can hold one.
     */
    async function reads(n: number, release: boolean): Promise<WeakRef<object>> {
      let last: WeakRef<object> | undefined;
      for (let i = 0; i < n; i++) {
        const id = transactionIdOf(client);
        last = new WeakRef(await client.readHoldingRegisters(0, 125));
        if (release) expect(releaseTransaction(client, id)).toBe('released');
      }
      return last as WeakRef<object>;
    }

    async function collected(ref: WeakRef<object>): Promise<boolean> {
      // A WeakRef target is kept until the job that made or read it ends.
      await new Promise((r) => setImmediate(r));
      gc();
      return ref.deref() === undefined;
    }

    it('without the release, entries pile up to 256 (one per id) and each keeps its answer reachable', async () => {
      for (const k of Object.keys(entries())) delete entries()[k];
      const ref = await reads(300, false);
      // Ids 1, 2, ..., 255, 0, 1, ...: one entry per id, the last answer to each.
      expect(Object.keys(entries()).map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 256 }, (_v, i) => i));
      expect(await collected(ref)).toBe(false);
      for (const k of Object.keys(entries())) expect(releaseTransaction(client, Number(k))).toBe('released');
      expect(Object.keys(entries())).toHaveLength(0);
      expect(await collected(ref)).toBe(true);
    });

    it('with releaseTransaction after each request, no entry and no answer remain', async () => {
      const ref = await reads(300, true);
      expect(Object.keys(entries())).toHaveLength(0);
      expect(await collected(ref)).toBe(true);
    });
  });
});

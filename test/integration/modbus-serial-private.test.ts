/**
 * transport.ts reaches into modbus-serial's private state: `discardInput` empties the receive
 * buffer (`_port._buffer`) of the buffered RTU port before each request, so a late answer is never
 * taken for the next one (link.ts, recovery pause). modbus-serial is pinned exactly for that; this
 * test fails when the pin is loosened or the installed version differs from it, and when the
 * private shape changes: it opens the buffered RTU client on a real pseudo-terminal (socat) whose
 * other end is a TCP socket held here, puts a stale answer into the port, and checks the field
 * exists, holds what arrived, is what discardInput clears, and is what the library reads answers
 * from (without the clear, the stale frame is taken for the answer).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import ModbusRTU from 'modbus-serial';
import { crc16 } from '../../components/modbus-adapter/testing/faulty-server';
import { startPtyBridge, type PtyBridge } from '../../components/modbus-adapter/testing/serial-line';
import { discardInput } from '../../components/modbus-adapter/transport';

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
});

/**
 * A TCP relay that delivers bytes no faster than a serial line would: each chunk arrives when its
 * last character would have, at `baud` with 11 bits per character (Modbus over Serial Line v1.02
 * §2.5.1: start bit, 8 data bits, parity or a second stop bit, stop bit). A pseudo-terminal ignores
 * the baud rate it is set to, so the RTU benchmark puts this between socat's pty and pymodbus to
 * measure the adapter against real line time. Each direction is its own line (RS-485 is half
 * duplex, but Modbus never sends both ways at once).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const BITS_PER_CHAR = 11;

export interface LineRelay {
  port: number;
  close(): Promise<void>;
}

export async function startLineRelay(targetPort: number, baud: number): Promise<LineRelay> {
  const sockets = new Set<net.Socket>();
  const msPerChar = (BITS_PER_CHAR * 1000) / baud;
  const pipe = (from: net.Socket, to: net.Socket): void => {
    let lineFreeAt = 0;
    from.on('data', (chunk: Buffer) => {
      const start = Math.max(performance.now(), lineFreeAt);
      lineFreeAt = start + chunk.length * msPerChar;
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, Math.max(0, lineFreeAt - performance.now()));
    });
  };
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface PtyBridge {
  /** The pseudo-terminal the adapter opens as its serial port. */
  path: string;
  stop(): Promise<void>;
}

/** socat joining a new pty to a TCP server (e.g. FaultyModbusServer with RTU framing). */
export async function startPtyBridge(tcpPort: number): Promise<PtyBridge> {
  const dir = fs.mkdtempSync('/tmp/mbpty-');
  const link = path.join(dir, 'ttyS-client');
  const socat = spawn('socat', [`pty,raw,echo=0,link=${link}`, `tcp:127.0.0.1:${tcpPort}`], { stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    if (socat.exitCode === null && socat.signalCode === null) {
      await new Promise<void>((resolve) => {
        socat.once('exit', () => resolve());
        socat.kill('SIGTERM');
      });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(link)) {
    if (Date.now() > deadline || socat.exitCode !== null) {
      await stop();
      throw new Error('socat did not create the pty');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { path: link, stop };
}

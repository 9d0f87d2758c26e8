/**
 * pymodbus (Debian python3-pymodbus 3.0, a Modbus server written by others) serving a register
 * image, over TCP on 127.0.0.1 (a free port) or over RTU on a socat pseudo-terminal pair
 * (docs/conventions.md "Tests"). Start, wait for the peer to say it is ready, stop by PID.
 *
 *   const peer = await startPymodbusTcp({ hr: { 40000: buildImage([...]) } });   // { port, stop }
 *   const rtu = await startPymodbusRtu({ hr: { 40000: image } });                // { clientPath, stop }
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PYTHON = '/usr/bin/python3'; // the only python that sees Debian's pymodbus
const SCRIPT = path.join(__dirname, 'pymodbus_server.py');

/** Zero-based protocol address -> values from there. */
export interface RegisterImage {
  hr?: Record<number, ArrayLike<number>>;
  ir?: Record<number, ArrayLike<number>>;
  co?: Record<number, boolean[]>;
  di?: Record<number, boolean[]>;
}

function toJson(image: RegisterImage): string {
  const conv = (t?: Record<number, ArrayLike<number> | boolean[]>): Record<string, unknown[]> | undefined =>
    t === undefined ? undefined : Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Array.from(v as ArrayLike<unknown>)]));
  return JSON.stringify({ hr: conv(image.hr), ir: conv(image.ir), co: conv(image.co), di: conv(image.di) });
}

/** Resolves with the first stdout line that parses as JSON; rejects if the process exits first. */
function firstJsonLine(child: ChildProcess, what: string, timeoutMs = 15000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`${what}: not ready after ${timeoutMs} ms\n${err}`)), timeoutMs);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      reject(e);
    };
    const onData = (b: Buffer): void => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      try {
        resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
      } catch (e) {
        reject(e as Error);
      }
    };
    const onExit = (code: number | null): void => fail(new Error(`${what} exited (${code}) before it was ready:\n${err}`));
    child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

function stopper(children: ChildProcess[], dir: string): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= Promise.all(
      children.map(
        (c) =>
          new Promise<void>((done) => {
            if (c.exitCode !== null || c.signalCode !== null) return done();
            c.once('exit', () => done());
            c.kill('SIGTERM');
          }),
      ),
    ).then(() => fs.rmSync(dir, { recursive: true, force: true }));
    return stopping;
  };
}

export async function startPymodbusTcp(image: RegisterImage): Promise<{ port: number; stop: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pymb-'));
  const file = path.join(dir, 'image.json');
  fs.writeFileSync(file, toJson(image));
  const child = spawn(PYTHON, ['-u', SCRIPT, file, 'tcp'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = stopper([child], dir);
  try {
    const ready = await firstJsonLine(child, 'pymodbus TCP server');
    return { port: Number(ready.port), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** socat joins two ptys; pymodbus's RTU framer answers on one, the client opens `clientPath` (9600 8N1). */
export async function startPymodbusRtu(image: RegisterImage): Promise<{ clientPath: string; stop: () => Promise<void> }> {
  const dir = fs.mkdtempSync('/tmp/pymb-');
  const file = path.join(dir, 'image.json');
  fs.writeFileSync(file, toJson(image));
  const serverPath = path.join(dir, 'ttyS-server');
  const clientPath = path.join(dir, 'ttyS-client');
  const socat = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${serverPath}`, `pty,raw,echo=0,link=${clientPath}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const children: ChildProcess[] = [socat];
  const stop = stopper(children, dir);
  try {
    // socat -d -d logs "starting data transfer loop" once both ptys (and their links) exist.
    await new Promise<void>((resolve, reject) => {
      let err = '';
      const onData = (b: Buffer): void => {
        err += b.toString();
        if (err.includes('starting data transfer loop')) {
          socat.stderr?.off('data', onData);
          socat.stderr?.resume(); // keep draining its log
          socat.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (): void => reject(new Error(`socat exited: ${err}`));
      socat.stderr?.on('data', onData);
      socat.once('exit', onExit);
    });
    const child = spawn(PYTHON, ['-u', SCRIPT, file, 'rtu', serverPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.unshift(child);
    await firstJsonLine(child, 'pymodbus RTU server');
    return { clientPath, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

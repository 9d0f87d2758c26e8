/**
 * The Stream Manager benchmark's peers, each in a child process of its own so their CPU is not
 * the benchmark's: s3rver 3.7.1 and kinesalite on loopback ports the kernel picks (port 0; the
 * child reports the port over its IPC channel), and a Token Exchange Service stand-in for the
 * Uplink's S3 exporter, which takes credentials from nothing else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Every child this benchmark started: killed when the benchmark process exits, also on SIGINT/SIGTERM or a failure. */
const children = new Set<ChildProcess>();
let exitHook = false;
export function ownChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
}

export interface Peer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Runs `code` in `node -e` from the project root (so require finds node_modules); it sends its port with process.send. */
async function childPeer(projectRoot: string, name: string, code: string, cleanup?: () => void): Promise<Peer> {
  const child: ChildProcess = spawn(process.execPath, ['-e', code], { cwd: projectRoot, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  ownChild(child);
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-4000)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 20 s: ${err}`)), 20_000);
    child.once('message', (m) => (clearTimeout(timer), resolve(Number(m))));
    child.once('exit', (c) => (clearTimeout(timer), reject(new Error(`${name} exited (${c}) during start: ${err}`))));
  });
  let exited = false;
  const gone = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (!exited) {
        child.kill('SIGKILL');
        await gone;
      }
      cleanup?.();
    },
  };
}

export async function startS3rverPeer(projectRoot: string, bucket: string): Promise<Peer & { dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-s3rver-'));
  const code = `
    const S3rver = require('s3rver');
    new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: ${JSON.stringify(dir)}, configureBuckets: [{ name: ${JSON.stringify(bucket)} }] })
      .run().then((a) => process.send(a.port), (e) => { console.error(e); process.exit(1); });`;
  const peer = await childPeer(projectRoot, 's3rver', code, () => fs.rmSync(dir, { recursive: true, force: true }));
  return { ...peer, dir };
}

export function startKinesalitePeer(projectRoot: string): Promise<Peer> {
  const code = `
    const k = require('kinesalite')({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 });
    k.listen(0, '127.0.0.1', () => process.send(k.address().port));`;
  return childPeer(projectRoot, 'kinesalite', code);
}

/** A loopback Token Exchange Service answering s3rver's keys, as the nucleus's TES answers a component. */
export async function startFakeTes(token: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.headers['authorization'] !== token) {
      res.writeHead(403).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ AccessKeyId: 'S3RVER', SecretAccessKey: 'S3RVER', Token: 'bench', Expiration: new Date(Date.now() + 3_600_000).toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/2016-11-01/credentialprovider/`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

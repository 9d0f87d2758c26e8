/**
 * s3rver 3.7.1 as a real process on a free loopback port, and a fault-injecting HTTP front for it:
 * 500s, slow answers, and ExpiredToken for session tokens whose embedded expiry (the local TES's
 * `local-<expiresAtMs>-<n>`) has passed. The front records every PUT with the access key id that
 * signed it, so a test can tell whose credentials a client used.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { gunzipSync } from 'node:zlib';

const ROOT = path.resolve(__dirname, '../..');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface S3rver {
  url: string;
  bucket: string;
  dir: string;
  client: S3Client;
  /** Every object: key -> gunzipped NDJSON lines. */
  objects(prefix?: string): Promise<Map<string, string[]>>;
  stop(): Promise<void>;
}

export async function startS3rver(bucket = 'uplink-test'): Promise<S3rver> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3rver-'));
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, 'node_modules/s3rver/bin/s3rver.js'), '-d', dir, '-a', '127.0.0.1', '-p', String(port), '--silent', '--configure-bucket', bucket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let exited = false;
  child.on('exit', () => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (exited || Date.now() > deadline) throw new Error('s3rver did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const client = new S3Client({ region: 'us-east-1', endpoint: url, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  return {
    url,
    bucket,
    dir,
    client,
    async objects(prefix = '') {
      const out = new Map<string, string[]>();
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
        for (const o of page.Contents ?? []) {
          const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
          const bytes = Buffer.from(await got.Body!.transformToByteArray());
          // s3rver returns what was stored; the body is our gzip.
          const text = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
          out.set(o.Key!, text.split('\n').filter((l) => l.length > 0));
        }
        token = page.NextContinuationToken;
      } while (token);
      return out;
    },
    async stop() {
      client.destroy();
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface FaultProxy {
  url: string;
  /** Next n requests answer 500 InternalError. */
  fail500(n: number): void;
  /** Delay every answer by ms (0: off). */
  setDelayMs(ms: number): void;
  /** Reject tokens `local-<expiresAt>-n` past their expiry with 400 ExpiredToken. */
  checkTokenExpiry(on: boolean): void;
  /** While on, every connection is reset without an answer (the store unreachable). */
  setDown(on: boolean): void;
  readonly counts: { requests: number; injected500: number; expiredRejected: number; puts: number };
  /** Every PUT, in arrival order: path, when it arrived (ms since epoch), the signing access key id (SigV4 `Credential=`) and the status answered. */
  readonly putLog: Array<{ path: string; receivedAt: number; accessKeyId: string; status: number }>;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const t = new URL(target);
  let fail = 0;
  let delay = 0;
  let checkExpiry = false;
  let down = false;
  const delayed = new Set<NodeJS.Timeout>();
  const counts = { requests: 0, injected500: 0, expiredRejected: 0, puts: 0 };
  const putLog: FaultProxy['putLog'] = [];
  const xmlError = (res: http.ServerResponse, status: number, code: string): void => {
    res.writeHead(status, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code} (injected)</Message></Error>`);
  };
  const server = http.createServer((req, res) => {
    counts.requests++;
    if (down) return void req.socket.destroy();
    if (req.method === 'PUT') {
      const auth = req.headers['authorization'];
      const accessKeyId = (typeof auth === 'string' ? /Credential=([^/,\s]+)\//.exec(auth)?.[1] : undefined) ?? '';
      const entry = { path: decodeURIComponent((req.url ?? '').split('?')[0] ?? ''), receivedAt: Date.now(), accessKeyId, status: 0 };
      putLog.push(entry);
      res.on('finish', () => (entry.status = res.statusCode));
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const go = (): void => {
        if (fail > 0) {
          fail--;
          counts.injected500++;
          return xmlError(res, 500, 'InternalError');
        }
        const token = req.headers['x-amz-security-token'];
        const m = typeof token === 'string' ? /^local-(\d+)-\d+$/.exec(token) : null;
        if (checkExpiry && m && Number(m[1]) < Date.now()) {
          counts.expiredRejected++;
          return xmlError(res, 400, 'ExpiredToken');
        }
        if (req.method === 'PUT') counts.puts++;
        const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.on('error', () => xmlError(res, 502, 'BadGateway'));
        up.end(Buffer.concat(chunks));
      };
      if (delay > 0) {
        const t = setTimeout(() => (delayed.delete(t), go()), delay);
        delayed.add(t);
      } else go();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    fail500: (n) => void (fail = n),
    setDelayMs: (ms) => void (delay = ms),
    checkTokenExpiry: (on) => void (checkExpiry = on),
    setDown: (on) => void (down = on),
    counts,
    putLog,
    close: () => {
      for (const t of delayed) clearTimeout(t);
      return new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve())));
    },
  };
}

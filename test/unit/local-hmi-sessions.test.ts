/**
 * LocalHmi's session lifetimes on an injected clock (HTTPS stays real): a session ends after
 * idleTimeoutMs without a request, requests keep it alive, and it ends after sessionTtlMs however
 * busy it is; its live stream ends with it.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runComponent, type ProcessLike } from '../../components/lib/component';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { LOCAL_HMI_DEFAULTS, localHmiConfigSpec } from '../../components/local-hmi/config';
import { createLocalHmi } from '../../components/local-hmi/local-hmi';
import { HmiClient } from '../../components/local-hmi/testing/client';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

class FakeProcess extends EventEmitter implements ProcessLike {
  exit(): void {
    /* the test ends the run */
  }
}

const MIN = 60_000;
let dir: string;
let proc: FakeProcess;
let done: Promise<number>;
const clock = new FakeClock();
let port = 0;
let ca = '';
let password = '';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hmi-sess-'));
  const config = { ...LOCAL_HMI_DEFAULTS, siteId: 'sess-site', port: 0, bindAddress: '127.0.0.1', storePath: path.join(dir, 'raw.db'), rollupPath: path.join(dir, 'agg.db'), sessionTtlMs: 60 * MIN, idleTimeoutMs: 10 * MIN };
  const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.LocalHmi', config: config as unknown as Record<string, unknown> });
  proc = new FakeProcess();
  const lines: string[] = [];
  const run = runComponent(
    { name: 'com.dcmms.edge.LocalHmi', version: '9.9.9', config: localHmiConfigSpec, create: (deps, cfg) => createLocalHmi({ ...deps, workDir: dir }, cfg) },
    { process: proc, createIpcClient: nucleus.factory, clock, write: (l) => void lines.push(l) },
  );
  done = run.done;
  expect(await run.running).toBe(true);
  const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  port = Number(logs.find((l) => l['msg'] === 'listening')?.['port']);
  password = String(logs.find((l) => typeof l['password'] === 'string')?.['password']);
  ca = fs.readFileSync(path.join(dir, 'hmi-cert.pem'), 'utf8');
});

afterAll(async () => {
  proc.emit('SIGTERM');
  await clock.advanceAsync(5000);
  await done;
  fs.rmSync(dir, { recursive: true, force: true });
});

test('idle: a session without a request for idleTimeoutMs ends; its live stream is closed by the housekeeping', async () => {
  const c = new HmiClient(port, ca);
  expect((await c.login('admin', password)).status).toBe(200);
  const stream = await c.events();
  expect(stream.status).toBe(200);
  const ended = new Promise<void>((resolve) => stream.res.on('end', () => resolve()));
  await clock.advanceAsync(9 * MIN);
  expect((await c.request('GET', '/api/session')).status).toBe(200); // a request: the idle clock starts again
  await clock.advanceAsync(9 * MIN);
  expect((await c.request('GET', '/api/overview')).status).toBe(200);
  await clock.advanceAsync(10 * MIN + 1000); // the housekeeping runs every 30 s within this
  await ended;
  expect((await c.request('GET', '/api/session')).status).toBe(401);
});

test('lifetime: a session ends after sessionTtlMs even when used all along', async () => {
  const c = new HmiClient(port, ca);
  expect((await c.login('admin', password)).status).toBe(200);
  for (let t = 0; t < 55; t += 5) {
    await clock.advanceAsync(5 * MIN);
    expect((await c.request('GET', '/api/session')).status).toBe(200);
  }
  await clock.advanceAsync(6 * MIN);
  await waitFor(async () => (await c.request('GET', '/api/session')).status === 401, 2000, 'the session gone after its TTL');
});

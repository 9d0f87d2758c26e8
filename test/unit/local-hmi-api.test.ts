/**
 * LocalHmi's HTTP API over real HTTPS on loopback (port 0), the real component run by runComponent
 * as main.ts runs it, with an in-memory IPC nucleus (FakeNucleus) for the bus: first start, auth,
 * CSRF, roles, rate limit, headers, acknowledge and control requests, audit, SSE.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runComponent, type ProcessLike } from '../../components/lib/component';
import { CONTRACT_VERSION, topics, type AlarmMessage, type OperatorRequest, type TelemetryMessage } from '../../components/lib/contract';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { LOCAL_HMI_DEFAULTS, localHmiConfigSpec, type LocalHmiConfig } from '../../components/local-hmi/config';
import { createLocalHmi } from '../../components/local-hmi/local-hmi';
import { HmiClient } from '../../components/local-hmi/testing/client';
import { SECURITY_HEADERS } from '../../components/local-hmi/server';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const SITE = 'hmi-site';

class FakeProcess extends EventEmitter implements ProcessLike {
  exit(): void {
    /* the test ends the run */
  }
}

interface Run {
  nucleus: FakeNucleus;
  proc: FakeProcess;
  lines: string[];
  port: number;
  ca: string;
  done: Promise<number>;
  stop(): Promise<void>;
}

function logs(lines: string[]): Array<Record<string, unknown>> {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function start(dir: string, over: Partial<LocalHmiConfig> = {}): Promise<Run> {
  const config = { ...LOCAL_HMI_DEFAULTS, siteId: SITE, port: 0, bindAddress: '127.0.0.1', storePath: path.join(dir, 'raw.db'), rollupPath: path.join(dir, 'aggregates.db'), ...over };
  const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.LocalHmi', config: config as unknown as Record<string, unknown> });
  const proc = new FakeProcess();
  const lines: string[] = [];
  const run = runComponent(
    { name: 'com.dcmms.edge.LocalHmi', version: '9.9.9', config: localHmiConfigSpec, create: (deps, cfg) => createLocalHmi({ ...deps, workDir: dir }, cfg) },
    { process: proc, createIpcClient: nucleus.factory, write: (l) => void lines.push(l) },
  );
  if (!(await run.running)) throw new Error(`LocalHmi did not start:\n${lines.join('')}`);
  const listening = logs(lines).find((l) => l['msg'] === 'listening');
  const port = Number(listening?.['port']);
  const ca = fs.readFileSync(path.join(dir, 'hmi-cert.pem'), 'utf8');
  return {
    nucleus,
    proc,
    lines,
    port,
    ca,
    done: run.done,
    async stop() {
      proc.emit('SIGTERM');
      await run.done;
    },
  };
}

function firstStartPassword(lines: string[]): string | undefined {
  const l = logs(lines).find((x) => x['msg'] === 'first start: admin credential created (shown once)');
  return l ? String(l['password']) : undefined;
}

const alarm = (over: Partial<AlarmMessage> = {}): AlarmMessage => ({
  schemaVersion: CONTRACT_VERSION,
  siteId: SITE,
  assetId: 'INV-01',
  alarmId: 'a-1',
  type: 'over_temperature',
  severity: 'high',
  state: 'raised',
  ts: Date.now(),
  source: 'processor',
  message: 'cabinet 80 °C',
  transition: 'raised',
  transitionSeq: 0,
  ...over,
});

let dir: string;
let run: Run;
let admin: HmiClient;
let password: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hmi-'));
  run = await start(dir);
  password = firstStartPassword(run.lines)!;
  admin = new HmiClient(run.port, run.ca);
  expect((await admin.login('admin', password)).status).toBe(200);
});

afterAll(async () => {
  await run?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const READ_ROUTES = ['/api/session', '/api/users', '/api/overview', '/api/alarms', '/api/devices', '/api/series', '/api/trend?assetId=INV-01&point=103.W&range=1h', '/api/health', '/api/audit', '/api/control/x', '/api/events'];
const WRITE_ROUTES = ['/api/logout', '/api/users', '/api/password', '/api/alarms/a-1/acknowledge', '/api/alarms/a-1/shelve', '/api/alarms/a-1/unshelve', '/api/control'];

test('first start logs the admin credential once, at warn, with the URL; nothing else logs it', () => {
  const first = logs(run.lines).filter((l) => l['msg'] === 'first start: admin credential created (shown once)');
  expect(first).toHaveLength(1);
  expect(first[0]).toMatchObject({ level: 'warn', username: 'admin', url: expect.stringMatching(new RegExp(`^https://[^/]+:${run.port}/$`)) });
  expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
  expect(run.lines.filter((l) => l.includes(password))).toHaveLength(1);
  expect(logs(run.lines).find((l) => l['msg'] === 'TLS certificate generated')?.['fingerprint256']).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  expect(fs.statSync(path.join(dir, 'hmi-key.pem')).mode & 0o777).toBe(0o600);
});

test('every /api route but login answers 401 without a session', async () => {
  const anon = new HmiClient(run.port, run.ca);
  for (const r of READ_ROUTES) expect([r, (await anon.request('GET', r)).status]).toEqual([r, 401]);
  for (const r of WRITE_ROUTES) {
    const res = await anon.request('POST', r, { confirm: true }, { csrf: 'whatever' });
    expect([r, res.status, res.json]).toEqual([r, 401, { error: 'unauthenticated', message: expect.any(String) }]);
  }
  // A made-up cookie is no session either.
  anon.cookie = 'dcmms_hmi=' + 'A'.repeat(43);
  expect((await anon.request('GET', '/api/overview')).status).toBe(401);
});

test('login: 401 on a wrong password; the cookie is HttpOnly, Secure, SameSite=Strict, Path=/', async () => {
  const c = new HmiClient(run.port, run.ca);
  const bad = await c.request('POST', '/api/login', { username: 'admin', password: 'wrong-password' });
  expect(bad.status).toBe(401);
  expect(bad.headers['set-cookie']).toBeUndefined();
  const ok = await c.request('POST', '/api/login', { username: 'admin', password });
  expect(ok.status).toBe(200);
  expect(ok.json).toEqual({ user: 'admin', role: 'admin', csrfToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
  const cookie = ok.headers['set-cookie']!.find((x) => x.startsWith('dcmms_hmi='))!;
  const attrs = cookie.split(';').map((s) => s.trim().toLowerCase());
  expect(attrs).toEqual(expect.arrayContaining(['httponly', 'secure', 'samesite=strict', 'path=/']));
  expect(cookie.split(';')[0]!.slice('dcmms_hmi='.length)).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes
  const s = await c.request('GET', '/api/session');
  expect(s.json).toEqual(ok.json);
});

/** What every response must carry (the API contract's list, spelled out here rather than taken from the server). */
const REQUIRED_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': expect.stringMatching(/^max-age=\d{7,}/),
};

test('security headers (CSP and the rest) on every response: API, errors, the web app', async () => {
  const anon = new HmiClient(run.port, run.ca);
  expect(SECURITY_HEADERS).toMatchObject(REQUIRED_HEADERS);
  for (const res of [await admin.request('GET', '/api/overview'), await anon.request('GET', '/api/overview'), await anon.request('GET', '/'), await anon.request('GET', '/nope.js'), await admin.request('GET', '/api/nope')]) {
    expect(res.headers).toMatchObject(REQUIRED_HEADERS);
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) expect([k, res.headers[k]]).toEqual([k, v]);
  }
  const page = await anon.request('GET', '/');
  expect(page.status).toBe(200);
  expect(page.headers['content-type']).toMatch(/^text\/html/);
});

test('a non-GET without the CSRF token, or with another session\'s, is 403 csrf', async () => {
  const none = await admin.request('POST', '/api/control', { assetId: 'INV-01', action: 'restore', confirm: true }, { csrf: null });
  expect([none.status, none.json]).toEqual([403, { error: 'csrf', message: expect.any(String) }]);
  const other = new HmiClient(run.port, run.ca);
  await other.login('admin', password);
  const wrong = await admin.request('POST', '/api/control', { assetId: 'INV-01', action: 'restore', confirm: true }, { csrf: other.csrf! });
  expect(wrong.status).toBe(403);
  expect(run.nucleus.published.filter((p) => p.topic === topics.operatorRequest(SITE))).toHaveLength(0);
});

test('roles: a viewer reads but may not control, acknowledge, shelve or manage users (403)', async () => {
  expect((await admin.request('POST', '/api/users', { username: 'vera', password: 'viewer-password-1', role: 'viewer' })).status).toBe(201);
  const v = new HmiClient(run.port, run.ca);
  expect((await v.login('vera', 'viewer-password-1')).status).toBe(200);
  expect((await v.request('GET', '/api/overview')).status).toBe(200);
  const control = await v.request('POST', '/api/control', { assetId: 'INV-01', action: 'curtail', value: 50, confirm: true });
  expect([control.status, (control.json as { error: string }).error]).toEqual([403, 'forbidden']);
  expect((await v.request('POST', '/api/alarms/a-1/acknowledge', { confirm: true })).status).toBe(403);
  expect((await v.request('POST', '/api/alarms/a-1/shelve', { minutes: 5, reason: 'x', confirm: true })).status).toBe(403);
  expect((await v.request('GET', '/api/users')).status).toBe(403);
  expect((await v.request('GET', '/api/audit')).status).toBe(403);
  expect(run.nucleus.published.filter((p) => p.topic === topics.operatorRequest(SITE))).toHaveLength(0);
});

test('failed logins: 429 after maxPerUser wrong passwords for one user name, even with the right one', async () => {
  expect((await admin.request('POST', '/api/users', { username: 'otto', password: 'operator-password-1', role: 'operator' })).status).toBe(201);
  const c = new HmiClient(run.port, run.ca);
  const statuses: number[] = [];
  for (let i = 0; i < LOCAL_HMI_DEFAULTS.loginRateLimit.maxPerUser + 1; i++) statuses.push((await c.request('POST', '/api/login', { username: 'otto', password: `wrong-${i}` })).status);
  expect(statuses).toEqual([...Array(LOCAL_HMI_DEFAULTS.loginRateLimit.maxPerUser).fill(401), 429]);
  const locked = await c.request('POST', '/api/login', { username: 'otto', password: 'operator-password-1' });
  expect(locked.status).toBe(429);
  expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
  const audit = (await admin.request('GET', '/api/audit?limit=50')).json as Array<{ action: string; user: string; outcome: string }>;
  expect(audit.filter((a) => a.action === 'login' && a.user === 'otto').map((a) => a.outcome)).toEqual(expect.arrayContaining(['failure', 'rate_limited']));
});

test('acknowledge: confirm required; publishes an acknowledge OperatorRequest by the user; shows acknowledged; audited', async () => {
  run.nucleus.inject(topics.alarms(SITE, 'INV-01'), alarm());
  await waitFor(async () => ((await admin.request('GET', '/api/alarms')).json as unknown[]).length === 1, 5000, 'the alarm listed');
  const noConfirm = await admin.request('POST', '/api/alarms/a-1/acknowledge', { reason: 'seen' });
  expect([noConfirm.status, (noConfirm.json as { error: string }).error]).toEqual([400, 'confirm_required']);
  const res = await admin.request('POST', '/api/alarms/a-1/acknowledge', { reason: 'seen', confirm: true });
  expect(res.status).toBe(202);
  const { requestId } = res.json as { requestId: string };
  const sent = run.nucleus.published.filter((p) => p.topic === topics.operatorRequest(SITE)).map((p) => p.message as OperatorRequest);
  expect(sent).toEqual([{ schemaVersion: CONTRACT_VERSION, siteId: SITE, ts: expect.any(Number), requestId, operator: 'admin', action: 'acknowledge', alarmId: 'a-1', assetId: 'INV-01', reason: 'seen' }]);
  const rows = (await admin.request('GET', '/api/alarms?view=active')).json as Array<{ alarmId: string; acknowledged?: { by: string } }>;
  expect(rows[0]).toMatchObject({ alarmId: 'a-1', kind: 'over_temperature', severity: 'high', state: 'active', acknowledged: { by: 'admin', reason: 'seen' } });
  expect(((await admin.request('GET', '/api/overview')).json as { alarms: unknown }).alarms).toEqual({ active: 1, unacknowledged: 0 });
  const audit = (await admin.request('GET', '/api/audit')).json as Array<{ action: string; target: string; outcome: string; user: string }>;
  expect(audit.find((a) => a.action === 'acknowledge')).toMatchObject({ user: 'admin', target: 'a-1', outcome: 'sent' });
});

test('shelve and unshelve: stored with its expiry, reason required, audited', async () => {
  expect((await admin.request('POST', '/api/alarms/a-1/shelve', { minutes: 30, confirm: true })).status).toBe(400);
  expect((await admin.request('POST', '/api/alarms/a-1/shelve', { minutes: 0, reason: 'x', confirm: true })).status).toBe(400);
  const t0 = Date.now();
  const ok = await admin.request('POST', '/api/alarms/a-1/shelve', { minutes: 30, reason: 'maintenance', confirm: true });
  expect(ok.status).toBe(200);
  const rows = (await admin.request('GET', '/api/alarms')).json as Array<{ shelved?: { until: number; reason: string; by: string } }>;
  expect(rows[0]?.shelved).toMatchObject({ by: 'admin', reason: 'maintenance' });
  expect(rows[0]!.shelved!.until).toBeGreaterThanOrEqual(t0 + 30 * 60_000);
  expect((await admin.request('POST', '/api/alarms/a-1/unshelve', { confirm: true })).status).toBe(200);
  expect(((await admin.request('GET', '/api/alarms')).json as Array<{ shelved?: unknown }>)[0]?.shelved).toBeUndefined();
  const audit = (await admin.request('GET', '/api/audit')).json as Array<{ action: string }>;
  expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['shelve', 'unshelve']));
});

test('control: curtail publishes an OperatorRequest and follows LocalControl\'s decision to done', async () => {
  const bad = await admin.request('POST', '/api/control', { assetId: 'INV-01', action: 'curtail', value: 120, confirm: true });
  expect(bad.status).toBe(400);
  const res = await admin.request('POST', '/api/control', { assetId: 'INV-01', action: 'curtail', value: 40, confirm: true });
  expect(res.status).toBe(202);
  const { requestId } = res.json as { requestId: string };
  const sent = run.nucleus.published.map((p) => p.message as OperatorRequest).find((m) => m.requestId === requestId);
  expect(sent).toMatchObject({ action: 'curtail', assetId: 'INV-01', operator: 'admin', params: { percent: 40 } });
  expect((await admin.request('GET', `/api/control/${requestId}`)).json).toEqual({ requestId, state: 'pending' });
  const decision = (outcome: string) => ({ schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'INV-01', ts: Date.now(), decisionId: 'd-1', ruleId: 'operator', action: 'curtail', params: { percent: 40 }, inputs: [{ source: 'operator', ref: `admin/${requestId}`, value: 'curtail', ts: Date.now() }], outcome });
  run.nucleus.inject(topics.controlDecision(SITE, 'INV-01'), decision('commanded'));
  run.nucleus.inject(topics.controlDecision(SITE, 'INV-01'), decision('succeeded'));
  await waitFor(async () => ((await admin.request('GET', `/api/control/${requestId}`)).json as { state: string }).state === 'done', 5000, 'the request done');
});

test('SSE: telemetry, alarm events to a logged-in client; 401 without a session', async () => {
  const anon = new HmiClient(run.port, run.ca);
  const denied = await anon.events();
  expect(denied.status).toBe(401);
  denied.close();
  const sse = await admin.events();
  expect(sse.status).toBe(200);
  expect(sse.res.headers['content-type']).toMatch(/^text\/event-stream/);
  expect(sse.res.headers).toMatchObject(REQUIRED_HEADERS);
  const tm: TelemetryMessage = { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'INV-02', ts: Date.now(), seq: 1, points: { '103.W': { v: 41000, u: 'W', q: 'good' }, '103.WH': { v: 5_000_000, u: 'Wh', q: 'good' } } };
  run.nucleus.inject(topics.processedTelemetry(SITE, 'INV-02'), tm);
  run.nucleus.inject(topics.alarms(SITE, 'INV-02'), alarm({ alarmId: 'a-2', assetId: 'INV-02' }));
  await waitFor(() => sse.events.some((e) => e.event === 'telemetry') && sse.events.some((e) => e.event === 'alarm'), 5000, 'telemetry and alarm events');
  expect(sse.events.find((e) => e.event === 'telemetry')?.data).toEqual({ assetId: 'INV-02', ts: tm.ts, values: { '103.W': 41000, '103.WH': 5_000_000 } });
  expect(sse.events.find((e) => e.event === 'alarm')?.data).toMatchObject({ alarmId: 'a-2', state: 'active' });
  sse.close();
  // The overview: inverter power and state (SunSpec 103 St 4 = MPPT), energy today from the
  // lifetime counter's increase (no store yet: since the first value seen), weather, meter.
  expect(((await admin.request('GET', '/api/overview')).json as { energyTodayKWh: number }).energyTodayKWh).toBe(0);
  run.nucleus.inject(topics.processedTelemetry(SITE, 'INV-02'), { ...tm, ts: tm.ts + 1000, seq: 2, points: { '103.W': { v: 42000, u: 'W', q: 'good' }, '103.St': { v: 4, q: 'good' }, '103.WH': { v: 5_002_500, u: 'Wh', q: 'good' } } });
  run.nucleus.inject(topics.processedTelemetry(SITE, 'WS-01'), { ...tm, assetId: 'WS-01', points: { poa: { v: 850, u: 'W/m2', q: 'good' }, ambientTemp: { v: 21.5, u: 'Cel', q: 'good' } } });
  run.nucleus.inject(topics.processedTelemetry(SITE, 'METER-01'), { ...tm, assetId: 'METER-01', points: { '203.W': { v: 80000, u: 'W', q: 'good' } } });
  await waitFor(async () => ((await admin.request('GET', '/api/overview')).json as { meter?: unknown }).meter !== undefined, 5000, 'the meter in the overview');
  const ov = (await admin.request('GET', '/api/overview')).json as Record<string, unknown>;
  expect(ov).toMatchObject({
    siteId: SITE,
    inverters: [{ assetId: 'INV-02', acPowerW: 42000, state: 'MPPT', updatedAt: tm.ts + 1000 }],
    energyTodayKWh: 2.5,
    weather: { irradianceWm2: 850, ambientC: 21.5, updatedAt: tm.ts },
    meter: { acPowerW: 80000 },
    devices: { online: 3, total: 3 },
    cloud: { state: 'unknown' },
  });
});

test('alarm sync at start; a source\'s snapshot (all pages) sets its active alarms, the ones missing from it move to history', async () => {
  const sync = run.nucleus.published.filter((p) => p.topic === topics.alarmSync(SITE)).map((p) => p.message);
  expect(sync).toEqual([{ schemaVersion: CONTRACT_VERSION, siteId: SITE, ts: expect.any(Number), requester: 'local-hmi' }]);
  const t0 = Date.now();
  const a = (id: string): AlarmMessage => alarm({ alarmId: id, assetId: 'INV-03', source: 'analytics', type: 'low_pr', severity: 'medium', replayed: true });
  const snap = (ts: number, page: number, pages: number, active: AlarmMessage[]) => ({ schemaVersion: CONTRACT_VERSION, siteId: SITE, source: 'analytics', ts, journalId: 'j-1', headSeq: 5, oldestSeq: 1, active, page, pages, requestedBy: 'local-hmi' });
  const ids = async (view: string): Promise<string[]> => ((await admin.request('GET', `/api/alarms?view=${view}`)).json as Array<{ alarmId: string; source: string }>).filter((r) => r.source === 'analytics').map((r) => r.alarmId).sort();
  run.nucleus.inject(topics.alarmSnapshot(SITE, 'analytics'), snap(t0, 1, 2, [a('s-1')]));
  run.nucleus.inject(topics.alarmSnapshot(SITE, 'analytics'), snap(t0, 2, 2, [a('s-2')]));
  await waitFor(async () => (await ids('active')).length === 2, 5000, 'both pages applied');
  expect(await ids('active')).toEqual(['s-1', 's-2']);
  run.nucleus.inject(topics.alarmSnapshot(SITE, 'analytics'), snap(t0 + 1000, 1, 1, [a('s-2')]));
  await waitFor(async () => (await ids('active')).length === 1, 5000, 's-1 gone from the active list');
  expect(await ids('active')).toEqual(['s-2']);
  expect(await ids('history')).toEqual(['s-1']);
  // Another source's alarms are untouched by this source's snapshot.
  expect(((await admin.request('GET', '/api/alarms')).json as Array<{ alarmId: string }>).map((r) => r.alarmId)).toEqual(expect.arrayContaining(['a-1', 'a-2']));
});

test('health: every component of the bundle listed (unknown until it reports), reports and disk figures', async () => {
  const t = Date.now();
  const metrics = { messagesIn: 0, messagesOut: 0, errors: 0, lastError: null, latencyMs: { p50: 0, p99: 0, max: 0, samples: 0 }, queueDepth: 3, queues: { outbox_alarms: 1, outbox_telemetry: 2 }, connectionState: 'connected', rejections: {}, dropped: {} };
  run.nucleus.inject(topics.componentHealth(SITE, 'uplink'), { schemaVersion: CONTRACT_VERSION, siteId: SITE, component: 'uplink', componentName: 'com.dcmms.edge.Uplink', version: '1.2.3', state: 'degraded', ts: t, uptimeMs: 1000, intervalMs: 10_000, metrics });
  await waitFor(async () => ((await admin.request('GET', '/api/overview')).json as { cloud: { state: string } }).cloud.state === 'offline', 5000, 'the cloud link offline');
  expect(((await admin.request('GET', '/api/overview')).json as { cloud: unknown }).cloud).toEqual({ state: 'offline', backlogRecords: 3 });
  const h = (await admin.request('GET', '/api/health')).json as { components: Array<{ name: string; state: string; version?: string }>; disk: { freeBytes: number; totalBytes: number }; hmi: { version: string } };
  expect(h.components.map((c) => c.name).sort()).toEqual(['aggregator', 'analytics', 'health', 'local-control', 'local-hmi', 'ml-inference', 'modbus-adapter', 'processor', 'uplink']);
  expect(h.components.find((c) => c.name === 'uplink')).toMatchObject({ state: 'degraded', version: '1.2.3' });
  expect(h.components.find((c) => c.name === 'processor')?.state).toBe('unknown');
  expect(h.disk.totalBytes).toBeGreaterThan(h.disk.freeBytes);
  expect(h.disk.freeBytes).toBeGreaterThan(0);
  expect(h.hmi.version).toBe('9.9.9');
  expect(h).not.toHaveProperty('models');

  // MLInference's report names its models in service: the health page lists them.
  const models = [{ name: 'fault', version: '1.1.0' }, { name: 'forecast', version: '1.0.0' }];
  run.nucleus.inject(topics.componentHealth(SITE, 'ml-inference'), { schemaVersion: CONTRACT_VERSION, siteId: SITE, component: 'ml-inference', componentName: 'com.dcmms.edge.MLInference', version: '1.0.0', state: 'running', ts: t, uptimeMs: 1000, intervalMs: 10_000, metrics, models });
  await waitFor(async () => ((await admin.request('GET', '/api/health')).json as { models?: unknown }).models !== undefined, 5000, 'model versions on the health page');
  expect(((await admin.request('GET', '/api/health')).json as { models?: unknown }).models).toEqual(models);
});

test('logout ends the session (204, then 401)', async () => {
  const c = new HmiClient(run.port, run.ca);
  await c.login('admin', password);
  expect((await c.request('POST', '/api/logout')).status).toBe(204);
  expect((await c.request('GET', '/api/session')).status).toBe(401);
});

test('a password change: the current one is checked; every other session of the user ends, with its live stream', async () => {
  const a = new HmiClient(run.port, run.ca);
  const b = new HmiClient(run.port, run.ca);
  expect((await a.login('vera', 'viewer-password-1')).status).toBe(200);
  expect((await b.login('vera', 'viewer-password-1')).status).toBe(200);
  const stream = await b.events();
  expect(stream.status).toBe(200);
  expect((await a.request('POST', '/api/password', { current: 'wrong-password', next: 'viewer-password-2' })).status).toBe(403);
  expect((await a.request('POST', '/api/password', { current: 'viewer-password-1', next: 'short' })).status).toBe(400);
  expect((await a.request('POST', '/api/password', { current: 'viewer-password-1', next: 'viewer-password-2' })).status).toBe(204);
  expect((await b.request('GET', '/api/session')).status).toBe(401);
  expect((await a.request('GET', '/api/session')).status).toBe(200);
  expect((await new HmiClient(run.port, run.ca).login('vera', 'viewer-password-1')).status).toBe(401);
  expect((await new HmiClient(run.port, run.ca).login('vera', 'viewer-password-2')).status).toBe(200);
  stream.close();
  const audit = (await admin.request('GET', '/api/audit')).json as Array<{ action: string; user: string; outcome: string }>;
  expect(audit.filter((x) => x.action === 'password_change' && x.user === 'vera').map((x) => x.outcome)).toEqual(['success', 'failure']);
});

test('a configuration change restarts the server in place: new listener, sessions kept, no credential logged', async () => {
  const before = run.lines.length;
  run.nucleus.config = { ...run.nucleus.config, idleTimeoutMs: 20 * 60_000 };
  run.nucleus.configChanged([]);
  await waitFor(() => logs(run.lines.slice(before)).some((l) => l['msg'] === 'listening'), 10_000, 'listening again');
  const again = logs(run.lines.slice(before));
  expect(again.some((l) => l['msg'] === 'configuration applied by an internal restart')).toBe(true);
  expect(again.some((l) => l['msg'] === 'first start: admin credential created (shown once)')).toBe(false);
  const port = Number(again.find((l) => l['msg'] === 'listening')?.['port']);
  const c = new HmiClient(port, run.ca);
  c.cookie = admin.cookie;
  c.csrf = admin.csrf;
  expect((await c.request('GET', '/api/session')).json).toMatchObject({ user: 'admin', role: 'admin' });
  admin = c;
  run.port = port;
});

test('a second start with the same work folder logs no credential and keeps the users', async () => {
  await run.stop();
  // Refused requests are counted by reason in the health report (its last one, "stopping").
  const last = run.nucleus.published.filter((p) => p.topic === topics.componentHealth(SITE, 'local-hmi')).at(-1)?.message as { state: string; metrics: { rejections: Record<string, number> } };
  expect(last.state).toBe('stopping');
  expect(Object.keys(last.metrics.rejections)).toEqual(expect.arrayContaining(['unauthenticated', 'csrf', 'login_failed', 'login_rate_limited', 'confirm_required', 'bad_request']));
  const again = await start(dir);
  try {
    expect(firstStartPassword(again.lines)).toBeUndefined();
    expect(again.lines.some((l) => l.includes(password))).toBe(false);
    expect(logs(again.lines).find((l) => l['msg'] === 'TLS certificate loaded')).toBeDefined();
    const c = new HmiClient(again.port, again.ca);
    expect((await c.login('admin', password)).status).toBe(200);
  } finally {
    run = again;
  }
});

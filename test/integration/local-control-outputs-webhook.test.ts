/**
 * LocalControl's webhook notifications (an SMS provider's HTTPS API) against a real HTTPS server:
 * node:https on a free loopback port with a self-signed certificate made here (openssl), answering
 * 200, 500, 403, 429 with Retry-After, and hanging. What the server received is checked on its side.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock } from '../../components/lib/clock';
import { createLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { createAlarmOutputs, type AlarmOutputs, type WebhookChannelOptions } from '../../components/local-control/outputs';
import { alarm as fixed } from '../../components/local-control/outputs/testing/alarms';
import { makeSelfSignedCert, type TestCertificate } from '../../components/local-control/outputs/testing/tls';
import { startWebhookServer, type WebhookServer } from '../../components/local-control/outputs/testing/webhook-server';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const TOKEN = 'tok-3f9c1e-never-logged';
const API_KEY = 'key-77aa-never-logged';
let dir: string;
let cert: TestCertificate;
let server: WebhookServer;
let outputs: AlarmOutputs | undefined;
let lines: string[];
let metrics: Metrics;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-hook-'));
  cert = makeSelfSignedCert(dir);
});
beforeEach(async () => {
  server = await startWebhookServer(cert);
});
afterEach(async () => {
  await outputs?.close();
  outputs = undefined;
  await server.close();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const alarm = (id: string, over: Parameters<typeof fixed>[1] = {}) => fixed(id, { ts: Date.now(), ...over });
let n = 0;

function start(over: Partial<WebhookChannelOptions> = {}): AlarmOutputs {
  lines = [];
  metrics = createMetrics({ clock: systemClock });
  outputs = createAlarmOutputs(
    { clock: systemClock, logger: createLogger({}, { write: (l) => lines.push(l) }), metrics },
    {
      dbPath: path.join(dir, `q${n++}.db`),
      siteId: 'plant-7',
      backoffInitialMs: 100,
      backoffMaxMs: 1000,
      channels: [{ type: 'webhook', name: 'sms-api', url: `${server.url}?apikey=${API_KEY}`, bearerToken: TOKEN, headers: { 'X-Api-Key': API_KEY }, ca: cert.cert, timeoutMs: 2000, ...over }],
    },
  );
  outputs.start();
  return outputs;
}

const logs = (): string => lines.join('\n');

test('200: one POST of JSON per notification with the bearer token and an idempotency key', async () => {
  const o = start();
  o.offer(alarm('al-1', { severity: 'critical' }));
  const [r] = await server.waitForRequests(1);
  expect(r!.method).toBe('POST');
  expect(r!.path).toBe(`/v1/sms?apikey=${API_KEY}`);
  expect(r!.headers['authorization']).toBe(`Bearer ${TOKEN}`);
  expect(r!.headers['x-api-key']).toBe(API_KEY);
  expect(r!.headers['content-type']).toBe('application/json');
  expect(r!.headers['idempotency-key']).toBe('["al-1",0,"sms-api"]');
  expect(r!.body).toMatchObject({
    schemaVersion: 1,
    siteId: 'plant-7',
    channel: 'sms-api',
    kind: 'transition',
    idempotencyKey: '["al-1",0,"sms-api"]',
    text: expect.stringMatching(/^CRITICAL RAISED INV-01 over_temperature v=85\.2 thr=80 site plant-7 /) as unknown as string,
    alarm: { alarmId: 'al-1', transitionSeq: 0, severity: 'critical' },
  });
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(o.status().channels[0]).toMatchObject({ delivered: 1, consecutiveFailures: 0 });
});

test('500 is retried with backoff until accepted, with the same idempotency key', async () => {
  server.next = [500, 500, 503];
  const o = start();
  o.offer(alarm('al-1'));
  await server.waitForRequests(4);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(server.requests.map((r) => r.answered)).toEqual([500, 500, 503, 200]);
  expect(new Set(server.requests.map((r) => r.headers['idempotency-key'])).size).toBe(1);
  expect(lines.some((l) => l.includes('HTTP_500'))).toBe(true);
  expect(logs()).not.toContain(TOKEN);
  expect(logs()).not.toContain(API_KEY);
});

test('403 refuses the notification: counted, logged with the status only, not retried; the next one goes', async () => {
  server.next = [403];
  const o = start();
  o.offer(alarm('al-1'));
  await server.waitForRequests(1);
  await waitFor(() => o.status().dropped['webhook_refused'] === 1, 5000, 'refusal counted');
  expect(metrics.snapshot().dropped['notify_webhook_refused']).toBe(1);
  o.offer(alarm('al-2'));
  await server.waitForRequests(2);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(server.requests.map((r) => [(r.body as { alarm: { alarmId: string } }).alarm.alarmId, r.answered])).toEqual([
    ['al-1', 403],
    ['al-2', 200],
  ]);
  const refusal = lines.find((l) => l.includes('notification refused by the destination'))!;
  expect(refusal).toContain('HTTP_403');
  expect(refusal).toContain('127.0.0.1');
  expect(refusal).not.toContain('/v1/sms');
  expect(logs()).not.toContain(TOKEN);
  expect(logs()).not.toContain(API_KEY);
});

test('429 with Retry-After: the next attempt waits at least that long', async () => {
  server.next = [{ status: 429, retryAfter: '1' }];
  const o = start();
  o.offer(alarm('al-1'));
  await server.waitForRequests(2);
  const [first, second] = server.requests;
  expect(first!.answered).toBe(429);
  expect(second!.answered).toBe(200);
  // The backoff alone would have retried after 50 to 100 ms.
  expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
});

test('a server that never answers: timeout, retried, delivered once it answers', async () => {
  server.next = ['hang', 'hang'];
  const o = start({ timeoutMs: 300 });
  const t = Date.now();
  o.offer(alarm('al-1'));
  await server.waitForRequests(3);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(Date.now() - t).toBeGreaterThanOrEqual(600);
  expect(server.requests.map((r) => r.answered)).toEqual(['hang', 'hang', 200]);
  expect(lines.some((l) => l.includes('HTTP_TIMEOUT'))).toBe(true);
});

test('a certificate we do not trust: nothing is posted, it stays queued', async () => {
  const o = start({ ca: undefined } as Partial<WebhookChannelOptions>);
  o.offer(alarm('al-1'));
  await waitFor(() => o.status().channels[0]!.consecutiveFailures >= 2, 5000, 'failed attempts');
  expect(o.status().channels[0]!.lastError).toMatch(/self-signed|certificate/i);
  expect(server.requests).toEqual([]);
  expect(o.status().queued).toBe(1);
});

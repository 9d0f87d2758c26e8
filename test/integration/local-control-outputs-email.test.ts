/**
 * LocalControl's e-mail notifications against a real SMTP server: aiosmtpd (Debian
 * python3-aiosmtpd) on a free loopback port, plain, STARTTLS and implicit TLS with a self-signed
 * certificate made here, with and without AUTH. Every check of what arrived is made on the
 * server's side (the message as aiosmtpd received it). The server is also killed and started again
 * on the same port: every notification arrives afterwards, exactly once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock } from '../../components/lib/clock';
import { createLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { createAlarmOutputs, type AlarmOutputs, type EmailChannelOptions } from '../../components/local-control/outputs';
import { startSmtpPeer, type SmtpPeer } from '../../components/local-control/outputs/testing/aiosmtpd';
import { alarm as fixed } from '../../components/local-control/outputs/testing/alarms';
import { makeSelfSignedCert, type TestCertificate } from '../../components/local-control/outputs/testing/tls';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const PASSWORD = 'pw-Xy7!never-logged';
let dir: string;
let cert: TestCertificate;
const peers: SmtpPeer[] = [];
const open: AlarmOutputs[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-mail-'));
  cert = makeSelfSignedCert(dir);
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
  await Promise.all(peers.splice(0).map((p) => p.stop()));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function peer(opts: Parameters<typeof startSmtpPeer>[0] = {}): Promise<SmtpPeer> {
  const p = await startSmtpPeer({ certFile: cert.certFile, keyFile: cert.keyFile, ...opts });
  peers.push(p);
  return p;
}

let n = 0;
/** A transition of now (the queue drops transitions older than its age bound). */
const alarm = (id: string, over: Parameters<typeof fixed>[1] = {}) => fixed(id, { ts: Date.now(), ...over });
function outputs(mail: Partial<EmailChannelOptions> & { port: number }, over: { dbPath?: string } = {}): { o: AlarmOutputs; lines: string[]; metrics: Metrics } {
  const lines: string[] = [];
  const metrics = createMetrics({ clock: systemClock });
  const o = createAlarmOutputs(
    { clock: systemClock, logger: createLogger({ component: 'local-control' }, { write: (l) => lines.push(l) }), metrics },
    {
      dbPath: over.dbPath ?? path.join(dir, `q${n++}.db`),
      siteId: 'plant-7',
      siteName: 'Plant 7',
      backoffInitialMs: 100,
      backoffMaxMs: 400,
      channels: [{ type: 'email', name: 'ops-mail', host: '127.0.0.1', tls: 'none', from: 'gateway@plant-7.example', to: ['ops@example.com', 'oncall@example.com'], batchIntervalMs: 0, timeoutMs: 5000, ...mail }],
    },
  );
  o.start();
  open.push(o);
  return { o, lines, metrics };
}

test('plain SMTP without AUTH: one mail per transition with readable subject, headers and body', async () => {
  const smtp = await peer();
  const { o } = outputs({ port: smtp.port });
  const ts = Date.now() - 1234;
  o.offer(alarm('al-1', { severity: 'critical', assetId: 'INV-03', value: 91.5, threshold: 80, ts }));
  const [m] = await smtp.waitForMessages(1);
  expect(m!.tls).toBe(false);
  expect(m!.login).toBeNull();
  expect(m!.mailFrom).toBe('gateway@plant-7.example');
  expect(m!.rcptTos).toEqual(['ops@example.com', 'oncall@example.com']);
  expect(m!.headers['from']).toBe('gateway@plant-7.example');
  expect(m!.headers['to']).toBe('ops@example.com, oncall@example.com');
  expect(m!.headers['subject']).toBe('[Plant 7] CRITICAL raised: INV-03 over_temperature');
  expect(m!.headers['content-type']).toMatch(/^text\/plain/);
  expect(m!.headers['message-id']).toMatch(/^<dcmms-notify\.plant-7\.ops-mail\.1-1@plant-7\.example>$/);
  expect(m!.headers['x-dcmms-alarm-ids']).toBe('al-1');
  for (const want of [`Time:       ${new Date(ts).toISOString()}`, 'Site:       plant-7', 'Asset:      INV-03', 'Type:       over_temperature', 'Severity:   critical', 'Transition: raised (#0)', 'Value:      91.5, threshold 80, point 103.TmpCab', 'Message:    Cabinet temperature above limit']) {
    expect(m!.body).toContain(want);
  }
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
});

test('STARTTLS with AUTH against a self-signed certificate: encrypted, authenticated, no password in the logs', async () => {
  const smtp = await peer({ tls: 'starttls', user: 'gw-user', password: PASSWORD });
  const { o, lines } = outputs({ port: smtp.port, tls: 'starttls', ca: cert.cert, user: 'gw-user', password: PASSWORD });
  o.offer(alarm('al-1'));
  const [m] = await smtp.waitForMessages(1);
  expect(m!.tls).toBe(true);
  expect(m!.login).toBe('gw-user');
  expect(smtp.auths).toEqual([{ mechanism: expect.stringMatching(/PLAIN|LOGIN/) as unknown as string, ok: true }]);
  expect(lines.join('\n')).not.toContain(PASSWORD);
});

test('implicit TLS (SMTPS) with AUTH', async () => {
  const smtp = await peer({ tls: 'implicit', user: 'gw-user', password: PASSWORD });
  const { o } = outputs({ port: smtp.port, tls: 'implicit', ca: cert.cert, user: 'gw-user', password: PASSWORD });
  o.offer(alarm('al-1'));
  const [m] = await smtp.waitForMessages(1);
  expect(m!.tls).toBe(true);
  expect(m!.login).toBe('gw-user');
});

test('a certificate we do not trust, or a server without STARTTLS when it is required: nothing is sent, it stays queued', async () => {
  const tlsPeer = await peer({ tls: 'starttls' });
  const untrusted = outputs({ port: tlsPeer.port, tls: 'starttls' }); // no ca: the self-signed certificate is not trusted
  untrusted.o.offer(alarm('al-1'));
  const plain = await peer();
  const downgraded = outputs({ port: plain.port, tls: 'starttls', ca: cert.cert });
  downgraded.o.offer(alarm('al-2'));
  await waitFor(() => untrusted.o.status().channels[0]!.consecutiveFailures >= 2 && downgraded.o.status().channels[0]!.consecutiveFailures >= 2, 10_000, 'failed attempts');
  expect(untrusted.o.status().channels[0]!.lastError).toMatch(/self-signed|certificate/i);
  expect(downgraded.o.status().channels[0]!.lastError).toMatch(/STARTTLS/i);
  expect(tlsPeer.messages).toEqual([]);
  expect(plain.messages).toEqual([]);
  expect(untrusted.o.status().queued).toBe(1);
  expect(downgraded.o.status().queued).toBe(1);
});

test('a wrong password: retried, logged without the password, queued; the right one after a restart delivers it once', async () => {
  const smtp = await peer({ tls: 'starttls', user: 'gw-user', password: PASSWORD });
  const dbPath = path.join(dir, 'wrong-pw.db');
  const wrong = 'wrong-Secret-123';
  const first = outputs({ port: smtp.port, tls: 'starttls', ca: cert.cert, user: 'gw-user', password: wrong }, { dbPath });
  first.o.offer(alarm('al-1'));
  await waitFor(() => smtp.auths.length >= 2, 10_000, 'two failed logins');
  expect(smtp.auths.every((a) => !a.ok)).toBe(true);
  expect(first.o.status().channels[0]!.lastError).toMatch(/^SMTP_AUTH: /);
  const log = first.lines.join('\n');
  expect(log).toContain('notification channel unavailable; retrying with backoff');
  expect(log).not.toContain(wrong);
  expect(log).not.toContain(PASSWORD);
  await first.o.close();
  const second = outputs({ port: smtp.port, tls: 'starttls', ca: cert.cert, user: 'gw-user', password: PASSWORD }, { dbPath });
  await smtp.waitForMessages(1);
  await waitFor(() => second.o.status().queued === 0, 5000, 'queue empty');
  expect(smtp.messages).toHaveLength(1);
});

test('SMTP down for a while (killed, started again on the same port): every notification arrives afterwards, exactly once', async () => {
  const smtp = await peer();
  const { o } = outputs({ port: smtp.port });
  o.offer(alarm('before'));
  // Stopped only once we have the server's 250: killed between its receipt and its answer, the
  // mail would be sent again (at least once, docs/local-control-outputs.md "Delivery").
  await waitFor(() => o.status().channels[0]!.delivered === 1, 5000, 'first mail accepted');
  await smtp.stop();
  const ids = Array.from({ length: 20 }, (_, i) => `down-${i}`);
  for (const id of ids) o.offer(alarm(id));
  await waitFor(() => o.status().channels[0]!.consecutiveFailures >= 6, 10_000, 'the channel retrying through the outage');
  expect(o.status().queued).toBe(20);
  // Replays during the outage change nothing.
  for (const id of ids.slice(0, 5)) expect(o.offer({ ...alarm(id), replayed: true }).duplicates).toEqual(['ops-mail']);
  await smtp.restart();
  await smtp.waitForMessages(21);
  await waitFor(() => o.status().queued === 0 && o.status().channels[0]!.state === 'idle', 10_000, 'queue drained');
  const got = smtp.messages.map((m) => m.headers['x-dcmms-alarm-ids']);
  expect(got).toEqual(['before', ...ids]); // in order, each once
  expect(o.status().channels[0]).toMatchObject({ delivered: 21, consecutiveFailures: 0, lastError: null });
});

test('batching: one mail per batchIntervalMs with every transition since the last', async () => {
  const smtp = await peer();
  const { o } = outputs({ port: smtp.port, batchIntervalMs: 1500 });
  o.offer(alarm('b-1', { severity: 'medium' }));
  await smtp.waitForMessages(1);
  o.offer(alarm('b-2', { severity: 'medium', assetId: 'INV-02' }));
  o.offer(alarm('b-3', { severity: 'critical', assetId: 'INV-03' }));
  o.offer(alarm('b-1', { severity: 'medium', state: 'cleared', transition: 'cleared', transitionSeq: 1 }));
  const t = Date.now();
  const [, second] = await smtp.waitForMessages(2);
  expect(Date.now() - t).toBeGreaterThan(1000);
  expect(second!.headers['subject']).toBe('[Plant 7] 3 alarm notifications, highest CRITICAL (2 raised, 1 cleared)');
  expect(second!.headers['x-dcmms-alarm-ids']).toBe('b-2 b-3 b-1');
  expect(second!.body).toMatch(/1\. CRITICAL RAISED: INV-03[\s\S]*2\. MEDIUM RAISED: INV-01|1\. CRITICAL RAISED: INV-03[\s\S]*2\. MEDIUM RAISED: INV-02/);
  expect(second!.body).toContain('MEDIUM CLEARED: INV-01 over_temperature');
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(smtp.messages).toHaveLength(2);
});

test('a mailbox the server refuses (550): that recipient is counted; a mail no recipient takes is dropped, counted', async () => {
  const smtp = await peer();
  const some = outputs({ port: smtp.port, to: ['ops@example.com', 'nobody@example.com'] });
  some.o.offer(alarm('r-1'));
  const [m] = await smtp.waitForMessages(1);
  expect(m!.rcptTos).toEqual(['ops@example.com']);
  await waitFor(() => some.metrics.snapshot().dropped['notify_email_recipient_refused'] === 1, 5000, 'recipient refusal counted');
  expect(some.lines.some((l) => l.includes('part of a notification refused') && l.includes('nobody@example.com'))).toBe(true);
  const none = outputs({ port: smtp.port, to: ['nobody@example.com'] });
  none.o.offer(alarm('r-2'));
  await waitFor(() => none.o.status().dropped['email_refused'] === 1, 5000, 'refused mail dropped');
  expect(none.metrics.snapshot().dropped['notify_email_refused']).toBe(1);
  expect(none.o.status()).toMatchObject({ queued: 0, channels: [{ refused: 1, consecutiveFailures: 0 }] });
  expect(smtp.messages).toHaveLength(1);
});

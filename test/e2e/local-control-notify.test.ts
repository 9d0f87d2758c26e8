/**
 * LocalControl's alarm notifications end to end, with what ships: the BUILT ModbusAdapter,
 * Processor and LocalControl (greengrass-build/, started by the local runtime as their own
 * processes) against the site simulator, and a real SMTP server (aiosmtpd, STARTTLS with a
 * self-signed certificate, AUTH required):
 *
 *  - an over-temperature fault on an inverter -> the Processor's alarm -> LocalControl -> one
 *    e-mail naming the transition, sent over STARTTLS with the gateway's login;
 *  - the SMTP server killed while several alarms are raised and cleared: LocalControl's health
 *    says degraded with the notifications queued; the server started again on the same port:
 *    every raise and clear arrives, each exactly once;
 *  - the SMTP password is a secret of the runtime (GetSecretValue, allowed by the secret manager
 *    policy the deployment merges, docs/local-control.md "Secrets"): it is in neither the
 *    component's configuration nor any log.
 *
 * Needs `npm run build` first (npm test does it) and aiosmtpd and openssl (npm run test:peers).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { filters, pubsubResource, type AlarmMessage, type ComponentHealth } from '../../components/lib/contract';
import { DEFAULT_RULES } from '../../components/local-control/config';
import { secretAccessControl } from '../../components/local-control/notify-options';
import { startSmtpPeer, type ReceivedMail, type SmtpPeer } from '../../components/local-control/outputs/testing/aiosmtpd';
import { makeSelfSignedCert, type TestCertificate } from '../../components/local-control/outputs/testing/tls';
import type { IpcClient } from '../../scripts/runtime/client';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import { version } from '../../package.json';
import { startNucleus, pubsubPolicy, type Harness } from '../helpers/nucleus';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const BUILD = path.resolve(__dirname, '../..', 'greengrass-build');
const SITE = 'notify-site';
const ADAPTER = 'com.dcmms.edge.ModbusAdapter';
const PROCESSOR = 'com.dcmms.edge.Processor';
const CONTROL = 'com.dcmms.edge.LocalControl';
const OBSERVER = 'com.test.NotifyObserver';
// A made-up ARN: region and account are placeholders.
const SECRET_ID = 'arn:aws:secretsmanager:region-1:account:secret:notify-site/smtp-AbCdEf';
const SMTP_USER = 'gateway';
const PASSWORD = 'Smtp-e2e-7Qx!never-in-config';

let dir: string;
let cert: TestCertificate;
let smtp: SmtpPeer;
let sim: SiteSimulator;
let h: Harness;
let observer: IpcClient;
const alarms: AlarmMessage[] = [];
const health: ComponentHealth[] = [];

/** One transition as a notification identifies it. */
const idOf = (alarmId: string, seq: number | undefined): string => `${alarmId}#${seq ?? '-'}`;

/** The transitions a mail carries (one per mail here: batchIntervalMs 0). */
function transitionsIn(m: ReceivedMail): Array<{ id: string; transition: string }> {
  const ids = [...m.body.matchAll(/Alarm id:\s+(\S+)/g)].map((x) => x[1]!);
  const ts = [...m.body.matchAll(/Transition:\s+(\w+)(?: \(#(\d+)\))?/g)].map((x) => ({ transition: x[1]!, seq: x[2] === undefined ? undefined : Number(x[2]) }));
  return ids.map((alarmId, i) => ({ id: idOf(alarmId, ts[i]?.seq), transition: ts[i]?.transition ?? '?' }));
}

/** The raises and clears of severity high or critical seen on the alarm topic (what the e-mail channel routes), by identity. */
function expected(): Map<string, AlarmMessage> {
  const out = new Map<string, AlarmMessage>();
  for (const a of alarms) {
    const t = a.transition ?? (a.state === 'cleared' ? 'cleared' : 'raised');
    if ((t === 'raised' || t === 'cleared') && (a.severity === 'high' || a.severity === 'critical')) out.set(idOf(a.alarmId, a.transitionSeq), a);
  }
  return out;
}

const lastHealth = (): ComponentHealth | undefined => health.filter((r) => r.componentName === CONTROL).at(-1);
const inverterAlarms = (assetId: string, transition: string): AlarmMessage[] =>
  alarms.filter((a) => a.assetId === assetId && a.type === 'over_temperature' && (a.transition ?? a.state) === transition);

beforeAll(async () => {
  for (const n of [ADAPTER, PROCESSOR, CONTROL]) {
    if (!fs.existsSync(path.join(BUILD, 'recipes', `${n}-${version}.yaml`))) throw new Error(`greengrass-build/ has no ${n} recipe: run \`npm run build\` (npm test does)`);
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-notify-'));
  cert = makeSelfSignedCert(dir);
  smtp = await startSmtpPeer({ tls: 'starttls', certFile: cert.certFile, keyFile: cert.keyFile, user: SMTP_USER, password: PASSWORD });
  sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 3, cloudiness: 0, startTime: new Date(Date.UTC(2026, 3, 15, 12, 0, 0)), timeScale: 1 });
  // The runtime holds the SMTP password as the secret manager component would.
  h = await startNucleus({ secrets: { [SECRET_ID]: PASSWORD } });
  const observed = await h.deploy([
    { name: OBSERVER, accessControl: pubsubPolicy(OBSERVER, ['SubscribeToTopic'], [pubsubResource('alarms', { siteId: SITE }), pubsubResource('componentHealth', { siteId: SITE })]) },
  ]);
  expect(observed.status).toBe('SUCCEEDED');
  observer = await h.client(OBSERVER);
  const subA = observer.subscribeToTopic({ topic: filters.alarms(SITE).filter });
  subA.on('message', (m) => void alarms.push(m.jsonMessage?.message as AlarmMessage));
  const subH = observer.subscribeToTopic({ topic: filters.componentHealth(SITE).filter });
  subH.on('message', (m) => void health.push(m.jsonMessage?.message as ComponentHealth));
  await Promise.all([subA.activate(), subH.activate()]);

  const outputs = {
    email: {
      host: '127.0.0.1',
      port: smtp.port,
      starttls: true,
      ca: cert.cert,
      user: SMTP_USER,
      passwordSecret: SECRET_ID,
      from: 'gateway@notify-site.example',
      to: ['ops@example.com'],
      minSeverity: 'high',
      batchIntervalMs: 0,
    },
    retryMaxMs: 2000,
  };
  const devices = sim.deviceConfig({ pollIntervalMs: 250 });
  const deployed = await h.run({
    recipeDirectoryPath: path.join(BUILD, 'recipes'),
    artifactsDirectoryPath: path.join(BUILD, 'artifacts'),
    rootComponentsToAdd: { [ADAPTER]: version, [PROCESSOR]: version, [CONTROL]: version },
    configuration: {
      [ADAPTER]: { merge: { siteId: SITE, metricsIntervalMs: 1000, ...devices }, reset: [] },
      [PROCESSOR]: { merge: { siteId: SITE, metricsIntervalMs: 1000, assets: devices.devices.map((d) => d.assetId) }, reset: [] },
      // The secret manager policy for exactly the secret the configuration names, merged beside the
      // recipe's pub/sub policies (what a site's deployment carries).
      [CONTROL]: { merge: { siteId: SITE, metricsIntervalMs: 1000, rules: DEFAULT_RULES, outputs, accessControl: secretAccessControl({ outputs }) }, reset: [] },
    },
  });
  expect(deployed.status).toBe('SUCCEEDED');
  await waitFor(() => [ADAPTER, PROCESSOR, CONTROL].every((n) => health.some((r) => r.componentName === n && r.state !== 'starting')), 30_000, 'every component running');
});

afterAll(async () => {
  await observer?.close();
  await h?.close();
  await sim?.close();
  await smtp?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('an over-temperature alarm is e-mailed with its transition; the SMTP server down while alarms are raised and cleared: afterwards every notification arrives, once; the password comes from a runtime secret', async () => {
  // 1. One alarm, one mail, over STARTTLS with the gateway's login (the password read from the secret).
  const fault1 = sim.injectFault({ kind: 'over-temperature', unit: 1 });
  await waitFor(() => inverterAlarms('INV-01', 'raised').length > 0, 20_000, 'the over_temperature alarm of INV-01');
  const raised = inverterAlarms('INV-01', 'raised')[0]!;
  await waitFor(() => smtp.messages.some((m) => transitionsIn(m).some((t) => t.id === idOf(raised.alarmId, raised.transitionSeq))), 20_000, 'the e-mail of the raise');
  const first = smtp.messages.find((m) => transitionsIn(m).some((t) => t.id === idOf(raised.alarmId, raised.transitionSeq)))!;
  expect(first.tls).toBe(true);
  expect(first.login).toBe(SMTP_USER);
  expect(first.headers['subject']).toMatch(/^\[notify-site\] HIGH raised: INV-01 over_temperature$/);
  expect(first.body).toMatch(/Transition:\s+raised \(#0\)/);
  expect(first.body).toContain(raised.alarmId);
  expect(smtp.auths.every((a) => a.ok)).toBe(true);
  // Nothing queued or in flight (a notification leaves the queue only once accepted) in a report made
  // after that mail: killing the server now cannot cut a mail it already took.
  const mailedAt = Date.now();
  await waitFor(() => health.some((r) => r.componentName === CONTROL && r.ts > mailedAt + 200 && r.metrics.queues['notifications.email'] === 0), 15_000, 'the queue empty after the first mail');

  // 2. The server is killed; alarms are raised and cleared meanwhile.
  await smtp.stop();
  const fault2 = sim.injectFault({ kind: 'over-temperature', unit: 2 });
  const fault3 = sim.injectFault({ kind: 'over-temperature', unit: 3 });
  await waitFor(() => inverterAlarms('INV-02', 'raised').length > 0 && inverterAlarms('INV-03', 'raised').length > 0, 20_000, 'INV-02 and INV-03 over temperature');
  sim.clearFault(fault1);
  sim.clearFault(fault2);
  await waitFor(() => inverterAlarms('INV-01', 'cleared').length > 0 && inverterAlarms('INV-02', 'cleared').length > 0, 20_000, 'INV-01 and INV-02 cleared');
  // LocalControl tried and could not deliver: its health says so, with the notifications queued.
  await waitFor(() => lastHealth()?.state === 'degraded' && (lastHealth()?.metrics.queues['notifications.email'] ?? 0) >= 4, 20_000, 'LocalControl degraded with notifications queued');
  expect(lastHealth()?.metrics.lastError?.code).toMatch(/^SMTP_/);
  sim.clearFault(fault3);
  await waitFor(() => inverterAlarms('INV-03', 'cleared').length > 0, 20_000, 'INV-03 cleared');

  // 3. The server is back on the same port: everything queued arrives.
  await smtp.restart();
  const want = expected();
  expect(want.size).toBeGreaterThanOrEqual(6); // three raises and three clears at least
  const received = (): string[] => smtp.messages.flatMap((m) => transitionsIn(m).map((t) => t.id));
  await waitFor(() => [...want.keys()].every((id) => received().includes(id)), 60_000, `all ${want.size} notifications delivered`);
  // Nothing left to send, and LocalControl healthy again; then count.
  await waitFor(() => lastHealth()?.metrics.queues['notifications.email'] === 0 && lastHealth()?.state === 'running', 20_000, 'the queue empty and LocalControl running');
  const counts = new Map<string, number>();
  for (const id of received()) counts.set(id, (counts.get(id) ?? 0) + 1);
  expect([...want.keys()].filter((id) => counts.get(id) !== 1)).toEqual([]);
  // No notification that is not an observed raise or clear of severity high or above.
  expect(received().filter((id) => !want.has(id))).toEqual([]);
  // Each mail names its transition as the alarm topic had it.
  for (const m of smtp.messages) for (const t of transitionsIn(m)) expect(t.transition).toBe(want.get(t.id)?.transition ?? (want.get(t.id)?.state === 'cleared' ? 'cleared' : 'raised'));

  // 4. The password was in neither the configuration nor a log.
  expect(JSON.stringify(h.nucleus.config.document(CONTROL))).not.toContain(PASSWORD);
  expect(JSON.stringify(h.nucleus.config.document(CONTROL))).toContain(SECRET_ID);
  const logs = path.join(h.nucleus.rootDir, 'logs');
  for (const f of fs.readdirSync(logs)) expect(fs.readFileSync(path.join(logs, f), 'utf8')).not.toContain(PASSWORD);
  expect(smtp.auths.filter((a) => a.ok).length).toBeGreaterThanOrEqual(2);
});

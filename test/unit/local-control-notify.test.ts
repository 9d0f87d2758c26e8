/**
 * LocalControl's notification outputs wired to the component (docs/local-control.md
 * "Notifications", "Secrets"): the configuration keys (defaults, mapping onto the alarm outputs
 * library, refusals naming the key and never quoting a secret), the secret manager policy a site
 * merges, and, with the FakeClock, the real library behind the component (in-memory channels):
 * every transition LocalControl takes in (live, from a snapshot, its own) is notified, an
 * acknowledgement stops an escalation, the SMTP password comes from a secret over the bus, health
 * says when notifications are not getting out, a reconfiguration rebuilds the outputs without
 * losing what is queued, and no secret reaches a log line.
 */
import { createBus } from '../../components/lib/bus';
import { validateConfig, watchConfig } from '../../components/lib/config';
import { CONTRACT_VERSION, topics, type AlarmMessage } from '../../components/lib/contract';
import { ConfigError } from '../../components/lib/errors';
import { createLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { LOCAL_CONTROL_DEFAULTS, localControlConfigSpec, type LocalControlConfig } from '../../components/local-control/config';
import { notifyOptions, secretAccessControl } from '../../components/local-control/notify-options';
import type { ChannelOptions } from '../../components/local-control/outputs';
import { FakeChannel } from '../../components/local-control/outputs/testing/fake-channel';
import { Rig, SITE } from '../../components/local-control/testing/rig';

const SECRET = 'arn:aws:secretsmanager:region-1:account:secret:plant-7/smtp-AbCdEf';
const PASSWORD = 'Smtp-pw-3f9!never-logged';

const EMAIL = { host: 'smtp.site.lan', port: 587, user: 'gateway', passwordSecret: SECRET, from: 'gateway@plant-7.example', to: ['ops@example.com'], batchIntervalMs: 0 };

function config(outputs: Record<string, unknown>): Readonly<LocalControlConfig> {
  return validateConfig(localControlConfigSpec, { siteId: SITE, outputs: { relays: {}, ...outputs } });
}

function refusal(outputs: Record<string, unknown>): ConfigError {
  try {
    config(outputs);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('accepted');
}

describe('configuration', () => {
  test('defaults: no e-mail, SMS or webhook (no queue file), the relays as before', () => {
    const c = validateConfig(localControlConfigSpec, {});
    expect(c.outputs).toEqual(LOCAL_CONTROL_DEFAULTS.outputs);
    expect(c.outputs).toEqual({
      relays: { critical: { assetId: 'IO-01', point: 'relay.alarmHorn' }, high: { assetId: 'IO-01', point: 'relay.beacon' } },
      queuePath: 'notifications.db',
      retryMaxMs: 60000,
    });
    expect(notifyOptions(c)).toBeUndefined();
    expect(secretAccessControl(c)).toBeUndefined();
  });

  test('the keys map onto the library: STARTTLS unless secure, minSeverity per channel, numbers, escalation, retry, the queue in the work folder', () => {
    const c = config({
      email: EMAIL,
      sms: { device: '/dev/ttyUSB2', to: ['+491701234567'] },
      webhook: { url: 'https://sms.example.invalid/send', bearerTokenSecret: 'plant-7/webhook', minSeverity: 'critical' },
      escalation: { afterMs: 900000, channels: ['sms'] },
      siteName: 'Plant 7',
      retryMaxMs: 30000,
    });
    const o = notifyOptions(c, { workDir: '/var/gg/work/lc' })!;
    expect(o).toMatchObject({ dbPath: '/var/gg/work/lc/notifications.db', siteId: SITE, siteName: 'Plant 7', backoffInitialMs: 1000, backoffMaxMs: 30000, escalation: { escalateAfterMs: 900000, channels: ['sms'] } });
    expect(o.channels).toEqual<ChannelOptions[]>([
      { type: 'email', name: 'email', host: 'smtp.site.lan', port: 587, tls: 'starttls', user: 'gateway', passwordSecret: SECRET, from: 'gateway@plant-7.example', to: ['ops@example.com'], minSeverity: 'low', batchIntervalMs: 0 },
      { type: 'sms', name: 'sms', device: '/dev/ttyUSB2', numbers: ['+491701234567'], minSeverity: 'critical' },
      { type: 'webhook', name: 'webhook', url: 'https://sms.example.invalid/send', bearerTokenSecret: 'plant-7/webhook', minSeverity: 'critical' },
    ]);
    expect(notifyOptions(config({ email: { ...EMAIL, secure: true, port: 465 } }))!.channels[0]).toMatchObject({ tls: 'implicit', port: 465 });
    const relay = { host: '127.0.0.1', port: 25, starttls: false, from: 'gw@plant-7.example', to: ['ops@example.com'] };
    expect(notifyOptions(config({ email: relay }))!.channels[0]).toMatchObject({ tls: 'none' });
  });

  test('the secret manager policy a site merges names exactly the secrets the configuration names', () => {
    expect(secretAccessControl(config({ email: EMAIL, webhook: { url: 'https://sms.example.invalid/send', bearerTokenSecret: 'plant-7/webhook' } }))).toEqual({
      'aws.greengrass.SecretManager': {
        'com.dcmms.edge.LocalControl:secrets:1': {
          policyDescription: expect.any(String),
          operations: ['aws.greengrass#GetSecretValue'],
          resources: [SECRET, 'plant-7/webhook'],
        },
      },
    });
    const inline = config({ email: { ...EMAIL, passwordSecret: undefined, password: PASSWORD } });
    expect(secretAccessControl(inline)).toBeUndefined();
  });

  const refusals: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ email: { ...EMAIL, secure: true, starttls: true } }, 'outputs.email.starttls', /must not be true with secure/],
    [{ email: { ...EMAIL, password: PASSWORD } }, 'outputs.email.password', /must not be given with passwordSecret/],
    [{ email: { ...EMAIL, passwordSecret: undefined } }, 'outputs.email.passwordSecret', /is required with user/],
    [{ email: { ...EMAIL, user: undefined } }, 'outputs.email.user', /is required with passwordSecret or password/],
    [{ email: { ...EMAIL, starttls: false } }, 'outputs.email.starttls', /must not be false when user and a password are set/],
    [{ email: { ...EMAIL, to: ['ops@example.com', 'not an address'] } }, 'outputs.email.to.1', /must match/],
    [{ email: { ...EMAIL, tls: 'starttls' } }, 'outputs.email.tls', /is not allowed here/],
    [{ email: { ...EMAIL, passwordSecret: 'has spaces' } }, 'outputs.email.passwordSecret', /must match/],
    [{ email: { ...EMAIL, password: 'x'.repeat(5000), passwordSecret: undefined } }, 'outputs.email.password', /\[redacted\]/],
    [{ sms: { device: '/dev/ttyUSB2', to: ['0170-1234567'] } }, 'outputs.sms.to.0', /must match/],
    [{ webhook: { url: 'http://sms.example.invalid/send' } }, 'outputs.webhook.url', /must match/],
    [{ webhook: { url: 'https://sms.example.invalid/', bearerToken: PASSWORD, bearerTokenSecret: 'w' } }, 'outputs.webhook.bearerToken', /must not be given with bearerTokenSecret/],
    [{ email: EMAIL, escalation: { afterMs: 60000, channels: ['sms'] } }, 'outputs.escalation.channels[0]', /names "sms", which is not configured/],
    [{ escalation: { afterMs: 10, channels: ['email'] } }, 'outputs.escalation.afterMs', /must be >= 1000/],
    [{ retryMaxMs: 10 }, 'outputs.retryMaxMs', /must be >= 1000/],
  ];
  test.each(refusals.map(([outputs, key, msg]) => ({ outputs, key, msg })))('refused, naming $key: $msg', ({ outputs, key, msg }) => {
    const e = refusal(outputs);
    expect(e.key).toBe(key);
    expect(e.message).toMatch(msg);
    expect(e.message).not.toContain(PASSWORD);
    expect(e.message).not.toContain('x'.repeat(100));
  });

  test('the configuration log line (configuration updated) shows no password, token or secret id; the rest is readable', async () => {
    const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.LocalControl', config: { siteId: SITE } });
    const clock = new FakeClock();
    const lines: string[] = [];
    const logger = createLogger({ component: 'local-control' }, { write: (l) => lines.push(l) });
    const bus = createBus({ createClient: nucleus.factory, logger, metrics: createMetrics({ clock }), clock });
    await bus.connect();
    const initial = validateConfig(localControlConfigSpec, nucleus.config);
    const watch = await watchConfig({ bus, spec: localControlConfigSpec, initial, onChange: () => undefined, log: logger });
    nucleus.config = {
      siteId: SITE,
      outputs: {
        relays: {},
        email: { ...EMAIL, passwordSecret: undefined, password: PASSWORD },
        webhook: { url: 'https://sms.example.invalid/send', bearerToken: 'tok-never-logged' },
      },
    };
    nucleus.configChanged(['outputs']);
    await clock.advanceAsync(0);
    await watch.idle();
    const line = lines.find((l) => l.includes('configuration updated'));
    expect(line).toBeDefined();
    expect(line).not.toContain(PASSWORD);
    expect(line).not.toContain('tok-never-logged');
    expect(JSON.parse(line!)).toMatchObject({ config: { outputs: { email: { host: 'smtp.site.lan', password: '[redacted]' }, webhook: { bearerToken: '[redacted]' } } } });
    await watch.close();
    await bus.close();
  });
});

describe('the component with the alarm outputs library', () => {
  let rig: Rig;
  let built: Array<{ options: ChannelOptions; channel: FakeChannel }>;
  let lines: string[];
  afterEach(async () => rig?.close());

  async function started(outputs: Record<string, unknown>, secret: string | 'unauthorized' = PASSWORD): Promise<Rig> {
    built = [];
    lines = [];
    const clock = new FakeClock(Date.UTC(2026, 5, 15, 10, 0, 0));
    const r = new Rig({
      clock,
      config: { outputs: { relays: {}, ...outputs } },
      deps: {
        logger: createLogger({ component: 'local-control' }, { write: (l) => lines.push(l), now: () => clock.now() }),
        outputsHooks: {
          makeChannel: (options) => {
            const channel = new FakeChannel(options.name, clock, 1, 0, options.type);
            built.push({ options, channel });
            return channel;
          },
        },
      },
    });
    r.bus.secrets.set(SECRET, secret === 'unauthorized' ? { fail: 'unauthorized' } : secret);
    rig = r;
    await r.start();
    return r;
  }

  /** Timers due now fire (a channel's worker starts on a 0 ms timer), handlers and promises settle. */
  const settleAll = async (r: Rig): Promise<void> => {
    await r.clock.advanceAsync(0);
    await r.flush();
  };

  const delivered = (): string[] => built.flatMap((b) => b.channel.sends.flatMap((s) => s.notifications.map((n) => `${n.kind === 'escalation' ? 'esc' : n.alarm.transition} ${n.alarm.type} ${n.alarm.assetId}`)));

  test('live transitions, a snapshot\'s alarm and LocalControl\'s own control_failed are notified; the password comes from the secret over the bus', async () => {
    const r = await started({ email: EMAIL });
    await settleAll(r);
    expect(r.bus.secretRequests).toEqual([SECRET]);
    expect(built).toHaveLength(1);
    expect(built[0]!.options).toMatchObject({ name: 'email', user: 'gateway', password: PASSWORD, tls: 'starttls' });
    const a = await r.raise('INV-01', 'over_temperature', 'high', { point: '103.TmpCab', value: 81 });
    await r.raise('INV-01', 'over_temperature', 'high', { alarmId: a.alarmId, value: 86 }); // an update: not notified
    await r.clear(a);
    // An alarm LocalControl learns of from a snapshot only (its raise was missed).
    const missed: AlarmMessage = { ...a, alarmId: 'missed-1', assetId: 'INV-02', type: 'ground_fault', severity: 'critical', ts: r.clock.now(), transition: 'raised', transitionSeq: 0, replayed: true };
    await r.bus.deliver('alarmSnapshot', topics.alarmSnapshot(SITE, 'processor'), { schemaVersion: CONTRACT_VERSION, siteId: SITE, source: 'processor', ts: r.clock.now(), journalId: 'processor-journal', headSeq: 100, oldestSeq: 1, active: [missed], page: 1, pages: 1 }, { strict: true });
    // LocalControl's own alarm: a command nobody answers.
    r.answer = () => null;
    await r.status('INV-03', 'online', { heartbeat: true });
    await r.raise('INV-03', 'over_temperature', 'high');
    await r.advance(60_000);
    await settleAll(r);
    // The ground fault's shutdown of INV-02 got no answer: control_failed.
    expect(delivered()).toEqual(expect.arrayContaining(['raised over_temperature INV-01', 'cleared over_temperature INV-01', 'raised ground_fault INV-02', 'raised over_temperature INV-03', 'raised control_failed INV-02']));
    expect(delivered().filter((d) => d === 'raised over_temperature INV-01')).toHaveLength(1);
    expect(delivered().some((d) => d.startsWith('updated'))).toBe(false);
    expect(r.lc.healthState?.()).toBe('degraded'); // control_failed is active
    expect(lines.join('')).not.toContain(PASSWORD);
  });

  test('an acknowledgement reaches the outputs: an acknowledged critical alarm is not escalated, an unacknowledged one is', async () => {
    const r = await started({ email: EMAIL, escalation: { afterMs: 60000, channels: ['email'] } });
    const acked = await r.raise('INV-01', 'ground_fault', 'critical');
    await r.raise('INV-02', 'ground_fault', 'critical');
    await r.operator('acknowledge', { alarmId: acked.alarmId, operator: 'bob' });
    await r.advance(61_000);
    expect(delivered().filter((d) => d.startsWith('esc'))).toEqual(['esc ground_fault INV-02']);
  });

  test('a secret the component may not read: health degraded, notifications queued; readable again (a deployment fixed the policy): delivered, health running', async () => {
    const r = await started({ email: EMAIL }, 'unauthorized');
    await settleAll(r);
    expect(r.lc.outputsStatus()?.channels[0]).toMatchObject({ name: 'email', secret: { state: 'unavailable', error: expect.stringMatching(/^IPC_UNAUTHORIZED/) } });
    expect(r.lc.healthState?.()).toBe('degraded');
    await r.raise('INV-01', 'over_temperature', 'high');
    await settleAll(r);
    expect(r.metrics.snapshot().queues['notifications.email']).toBe(1);
    r.bus.secrets.set(SECRET, PASSWORD);
    await r.advance(60_000);
    expect(delivered()).toEqual(['raised over_temperature INV-01']);
    expect(r.metrics.snapshot().queues['notifications.email']).toBe(0);
    expect(r.lc.healthState?.()).toBe('running');
    const log = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(log.find((l) => l['msg'] === 'secret of a notification channel not available; notifications stay queued')).toMatchObject({ level: 'error', secretId: SECRET });
  });

  test('a channel that is down: health degraded while it retries, the queue depth per channel in the metrics', async () => {
    const r = await started({ email: EMAIL, retryMaxMs: 4000 });
    await settleAll(r);
    built[0]!.channel.behaviour = 'fail';
    await r.raise('INV-01', 'over_temperature', 'high');
    await settleAll(r);
    expect(r.lc.healthState?.()).toBe('degraded');
    expect(r.lc.outputsStatus()).toMatchObject({ queued: 1, channels: [{ name: 'email', state: 'retrying', lastError: 'FAKE_DOWN: fake channel down' }] });
    expect(r.metrics.snapshot().queues).toMatchObject({ 'notifications.email': 1 });
    built[0]!.channel.behaviour = 'accept';
    await r.advance(4000);
    expect(r.lc.healthState?.()).toBe('running');
    expect(delivered()).toEqual(['raised over_temperature INV-01']);
  });

  test('reconfigure: a change of the e-mail settings rebuilds the outputs on the same queue (what was queued goes out through the new channel); a relay change does not', async () => {
    const r = await started({ email: EMAIL });
    await settleAll(r);
    built[0]!.channel.behaviour = 'fail';
    await r.raise('INV-01', 'over_temperature', 'high');
    await r.raise('INV-02', 'over_temperature', 'high');
    await settleAll(r);
    expect(r.lc.outputsStatus()?.queued).toBe(2);
    let current = r.config;
    const change = async (outputs: Partial<LocalControlConfig['outputs']>): Promise<void> => {
      const next = validateConfig(localControlConfigSpec, { ...current, outputs: { ...current.outputs, ...outputs } });
      await r.lc.reconfigure?.(next, current);
      current = next;
      await r.flush();
    };
    await change({ relays: { high: { assetId: 'IO-01', point: 'relay.beacon' } } });
    expect(built).toHaveLength(1);
    await change({ email: { ...EMAIL, to: ['oncall@example.com'] } });
    expect(built).toHaveLength(2);
    expect(built[0]!.channel.closed).toBe(true);
    expect(built[1]!.options).toMatchObject({ to: ['oncall@example.com'], password: PASSWORD });
    await settleAll(r);
    expect(built[1]!.channel.delivered.length).toBe(2);
    // Removed again: nothing built, nothing offered, health running.
    await change({ email: undefined });
    await r.raise('INV-03', 'over_temperature', 'high');
    expect(built).toHaveLength(2);
    expect(r.lc.outputsStatus()).toBeUndefined();
    expect(r.lc.healthState?.()).toBe('running');
  });

  test('a channel added by a deployment hears of the alarms active at that moment', async () => {
    const r = await started({});
    await r.raise('INV-01', 'over_temperature', 'high');
    expect(built).toHaveLength(0);
    const next = validateConfig(localControlConfigSpec, { ...r.config, outputs: { ...r.config.outputs, email: EMAIL } });
    await r.lc.reconfigure?.(next, r.config);
    await settleAll(r);
    expect(delivered()).toEqual(['raised over_temperature INV-01']);
  });

  test('a restart with notifications still queued: delivered after it, once', async () => {
    const r = await started({ email: EMAIL });
    await settleAll(r);
    built[0]!.channel.behaviour = 'fail';
    await r.raise('INV-01', 'over_temperature', 'high');
    await settleAll(r);
    await r.restart();
    await r.processorSnapshot(); // the Processor still holds it: offered again, a duplicate
    await settleAll(r);
    expect(built).toHaveLength(2);
    expect(built[1]!.channel.delivered).toHaveLength(1);
    expect(r.metrics.snapshot().rejections['notify_duplicate']).toBe(1);
  });
});

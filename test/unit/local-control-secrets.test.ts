/**
 * Secrets of LocalControl's notification outputs, without a nucleus: the bus's getSecretValue on
 * the in-memory FakeNucleus (one call with the bus's timeout; a denial fatal, a missing secret
 * transient), and the outputs' secret handling with a FakeClock (docs/local-control.md
 * "Secrets"; docs/local-control-outputs.md "Secrets").
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBus, type Bus } from '../../components/lib/bus';
import { ConfigError, ErrorCode, FatalError, TransientError } from '../../components/lib/errors';
import { createLogger, silentLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { FakeClock, settle } from '../../components/lib/testing/fake-clock';
import { FakeNucleus, FAKE_SECRET_VERSION } from '../../components/lib/testing/fake-ipc';
import { ChannelError, createAlarmOutputs, type AlarmOutputs, type ChannelOptions } from '../../components/local-control/outputs';
import { alarm, T0 } from '../../components/local-control/outputs/testing/alarms';
import { FakeChannel } from '../../components/local-control/outputs/testing/fake-channel';

describe('Bus.getSecretValue', () => {
  let nucleus: FakeNucleus;
  let clock: FakeClock;
  let bus: Bus;

  beforeEach(async () => {
    nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.LocalControl' });
    clock = new FakeClock();
    bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics: createMetrics({ clock }), clock, random: () => 0, callTimeoutMs: 3000 });
    await bus.connect();
  });
  afterEach(async () => bus.close());

  test('returns the current version of a string secret', async () => {
    nucleus.secrets.set('plant-7/smtp', 'pw-1');
    await expect(bus.getSecretValue('plant-7/smtp')).resolves.toEqual({ secretId: 'plant-7/smtp', versionId: FAKE_SECRET_VERSION, versionStage: ['AWSCURRENT'], secretString: 'pw-1' });
    await expect(bus.getSecretValue('plant-7/smtp', { versionStage: 'AWSCURRENT' })).resolves.toMatchObject({ secretString: 'pw-1' });
    expect(nucleus.secretRequests).toEqual(['plant-7/smtp', 'plant-7/smtp']);
  });

  test('refresh asks the secret manager for the latest value (GetSecretValueRequest.refresh); without it the field is not sent', async () => {
    nucleus.secrets.set('plant-7/smtp', 'pw-1');
    await bus.getSecretValue('plant-7/smtp', { refresh: true });
    await bus.getSecretValue('plant-7/smtp');
    expect(nucleus.secretRequestBodies.map((b) => b.refresh)).toEqual([true, undefined]);
  });

  test('not authorised: FatalError IPC_UNAUTHORIZED (a deployment defect), not found: TransientError with the service error', async () => {
    nucleus.secrets.set('plant-7/smtp', 'pw-1');
    nucleus.denied.add('plant-7/smtp');
    const denied = await bus.getSecretValue('plant-7/smtp').catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(FatalError);
    expect(denied).toMatchObject({ code: ErrorCode.IPC_UNAUTHORIZED });
    const missing = await bus.getSecretValue('nothing').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TransientError);
    expect(missing).toMatchObject({ code: ErrorCode.IPC_CALL_FAILED, details: { serviceError: 'ResourceNotFoundError' } });
    expect(bus.state).toBe('connected');
  });

  test('an answer that never comes times out after the bus\'s call timeout (and the bus reconnects)', async () => {
    nucleus.secrets.set('plant-7/smtp', 'pw-1');
    nucleus.hang = 'getSecretValue';
    const p = bus.getSecretValue('plant-7/smtp').catch((e: unknown) => e);
    await clock.advanceAsync(2999);
    let settled = false;
    void p.then(() => (settled = true));
    await clock.advanceAsync(0);
    expect(settled).toBe(false);
    await clock.advanceAsync(1);
    expect(await p).toMatchObject({ code: ErrorCode.IPC_TIMEOUT });
    nucleus.hang = undefined;
    await clock.advanceAsync(100);
    expect(bus.state).toBe('connected');
    await expect(bus.getSecretValue('plant-7/smtp')).resolves.toMatchObject({ secretString: 'pw-1' });
  });

  test('while disconnected it fails at once (no queueing of a read)', async () => {
    nucleus.dropLink();
    await expect(bus.getSecretValue('plant-7/smtp')).rejects.toMatchObject({ code: ErrorCode.IPC_DISCONNECTED });
  });
});

describe('alarm outputs: a channel whose credential is a secret', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-sec-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const PW1 = 'pw-one-never-logged';
  const PW2 = 'pw-two-never-logged';

  interface SRig {
    clock: FakeClock;
    metrics: Metrics;
    lines: string[];
    /** What getSecret answers now (a string, or an error to throw). */
    secret: { value: string | Error };
    reads: string[];
    /** For each read: whether it asked the secret manager to fetch the latest value from the cloud. */
    refreshes: boolean[];
    /** Every channel built, with the options it got (the secret resolved into them). */
    built: Array<{ options: ChannelOptions; channel: FakeChannel }>;
    outputs: AlarmOutputs;
  }

  function srig(channel: ChannelOptions, initial: string | Error = PW1): SRig {
    const clock = new FakeClock(T0);
    const metrics = createMetrics({ clock });
    const lines: string[] = [];
    const r: Partial<SRig> = { clock, metrics, lines, secret: { value: initial }, reads: [], refreshes: [], built: [] };
    r.outputs = createAlarmOutputs(
      {
        clock,
        metrics,
        logger: createLogger({ component: 'local-control' }, { write: (l) => lines.push(l), now: () => clock.now() }),
        random: () => 0.999999,
        getSecret: async (id, opts) => {
          r.reads!.push(id);
          r.refreshes!.push(opts?.refresh === true);
          const v = r.secret!.value;
          if (v instanceof Error) throw v;
          return v;
        },
        makeChannel: (options) => {
          const ch = new FakeChannel(options.name, clock, 1, 0, options.type);
          r.built!.push({ options, channel: ch });
          return ch;
        },
      },
      { dbPath: path.join(dir, 'q.db'), siteId: 'plant-7', channels: [channel], backoffInitialMs: 1000, backoffMaxMs: 8000 },
    );
    r.outputs.start();
    return r as SRig;
  }

  const mail: ChannelOptions = { type: 'email', name: 'email', host: 'smtp.example.invalid', port: 587, tls: 'starttls', user: 'gw', passwordSecret: 'plant-7/smtp', from: 'gw@plant-7.example', to: ['ops@example.com'], batchIntervalMs: 0 };

  test('the secret is read when the outputs start, and the channel is built with its value, not with the id', async () => {
    const r = srig(mail);
    await settle();
    expect(r.reads).toEqual(['plant-7/smtp']);
    expect(r.built).toHaveLength(1);
    expect(r.built[0]!.options).toMatchObject({ user: 'gw', password: PW1 });
    expect(r.built[0]!.options).not.toHaveProperty('passwordSecret');
    expect(r.outputs.status().channels[0]!.secret).toEqual({ state: 'available', error: null });
    r.outputs.offer(alarm('al-1'));
    await r.clock.advanceAsync(0);
    expect(r.built[0]!.channel.delivered).toEqual(['al-1#0']);
    expect(r.reads).toHaveLength(1); // read once, not per send
    await r.outputs.close();
    expect(r.lines.join('')).not.toContain(PW1);
  });

  test('a secret that cannot be read: logged with its id, notifications stay queued, the read is retried with backoff, then everything goes out', async () => {
    const r = srig(mail, new FatalError(ErrorCode.IPC_UNAUTHORIZED, 'GetSecretValue was denied by the nucleus: Principal com.dcmms.edge.LocalControl is not authorized (check the recipe\'s accessControl)'));
    await settle();
    expect(r.outputs.status().channels[0]!.secret).toMatchObject({ state: 'unavailable', error: expect.stringMatching(/^IPC_UNAUTHORIZED: .*not authorized/) });
    expect(r.built).toHaveLength(0);
    r.outputs.offer(alarm('al-1'));
    r.outputs.offer(alarm('al-2'));
    await r.clock.advanceAsync(0);
    expect(r.outputs.status()).toMatchObject({ queued: 2, channels: [{ state: 'retrying', lastError: expect.stringMatching(/^SECRET_UNAVAILABLE: passwordSecret of channel email/) }] });
    expect(r.metrics.snapshot().queues['notifications.email']).toBe(2);
    const readsWhileDown = r.reads.length;
    await r.clock.advanceAsync(4000);
    expect(r.reads.length).toBeGreaterThan(readsWhileDown); // retried (the start read's timer and the worker's send)
    // A deployment gives the component its policy: the next read works.
    r.secret.value = PW1;
    await r.clock.advanceAsync(8000);
    await r.clock.advanceAsync(8000);
    expect(r.built[0]!.channel.delivered).toEqual(['al-1#0', 'al-2#0']);
    expect(r.outputs.status()).toMatchObject({ queued: 0, channels: [{ state: 'idle', secret: { state: 'available', error: null } }] });
    const log = r.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(log.find((l) => l['msg'] === 'secret of a notification channel not available; notifications stay queued')).toMatchObject({ level: 'error', channel: 'email', secretId: 'plant-7/smtp', code: 'IPC_UNAUTHORIZED' });
    expect(log.some((l) => l['msg'] === 'secret of a notification channel available again')).toBe(true);
    await r.outputs.close();
  });

  test('a failed login reads the secret again before the next attempt: a rotated password is picked up without a restart', async () => {
    const r = srig(mail);
    await settle();
    r.built[0]!.channel.behaviour = 'fail';
    r.built[0]!.channel.failWith = new ChannelError('SMTP_AUTH', 'SMTP authentication failed: 535 5.7.8 Authentication credentials invalid');
    r.secret.value = PW2; // rotated in Secrets Manager, synchronised by the secret manager component
    r.outputs.offer(alarm('al-1'));
    await r.clock.advanceAsync(0);
    expect(r.outputs.status().channels[0]).toMatchObject({ state: 'retrying', secret: { state: 'pending' } });
    expect(r.built[0]!.channel.closed).toBe(true);
    await r.clock.advanceAsync(1000);
    expect(r.built).toHaveLength(2);
    expect(r.built[1]!.options).toMatchObject({ password: PW2 });
    expect(r.built[1]!.channel.delivered).toEqual(['al-1#0']);
    expect(r.reads).toEqual(['plant-7/smtp', 'plant-7/smtp']);
    // The read after the refusal asks for the cloud's latest value (GetSecretValue refresh): the
    // secret manager component otherwise serves the copy it fetched at the last deployment.
    expect(r.refreshes).toEqual([false, true]);
    // Another failure (the server away) does not read the secret again.
    r.built[1]!.channel.behaviour = 'fail';
    r.outputs.offer(alarm('al-2'));
    await r.clock.advanceAsync(0);
    expect(r.reads).toHaveLength(2);
    await r.outputs.close();
    expect(r.lines.join('')).not.toMatch(/pw-(one|two)/);
  });

  test('a webhook token from a secret; 401 reads it again', async () => {
    const r = srig({ type: 'webhook', name: 'webhook', url: 'https://sms.example.invalid/send', bearerTokenSecret: 'plant-7/webhook' });
    await settle();
    expect(r.built[0]!.options).toMatchObject({ bearerToken: PW1 });
    expect(r.built[0]!.options).not.toHaveProperty('bearerTokenSecret');
    r.built[0]!.channel.behaviour = 'fail';
    r.built[0]!.channel.failWith = new ChannelError('HTTP_401', 'webhook answered 401');
    r.outputs.offer(alarm('al-1'));
    await r.clock.advanceAsync(0);
    await r.clock.advanceAsync(1000);
    expect(r.reads).toEqual(['plant-7/webhook', 'plant-7/webhook']);
    await r.outputs.close();
  });

  test('option checks: a password and its secret together, a user without either, a token and its secret together, a bad secret id; no secret source', () => {
    const make = (c: ChannelOptions, getSecret = true) => () =>
      createAlarmOutputs(
        { clock: new FakeClock(T0), logger: silentLogger, metrics: createMetrics({ clock: new FakeClock(T0) }), ...(getSecret ? { getSecret: async () => 'x' } : {}) },
        { dbPath: path.join(dir, 'q.db'), siteId: 'plant-7', channels: [c], configKey: 'notifications' },
      );
    const expectKey = (fn: () => unknown, key: string, msg: RegExp) => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe(key);
      expect((err as ConfigError).message).toMatch(msg);
      expect((err as ConfigError).message).not.toContain('hunter2');
    };
    expectKey(make({ ...mail, password: 'hunter2' } as ChannelOptions), 'notifications.channels[0].passwordSecret', /must not both be given/);
    const { passwordSecret: _ps, ...noPw } = mail as ChannelOptions & { passwordSecret?: string };
    expectKey(make(noPw as ChannelOptions), 'notifications.channels[0].password', /and user must be given together/);
    expectKey(make({ ...mail, passwordSecret: 'bad secret id' } as ChannelOptions), 'notifications.channels[0].passwordSecret', /must be a secret id/);
    expectKey(make({ type: 'webhook', name: 'w', url: 'https://x.example.invalid/', bearerToken: 'hunter2', bearerTokenSecret: 'w' }), 'notifications.channels[0].bearerTokenSecret', /must not both be given/);
    expectKey(make(mail, false), 'notifications.channels[0]', /names a secret, but this gateway has no secret source/);
  });
});

/**
 * Secrets of LocalControl's notification outputs, without a nucleus: the bus's getSecretValue on
 * the in-memory FakeNucleus (one call with the bus's timeout; a denial fatal, a missing secret
 * transient), and the outputs' secret handling with a FakeClock (docs/local-control.md
 * "Secrets"; docs/local-control-outputs.md "Secrets").
 */
import { createBus, type Bus } from '../../components/lib/bus';
import { ErrorCode, FatalError, TransientError } from '../../components/lib/errors';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { FakeNucleus, FAKE_SECRET_VERSION } from '../../components/lib/testing/fake-ipc';

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

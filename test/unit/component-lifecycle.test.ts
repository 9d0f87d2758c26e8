import { EventEmitter } from 'node:events';
import { runComponent, type ComponentInstance, type ComponentSpec, type ProcessLike } from '../../components/lib/component';
import { ConfigError } from '../../components/lib/errors';
import type { ComponentHealth } from '../../components/lib/contract';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { healthConfigSpec, type HealthConfig } from '../../components/health/config';
import { createHealth } from '../../components/health/health';

// A compile-time check that Node's process satisfies ProcessLike (main.ts passes it in).
export const processFits: ProcessLike = process;

class FakeProcess extends EventEmitter implements ProcessLike {
  readonly exits: number[] = [];
  exit(code: number): void {
    this.exits.push(code);
  }
}

function start(config: Record<string, unknown>, create?: ComponentSpec<HealthConfig>['create'], failConnects = 0) {
  const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Health', config });
  nucleus.failConnects = failConnects;
  const clock = new FakeClock();
  const proc = new FakeProcess();
  const lines: string[] = [];
  const spec: ComponentSpec<HealthConfig> = {
    name: 'com.dcmms.edge.Health',
    version: '9.9.9',
    config: healthConfigSpec,
    create: create ?? ((deps, cfg) => createHealth(deps, cfg)),
  };
  const run = runComponent(spec, { process: proc, createIpcClient: nucleus.factory, clock, write: (l) => lines.push(l) });
  const healthReports = (): ComponentHealth[] => nucleus.published.filter((p) => p.topic === 'site/s1/health/health').map((p) => p.message as ComponentHealth);
  return { nucleus, clock, proc, lines, run, healthReports };
}

describe('runComponent', () => {
  test('connects, reads config, starts, reports RUNNING and publishes its metrics every metricsIntervalMs', async () => {
    const t = start({ siteId: 's1', metricsIntervalMs: 5000 });
    expect(await t.run.running).toBe(true);
    expect(t.nucleus.states).toEqual(['RUNNING']);
    expect(t.nucleus.clients).toHaveLength(1); // one long-lived connection
    await t.clock.advanceAsync(0);
    expect(t.healthReports()).toHaveLength(1);
    expect(t.healthReports()[0]).toMatchObject({ component: 'health', componentName: 'com.dcmms.edge.Health', version: '9.9.9', state: 'running', intervalMs: 5000, metrics: { connectionState: 'connected' } });
    await t.clock.advanceAsync(10000);
    expect(t.healthReports()).toHaveLength(3);
    t.proc.emit('SIGTERM');
    expect(await t.run.done).toBe(0);
  });

  test("the models a component names go in its health report; a failing healthModels leaves them out, the report still goes", async () => {
    let fail = false;
    const t = start({ siteId: 's1', metricsIntervalMs: 5000 }, (deps, cfg) => ({
      ...createHealth(deps, cfg),
      healthModels: () => {
        if (fail) throw new Error('model set closed');
        return [{ name: 'fault', version: '1.2.0' }];
      },
    }));
    expect(await t.run.running).toBe(true);
    await t.clock.advanceAsync(0);
    expect(t.healthReports()[0]?.models).toEqual([{ name: 'fault', version: '1.2.0' }]);
    fail = true;
    await t.clock.advanceAsync(5000);
    expect(t.healthReports()).toHaveLength(2);
    expect(t.healthReports()[1]).not.toHaveProperty('models');
    expect(t.lines.some((l) => l.includes('model versions not readable for the health report'))).toBe(true);
    t.proc.emit('SIGTERM');
    expect(await t.run.done).toBe(0);
  });

  test('SIGTERM closes everything and exits 0, after a last "stopping" report', async () => {
    const t = start({ siteId: 's1' });
    await t.run.running;
    const client = t.nucleus.current;
    t.proc.emit('SIGTERM');
    t.proc.emit('SIGTERM'); // idempotent
    expect(await t.run.done).toBe(0);
    expect(t.proc.exits).toEqual([0]);
    expect(t.healthReports().at(-1)?.state).toBe('stopping');
    expect(client?.streams.every((s) => s.closed)).toBe(true);
    expect(client?.closed).toBe(true);
    expect(t.nucleus.states).toEqual(['RUNNING']);
    expect(t.clock.pending).toBe(0);
  });

  test('an invalid configuration exits 1 with a message naming the key, after reporting ERRORED', async () => {
    const t = start({ siteId: 's1', reportIntervalMs: 5 });
    expect(await t.run.running).toBe(false);
    expect(await t.run.done).toBe(1);
    expect(t.proc.exits).toEqual([1]);
    expect(t.nucleus.states).toEqual(['ERRORED']);
    const line = t.lines.find((l) => l.includes('invalid configuration'));
    expect(line).toContain("configuration key 'reportIntervalMs' must be >= 10000");
  });

  test('a first connection that fails transiently is retried with backoff', async () => {
    const t = start({ siteId: 's1' }, undefined, 2);
    await t.clock.advanceAsync(5000);
    expect(await t.run.running).toBe(true);
    expect(t.nucleus.clients).toHaveLength(3);
    expect(t.lines.filter((l) => l.includes('IPC connect failed; retrying'))).toHaveLength(2);
    t.proc.emit('SIGTERM');
    expect(await t.run.done).toBe(0);
  });

  test('a nucleus that never answers the first connection fails the start', async () => {
    const t = start({ siteId: 's1' }, undefined, 100);
    await t.clock.advanceAsync(10000);
    expect(await t.run.done).toBe(1);
    expect(t.nucleus.clients).toHaveLength(5);
    expect(t.lines.some((l) => l.includes('startup failed') && l.includes('connection refused'))).toBe(true);
  });

  test('an uncaught exception is logged and exits 1', async () => {
    const t = start({ siteId: 's1' });
    await t.run.running;
    t.proc.emit('uncaughtException', new Error('kaboom'));
    expect(await t.run.done).toBe(1);
    expect(t.nucleus.states).toEqual(['RUNNING', 'ERRORED']);
    expect(t.lines.some((l) => l.includes('uncaught exception: kaboom'))).toBe(true);
  });

  test('a component that fails to start exits 1', async () => {
    const t = start({ siteId: 's1' }, () => ({ start: () => Promise.reject(new Error('device table unreadable')), close: async () => undefined }));
    expect(await t.run.done).toBe(1);
    expect(t.lines.some((l) => l.includes('startup failed: device table unreadable'))).toBe(true);
  });

  test('component updates are acknowledged, or deferred while the component says it is busy', async () => {
    let busyFor = 0;
    const t = start({ siteId: 's1' }, (deps, cfg): ComponentInstance<HealthConfig> => {
      const h = createHealth(deps, cfg);
      return { ...h, shouldDeferUpdate: () => busyFor };
    });
    await t.run.running;
    t.nucleus.preUpdate('d-1');
    busyFor = 30000;
    t.nucleus.preUpdate('d-2');
    await t.clock.advanceAsync(0);
    expect(t.nucleus.deferrals).toEqual([
      { deploymentId: 'd-1', recheckAfterMs: 0, message: 'health is ready' },
      { deploymentId: 'd-2', recheckAfterMs: 30000, message: 'health is busy' },
    ]);
    t.proc.emit('SIGINT');
    expect(await t.run.done).toBe(0);
  });

  test('live configuration: log level and metrics interval apply at once', async () => {
    const t = start({ siteId: 's1', metricsIntervalMs: 10000, logLevel: 'info' });
    await t.run.running;
    const before = t.lines.filter((l) => l.includes('"level":"debug"')).length;
    expect(before).toBe(0);
    t.nucleus.config = { siteId: 's1', metricsIntervalMs: 2000, logLevel: 'debug' };
    t.nucleus.configChanged(['metricsIntervalMs']);
    await t.clock.advanceAsync(0);
    const n = t.healthReports().length;
    await t.clock.advanceAsync(4000);
    expect(t.healthReports().length - n).toBe(2);
    expect(t.healthReports().at(-1)?.intervalMs).toBe(2000);
    t.proc.emit('SIGTERM');
    await t.run.done;
    expect(t.lines.some((l) => l.includes('"level":"debug"'))).toBe(true);
  });

  test('a proposed configuration is checked like a start: a bad one is rejected with the key and what is allowed, a good one accepted', async () => {
    const t = start({ siteId: 's1' });
    await t.run.running;
    t.nucleus.proposeConfiguration('d-bad', { siteId: 's1', reportIntervalMs: 5 });
    t.nucleus.proposeConfiguration('d-good', { siteId: 's1', reportIntervalMs: 60000 });
    await t.clock.advanceAsync(0);
    expect(t.nucleus.validityReports).toEqual([
      { deploymentId: 'd-bad', status: 'REJECTED', message: expect.stringContaining("configuration key 'reportIntervalMs' must be >= 10000") },
      { deploymentId: 'd-good', status: 'ACCEPTED', message: 'valid' },
    ]);
    // Validation changes nothing: the running configuration is what GetConfiguration says.
    expect(t.proc.exits).toEqual([]);
    t.proc.emit('SIGTERM');
    expect(await t.run.done).toBe(0);
  });

  test("a proposed configuration runs the component's own checks (ConfigSpec.check)", async () => {
    const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Health', config: { siteId: 's1' } });
    const proc = new FakeProcess();
    const clock = new FakeClock();
    const spec: ComponentSpec<HealthConfig> = {
      name: 'com.dcmms.edge.Health',
      version: '1',
      config: {
        ...healthConfigSpec,
        check: (c) => {
          if (c.siteId === 'forbidden') throw new ConfigError('siteId', "siteId 'forbidden' is reserved");
        },
      },
      create: (deps, cfg) => createHealth(deps, cfg),
    };
    const run = runComponent(spec, { process: proc, createIpcClient: nucleus.factory, clock, write: () => undefined });
    await run.running;
    nucleus.proposeConfiguration('d-1', { siteId: 'forbidden' });
    await clock.advanceAsync(0);
    expect(nucleus.validityReports).toEqual([{ deploymentId: 'd-1', status: 'REJECTED', message: "siteId 'forbidden' is reserved" }]);
    proc.emit('SIGTERM');
    await run.done;
  });

  test('a component without reconfigure applies a change by an internal restart, in the same process and connection', async () => {
    const created: Array<Readonly<HealthConfig>> = [];
    const closed: number[] = [];
    const t = start({ siteId: 's1', reportIntervalMs: 60000 }, (deps, cfg) => {
      created.push(cfg);
      const h = createHealth(deps, cfg);
      const n = created.length;
      return { start: () => h.start(), close: async () => void (closed.push(n), await h.close()) };
    });
    await t.run.running;
    t.nucleus.config = { siteId: 's1', reportIntervalMs: 120000 };
    t.nucleus.configChanged(['reportIntervalMs']);
    await t.clock.advanceAsync(0);
    await t.clock.advanceAsync(0);
    expect(created.map((c) => c.reportIntervalMs)).toEqual([60000, 120000]);
    expect(closed).toEqual([1]);
    expect(t.nucleus.clients).toHaveLength(1);
    expect(t.proc.exits).toEqual([]);
    expect(t.lines.some((l) => l.includes('configuration applied by an internal restart'))).toBe(true);
    // A change of the log level alone needs no restart.
    t.nucleus.config = { siteId: 's1', reportIntervalMs: 120000, logLevel: 'debug' };
    t.nucleus.configChanged(['logLevel']);
    await t.clock.advanceAsync(0);
    expect(created).toHaveLength(2);
    t.proc.emit('SIGTERM');
    expect(await t.run.done).toBe(0);
    expect(closed).toEqual([1, 2]);
  });
});

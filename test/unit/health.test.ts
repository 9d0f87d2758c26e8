import { createBus, type Bus } from '../../components/lib/bus';
import { validateConfig } from '../../components/lib/config';
import { CONTRACT_VERSION, validateSiteHealthSummary, type ComponentHealth, type ComponentState, type SiteHealthSummary, type SystemHealth } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { FakeClock, settle } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { healthConfigSpec, type HealthConfig } from '../../components/health/config';
import { createHealth, type Health } from '../../components/health/health';
import { createSystemSampler } from '../../components/health/system';

const SITE = 's1';

interface Rig {
  nucleus: FakeNucleus;
  clock: FakeClock;
  metrics: Metrics;
  bus: Bus;
  health: Health;
  system: { next: SystemHealth | null };
}

async function rig(over: Partial<HealthConfig> = {}): Promise<Rig> {
  const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Health' });
  const clock = new FakeClock();
  const metrics = createMetrics({ clock });
  const bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock });
  await bus.connect();
  const system: { next: SystemHealth | null } = { next: { cpuPercent: 12, memoryPercent: 40, diskPercent: 30, loadAvg1m: 0.3, uptimeS: 1000 } };
  const config = validateConfig(healthConfigSpec, { siteId: SITE, ...over });
  const health = createHealth({ bus, logger: silentLogger, metrics, clock, system: { sample: () => system.next as SystemHealth } }, config);
  await health.start();
  return { nucleus, clock, metrics, bus, health, system };
}

function report(r: Rig, component: string, over: Partial<ComponentHealth> = {}, metricsOver: Partial<ComponentHealth['metrics']> = {}): ComponentHealth {
  return {
    schemaVersion: CONTRACT_VERSION,
    siteId: SITE,
    component,
    componentName: `com.dcmms.edge.${component}`,
    version: '0.1.0',
    state: 'running' as ComponentState,
    ts: r.clock.now(),
    uptimeMs: 1000,
    intervalMs: 10000,
    metrics: { ...createMetrics({ clock: r.clock }).snapshot(), connectionState: 'connected', ...metricsOver },
    ...over,
  };
}

function send(r: Rig, h: ComponentHealth): void {
  r.nucleus.inject(`site/${h.siteId}/health/${h.component}`, h);
}

function iotSummaries(r: Rig): SiteHealthSummary[] {
  return r.nucleus.iotPublished.filter((p) => p.topic === 'dcmms/s1/health').map((p) => JSON.parse(p.payload.toString('utf8')) as SiteHealthSummary);
}

function localSummaries(r: Rig): SiteHealthSummary[] {
  return r.nucleus.published.filter((p) => p.topic === 'site/s1/summary/health').map((p) => p.message as SiteHealthSummary);
}

describe('Health', () => {
  let r: Rig;
  afterEach(async () => {
    await r.health.close();
    await r.bus.close();
  });

  test('subscribes to every component health topic of its site, including its own reports', async () => {
    r = await rig();
    const subs = r.nucleus.topicStreams().map((s) => s.request);
    expect(subs).toEqual([{ topic: 'site/s1/health/+', receiveMode: 'RECEIVE_ALL_MESSAGES' }]);
  });

  test('publishes a first summary shortly after start, then every reportIntervalMs, locally and to IoT Core with QoS 1', async () => {
    r = await rig({ initialReportDelayMs: 15000, reportIntervalMs: 300000 });
    send(r, report(r, 'processor'));
    send(r, report(r, 'uplink'));
    await r.clock.advanceAsync(14999);
    expect(iotSummaries(r)).toHaveLength(0);
    await r.clock.advanceAsync(1);
    expect(iotSummaries(r)).toHaveLength(1);
    expect(r.nucleus.iotPublished.every((p) => p.qos === '1')).toBe(true);

    const first = iotSummaries(r)[0] as SiteHealthSummary;
    expect(validateSiteHealthSummary(first).ok).toBe(true);
    expect(first).toMatchObject({ schemaVersion: 1, siteId: SITE, status: 'healthy', issues: [], system: { memoryPercent: 40 } });
    expect(first.components.map((c) => [c.component, c.state, c.stale])).toEqual([
      ['processor', 'running', false],
      ['uplink', 'running', false],
    ]);
    expect(localSummaries(r)).toEqual([first]);

    // Keep them fresh so the periodic summaries stay healthy.
    for (let t = 0; t < 600000; t += 10000) {
      send(r, report(r, 'processor'));
      send(r, report(r, 'uplink'));
      await r.clock.advanceAsync(10000);
    }
    // 15 s (first) + 300 s + 600 s.
    expect(iotSummaries(r).map((s) => s.status)).toEqual(['healthy', 'healthy', 'healthy']);
    expect(iotSummaries(r).map((s) => s.ts - first.ts)).toEqual([0, 285000, 585000]);
  });

  test('a component is stale after 3 of its own intervals without a report', async () => {
    r = await rig();
    send(r, report(r, 'processor', { intervalMs: 10000 }));
    await r.clock.advanceAsync(30000);
    expect(r.health.summary().components[0]).toMatchObject({ component: 'processor', stale: false });
    await r.clock.advanceAsync(1);
    const s = r.health.summary();
    expect(s.components[0]).toMatchObject({ component: 'processor', stale: true });
    expect(s.status).toBe('degraded');
    expect(s.issues).toEqual([expect.objectContaining({ code: 'COMPONENT_STALE', component: 'processor', severity: 'high' })]);
    send(r, report(r, 'processor'));
    expect(r.health.summary().status).toBe('healthy');
  });

  test('expected components that never report are missing', async () => {
    r = await rig({ expectedComponents: ['processor', 'uplink'] });
    send(r, report(r, 'uplink'));
    const s = r.health.summary();
    expect(s.components.map((c) => [c.component, c.state])).toEqual([
      ['processor', 'missing'],
      ['uplink', 'running'],
    ]);
    expect(s.issues.map((i) => i.code)).toEqual(['COMPONENT_MISSING']);
    expect(s.status).toBe('degraded');
  });

  test('component state, drops, errors and gateway figures become issues with the spec thresholds', async () => {
    r = await rig();
    send(r, report(r, 'modbus-adapter', { state: 'errored' }));
    send(r, report(r, 'processor', { state: 'degraded' }, { errors: 2, lastError: { code: 'E', message: 'boom', at: r.clock.now() }, dropped: { queue_overflow: 3 } }));
    r.system.next = { cpuPercent: 95, memoryPercent: 90, diskPercent: 95, loadAvg1m: 4, uptimeS: 1 };
    await r.health.publishSummary();
    const s = iotSummaries(r)[0] as SiteHealthSummary;
    expect(s.status).toBe('critical');
    expect(s.issues.map((i) => `${i.severity}:${i.code}`).sort()).toEqual(
      ['high:COMPONENT_ERRORED', 'medium:COMPONENT_DEGRADED', 'medium:DATA_DROPPED', 'low:COMPONENT_ERRORS', 'high:CPU_HIGH', 'high:MEMORY_HIGH', 'critical:DISK_HIGH'].sort(),
    );
    // Counters are reported as "since the last summary": unchanged counters raise nothing new.
    r.system.next = null;
    send(r, report(r, 'modbus-adapter'));
    send(r, report(r, 'processor', {}, { errors: 2, dropped: { queue_overflow: 3 } }));
    await r.health.publishSummary();
    expect(iotSummaries(r)[1]).toMatchObject({ status: 'healthy', issues: [], system: null });
  });

  test('reports are checked against their topic and site; bad ones are counted, not stored', async () => {
    r = await rig();
    r.nucleus.inject('site/s1/health/uplink', report(r, 'processor'));
    r.nucleus.inject('site/s1/health/processor', { ...report(r, 'processor'), siteId: 's2' });
    r.nucleus.inject('site/s1/health/processor', { nonsense: true });
    await settle();
    expect(r.health.summary().components).toEqual([]);
    expect(r.metrics.snapshot().rejections).toEqual({ topic_mismatch: 1, site_mismatch: 1, invalid_payload: 1 });
  });

  test('a live siteId change moves the subscription and starts over', async () => {
    r = await rig();
    send(r, report(r, 'processor'));
    const prev = validateConfig(healthConfigSpec, { siteId: SITE });
    await r.health.reconfigure?.(validateConfig(healthConfigSpec, { siteId: 's2' }), prev);
    expect(r.nucleus.topicStreams().map((s) => s.request['topic'])).toEqual(['site/s2/health/+']);
    expect(r.health.summary()).toMatchObject({ siteId: 's2', components: [] });
  });

  test('close stops the timers and the subscription', async () => {
    r = await rig();
    const streams = r.nucleus.topicStreams();
    await r.health.close();
    await r.health.close();
    expect(streams.every((s) => s.closed)).toBe(true);
    expect(r.clock.pending).toBe(0);
    await r.clock.advanceAsync(600000);
    expect(iotSummaries(r)).toHaveLength(0);
  });
});

describe('system sampler', () => {
  test('reads real gateway figures within their ranges', () => {
    const s = createSystemSampler();
    const first = s.sample('/');
    expect(first.cpuPercent).toBeNull(); // no previous sample yet
    expect(first.memoryPercent).toBeGreaterThan(0);
    expect(first.memoryPercent).toBeLessThanOrEqual(100);
    expect(first.diskPercent).not.toBeNull();
    const second = s.sample('/does/not/exist');
    expect(second.diskPercent).toBeNull();
    expect(second.cpuPercent === null || (second.cpuPercent >= 0 && second.cpuPercent <= 100)).toBe(true);
  });
});

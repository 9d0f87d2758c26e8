import { createBus } from '../../components/lib/bus';
import { ConfigError, loadConfig, mergeConfig, validateConfig, watchConfig, type ConfigSpec } from '../../components/lib/config';
import { createLogger, silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { HEALTH_DEFAULTS, healthConfigSpec, type HealthConfig } from '../../components/health/config';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('validateConfig', () => {
  test('applies the defaults object under what Greengrass returned', () => {
    const c = validateConfig(healthConfigSpec, { siteId: 'plant-7' });
    expect(c).toEqual({ ...HEALTH_DEFAULTS, siteId: 'plant-7' });
    expect(validateConfig(healthConfigSpec, undefined)).toEqual(HEALTH_DEFAULTS);
  });

  test('coerces numbers that arrive as strings or integral floats', () => {
    const c = validateConfig(healthConfigSpec, { reportIntervalMs: '60000', metricsIntervalMs: 10000.0, staleAfterIntervals: '4' });
    expect(c.reportIntervalMs).toBe(60000);
    expect(c.metricsIntervalMs).toBe(10000);
    expect(c.staleAfterIntervals).toBe(4);
  });

  test('ignores accessControl and warns about (and drops) unknown keys', () => {
    const lines: string[] = [];
    const log = createLogger({}, { write: (l) => lines.push(l) });
    const c = validateConfig(healthConfigSpec, { accessControl: { x: 1 }, oldKey: true }, log);
    expect(c).toEqual(HEALTH_DEFAULTS);
    expect(lines.some((l) => l.includes('ignoring unknown configuration keys') && l.includes('oldKey') && !l.includes('accessControl'))).toBe(true);
  });

  test('freezes a copy and leaves the input alone', () => {
    const input = { siteId: 's1', expectedComponents: ['processor'], reportIntervalMs: '60000' };
    const c = validateConfig(healthConfigSpec, input);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.expectedComponents)).toBe(true);
    expect(() => (c.expectedComponents as string[]).push('x')).toThrow(/not extensible/);
    expect(input.reportIntervalMs).toBe('60000');
  });

  test.each<[string, Record<string, unknown>, string, string[]]>([
    ['below the minimum', { reportIntervalMs: 5 }, 'reportIntervalMs', ['must be >= 10000', '(got 5)']],
    ['not a number', { reportIntervalMs: 'soon' }, 'reportIntervalMs', ['must be integer']],
    ['a fraction for an integer', { metricsIntervalMs: 1000.5 }, 'metricsIntervalMs', ['must be integer']],
    ['not an allowed value', { logLevel: 'verbose' }, 'logLevel', ['must be one of "debug", "info", "warn", "error"', '"verbose"']],
    ['not matching the pattern', { siteId: 'a/b' }, 'siteId', ['must match ^[A-Za-z0-9_-]{1,64}$']],
    ['a bad list item', { expectedComponents: ['ok', 'Not OK'] }, 'expectedComponents.1', ['must match']],
  ])('ConfigError names the key and what is allowed: %s', (_name, raw, key, fragments) => {
    const err = configError(() => validateConfig(healthConfigSpec, raw));
    expect(err.key).toBe(key);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.kind).toBe('fatal');
    expect(err.message).toContain(`configuration key '${key}'`);
    for (const f of fragments) expect(err.message).toContain(f);
  });

  test('a missing required key is named', () => {
    const spec: ConfigSpec<{ host: string }> = {
      schema: { type: 'object', required: ['host'], properties: { host: { type: 'string' } } },
      defaults: {} as { host: string },
    };
    expect(configError(() => validateConfig(spec, {})).message).toBe("configuration key 'host' is required");
  });

  test('a non-object configuration is refused', () => {
    expect(configError(() => validateConfig(healthConfigSpec, [1, 2])).message).toContain('must be an object');
  });

  test('mergeConfig follows Greengrass merge: objects by key, arrays and scalars replace', () => {
    expect(mergeConfig({ a: { x: 1, y: 2 }, l: [1, 2], s: 1 }, { a: { y: 3 }, l: [9], s: 2 })).toEqual({ a: { x: 1, y: 3 }, l: [9], s: 2 });
  });
});

describe('loadConfig and watchConfig over the bus', () => {
  async function setup(config: Record<string, unknown>) {
    const nucleus = new FakeNucleus({ config });
    const clock = new FakeClock();
    const metrics = createMetrics({ clock });
    const bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock });
    await bus.connect();
    return { nucleus, bus, metrics };
  }

  test('loads the whole configuration (keyPath []) and validates it', async () => {
    const { bus } = await setup({ siteId: 'plant-7', reportIntervalMs: '120000', accessControl: {} });
    const c = await loadConfig(bus, healthConfigSpec);
    expect(c.siteId).toBe('plant-7');
    expect(c.reportIntervalMs).toBe(120000);
    await bus.close();
  });

  test('a valid update is handed over frozen; an invalid one is logged and the old one kept', async () => {
    const { nucleus, bus, metrics } = await setup({ siteId: 'plant-7' });
    const lines: string[] = [];
    const initial = await loadConfig(bus, healthConfigSpec);
    const changes: Array<[HealthConfig, HealthConfig]> = [];
    const watch = await watchConfig({
      bus,
      spec: healthConfigSpec,
      initial,
      onChange: (next, prev) => {
        changes.push([next, prev]);
      },
      log: createLogger({}, { write: (l) => lines.push(l) }),
      metrics,
    });

    nucleus.config = { siteId: 'plant-7', reportIntervalMs: 60000 };
    nucleus.configChanged(['reportIntervalMs']);
    await watch.idle();
    expect(changes).toHaveLength(1);
    expect(changes[0]?.[0].reportIntervalMs).toBe(60000);
    expect(changes[0]?.[1].reportIntervalMs).toBe(300000);
    expect(Object.isFrozen(changes[0]?.[0])).toBe(true);
    expect(watch.current.reportIntervalMs).toBe(60000);

    nucleus.config = { siteId: 'plant-7', reportIntervalMs: -1 };
    nucleus.configChanged(['reportIntervalMs']);
    await watch.idle();
    expect(changes).toHaveLength(1);
    expect(watch.current.reportIntervalMs).toBe(60000);
    expect(metrics.snapshot().lastError?.code).toBe('CONFIG_INVALID');
    expect(lines.some((l) => l.includes('configuration update rejected') && l.includes('reportIntervalMs'))).toBe(true);

    // One event per changed node (as the nucleus sends them): a burst is coalesced into re-reads
    // that end on the final configuration, and an unchanged configuration calls nobody.
    nucleus.config = { siteId: 'plant-8', reportIntervalMs: 60000, logLevel: 'debug' };
    nucleus.configChanged(['siteId']);
    nucleus.configChanged(['logLevel']);
    nucleus.configChanged(['reportIntervalMs']);
    await watch.idle();
    expect(changes).toHaveLength(2);
    expect(changes[1]?.[0]).toMatchObject({ siteId: 'plant-8', logLevel: 'debug' });

    await watch.close();
    nucleus.config = { siteId: 'plant-9' };
    nucleus.configChanged(['siteId']);
    await watch.idle();
    expect(changes).toHaveLength(2);
    await bus.close();
  });
});

/**
 * Logs never carry secrets: any value under a secret-looking key, at any depth of a logged object
 * (fields and bindings), is written as "[redacted]", without touching the caller's object. Checked
 * on the logger itself and on the lines that log configuration: watchConfig's `configuration
 * updated`, the rejection of a bad update, and runComponent's startup and validation logs.
 */
import { EventEmitter } from 'node:events';
import { createBus } from '../../components/lib/bus';
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, deepFreeze, loadConfig, watchConfig, type BaseConfig, type ConfigSpec } from '../../components/lib/config';
import { runComponent, type ProcessLike } from '../../components/lib/component';
import { createLogger, isSecretKey, REDACTED } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';

// Made-up values, distinctive enough to grep for.
const DB_PASSWORD = 'pw-6f1d2e-not-real';
const S3_SECRET = 'sak-9b7c3a-not-real';
const SESSION = 'st-41aa0c-not-real';

function capture() {
  const lines: string[] = [];
  const log = createLogger({}, { level: 'debug', write: (l) => void lines.push(l) });
  return { lines, log, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('secret key names', () => {
  test.each([
    'password', 'passwd', 'secret', 'token', 'apiKey', 'api_key', 'accessKey', 'secretAccessKey', 'sessionToken', 'privateKey',
    'credentials', 'authorization', 'cookie',
    // any case, separators, and as the end of a longer name
    'PASSWORD', 'Authorization', 'Cookie', 'API-KEY', 'secret_access_key', 'AWS_SESSION_TOKEN', 'dbPassword', 'mqttPasswd', 'clientSecret',
    'cli_auth_token', 'authToken', 'sshPrivateKey', 'credential',
  ])('%s is secret', (k) => expect(isSecretKey(k)).toBe(true));

  test.each(['siteId', 'accessKeyId', 'secretArn', 'tokens', 'passwordMinLength', 'host', 'keyPath', 'bucket', 'region', 'logLevel'])('%s is not', (k) =>
    expect(isSecretKey(k)).toBe(false),
  );
});

describe('redaction in log lines', () => {
  test('by key name anywhere: nested objects, arrays, any case; other values untouched', () => {
    const c = capture();
    c.log.info('x', {
      config: {
        siteId: 's1',
        database: { host: 'db', Password: DB_PASSWORD },
        exporters: [{ s3: { bucket: 'b', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: S3_SECRET } }],
        headers: { Authorization: 'Bearer abc', Cookie: 'sid=1' },
      },
      sessionToken: SESSION,
    });
    expect(c.lines[0]).not.toContain(DB_PASSWORD);
    expect(c.lines[0]).not.toContain(S3_SECRET);
    expect(c.lines[0]).not.toContain(SESSION);
    expect(c.lines[0]).not.toContain('Bearer abc');
    expect(c.records()[0]).toMatchObject({
      config: {
        siteId: 's1',
        database: { host: 'db', Password: REDACTED },
        exporters: [{ s3: { bucket: 'b', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: REDACTED } }],
        headers: { Authorization: REDACTED, Cookie: REDACTED },
      },
      sessionToken: REDACTED,
    });
  });

  test('a secret key hides its whole value, object or array; undefined stays absent', () => {
    const c = capture();
    c.log.info('x', { credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: S3_SECRET }, tokens: ['a'], apiKey: undefined, cookie: ['a=1', 'b=2'] });
    expect(c.records()[0]).toEqual({ time: expect.any(String), level: 'info', msg: 'x', credentials: REDACTED, tokens: ['a'], cookie: REDACTED });
  });

  test('bindings are redacted too', () => {
    const c = capture();
    c.log.child({ component: 'p', apiKey: 'k-123' }).info('x');
    expect(c.records()[0]).toEqual({ time: expect.any(String), level: 'info', component: 'p', apiKey: REDACTED, msg: 'x' });
  });

  test("the caller's (frozen) object is not changed", () => {
    const c = capture();
    const config = deepFreeze({ database: { password: DB_PASSWORD }, list: [{ token: SESSION }] });
    const before = structuredClone(config);
    c.log.info('x', { config });
    expect(config).toEqual(before);
    expect(c.lines[0]).not.toContain(DB_PASSWORD);
  });

  test('an object seen twice is redacted twice; a circular one is marked', () => {
    const c = capture();
    const shared = { password: DB_PASSWORD, user: 'u' };
    const loop: Record<string, unknown> = { secret: S3_SECRET };
    loop['self'] = loop;
    c.log.info('x', { a: shared, b: [shared], loop });
    expect(c.lines[0]).not.toContain(DB_PASSWORD);
    expect(c.lines[0]).not.toContain(S3_SECRET);
    expect(c.records()[0]).toMatchObject({ a: { password: REDACTED, user: 'u' }, b: [{ password: REDACTED, user: 'u' }], loop: { secret: REDACTED, self: '[Circular]' } });
  });

  test('objects with toJSON are redacted in their JSON form; an own __proto__ key stays a key', () => {
    const c = capture();
    const withJson = { toJSON: () => ({ password: DB_PASSWORD, ok: 1 }) };
    const parsed = JSON.parse(`{"__proto__": {"password": "${DB_PASSWORD}"}, "a": 1}`) as Record<string, unknown>;
    c.log.info('x', { withJson, parsed });
    expect(c.lines[0]).not.toContain(DB_PASSWORD);
    expect(c.lines[0]).toContain(`"parsed":{"__proto__":{"password":"${REDACTED}"},"a":1}`);
    expect(c.records()[0]).toMatchObject({ withJson: { password: REDACTED, ok: 1 } });
    expect(({} as Record<string, unknown>)['password']).toBeUndefined();
  });
});

interface SecretConfig extends BaseConfig {
  database: { host: string; user: string; password: string };
  exporters: { s3: { bucket: string; region: string; accessKeyId: string; secretAccessKey: string } };
}

const secretSpec: ConfigSpec<SecretConfig> = {
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ...BASE_CONFIG_PROPERTIES,
      database: {
        type: 'object',
        additionalProperties: false,
        properties: { host: { type: 'string' }, user: { type: 'string' }, password: { type: 'string', minLength: 12 } },
      },
      exporters: {
        type: 'object',
        additionalProperties: false,
        properties: {
          s3: {
            type: 'object',
            additionalProperties: false,
            properties: { bucket: { type: 'string' }, region: { type: 'string' }, accessKeyId: { type: 'string' }, secretAccessKey: { type: 'string', pattern: '^[A-Za-z0-9/+=-]{16,}$' } },
          },
        },
      },
    },
  },
  defaults: {
    ...BASE_DEFAULTS,
    database: { host: 'localhost', user: 'edge', password: '' },
    exporters: { s3: { bucket: 'b', region: 'eu-west-1', accessKeyId: '', secretAccessKey: '' } },
  },
};

function secretConfig(password: string, secretAccessKey: string, siteId = 's1'): Record<string, unknown> {
  return {
    siteId,
    database: { host: 'db.local', user: 'edge', password },
    exporters: { s3: { bucket: 'site-archive', region: 'eu-west-1', accessKeyId: 'AKIDEXAMPLE', secretAccessKey } },
  };
}

describe('watchConfig logs configuration without secrets', () => {
  async function watching(initial: Record<string, unknown>) {
    const nucleus = new FakeNucleus({ config: initial });
    const clock = new FakeClock();
    const metrics = createMetrics({ clock });
    const c = capture();
    const bus = createBus({ createClient: nucleus.factory, logger: c.log, metrics, clock });
    await bus.connect();
    const changes: SecretConfig[] = [];
    const watch = await watchConfig({ bus, spec: secretSpec, initial: await loadConfig(bus, secretSpec, c.log), onChange: (next) => void changes.push(next), log: c.log, metrics });
    return { nucleus, bus, c, watch, changes };
  }

  test('`configuration updated` with a nested password and an S3 secretAccessKey shows neither value', async () => {
    const t = await watching(secretConfig('old-password-value', 'OLDSECRETKEY0000000000'));
    t.nucleus.config = secretConfig(DB_PASSWORD, S3_SECRET);
    t.nucleus.configChanged(['database', 'password']);
    await t.watch.idle();

    // The component got the real values...
    expect(t.changes).toHaveLength(1);
    expect(t.changes[0]!.database.password).toBe(DB_PASSWORD);
    expect(t.changes[0]!.exporters.s3.secretAccessKey).toBe(S3_SECRET);
    // ...the log did not.
    const updated = t.c.records().find((r) => r['msg'] === 'configuration updated');
    expect(updated).toMatchObject({
      config: {
        siteId: 's1',
        database: { host: 'db.local', user: 'edge', password: REDACTED },
        exporters: { s3: { bucket: 'site-archive', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: REDACTED } },
      },
    });
    for (const l of t.c.lines) {
      expect(l).not.toContain(DB_PASSWORD);
      expect(l).not.toContain(S3_SECRET);
      expect(l).not.toContain('old-password-value');
    }
    t.watch.close();
    await t.bus.close();
  });

  test('a rejected update names the key but not the secret value', async () => {
    const t = await watching(secretConfig('old-password-value', 'OLDSECRETKEY0000000000'));
    t.nucleus.config = secretConfig('short-pw', 'has spaces, not a key');
    t.nucleus.configChanged(['database', 'password']);
    await t.watch.idle();
    expect(t.changes).toHaveLength(0);
    const rejected = t.c.records().find((r) => r['msg'] === 'configuration update rejected; keeping the current configuration');
    expect(rejected).toMatchObject({ key: 'database.password' });
    expect(String(rejected?.['err'])).toContain(`(got "${REDACTED}")`);
    for (const l of t.c.lines) {
      expect(l).not.toContain('short-pw');
      expect(l).not.toContain('has spaces, not a key');
    }
    t.watch.close();
    await t.bus.close();
  });
});

describe('runComponent logs configuration without secrets', () => {
  class FakeProcess extends EventEmitter implements ProcessLike {
    exit(): void {}
  }

  function run(config: Record<string, unknown>) {
    const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Health', config });
    const lines: string[] = [];
    const proc = new FakeProcess();
    const r = runComponent(
      { name: 'com.dcmms.edge.Health', version: '9.9.9', config: secretSpec, create: () => ({ start: async () => undefined, close: async () => undefined }) },
      { process: proc, createIpcClient: nucleus.factory, clock: new FakeClock(), write: (l) => void lines.push(l) },
    );
    return { nucleus, lines, proc, r };
  }

  test('startup, a live update and a proposed configuration: no line carries a secret value', async () => {
    const t = run(secretConfig(DB_PASSWORD, S3_SECRET));
    expect(await t.r.running).toBe(true);
    t.nucleus.config = secretConfig(`${DB_PASSWORD}-2`, `${S3_SECRET}-2`, 's2');
    t.nucleus.configChanged(['siteId']);
    t.nucleus.proposeConfiguration('dep-1', secretConfig('tiny', 'not a key at all'));
    await new Promise((resolve) => setImmediate(resolve));
    t.proc.emit('SIGTERM');
    expect(await t.r.done).toBe(0);

    const text = t.lines.join('');
    expect(text).toContain('"msg":"running"');
    expect(text).toContain('"msg":"configuration updated"');
    expect(text).toContain('"msg":"proposed configuration rejected"');
    for (const secret of [DB_PASSWORD, S3_SECRET, 'tiny', 'not a key at all']) expect(text).not.toContain(secret);
    // The validity report goes back with the deployment: no secret there either.
    expect(t.nucleus.validityReports).toHaveLength(1);
    expect(t.nucleus.validityReports[0]!.message).toContain('database.password');
    expect(t.nucleus.validityReports[0]!.message).not.toContain('tiny');
  });

  test('a start with an invalid secret logs the key, not the value', async () => {
    const t = run(secretConfig(DB_PASSWORD, 'not a key at all'));
    expect(await t.r.running).toBe(false);
    expect(await t.r.done).toBe(1);
    const text = t.lines.join('');
    expect(text).toContain("configuration key 'exporters.s3.secretAccessKey' must match");
    expect(text).not.toContain('not a key at all');
    expect(text).not.toContain(DB_PASSWORD);
  });
});

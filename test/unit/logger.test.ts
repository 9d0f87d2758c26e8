/**
 * The log line format our tooling reads (tests, the local runtime's log files, the e2e checks):
 * one JSON object per line with `time` (ISO), `level` by name, the bindings, `msg` and the fields;
 * errors as { type, message, code, stack }. Whatever writes the line, these must hold.
 */
import { createLogger, isLogLevel, silentLogger, type LevelRef, type LogFields } from '../../components/lib/logger';
import { ConfigError } from '../../components/lib/errors';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function capture(bindings: LogFields = {}, level: 'debug' | 'info' | 'warn' | 'error' = 'debug') {
  const lines: string[] = [];
  let now = T0;
  const log = createLogger(bindings, { level, write: (l) => void lines.push(l), now: () => now });
  const records = (): Record<string, unknown>[] => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { lines, log, records, tick: (ms: number) => (now += ms) };
}

describe('logger line format', () => {
  test('one JSON object per write, newline-terminated, with time, level name, bindings, msg and fields', () => {
    const c = capture({ component: 'processor', version: '1.2.3' });
    c.log.info('running', { siteId: 's1', metricsIntervalMs: 5000 });
    expect(c.lines).toHaveLength(1);
    expect(c.lines[0]!.endsWith('\n')).toBe(true);
    expect(c.lines[0]!.slice(0, -1)).not.toContain('\n');
    expect(c.records()[0]).toEqual({ time: '2026-01-02T03:04:05.678Z', level: 'info', component: 'processor', version: '1.2.3', msg: 'running', siteId: 's1', metricsIntervalMs: 5000 });
    // What the tests and tools grep for: compact JSON, no spaces after the colon.
    expect(c.lines[0]).toContain('"msg":"running"');
    expect(c.lines[0]).toContain('"level":"info"');
  });

  test('the message is written as given: no printf-style formatting, quotes and newlines escaped', () => {
    const c = capture();
    const msg = '100%s done %d %j "quoted"\nsecond line';
    c.log.info(msg);
    c.log.info(msg, { a: 1 });
    expect(c.records().map((r) => r['msg'])).toEqual([msg, msg]);
    expect(c.lines.every((l) => l.indexOf('\n') === l.length - 1)).toBe(true);
  });

  test('the injected clock gives the time of each line', () => {
    const c = capture();
    c.log.info('a');
    c.tick(1500);
    c.log.info('b');
    expect(c.records().map((r) => r['time'])).toEqual(['2026-01-02T03:04:05.678Z', '2026-01-02T03:04:07.178Z']);
  });

  test('each level writes its name; lines below the level are not written', () => {
    const c = capture({}, 'warn');
    c.log.debug('d');
    c.log.info('i');
    c.log.warn('w');
    c.log.error('e');
    expect(c.records().map((r) => [r['level'], r['msg']])).toEqual([
      ['warn', 'w'],
      ['error', 'e'],
    ]);
    expect(c.log.level).toBe('warn');
  });

  test('child loggers add bindings; a child binding replaces the parent one of the same name', () => {
    const c = capture({ component: 'nucleus' });
    const child = c.log.child({ part: 'ipc' }).child({ component: 'com.x.Y', connectionId: 7 });
    child.info('connected');
    c.log.info('parent');
    const [a, b] = c.records();
    expect(a).toEqual({ time: expect.any(String), level: 'info', component: 'com.x.Y', part: 'ipc', connectionId: 7, msg: 'connected' });
    expect(b).toEqual({ time: expect.any(String), level: 'info', component: 'nucleus', msg: 'parent' });
    // No key twice in the text either.
    expect(c.lines[0]!.match(/"component":/g)).toHaveLength(1);
  });

  test('a LevelRef changes the level of a logger and all its children at once', () => {
    const lines: string[] = [];
    const ref: LevelRef = { level: 'info' };
    const log = createLogger({}, { levelRef: ref, write: (l) => void lines.push(l) });
    const child = log.child({ module: 'm' });
    child.debug('hidden');
    ref.level = 'debug';
    child.debug('shown');
    expect(log.level).toBe('debug');
    expect(child.level).toBe('debug');
    ref.level = 'error';
    log.warn('hidden too');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['shown']);
  });

  test('an Error field is written as type, message, code and stack', () => {
    const c = capture();
    const err = new ConfigError('siteId', "configuration key 'siteId' is required");
    const plain = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    c.log.error('failed', { err, cause: plain, also: new TypeError('bad') });
    const r = c.records()[0]!;
    expect(r['err']).toEqual({ type: 'ConfigError', message: "configuration key 'siteId' is required", code: 'CONFIG_INVALID', stack: err.stack });
    expect(r['cause']).toEqual({ type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:1', code: 'ECONNREFUSED', stack: plain.stack });
    expect(r['also']).toEqual({ type: 'TypeError', message: 'bad', stack: expect.stringContaining('TypeError: bad') });
  });

  test('a string err field stays a string', () => {
    const c = capture();
    c.log.warn('publish failed', { err: 'timed out' });
    expect(c.records()[0]!['err']).toBe('timed out');
  });

  test('bigint fields are written as decimal strings; undefined fields are left out', () => {
    const c = capture();
    c.log.info('x', { big: 2n ** 70n, gone: undefined, n: 1 });
    expect(c.records()[0]).toEqual({ time: expect.any(String), level: 'info', msg: 'x', big: '1180591620717411303424', n: 1 });
  });

  test('nested objects and arrays are written whole, however deep or wide', () => {
    const c = capture();
    const deep = { a: { b: { c: { d: { e: { f: { g: 'bottom' } } } } } } };
    const wide = Array.from({ length: 500 }, (_, i) => i);
    c.log.info('x', { deep, wide });
    const r = c.records()[0]!;
    expect(r['deep']).toEqual(deep);
    expect(r['wide']).toEqual(wide);
  });

  test('a circular or unserialisable field does not throw and still writes a line', () => {
    const c = capture({ component: 'p' });
    const loop: Record<string, unknown> = { name: 'loop' };
    loop['self'] = loop;
    expect(() => c.log.error('circular', { loop })).not.toThrow();
    const hostile = {
      toJSON() {
        throw new Error('no');
      },
    };
    expect(() => c.log.error('hostile', { hostile })).not.toThrow();
    const [a, b] = c.records();
    expect(a).toMatchObject({ level: 'error', component: 'p', msg: 'circular', loop: { name: 'loop' } });
    expect(b).toMatchObject({ level: 'error', component: 'p', msg: 'hostile' });
  });

  test('a write that throws (stdout closed) never reaches the caller', () => {
    const log = createLogger({}, { write: () => {
      throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    } });
    expect(() => log.error('x', { a: 1 })).not.toThrow();
  });

  test('fields named like the envelope (time, level, msg) do not replace it', () => {
    const c = capture();
    c.log.info('real message', { msg: 'field', level: 'verbose', time: 1 });
    const r = c.records()[0]!;
    expect(r['msg']).toBe('real message');
    expect(r['level']).toBe('info');
    expect(r['time']).toBe('2026-01-02T03:04:05.678Z');
    expect(c.lines[0]!.match(/"msg":/g)).toHaveLength(1);
  });

  test('the caller\'s fields object is left alone', () => {
    const c = capture();
    const err = new Error('e');
    const fields = Object.freeze({ err, nested: Object.freeze({ n: 1n }) });
    c.log.info('x', fields);
    expect(fields.err).toBe(err);
    expect(fields.nested.n).toBe(1n);
  });

  test('silentLogger writes nothing and isLogLevel knows the four names', () => {
    expect(() => silentLogger.error('x', { a: 1 })).not.toThrow();
    expect(silentLogger.child({ a: 1 }).level).toBe('error');
    expect(['debug', 'info', 'warn', 'error'].every(isLogLevel)).toBe(true);
    expect(isLogLevel('trace')).toBe(false);
    expect(isLogLevel('toString')).toBe(false);
  });
});

test('a field that repeats a binding of the same value is written once', () => {
  const lines: string[] = [];
  const log = createLogger({ component: 'c' }, { write: (l) => lines.push(l) }).child({ assetId: 'INV-01' });
  log.info('device status', { assetId: 'INV-01', state: 'online' });
  log.info('other asset', { assetId: 'INV-02' });
  expect(lines[0]!.match(/"assetId"/g)).toHaveLength(1);
  expect(JSON.parse(lines[0]!)).toMatchObject({ assetId: 'INV-01', state: 'online' });
  // A different value is the caller's to explain: both are kept.
  expect(lines[1]!.match(/"assetId"/g)).toHaveLength(2);
});

/**
 * LocalHmi's trend reader against real files written by their real writers: the Processor's store
 * (openStore) for 1 h raw, the Aggregator's rollup database (AggDb) for 24 h and 7 d; at most 2000
 * points per answer; missing files give empty trends. And the configuration's own checks, and
 * password hashes.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AggDb } from '../../components/aggregator/db';
import { validateConfig } from '../../components/lib/config';
import { ConfigError } from '../../components/lib/errors';
import { openStore } from '../../components/lib/store';
import { LOCAL_HMI_DEFAULTS, localHmiConfigSpec } from '../../components/local-hmi/config';
import { HASH_CONCURRENCY, hashLoad, hashPassword, parsePasswordHash, verifyPassword } from '../../components/local-hmi/passwords';
import { MAX_POINTS, TrendReader } from '../../components/local-hmi/trends';

const MIN = 60_000;
let dir: string;
const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hmi-trend-'));
  const store = openStore({ path: path.join(dir, 'raw.db') });
  const samples = [];
  for (let t = NOW - 3600_000; t <= NOW; t += 1000) samples.push({ assetId: 'INV-01', point: '103.W', ts: t, v: (t - (NOW - 3600_000)) / 1000, q: 'good' as const, u: 'W' });
  for (let i = 0; i < 100; i++) samples.push({ assetId: 'WS-01', point: 'poa', ts: NOW - 100_000 + i * 1000, v: i, q: 'good' as const, u: 'W/m2' });
  store.append(samples);
  store.flush();
  store.close();

  const agg = new AggDb(path.join(dir, 'aggregates.db'));
  const s = agg.series('INV-01', '103.W');
  agg.setUnit(s, 'W');
  for (let m = 0; m < 7 * 1440; m++) {
    const start = NOW - 7 * 86_400_000 + m * MIN;
    // A two-hour hole six hours ago: the chart must break there.
    if (start >= NOW - 6 * 3600_000 && start < NOW - 4 * 3600_000) continue;
    const v = m % 100;
    agg.upsert('1m', start, s.id, { n: 60, count: 60, min: v - 1, max: v + 1, sum: 60 * v, m2: 0, first: v, last: v, energy: 0 });
  }
  agg.close();
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const reader = (): TrendReader => new TrendReader({ storeFile: path.join(dir, 'raw.db'), rollupFile: path.join(dir, 'aggregates.db') });

test('1 h: raw samples from the store, bucketed by the store to at most 2000 points, with the unit', () => {
  const r = reader();
  const t = r.trend('INV-01', '103.W', '1h', NOW);
  expect(t).toMatchObject({ assetId: 'INV-01', point: '103.W', unit: 'W', source: 'raw' });
  expect(t.t.length).toBeLessThanOrEqual(MAX_POINTS);
  expect(t.t.length).toBeGreaterThan(1500);
  expect(t.v.length).toBe(t.t.length);
  // Averages of a ramp stay on the ramp.
  const i = Math.floor(t.t.length / 2);
  expect(t.v[i]).toBeCloseTo((t.t[i]! - (NOW - 3600_000)) / 1000, -1);
  const few = r.trend('WS-01', 'poa', '1h', NOW);
  expect(few.t).toHaveLength(100);
  expect(few.v.slice(0, 3)).toEqual([0, 1, 2]);
  expect(r.series().map((s) => `${s.assetId}/${s.point}/${s.unit}`).sort()).toEqual(['INV-01/103.W/W', 'WS-01/poa/W/m2']);
  r.close();
});

test('24 h: the 1-minute rollups (avg, min, max), a null where the data has a hole', () => {
  const r = reader();
  const t = r.trend('INV-01', '103.W', '24h', NOW);
  expect(t).toMatchObject({ source: '1m', unit: 'W' });
  expect(t.t.length).toBeLessThanOrEqual(MAX_POINTS);
  expect(t.t.length).toBe(1440 - 120 + 1); // minutes with data, plus one null for the hole
  expect(t.v.filter((v) => v === null)).toHaveLength(1);
  const k = t.v.findIndex((v) => v !== null);
  expect(t.min![k]).toBe(t.v[k]! - 1);
  expect(t.max![k]).toBe(t.v[k]! + 1);
  r.close();
});

test('7 d: 10 080 minutes merged into 6-minute buckets (<= 2000 points), min of mins and max of maxes', () => {
  const r = reader();
  const t = r.trend('INV-01', '103.W', '7d', NOW);
  expect(t.t.length).toBeLessThanOrEqual(MAX_POINTS);
  expect(t.t.length).toBeGreaterThan(1500);
  expect(t.t[1]! - t.t[0]!).toBe(6 * MIN);
  r.close();
});

test('files that do not exist yet: empty trends, no error', () => {
  const r = new TrendReader({ storeFile: path.join(dir, 'none.db'), rollupFile: path.join(dir, 'none-agg.db') });
  expect(r.trend('INV-01', '103.W', '1h', NOW)).toEqual({ assetId: 'INV-01', point: '103.W', source: 'raw', t: [], v: [] });
  expect(r.trend('INV-01', '103.W', '24h', NOW).t).toEqual([]);
  expect(r.series()).toEqual([]);
  r.close();
});

describe('configuration', () => {
  const check = (over: Record<string, unknown>): unknown => validateConfig(localHmiConfigSpec, { ...LOCAL_HMI_DEFAULTS, ...over });
  test('defaults are valid', () => expect(() => check({})).not.toThrow());
  test.each([
    [{ tls: { certPath: '/x.pem', keyPath: '' } }, 'tls'],
    [{ timeZone: 'Mars/Olympus' }, 'timeZone'],
    [{ adminPasswordHash: 'plaintext' }, 'adminPasswordHash'],
    [{ port: 70000 }, 'port'],
    [{ sessionTtlMs: 10 }, 'sessionTtlMs'],
    [{ loginRateLimit: { maxPerAddress: 0, maxPerUser: 5, windowMs: 60000 } }, 'loginRateLimit'],
  ])('%j is a ConfigError naming %s', (over, key) => {
    let err: unknown;
    try {
      check(over);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).key).toContain(key);
  });
});

describe('password hashes', () => {
  test('scrypt$N$r$p$salt$hash: verifies the password, refuses another, parameters travel with the hash', async () => {
    const h = await hashPassword('correct horse battery');
    expect(h).toMatch(/^scrypt\$8192\$8\$10\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/);
    expect(await verifyPassword('correct horse battery', h)).toBe(true);
    expect(await verifyPassword('correct horse batterz', h)).toBe(false);
    const cheap = await hashPassword('pw-1234567', { N: 1024, r: 8, p: 1 });
    expect(parsePasswordHash(cheap)).toMatchObject({ N: 1024, r: 8, p: 1 });
    expect(await verifyPassword('pw-1234567', cheap)).toBe(true);
    expect(parsePasswordHash('scrypt$1000$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==')).toBeUndefined(); // N not a power of two
    expect(await verifyPassword('x', 'garbage')).toBe(false);
  });
});

test('docs/local-hmi.md: the hash one-liner makes a hash the component reads and verifies', async () => {
  const doc = fs.readFileSync(path.resolve(__dirname, '../../docs/local-hmi.md'), 'utf8');
  const block = /<!-- hash-one-liner -->\s*```sh\n([^\n]+)\n```/.exec(doc)?.[1];
  expect(block).toBeDefined();
  // The node part of the line, fed the password on stdin as `printf %s "$PW" |` does.
  const script = /node -e '([^']+)'/.exec(block!)?.[1];
  expect(script).toBeDefined();
  const out = execFileSync(process.execPath, ['-e', script!], { input: 'my secret pass 1' }).toString().trim();
  expect(parsePasswordHash(out)).toMatchObject({ N: 8192, r: 8, p: 10 });
  expect(await verifyPassword('my secret pass 1', out)).toBe(true);
  expect(await verifyPassword('my secret pass 2', out)).toBe(false);
  expect(() => validateConfig(localHmiConfigSpec, { ...LOCAL_HMI_DEFAULTS, adminPasswordHash: out })).not.toThrow();
});

test('at most HASH_CONCURRENCY hashes at once: a burst of logins queues (bounded memory: 8 MiB each)', async () => {
  const burst = Array.from({ length: 6 }, (_, i) => hashPassword(`burst-${i}-password`, { N: 1024, r: 8, p: 1 }));
  expect(hashLoad().running).toBe(HASH_CONCURRENCY);
  expect(hashLoad().waiting).toBe(6 - HASH_CONCURRENCY);
  const hashes = await Promise.all(burst);
  expect(new Set(hashes).size).toBe(6);
  expect(hashLoad()).toMatchObject({ running: 0, waiting: 0 });
  expect(hashLoad().mostRunning).toBe(HASH_CONCURRENCY);
});

/**
 * Crash test of the Aggregator (docs/aggregator.md "Watermarks, restart safety"): the Aggregator
 * runs as a real process (components/aggregator/testing/crash-runner.ts) over a real store, is
 * SIGKILLed twice in the middle of aggregating, and restarted. Afterwards its database equals, row
 * for row and bit for bit, the one of an uninterrupted run (no gap, no double), every sample of the
 * store is counted exactly once in the 1-minute rows, and every bucket was published at least
 * once. The same again while it re-aggregates late data from the store's late log.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { buildSync } from 'esbuild';
import { openStore, type StoreSample } from '../../components/lib/store';
import { FakeClock } from '../../components/lib/testing/fake-clock';

const ROOT = path.resolve(__dirname, '../..');
const T0 = Date.UTC(2025, 0, 15, 6);
const HOURS = 3;
const SERIES = 12;
const NOW = T0 + HOURS * 3_600_000 + 20_000;
const BACKFILL = NOW - T0;

let dir: string;
let runner: string;
let storePath: string;
/** The store as beforeAll left it (each test starts from it). */
let pristine: string;
let total = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-crash-'));
  runner = path.join(dir, 'runner.js');
  buildSync({ entryPoints: [path.join(ROOT, 'components/aggregator/testing/crash-runner.ts')], bundle: true, platform: 'node', target: 'node20', external: ['better-sqlite3'], outfile: runner, logLevel: 'error' });
  storePath = path.join(dir, 'raw.db');
  pristine = path.join(dir, 'pristine.db');
  const store = openStore({ path: storePath, clock: new FakeClock(Date.UTC(2030, 0, 1)) }, { sealLagMs: 0 });
  for (let s = 0; s < SERIES; s++) {
    const batch: StoreSample[] = [];
    for (let t = T0; t < T0 + HOURS * 3_600_000; t += 1000) batch.push({ assetId: `inv-${s % 4}`, point: `P${s}`, ts: t + (s % 7), v: Math.round(Math.sin(t / 1e6 + s) * 10000) / 10, q: 'good' });
    store.append(batch);
    store.flush();
    total += batch.length;
  }
  store.seal();
  store.close();
  fs.copyFileSync(storePath, pristine);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  published: string[];
  done: boolean;
}

/** Runs the Aggregator; SIGKILLs it on its `killAtRead`-th progress line if given. */
function run(dbPath: string, killAtRead?: number, store = storePath): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runner, store, dbPath, String(NOW), String(BACKFILL)], { env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') }, stdio: ['ignore', 'pipe', 'pipe'] });
    const r: Run = { code: null, signal: null, published: [], done: false };
    let reads = 0;
    let buf = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('P ')) r.published.push(line.slice(2));
        else if (line.startsWith('D ')) r.done = true;
        else if (line.startsWith('R ') && killAtRead !== undefined && ++reads === killAtRead) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      r.code = code;
      r.signal = signal;
      if (killAtRead === undefined && code !== 0) reject(new Error(`runner exited ${code}: ${stderr}`));
      else resolve(r);
    });
  });
}

const progress = (dbPath: string, level: string): number => {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare('SELECT until FROM progress WHERE level = ?').pluck().get(level) as number;
  } finally {
    db.close();
  }
};

function dump(dbPath: string): { rows: string; n1m: number; levels: Record<string, number> } {
  const db = new Database(dbPath, { readonly: true });
  try {
    const rows: string[] = [];
    const levels: Record<string, number> = {};
    for (const t of ['r1m', 'r15m', 'r1d']) {
      const all = db.prepare(`SELECT s.asset, s.point, r.* FROM ${t} r JOIN series s ON s.id = r.sid ORDER BY r.start, s.asset, s.point`).raw().all() as unknown[][];
      levels[t] = all.length;
      // series ids may differ between databases; compare by (asset, point)
      rows.push(...all.map((x) => JSON.stringify([t, x[0], x[1], ...x.slice(2).filter((_, i) => i !== 1)])));
    }
    const n1m = db.prepare('SELECT sum(n) FROM r1m').pluck().get() as number;
    return { rows: rows.join('\n'), n1m, levels };
  } finally {
    db.close();
  }
}

test('kill -9 twice mid-aggregation, restart: rows equal an uninterrupted run, no gap, no double', async () => {
  const reference = path.join(dir, 'reference.db');
  const ref = await run(reference);
  expect(ref.done).toBe(true);

  const crashed = path.join(dir, 'crashed.db');
  const first = await run(crashed, 6);
  expect(first.signal).toBe('SIGKILL');
  expect(first.done).toBe(false);
  // killed in the middle: some windows committed, not all
  const wm = (): number => {
    const db = new Database(crashed, { readonly: true });
    try {
      return db.prepare("SELECT until FROM progress WHERE level = '1m'").pluck().get() as number;
    } finally {
      db.close();
    }
  };
  const afterFirst = wm();
  expect(afterFirst).toBeGreaterThan(T0);
  expect(afterFirst).toBeLessThan(NOW - 20_000);
  const second = await run(crashed, 6);
  expect(second.signal).toBe('SIGKILL');
  expect(wm()).toBeGreaterThan(afterFirst); // the restart resumed and progressed before the second kill
  expect(wm()).toBeLessThan(NOW - 20_000);
  const last = await run(crashed);
  expect(last.done).toBe(true);

  const a = dump(reference);
  const b = dump(crashed);
  expect(a.levels['r1m']).toBe(HOURS * 60 * SERIES);
  expect(a.levels['r15m']).toBe(HOURS * 4 * SERIES);
  expect(b.levels).toEqual(a.levels);
  expect(b.rows).toBe(a.rows); // bit for bit (floats as JSON round-trip exactly)
  expect(b.n1m).toBe(total); // every stored sample counted once: no gap, no double

  // every (interval, bucket, asset) was published at least once across the three runs
  const expected = new Set(ref.published);
  const got = new Set([...first.published, ...second.published, ...last.published]);
  for (const k of expected) expect(got.has(k)).toBe(true);
  expect(expected.size).toBe(HOURS * 60 * 4 + HOURS * 4 * 4);
});

test('kill -9 twice while re-aggregating late data from the late log: rows equal an uninterrupted run', async () => {
  const store = path.join(dir, 'late.db');
  fs.copyFileSync(pristine, store);
  const reference = path.join(dir, 'late-reference.db');
  const crashed = path.join(dir, 'late-crashed.db');
  expect((await run(reference, undefined, store)).done).toBe(true);
  expect((await run(crashed, undefined, store)).done).toBe(true);

  // Late samples every 2 minutes of every series (a minute apart is one late-log entry per asset
  // and minute): 90 x 12 samples, 360 entries, so two batches of re-aggregation.
  const writer = openStore({ path: store, clock: new FakeClock(Date.UTC(2030, 0, 1)) }, { sealLagMs: 0 });
  const late: StoreSample[] = [];
  for (let t = T0 + 30_500; t < T0 + HOURS * 3_600_000; t += 120_000) for (let s = 0; s < SERIES; s++) late.push({ assetId: `inv-${s % 4}`, point: `P${s}`, ts: t, v: -s, q: 'good' });
  writer.append(late);
  const head = writer.flush()?.lateLogId ?? 0;
  writer.close();
  const before = progress(reference, 'lateLog');
  expect(head - before).toBe(360);

  const ref = await run(reference, undefined, store);
  expect(ref.done).toBe(true);
  expect(progress(reference, 'lateLog')).toBe(head);
  const first = await run(crashed, 40, store); // inside the first batch: nothing of it committed
  expect(first.signal).toBe('SIGKILL');
  expect(progress(crashed, 'lateLog')).toBe(before);
  const second = await run(crashed, 150, store); // inside the second batch: the first one committed
  expect(second.signal).toBe('SIGKILL');
  const mid = progress(crashed, 'lateLog');
  expect(mid).toBeGreaterThan(before);
  expect(mid).toBeLessThan(head);
  const last = await run(crashed, undefined, store);
  expect(last.done).toBe(true);
  expect(progress(crashed, 'lateLog')).toBe(head);

  const a = dump(reference);
  const b = dump(crashed);
  expect(b.rows).toBe(a.rows);
  expect(a.n1m).toBe(total + late.length);
  expect(b.n1m).toBe(total + late.length);
  // Every bucket the late data changed was republished by the crashed runs too.
  const republished = new Set([...first.published, ...second.published, ...last.published]);
  expect(ref.published.length).toBe(90 * 4 + HOURS * 4 * 4);
  for (const k of ref.published) expect(republished.has(k)).toBe(true);
});

/** `dcmms-edge query` as a person at a shell uses it: units shown, a missing series or file is an error that names it. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore, type Store } from '../../components/lib/store';
import { runQuery } from '../../scripts/cli/query';

const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);
let dir: string;
let store: Store;
let out: string;
let err: string;
let spies: jest.SpyInstance[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-query-'));
  store = openStore({ path: path.join(dir, 'raw.db') }, { sealLagMs: 0, chunkSamples: 60, retentionMs: 1e12 });
  store.append(Array.from({ length: 3 }, (_, i) => ({ assetId: 'INV-01', point: '103.W', ts: T0 + i * 1000, v: 1000 + i, q: 'good' as const, u: 'W' })));
  store.flush();
  out = '';
  err = '';
  spies = [
    jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += c.toString()), true)),
    jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += c.toString()), true)),
  ];
});

afterEach(() => {
  for (const s of spies) s.mockRestore();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const db = () => path.join(dir, 'raw.db');

test('shows the unit with every value, in the list, the CSV header and JSON', async () => {
  expect(await runQuery(['--db', db(), '--asset', 'INV-01', '--point', '103.W', '--from', String(T0), '--to', String(T0 + 5000)])).toBe(0);
  expect(out).toContain('1000 W  good');
  expect(out).toContain('3 samples (unit W)');
  out = '';
  expect(await runQuery(['--db', db(), '--list'])).toBe(0);
  expect(out).toBe('INV-01\t103.W\tW\n');
  out = '';
  expect(await runQuery(['--db', db(), '--asset', 'INV-01', '--point', '103.W', '--from', String(T0), '--to', String(T0 + 5000), '--csv'])).toBe(0);
  expect(out.split('\n')[0]).toBe('time,ts,value (W),quality');
  out = '';
  expect(await runQuery(['--db', db(), '--asset', 'INV-01', '--point', '103.W', '--from', String(T0), '--to', String(T0 + 5000), '--json'])).toBe(0);
  expect((JSON.parse(out) as Array<{ unit: string }>)[0]!.unit).toBe('W');
});

test('a series that does not exist exits 1 and says what the asset has', async () => {
  expect(await runQuery(['--db', db(), '--asset', 'INV-01', '--point', '103.Wx', '--from', String(T0), '--to', String(T0 + 5000)])).toBe(1);
  expect(err).toContain(`no series INV-01 103.Wx in ${db()}: INV-01 has 103.W`);
  err = '';
  expect(await runQuery(['--db', db(), '--asset', 'INV-09', '--point', '103.W', '--from', 'now-10m', '--to', 'now'])).toBe(1);
  expect(err).toContain('no asset INV-09');
});

test('a file it cannot open is named', async () => {
  const missing = path.join(dir, 'nope.db');
  await expect(runQuery(['--db', missing, '--list'])).rejects.toThrow(`cannot open the store ${missing}: no such file`);
  const notDb = path.join(dir, 'text.db');
  fs.writeFileSync(notDb, 'this is not a database, but long enough to look like a header of one........................................');
  await expect(runQuery(['--db', notDb, '--list'])).rejects.toThrow(`cannot open the store ${notDb}: `);
});

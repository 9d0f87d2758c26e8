/** `dcmms-edge query` (scripts/cli/query.ts) against a real store file while a writer has it open. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore, type Store } from '../../components/lib/store';
import { CliUsageError } from '../../scripts/cli/args';
import { runQuery } from '../../scripts/cli/query';

const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);
let dir: string;
let store: Store;
let out: string;
let spy: jest.SpyInstance;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-cli-'));
  store = openStore({ path: path.join(dir, 'raw.db') }, { sealLagMs: 0, chunkSamples: 60, retentionMs: 1e12 });
  store.append(Array.from({ length: 180 }, (_, i) => ({ assetId: 'inv-1', point: 'W', ts: T0 + i * 1000, v: i, q: 'good' as const })));
  store.seal();
  store.append([{ assetId: 'inv-1', point: 'W', ts: T0 + 180_000, v: null, q: 'bad' }]);
  store.flush(); // the last sample stays in the head
  out = '';
  spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
});

afterEach(() => {
  spy.mockRestore();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const base = () => ['--db', path.join(dir, 'raw.db'), '--asset', 'inv-1', '--point', 'W'];

test('prints raw samples as CSV, head included, while the writer is open', async () => {
  expect(await runQuery([...base(), '--from', new Date(T0 + 178_000).toISOString(), '--to', new Date(T0 + 200_000).toISOString(), '--csv'])).toBe(0);
  expect(out.trim().split('\n')).toEqual([
    'time,ts,value,quality',
    `2026-11-26T12:02:58.000Z,${T0 + 178_000},178,good`,
    `2026-11-26T12:02:59.000Z,${T0 + 179_000},179,good`,
    `2026-11-26T12:03:00.000Z,${T0 + 180_000},,bad`,
  ]);
});

test('downsamples to JSON', async () => {
  expect(await runQuery([...base(), '--from', String(T0), '--to', String(T0 + 179_999), '--downsample', '1m:max', '--json'])).toBe(0);
  const rows = JSON.parse(out) as Array<{ ts: number; v: number; n: number }>;
  expect(rows.map((r) => [r.ts - T0, r.v, r.n])).toEqual([
    [0, 59, 60],
    [60_000, 119, 60],
    [120_000, 179, 60],
  ]);
});

test('lists series and rejects bad arguments as usage errors', async () => {
  expect(await runQuery(['--db', path.join(dir, 'raw.db'), '--list'])).toBe(0);
  expect(out).toBe('inv-1\tW\n');
  await expect(runQuery([...base(), '--from', 'yesterday', '--to', String(T0)])).rejects.toThrow(CliUsageError);
  await expect(runQuery([...base(), '--from', String(T0), '--to', String(T0 + 1), '--downsample', '1m:median'])).rejects.toThrow(/aggregate/);
  await expect(runQuery([...base(), '--to', String(T0)])).rejects.toThrow(/--from is required/);
});

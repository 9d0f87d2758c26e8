/**
 * Sealing: what it reads from the head and what it gives back to the file system afterwards.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { openStore, type Sample, type Store, type StoreConfig, type StoreSample } from '../../components/lib/store';

const T0 = Date.UTC(2026, 10, 26, 0, 0, 0);

let dir: string;
let clock: FakeClock;
const open: Store[] = [];

function mk(config: Partial<StoreConfig> = {}): Store {
  const s = openStore({ path: path.join(dir, 'raw.db'), clock }, { chunkSamples: 60, sealLagMs: 0, ...config });
  open.push(s);
  return s;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-seal-'));
  clock = new FakeClock(T0 + 3600_000 * 2);
});

afterEach(() => {
  for (const s of open.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('sealing', () => {
  it('reads head rows in key order, whatever order SQLite would return them in without ORDER BY', () => {
    const s = mk();
    // SQLite's own switch for finding code that relies on an unspecified row order.
    s.db.pragma('reverse_unordered_selects = ON');
    const all: StoreSample[] = [];
    for (let p = 0; p < 3; p++) for (let i = 0; i < 200; i++) all.push({ assetId: 'a', point: `p${p}`, ts: T0 + i * 500, v: i * 10 + p, q: 'good' });
    s.append(all);
    s.flush();
    s.seal();
    for (let p = 0; p < 3; p++) {
      const key = { assetId: 'a', point: `p${p}` };
      const want: Sample[] = all.filter((x) => x.point === key.point).map((x) => ({ ts: x.ts, v: x.v, q: x.q }));
      expect(s.rawTimestamps(key).head).toEqual([]);
      expect(s.range(key, 0, 2 ** 46)).toEqual(want);
    }
    const rows = s.db.prepare('SELECT series, min_ts, max_ts, n FROM chunk ORDER BY series, max_ts').all() as Array<{ series: number; min_ts: number; max_ts: number; n: number }>;
    for (const r of rows) expect(r.min_ts).toBeLessThan(r.max_ts);
    expect(rows.reduce((a, r) => a + r.n, 0)).toBe(600);
  });
});

/**
 * Crash test (docs/store.md "Writes and durability"): a real child process appends at a high rate while the store seals in
 * small chunks, reporting what it appended (A) and what onCommit acknowledged (C) on stdout; the
 * parent SIGKILLs it at random moments. After each kill the database must pass integrity_check,
 * hold every acknowledged sample exactly once, and have lost at most the commit window.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { openStore } from '../../components/lib/store';
import { runAndKill } from '../helpers/crash-child';

const ROOT = path.resolve(__dirname, '../..');
const SERIES = 6;
const BASE = Date.UTC(2020, 0, 1);
const STEP_MS = 10;
const WINDOW_MS = 100;
/** Scheduling and fsync slack on a loaded 2-core CI machine, on top of the commit window. */
const SLACK_MS = 250;

const CHILD = `
import fs from 'node:fs';
import { openStore } from './components/lib/store';
const dbPath = process.argv[2];
const store = openStore({ path: dbPath }, { commitWindowMs: ${WINDOW_MS}, sealIntervalMs: 150, sealLagMs: 0, chunkSamples: 40, sealSliceSeries: 2, retentionMs: 1e12 });
const SERIES = ${SERIES}, BASE = ${BASE}, STEP = ${STEP_MS};
const key = (s: number) => ({ assetId: 'a', point: 'p' + s });
let next = 0;
for (let s = 0; s < SERIES; s++) {
  const got = store.range(key(s), BASE, 2 ** 46);
  const last = got[got.length - 1];
  if (last) next = Math.max(next, (last.ts - BASE) / STEP + 1);
}
// Idempotent re-append: the last 30 stored samples again, with other values.
const again = [];
for (let i = Math.max(0, next - 30); i < next; i++) for (let s = 0; s < SERIES; s++) again.push({ ...key(s), ts: BASE + i * STEP, v: -1, q: 'good' });
store.append(again);
const out = (line: string) => fs.writeSync(1, line + '\\n');
const tickets: Array<[number, number]> = [];
store.onCommit((c) => {
  let upTo = -1;
  while (tickets.length && tickets[0][0] <= c.ticket) upTo = tickets.shift()![1];
  if (upTo >= 0) out('C ' + upTo);
});
out('S ' + next);
const loop = () => {
  const batch = [];
  const n = 20;
  for (let i = next; i < next + n; i++) for (let s = 0; s < SERIES; s++) batch.push({ ...key(s), ts: BASE + i * STEP, v: i, q: 'good' });
  next += n;
  tickets.push([store.append(batch), next - 1]);
  out('A ' + (next - 1) + ' ' + Date.now());
  setTimeout(loop, 2);
};
loop();
`;

let dir: string;
let childJs: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-crash-'));
  childJs = path.join(dir, 'child.js');
  buildSync({ stdin: { contents: CHILD, resolveDir: ROOT, loader: 'ts', sourcefile: 'child.ts' }, bundle: true, platform: 'node', target: 'node20', external: ['better-sqlite3'], outfile: childJs, logLevel: 'error' });
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test('kill -9 at random moments loses nothing committed and stores nothing twice', async () => {
  const dbPath = path.join(dir, 'raw.db');
  let previousMax = -1;
  let sealedSeen = false;
  for (let r = 0; r < 6; r++) {
    const round = await runAndKill([childJs, dbPath], 3 + Math.floor(Math.random() * 12), Math.floor(Math.random() * 40));
    expect(round.start).toBe(previousMax + 1);
    expect(round.committed).toBeGreaterThanOrEqual(0);

    const store = openStore({ path: dbPath }, { retentionMs: 1e12, sealIntervalMs: 3600_000 });
    try {
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      let storedMax = -1;
      for (let s = 0; s < SERIES; s++) {
        const key = { assetId: 'a', point: `p${s}` };
        const raw = store.rawTimestamps(key);
        const all = [...raw.chunk, ...raw.head];
        expect(new Set(all).size).toBe(all.length); // nothing stored twice
        if (raw.chunk.length > 0) sealedSeen = true;
        const got = store.range(key, BASE, 2 ** 46);
        // A commit is a prefix of the appends: contiguous from 0, every value as first written.
        got.forEach((x, i) => {
          if (x.ts !== BASE + i * STEP_MS || x.v !== i) throw new Error(`series ${s}: sample ${i} is ${JSON.stringify(x)}`);
        });
        const max = got.length - 1;
        expect(max).toBeGreaterThanOrEqual(round.committed); // every acknowledged sample is there
        if (s === 0) storedMax = max;
        else expect(max).toBe(storedMax); // one commit holds all series of a batch
      }
      // Loss: the first appended-but-lost sample was appended at most one window (+ slack) before
      // the last append the parent saw.
      const firstLost = round.appended.get(storedMax + 20);
      if (firstLost !== undefined && storedMax < round.lastAppended) {
        const lostMs = (round.appended.get(round.lastAppended) as number) - firstLost;
        expect(lostMs).toBeLessThanOrEqual(WINDOW_MS + SLACK_MS);
      }
      previousMax = storedMax;
    } finally {
      store.close();
    }
  }
  expect(sealedSeen).toBe(true);
}, 55_000);

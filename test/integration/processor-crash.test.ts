/**
 * Crash test of the Processor (docs/processor.md "Crash-loss window"): the Processor runs as a real
 * process (components/processor/testing/crash-runner.ts: the factory with a real store, fed by a
 * load generator) and is SIGKILLed at random moments under load. After each kill: the database
 * passes integrity_check, every message the store acknowledged is there in full, nothing is stored
 * twice (also after re-delivery of already stored messages), the loss is within the documented
 * window, and an alarm active before a kill is not raised again after the restart.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { openStore } from '../../components/lib/store';
import { runAndKill } from '../helpers/crash-child';

const ROOT = path.resolve(__dirname, '../..');
const POINTS = 20;
const WINDOW_MS = 100;
/** Scheduling and fsync slack on a loaded 2-core CI machine, on top of the commit window. */
const SLACK_MS = 300;

let dir: string;
let runner: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proc-crash-'));
  runner = path.join(dir, 'runner.js');
  buildSync({ entryPoints: [path.join(ROOT, 'components/processor/testing/crash-runner.ts')], bundle: true, platform: 'node', target: 'node20', external: ['better-sqlite3'], outfile: runner, logLevel: 'error' });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('kill -9 under load: committed samples all there, nothing twice, loss within the window, alarms not re-raised', async () => {
  const base = Date.now() - 60_000;
  const dbPath = path.join(dir, 'raw.db');
  let previousMax = -1;
  const alarms: string[] = [];
  let worstLossMs = 0;
  for (let r = 0; r < 5; r++) {
    const round = await runAndKill([runner, dir, String(base), String(POINTS)], 3 + Math.floor(Math.random() * 10), Math.floor(Math.random() * 50), (kind, a, b) => {
      if (kind === 'R') alarms.push(`${a}:${b}`);
    });
    expect(round.start).toBe(previousMax + 1);
    expect(round.committed).toBeGreaterThanOrEqual(round.start);

    const store = openStore({ path: dbPath }, { retentionMs: 1e12, sealIntervalMs: 3600_000 });
    try {
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      let storedMax = -1;
      for (let k = 0; k < POINTS; k++) {
        const key = { assetId: 'INV-01', point: `p${k}` };
        const raw = store.rawTimestamps(key);
        // Nothing stored twice in the chunks, nor in the head. A re-delivered message whose samples
        // were sealed before the kill may sit in the head beside its chunk copy until the next seal
        // drops it (the stored sample wins; docs/store.md "Sealing"); reads never show it (below).
        expect(new Set(raw.chunk).size).toBe(raw.chunk.length);
        expect(new Set(raw.head).size).toBe(raw.head.length);
        const got = store.range(key, base, 2 ** 46);
        // Contiguous from message 0, each value as first written (re-deliveries carried -1).
        got.forEach((x, i) => {
          if (x.ts !== base + i || x.v !== i || x.q !== 'good') throw new Error(`p${k}: sample ${i} is ${JSON.stringify(x)}`);
        });
        const max = got.length - 1;
        expect(max).toBeGreaterThanOrEqual(round.committed); // every acknowledged message is there
        if (k === 0) storedMax = max;
        else expect(max).toBe(storedMax); // a message is committed whole
      }
      if (storedMax < round.lastAppended) {
        const firstLost = round.appended.get(storedMax + 1);
        const last = round.appended.get(round.lastAppended);
        if (firstLost !== undefined && last !== undefined) worstLossMs = Math.max(worstLossMs, last - firstLost);
      }
      previousMax = storedMax;
    } finally {
      store.close();
    }
  }
  // The loss: messages handed to the Processor but not yet committed when it died span at most
  // one commit window (+ slack for a busy machine); docs/processor.md reports the measured figure.
  expect(worstLossMs).toBeLessThanOrEqual(WINDOW_MS + SLACK_MS);
  // x.TmpCab is 80 °C in every message: raised once in the first round, restored afterwards.
  expect(alarms).toEqual(['over_temperature:raised']);
}, 55_000);

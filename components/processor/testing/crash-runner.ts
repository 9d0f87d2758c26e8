/**
 * A Processor as a real process for the crash test (test/integration/processor-crash.test.ts;
 * docs/processor.md "Crash-loss window"): the factory with a real store and an in-memory bus, fed
 * by a load generator in the same process. It reports on stdout, one line each:
 *   S <next>              first message index it will send (from what the store holds)
 *   A <index> <epochMs>   message <index> was handed to the Processor at <epochMs>
 *   C <index>             every message up to <index> is durable (store onCommit)
 *   R <type> <state>      an alarm was published
 * Usage: node crash-runner.js <dir> <baseTs> <points>
 */
import fs from 'node:fs';

import { validateConfig } from '../../lib/config';
import { systemClock } from '../../lib/clock';
import { topics, type Point, type Topic } from '../../lib/contract';
import { silentLogger } from '../../lib/logger';
import { createMetrics } from '../../lib/metrics';
import type { PublishOutcome } from '../../lib/bus-types';
import { openStore } from '../../lib/store';
import { processorConfigSpec } from '../config';
import { createProcessor } from '../processor';
import { RecordingBus } from '../../lib/testing/recording-bus';

const [dir = '.', baseArg = '0', pointsArg = '20'] = process.argv.slice(2);
const BASE = Number(baseArg);
const POINTS = Number(pointsArg);
const WINDOW_MS = 100;
const out = (line: string): void => void fs.writeSync(1, `${line}\n`);

class AlarmReportingBus extends RecordingBus {
  override publish<P extends object>(topic: Topic<P>, payload: P): Promise<PublishOutcome> {
    if (topic.endsWith('/alarms')) {
      const a = payload as unknown as { type: string; state: string };
      out(`R ${a.type} ${a.state}`);
    }
    return super.publish(topic, payload);
  }
}

const cfg = validateConfig(processorConfigSpec, { siteId: 's1', assets: ['INV-01'], commitWindowMs: WINDOW_MS, maxPastMs: 31536000000, maxClockSkewMs: 86400000, storePath: 'raw.db' });
const tickets: Array<[number, number]> = [];
let lastTicket = 0;
const p = createProcessor(
  {
    bus: new AlarmReportingBus(false),
    logger: silentLogger,
    metrics: createMetrics({ clock: systemClock }),
    clock: systemClock,
    component: 'processor',
    fail: (e) => {
      throw e;
    },
    workDir: dir,
    openStore: (file) => {
      const s = openStore({ path: file }, { commitWindowMs: WINDOW_MS, sealIntervalMs: 300, sealLagMs: 0, chunkSamples: 64, retentionMs: 1e12 });
      const append = s.append;
      s.append = (x) => (lastTicket = append(x));
      s.onCommit((c) => {
        let upTo = -1;
        while (tickets.length && (tickets[0] as [number, number])[0] <= c.ticket) upTo = (tickets.shift() as [number, number])[1];
        if (upTo >= 0) out(`C ${upTo}`);
      });
      return s;
    },
  },
  cfg,
);

const topic = topics.rawTelemetry('s1', 'INV-01');
function message(i: number, v: number): unknown {
  const points: Record<string, Point> = { 'x.TmpCab': { v: 80, u: 'C', q: 'good' } };
  for (let k = 0; k < POINTS; k++) points[`p${k}`] = { v, u: 'A', q: 'good' };
  return { schemaVersion: 1, siteId: 's1', assetId: 'INV-01', ts: BASE + i, seq: i, points };
}

void p.start().then(() => {
  const store = p.store;
  if (!store) throw new Error('no store');
  const got = store.range({ assetId: 'INV-01', point: 'p0' }, BASE, 2 ** 46);
  let next = got.length ? ((got[got.length - 1] as { ts: number }).ts - BASE) + 1 : 0;
  // Re-delivery after a restart (pub/sub has none, but a producer may resend): the last 30
  // stored messages again, with other values: the first write must win, nothing stored twice.
  for (let i = Math.max(0, next - 30); i < next; i++) p.ingest(message(i, -1), topic);
  out(`S ${next}`);
  const loop = (): void => {
    for (let k = 0; k < 5; k++) {
      p.ingest(message(next, next), topic);
      tickets.push([lastTicket, next]);
      out(`A ${next} ${Date.now()}`);
      next++;
    }
    setTimeout(loop, 2);
  };
  loop();
});


/**
 * How long LocalControl takes to decide (docs/local-control.md "Latency"): gateway time from an
 * input's delivery to the command handed to the bus, on the real clock with the real SQLite file
 * (synchronous FULL) in the system's temporary folder. The requirement is a decision well under
 * 50 ms; the figures in the doc come from `LC_LATENCY_REPORT=1 npx jest test/unit/local-control-latency`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import { CONTRACT_VERSION, topics, type ControlCommand, type Topic } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import type { PublishOutcome } from '../../components/lib/bus-types';
import { localControlConfigSpec } from '../../components/local-control/config';
import { createLocalControl, type LocalControl } from '../../components/local-control/local-control';

const SITE = 'lat-site';
const report = process.env['LC_LATENCY_REPORT'] === '1';

/** Notes when each command was handed to the bus. */
class TimedBus extends RecordingBus {
  sent: Array<{ at: number; cmd: ControlCommand }> = [];
  override publish<P extends object>(topic: Topic<P>, payload: P): Promise<PublishOutcome> {
    if (topic.endsWith('/command')) this.sent.push({ at: performance.now(), cmd: payload as unknown as ControlCommand });
    return super.publish(topic, payload);
  }
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-lat-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function make(over: Record<string, unknown>): Promise<{ bus: TimedBus; lc: LocalControl }> {
  const bus = new TimedBus({ record: false });
  const config = validateConfig(localControlConfigSpec, { siteId: SITE, dbPath: path.join(dir, `${randomUUID()}.db`), ...over });
  const lc = createLocalControl({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock, component: 'local-control', fail: (e) => { throw e; } }, config);
  await lc.start();
  return { bus, lc };
}

async function answer(bus: TimedBus, cmd: ControlCommand): Promise<void> {
  await bus.deliver('controlResult', topics.controlResult(SITE, cmd.assetId), { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: cmd.assetId, commandId: cmd.commandId, ts: Date.now(), status: 'succeeded' });
}

test('an alarm to its curtailment: p99 well under 50 ms', async () => {
  const { bus, lc } = await make({
    capacityW: { 'INV-01': 60000 },
    maxCurtailedShare: 1,
    rateLimit: { maxActions: 1000, windowMs: 1000 },
    outputs: { relays: {} },
    rules: [{ id: 'hot', condition: { source: 'alarm', alarmType: 'over_temperature', assets: ['INV-*'] }, action: 'curtail', params: { percent: 50, revertSeconds: 300 }, release: { holdOffMs: 0 } }],
  });
  const lat: number[] = [];
  let seq = 0;
  for (let i = 0; i < 300; i++) {
    const alarmId = randomUUID();
    const base = { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'INV-01', alarmId, type: 'over_temperature', severity: 'high' as const, source: 'processor', journalId: 'j', point: '103.TmpCab', value: 80 };
    const before = bus.sent.length;
    const t0 = performance.now();
    await bus.deliver('alarms', topics.alarms(SITE, 'INV-01'), { ...base, state: 'raised', transition: 'raised', transitionSeq: 0, ts: Date.now(), sourceSeq: ++seq });
    const curtail = bus.sent[before];
    expect(curtail?.cmd.action).toBe('curtail');
    lat.push((curtail?.at ?? Infinity) - t0);
    await answer(bus, curtail!.cmd);
    await bus.deliver('alarms', topics.alarms(SITE, 'INV-01'), { ...base, state: 'cleared', transition: 'cleared', transitionSeq: 1, ts: Date.now(), sourceSeq: ++seq });
    const restore = bus.sent[before + 1];
    expect(restore?.cmd.action).toBe('restore');
    await answer(bus, restore!.cmd);
  }
  await lc.close();
  if (report) process.stdout.write(`alarm -> curtail, 300 runs: p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms, max ${Math.max(...lat).toFixed(2)} ms\n`);
  expect(pct(lat, 99)).toBeLessThan(50);
});

test('the fire alarm input to the shutdown of 200 inverters and the breaker trip: the last command well under 50 ms', async () => {
  const first: number[] = [];
  const last: number[] = [];
  for (let run = 0; run < 10; run++) {
    const invs = Array.from({ length: 200 }, (_, i) => `INV-${String(i + 1).padStart(3, '0')}`);
    const { bus, lc } = await make({ capacityW: Object.fromEntries(invs.map((a) => [a, 60000])), outputs: { relays: {} } });
    const t0 = performance.now();
    await bus.deliver('processedTelemetry', topics.processedTelemetry(SITE, 'IO-01'), { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'IO-01', ts: Date.now(), seq: 1, points: { 'di.fireAlarm': { v: true, q: 'good' } } });
    expect(bus.sent).toHaveLength(201);
    first.push((bus.sent[0]?.at ?? Infinity) - t0);
    last.push((bus.sent.at(-1)?.at ?? Infinity) - t0);
    await lc.close();
  }
  if (report) process.stdout.write(`fire -> 200 shutdowns + trip, 10 runs: first command p50 ${pct(first, 50).toFixed(2)} ms (max ${Math.max(...first).toFixed(2)}), last command p50 ${pct(last, 50).toFixed(2)} ms (max ${Math.max(...last).toFixed(2)})\n`);
  expect(pct(last, 50)).toBeLessThan(50);
});

/**
 * Live configuration of the Aggregator (docs/aggregator.md "Live configuration"): what applies at
 * the next tick in place, and what is an internal restart of its own work (time zone, database).
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { createAggregator, type Aggregator } from '../../components/aggregator/aggregator';
import { aggregatorConfigSpec, type AggregatorConfig } from '../../components/aggregator/config';
import { ManualScheduler } from '../../components/aggregator/scheduler';
import { runComponent, type ComponentSpec } from '../../components/lib/component';
import { validateConfig } from '../../components/lib/config';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import type { StoreSample } from '../../components/lib/store';
import { aggRig, tmp, writeStore, SITE, type AggRig } from './aggregator-helpers';

const DAY = Date.UTC(2025, 0, 15);
const H = 3_600_000;
const M = 60_000;

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Two days of one inverter: `PX` (no unit in the store) at a constant 1 kW, a sample a minute. */
function twoDays(): string {
  const d = tmp('agg-cfg-');
  dirs.push(d);
  const s: StoreSample[] = [];
  for (let t = DAY; t < DAY + 48 * H; t += M) s.push({ assetId: 'inv-1', point: 'PX', ts: t + 30_000, v: 1000, q: 'good' });
  const store = writeStore(d);
  store.append(s);
  store.flush();
  store.seal();
  store.close();
  return d;
}

async function change(rig: AggRig, over: Partial<AggregatorConfig>): Promise<AggregatorConfig> {
  const next = validateConfig(aggregatorConfigSpec, { ...rig.config, ...over });
  await rig.agg.reconfigure?.(next, rig.config);
  (rig as { config: Readonly<AggregatorConfig> }).config = next;
  return next;
}

describe('Aggregator.reconfigure', () => {
  test('power points, close delays and retention apply at the next tick, in place (same database, same store reader)', async () => {
    const d = twoDays();
    const rig = await aggRig(d, DAY + 24 * H + 6 * M, { initialBackfillMs: 24 * H + 6 * M });
    try {
      const db = rig.agg.db;
      const engine = rig.agg.engine;
      // Day 1 closed with the default powerPoints (W): PX is not power, so no energy.
      expect(rig.summaries().map((x) => x.day)).toEqual(['2025-01-15']);
      expect(rig.summaries()[0]?.energyWh).toBeUndefined();

      await change(rig, { powerPoints: ['PX'], closeDelayMs: 45_000, retention1mMs: 2 * H });
      expect(rig.agg.db).toBe(db);
      expect(rig.agg.engine).toBe(engine);
      // The minute job moved with the close delay.
      expect(rig.scheduler.jobs.get('aggregator-1m')?.rule).toBe('46 * * * * *');

      // Next tick, 30 s into a minute: with 45 s the minute that just ended stays open.
      rig.clock.t = DAY + 48 * H + 6 * M + 30_000;
      await rig.agg.tick();
      expect(rig.agg.engine?.watermark('1m')).toBe(DAY + 48 * H + 5 * M);
      // Day 2's summary integrates PX as power: 24 h at 1 kW.
      const day2 = rig.summaries().find((x) => x.day === '2025-01-16');
      expect(day2?.energyWh).toBeCloseTo(24_000, 6);
      // Retention ran with the new age at once (not an hour later): 1-minute rows of the last 2 h only.
      const kept = rig.agg.db?.rows('1m', 0, Infinity) ?? [];
      expect(kept[0]?.start).toBeGreaterThanOrEqual(rig.clock.t - 2 * H);
    } finally {
      await rig.close();
    }
  });

  test('a time zone change restarts the work: databases reopened, jobs in the new zone, days closed in it', async () => {
    const d = twoDays();
    const rig = await aggRig(d, DAY + 24 * H + 6 * M, { initialBackfillMs: 24 * H + 6 * M, timeZone: 'UTC' });
    try {
      const db = rig.agg.db;
      await change(rig, { timeZone: 'Asia/Kolkata' });
      expect(rig.agg.db).not.toBe(db);
      expect(db?.db.open).toBe(false);
      expect([...rig.scheduler.jobs.values()].map((j) => j.tz)).toEqual(['Asia/Kolkata', 'Asia/Kolkata']);
      rig.clock.t = DAY + 48 * H + 6 * M;
      await rig.agg.tick();
      // The next day closed is Kolkata's 2025-01-16 (18:30 UTC the day before to 18:30 UTC).
      const next = rig.summaries().find((x) => x.timeZone === 'Asia/Kolkata');
      expect(next?.day).toBe('2025-01-16');
      expect(next?.start).toBe(DAY + 24 * H - 5.5 * H);
      expect(next?.end).toBe(DAY + 48 * H - 5.5 * H);
    } finally {
      await rig.close();
    }
  });

  test('a dbPath change closes the old database and continues in the new file', async () => {
    const d = twoDays();
    const rig = await aggRig(d, DAY + 2 * H + 20_000, { initialBackfillMs: H });
    try {
      const old = rig.agg.db;
      await change(rig, { dbPath: path.join(d, 'other.db'), initialBackfillMs: 30 * M });
      await rig.agg.tick();
      expect(old?.db.open).toBe(false);
      expect(rig.agg.db?.db.name).toBe(path.join(d, 'other.db'));
      // A new file starts from initialBackfillMs back.
      expect(rig.agg.engine?.watermark('origin')).toBe(DAY + 2 * H - 30 * M);
      expect(rig.agg.engine?.watermark('1m')).toBe(DAY + 2 * H);
    } finally {
      await rig.close();
    }
  });

  test('a siteId change moves the notice subscription and the published topics', async () => {
    const d = twoDays();
    const rig = await aggRig(d, DAY + H + 20_000, { initialBackfillMs: H });
    try {
      await change(rig, { siteId: 'site-b' });
      const live = rig.nucleus.topicStreams().filter((s) => s.live).map((s) => String(s.request['topic']));
      expect(live).toEqual(['site/site-b/store/commits']);
      rig.clock.t += 2 * M;
      await rig.agg.tick();
      const fresh = rig.nucleus.published.filter((p) => p.from !== undefined && p.topic.includes('/aggregates/'));
      expect(fresh[fresh.length - 1]?.topic).toBe('site/site-b/aggregates/1m/inv-1');
      expect(fresh.some((p) => p.topic.startsWith(`site/${SITE}/`))).toBe(true); // before the change
    } finally {
      await rig.close();
    }
  });
});

describe('through runComponent (a deployment changes the configuration)', () => {
  test('changes are applied in place, a time zone change included: one instance, one connection', async () => {
    const d = twoDays();
    const config = { siteId: SITE, storePath: path.join(d, 'raw.db'), dbPath: path.join(d, 'agg.db'), initialBackfillMs: H };
    const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Aggregator', config });
    const clock = new FakeClock(DAY + 2 * H);
    const proc = Object.assign(new EventEmitter(), { exits: [] as number[], exit(code: number) { this.exits.push(code); } });
    const lines: string[] = [];
    const created: Aggregator[] = [];
    const spec: ComponentSpec<AggregatorConfig> = {
      name: 'com.dcmms.edge.Aggregator',
      version: '9.9.9',
      config: aggregatorConfigSpec,
      create: (deps, cfg) => {
        const a = createAggregator({ ...deps, scheduler: new ManualScheduler() }, cfg);
        created.push(a);
        return a;
      },
    };
    const run = runComponent(spec, { process: proc, createIpcClient: nucleus.factory, clock, write: (l) => lines.push(l) });
    expect(await run.running).toBe(true);
    const applied = (): string[] => lines.map((l) => JSON.parse(l) as { msg: string; changed?: string[] }).filter((l) => l.msg.startsWith('configuration applied')).map((l) => `${l.msg} ${String(l.changed)}`);
    nucleus.config = { ...config, retention1mMs: 2 * H };
    nucleus.configChanged(['retention1mMs']);
    await clock.advanceAsync(0);
    await clock.advanceAsync(0);
    nucleus.config = { ...config, retention1mMs: 2 * H, timeZone: 'Europe/Berlin' };
    nucleus.configChanged(['timeZone']);
    await clock.advanceAsync(0);
    await clock.advanceAsync(0);
    expect(applied()).toEqual(['configuration applied in place retention1mMs', 'configuration applied in place timeZone']);
    expect(created).toHaveLength(1);
    expect(created[0]?.db?.db.open).toBe(true);
    expect(nucleus.clients).toHaveLength(1);
    proc.emit('SIGTERM');
    expect(await run.done).toBe(0);
  });
});

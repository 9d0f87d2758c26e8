/**
 * Late data and units reach the Aggregator from the store itself (docs/aggregator.md "Late data"):
 * the store's late log, read at start, on a commit notice with a newer lateLogId and on every tick;
 * units from the store's series list. No processed telemetry.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONTRACT_VERSION, type AggregateMessage, type StoreCommitNotice, type TelemetryMessage } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { ConfigError } from '../../components/lib/errors';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { openStore, openStoreReader, type StoreSample } from '../../components/lib/store';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { aggregatorConfigSpec } from '../../components/aggregator/config';
import { processorConfigSpec } from '../../components/processor/config';
import { createProcessor } from '../../components/processor/processor';
import { accessControlFor } from '../../components/lib/contract';
import { aggRig, naive, nextPublished, series, tmp, writeStore, SITE } from './aggregator-helpers';

const T0 = Date.UTC(2025, 0, 15, 10, 0, 0);
const H = 3_600_000;
const M = 60_000;
const Q = 15 * M;

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function dir(prefix: string): string {
  const d = tmp(prefix);
  dirs.push(d);
  return d;
}

/** A store holding an hour of inv-1.W (unit W), the first half sealed. */
function hourStore(d: string, seed: number): StoreSample[] {
  const base = series('inv-1', 'W', T0, T0 + H, seed, 1000).map((s) => ({ ...s, u: 'W' }));
  const store = writeStore(d);
  store.append(base.filter((s) => s.ts < T0 + 30 * M));
  store.flush();
  store.seal();
  store.append(base.filter((s) => s.ts >= T0 + 30 * M));
  store.flush();
  store.close();
  return base;
}

/** Appends late samples with a writer whose clock is `now` (so they are late by now - ts). */
function appendLate(d: string, samples: StoreSample[], now: number): number {
  const store = writeStore(d, now);
  store.append(samples);
  const c = store.flush();
  store.close();
  return c?.lateLogId ?? 0;
}

type Msg = AggregateMessage;

describe('late data from the store late log', () => {
  test('late samples committed while the Aggregator was stopped are re-aggregated when it starts', async () => {
    const d = dir('agg-late-stopped-');
    const base = hourStore(d, 7);
    const now = T0 + H + 20_000;
    const first = await aggRig(d, now, { initialBackfillMs: H + 20_000 });
    expect(first.aggregates('15m').find((m) => m.start === T0 + Q)?.revision).toBe(0);
    await first.close();

    const late: StoreSample = { assetId: 'inv-1', point: 'W', ts: T0 + Q + 5 * M + 500, v: 99_999, q: 'good' };
    expect(appendLate(d, [late], now + 60_000)).toBeGreaterThan(0);

    const second = await aggRig(d, now + 120_000, { initialBackfillMs: 0 });
    try {
      const fresh = second.aggregates();
      const minute = fresh.find((m) => m.interval === '1m' && m.start === T0 + Q + 5 * M);
      const quarter = fresh.find((m) => m.interval === '15m' && m.start === T0 + Q);
      expect(minute?.revision).toBe(1);
      expect(minute?.series['W']?.max).toBe(99_999);
      expect(quarter?.revision).toBe(1);
      expect(quarter?.series['W']?.count).toBe(naive([...base, late], T0 + Q, T0 + 2 * Q).count);
      // Only the buckets the late sample changed, plus the minutes that closed since.
      expect(fresh.filter((m) => m.start < T0 + H).map((m) => `${m.interval} ${m.start - T0}`).sort()).toEqual([`15m ${Q}`, `1m ${Q + 5 * M}`]);
      // The position in the log is ours, stored with the re-aggregation: a restart does not redo it.
      const reader = openStoreReader(path.join(d, 'raw.db'));
      expect(second.agg.db?.progress('lateLog')).toBe(reader.lateLogHead());
      reader.close();
    } finally {
      await second.close();
    }
    const third = await aggRig(d, now + 125_000, { initialBackfillMs: 0 });
    try {
      expect(third.aggregates().filter((m) => m.start < T0 + H)).toEqual([]);
    } finally {
      await third.close();
    }
  });

  test('a commit notice with a newer lateLogId re-aggregates within a tick; a lost notice is caught by the next tick', async () => {
    const d = dir('agg-late-notice-');
    hourStore(d, 8);
    const now = T0 + H + 20_000;
    const rig = await aggRig(d, now, { initialBackfillMs: H + 20_000 });
    try {
      // A notice: the Aggregator reads the log at once, without waiting for its minute job.
      const id = appendLate(d, [{ assetId: 'inv-1', point: 'W', ts: T0 + 2 * M + 10, v: -5, q: 'good' }], now + 1000);
      const notice: StoreCommitNotice = { schemaVersion: CONTRACT_VERSION, siteId: SITE, ts: now + 1000, runId: 'r1', seq: 7, ranges: [{ assetId: 'inv-1', from: T0 + 2 * M + 10, to: T0 + 2 * M + 10, samples: 1 }], lateLogId: id };
      const republished = nextPublished<Msg>(rig.nucleus, (_t, m) => m.interval === '1m' && m.start === T0 + 2 * M);
      rig.nucleus.inject(`site/${SITE}/store/commits`, notice);
      const minute = await republished;
      expect(minute.revision).toBe(1);
      expect(minute.series['W']?.min).toBe(-5);
      expect(rig.agg.db?.progress('lateLog')).toBe(id);
      await rig.agg.tick(); // the rest of that tick (the quarter's republication)
      // The same notice again (or an older one) does nothing.
      const n = rig.nucleus.published.length;
      rig.nucleus.inject(`site/${SITE}/store/commits`, notice);
      await rig.agg.tick();
      expect(rig.nucleus.published.slice(n).filter((p) => p.from !== undefined)).toEqual([]); // the injected notice itself is listed too

      // A notice that never arrives: the minute job's tick reads the log anyway.
      appendLate(d, [{ assetId: 'inv-9', point: 'W', ts: T0 + 3 * M, v: 7, q: 'good', u: 'W' }], now + 2000);
      const caught = nextPublished<Msg>(rig.nucleus, (_t, m) => m.assetId === 'inv-9' && m.start === T0 + 3 * M);
      rig.scheduler.fire('aggregator-1m');
      const m9 = await caught;
      expect(m9.series['W']).toEqual({ count: 1, min: 7, max: 7, avg: 7, u: 'W' });
    } finally {
      await rig.close();
    }
  });

  test('end to end with the Processor: a late raw sample is stored and logged, the notice carries lateLogId, the Aggregator republishes', async () => {
    const d = dir('agg-late-proc-');
    const pclock = new FakeClock(T0);
    const pbus = new RecordingBus();
    const cfg = validateConfig(processorConfigSpec, { siteId: SITE, assets: ['INV-01'], storePath: 'raw.db' });
    const proc = createProcessor({ bus: pbus, logger: silentLogger, metrics: createMetrics({ clock: pclock }), clock: pclock, component: 'processor', fail: (e) => { throw e; }, workDir: d }, cfg);
    await proc.start();
    let seq = 0;
    const raw = (ts: number, v: number): TelemetryMessage => ({ schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'INV-01', ts, seq: seq++, points: { '103.W': { v, u: 'W', q: 'good' } } });
    // 20 minutes of 10 s polls, each processed as it arrives (on time: not logged).
    for (let t = T0; t < T0 + 20 * M; t += 10_000) {
      pclock.advance(t + 300 - pclock.now());
      proc.ingest(raw(t, 1000));
      proc.flush();
    }
    pclock.advance(T0 + 20 * M + 20_000 - pclock.now());
    const rig = await aggRig(d, T0 + 20 * M + 20_000, { initialBackfillMs: 20 * M + 20_000 });
    try {
      const before = rig.aggregates('1m').find((m) => m.start === T0 + 5 * M);
      expect(before?.series['103.W']).toMatchObject({ count: 6, u: 'W' }); // the unit from the store
      // A sample of minute 5 that a device delivers 15 minutes late.
      proc.ingest(raw(T0 + 5 * M + 5000, 4000));
      proc.flush();
      const notices = pbus.published.filter((p) => p.topic === `site/${SITE}/store/commits`).map((p) => p.payload as StoreCommitNotice);
      const last = notices[notices.length - 1] as StoreCommitNotice;
      expect(last.lateLogId).toBeGreaterThan(0);
      expect(notices.slice(0, -1).every((n) => n.lateLogId === undefined)).toBe(true); // nothing late before
      const republished = nextPublished<Msg>(rig.nucleus, (_t, m) => m.interval === '1m' && m.start === T0 + 5 * M);
      rig.nucleus.inject(`site/${SITE}/store/commits`, last);
      const minute = await republished;
      expect(minute.revision).toBe(1);
      expect(minute.series['103.W']).toMatchObject({ count: 7, max: 4000, u: 'W' });
    } finally {
      await rig.close();
      await proc.close();
    }
  });
});

describe('what the Aggregator listens to, and the close-delay rule', () => {
  test('it subscribes to the store commit notices only (no processed telemetry), in code and in its recipe policy', async () => {
    const d = dir('agg-subs-');
    hourStore(d, 9);
    const rig = await aggRig(d, T0 + H + 20_000, { initialBackfillMs: H });
    try {
      const topicsSubscribed = rig.nucleus.topicStreams().filter((s) => s.live).map((s) => String(s.request['topic']));
      expect(topicsSubscribed).toEqual([`site/${SITE}/store/commits`]);
      // Units without any processed telemetry: from the store's series list.
      expect(rig.aggregates('1m').every((m) => m.series['W']?.u === 'W')).toBe(true);
    } finally {
      await rig.close();
    }
    const policy = JSON.stringify(accessControlFor('com.dcmms.edge.Aggregator'));
    expect(policy).toContain('store/commits');
    expect(policy).not.toContain('processed');
  });

  test('closeDelayMs below the store lateAfterMs is refused; a store written with a longer lateAfterMs delays closing', async () => {
    expect(() => validateConfig(aggregatorConfigSpec, { storePath: '/x/raw.db', closeDelayMs: 9_999 })).toThrow(ConfigError);
    expect(() => validateConfig(aggregatorConfigSpec, { storePath: '/x/raw.db', closeDelayMs: 9_999 })).toThrow(/closeDelayMs/);
    expect(validateConfig(aggregatorConfigSpec, { storePath: '/x/raw.db', closeDelayMs: 10_000 }).closeDelayMs).toBe(10_000);

    const d = dir('agg-late-after-');
    const s = openStore({ path: path.join(d, 'raw.db'), clock: new FakeClock(T0 + H) }, { lateAfterMs: 40_000 });
    s.append(series('inv-1', 'W', T0, T0 + 10 * M, 3, 10));
    s.close();
    // At 10 min + 30 s, closeDelayMs 15 s would close minute 9; the store logs only after 40 s.
    const rig = await aggRig(d, T0 + 10 * M + 30_000, { initialBackfillMs: 10 * M + 30_000 });
    try {
      expect(rig.agg.engine?.watermark('1m')).toBe(T0 + 9 * M);
      rig.clock.t += 15_000;
      await rig.agg.tick();
      expect(rig.agg.engine?.watermark('1m')).toBe(T0 + 10 * M);
    } finally {
      await rig.close();
    }
  });

  test('a different store file (the Processor\'s was replaced) is read from the start of its late log', async () => {
    const d = dir('agg-new-store-');
    const base = hourStore(d, 10);
    const now = T0 + H + 20_000;
    const rig = await aggRig(d, now, { initialBackfillMs: H + 20_000 });
    await rig.close();
    const reader = openStoreReader(path.join(d, 'raw.db'));
    const position = reader.lateLogHead();
    reader.close();
    expect(position).toBe(2); // one entry per commit of hourStore
    // A new file at the same path: its ids start again at 1. Entry 1 holds minute 10 (with one more
    // sample than before); entries 2 and 3 are elsewhere. Going on from position 2 would miss it.
    for (const f of ['raw.db', 'raw.db-wal', 'raw.db-shm']) fs.rmSync(path.join(d, f), { force: true });
    const minute10 = base.filter((x) => x.ts >= T0 + 10 * M && x.ts < T0 + 11 * M);
    appendLate(d, [...minute10, { assetId: 'inv-1', point: 'W', ts: T0 + 10 * M + 1, v: 12_345, q: 'good' }], now + 1000);
    appendLate(d, [{ assetId: 'inv-2', point: 'W', ts: T0 + 20 * M, v: 1, q: 'good' }], now + 1000);
    appendLate(d, [{ assetId: 'inv-3', point: 'W', ts: T0 + 30 * M, v: 1, q: 'good' }], now + 1000);
    const again = await aggRig(d, now + 2000, { initialBackfillMs: 0 });
    try {
      const minute = again.aggregates('1m').find((m) => m.assetId === 'inv-1' && m.start === T0 + 10 * M);
      expect(minute?.series['W']?.max).toBe(12_345);
      expect(minute?.revision).toBe(1);
    } finally {
      await again.close();
    }
  });
});

/**
 * The Processor's pipeline and bad-input handling, table-driven, with an injected clock
 * (docs/processor.md "Flow of one raw telemetry message"). Each case feeds payloads to a Processor
 * built on a real store in a temp dir and an in-memory bus, then checks what was stored, published
 * and rejected (by reason).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { silentLogger } from '../../components/lib/logger';
import { validateConfig } from '../../components/lib/config';
import { topics, type TelemetryMessage, type Point } from '../../components/lib/contract';
import { processorConfigSpec, type ProcessorConfig } from '../../components/processor/config';
import { createProcessor, type Processor } from '../../components/processor/processor';
import { RecordingBus } from '../../components/lib/testing/recording-bus';

const SITE = 'site-1';
const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);

interface Rig {
  p: Processor;
  bus: RecordingBus;
  clock: FakeClock;
  metrics: Metrics;
  dir: string;
}

const rigs: Rig[] = [];

async function rig(over: Partial<ProcessorConfig> = {}, dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proc-'))): Promise<Rig> {
  const cfg = validateConfig(processorConfigSpec, { siteId: SITE, assets: ['INV-01', 'WS-01'], ...over });
  const clock = new FakeClock(T0);
  const bus = new RecordingBus();
  const metrics = createMetrics({ clock });
  const p = createProcessor({ bus, logger: silentLogger, metrics, clock, component: 'processor', fail: (e) => { throw e; }, workDir: dir, newId: idGen() }, cfg);
  await p.start();
  const r = { p, bus, clock, metrics, dir };
  rigs.push(r);
  return r;
}

function idGen(): () => string {
  let n = 0;
  return () => `a${++n}`;
}

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.p.close();
    fs.rmSync(r.dir, { recursive: true, force: true });
  }
});

let seq = 0;
function msg(ts: number, points: Record<string, Point>, assetId = 'INV-01', extra: Record<string, unknown> = {}): TelemetryMessage & Record<string, unknown> {
  return { schemaVersion: 1, siteId: SITE, assetId, ts, seq: seq++, points, ...extra };
}
const good = (v: number | string | boolean | null, u?: string): Point => (u ? { v, u, q: 'good' } : { v, q: 'good' });

function stored(r: Rig, point: string, assetId = 'INV-01'): Array<{ ts: number; v: number | null; q: string }> {
  r.p.flush();
  return r.p.store!.range({ assetId, point }, 0, 2 ** 46).map((s) => ({ ts: s.ts, v: s.v, q: s.q }));
}

describe('bad input is rejected by reason, never stored', () => {
  const cases: Array<[string, unknown, string]> = [
    ['wrong type for ts', { ...msg(T0, { '103.W': good(1) }), ts: 'now' }, 'invalid_payload'],
    ['NaN value', msg(T0, { '103.W': { v: NaN, q: 'good' } }), 'invalid_payload'],
    ['Infinity value', msg(T0, { '103.W': { v: Infinity, q: 'good' } }), 'invalid_payload'],
    ['not an object', 'hello', 'invalid_payload'],
    ['array', [1, 2, 3], 'invalid_payload'],
    ['unknown schema version', { ...msg(T0, { '103.W': good(1) }), schemaVersion: 99 }, 'unsupported_schema_version'],
    ['bad quality word', msg(T0, { '103.W': { v: 1, q: 'great' } as unknown as Point }), 'invalid_payload'],
    ['unknown asset', msg(T0, { '103.W': good(1) }, 'INV-99'), 'unknown_asset'],
    ['another site', { ...msg(T0, { '103.W': good(1) }), siteId: 'other' }, 'site_mismatch'],
    ['far future', msg(T0 + 3600_000, { '103.W': good(1) }), 'future_timestamp'],
    ['far past', msg(T0 - 2 * 86400_000, { '103.W': good(1) }), 'stale_timestamp'],
    ['active power above 100 MW (specification §3.2)', msg(T0, { '103.W': good(100_000_001, 'W') }), 'out_of_range'],
    ['active power in MW above 100', msg(T0, { '103.W': good(150, 'MW') }), 'out_of_range'],
    ['DC voltage above 1500 V', msg(T0, { '103.DCV': good(1600, 'V') }), 'out_of_range'],
    ['DC voltage negative', msg(T0, { '103.DCV': good(-1, 'V') }), 'out_of_range'],
    ['string for a numeric point', msg(T0, { '103.W': good('41230', 'W') }), 'string_for_number'],
    ['interpolated from a producer', msg(T0, { '103.W': { v: 1, q: 'interpolated' } }), 'bad_quality'],
  ];
  test.each(cases)('%s', async (_name, payload, reason) => {
    // Quarantine off: an unannounced asset is refused at once (the quarantine has its own tests).
    const r = await rig({ quarantineMs: 0 });
    r.p.ingest(payload);
    expect(r.metrics.snapshot().rejections).toEqual({ [reason]: 1 });
    r.p.flush();
    expect(r.p.store!.listSeries().flatMap((s) => r.p.store!.range(s, 0, 2 ** 46))).toEqual([]);
    expect(r.bus.on('/processed/')).toEqual([]);
  });

  test('a message over the size limit is rejected before it is validated', async () => {
    const r = await rig({ maxMessageBytes: 4096 });
    const points: Record<string, Point> = {};
    for (let i = 0; i < 200; i++) points[`p${i}.W`] = good(i, 'W');
    r.p.ingest(msg(T0, points));
    expect(r.metrics.snapshot().rejections).toEqual({ message_too_large: 1 });
    expect(r.p.store!.listSeries()).toEqual([]);
  });

  test('a payload on another asset\'s topic is refused', async () => {
    const r = await rig();
    r.p.ingest(msg(T0, { '103.W': good(1) }), topics.rawTelemetry(SITE, 'WS-01'));
    expect(r.metrics.snapshot().rejections).toEqual({ topic_mismatch: 1 });
  });

  test('the processor survives a storm of garbage and still stores good data', async () => {
    const r = await rig();
    const garbage: unknown[] = [null, undefined, 42, {}, { points: null }, { ...msg(T0, {}), points: { 'bad name!': good(1) } }, Object.create(null), { schemaVersion: 1, siteId: SITE, assetId: 'INV-01', ts: T0, seq: -1, points: {} }];
    for (let i = 0; i < 1000; i++) r.p.ingest(garbage[i % garbage.length]);
    r.p.ingest(msg(T0, { '103.W': good(5000, 'W') }));
    expect(stored(r, '103.W')).toEqual([{ ts: T0, v: 5000, q: 'good' }]);
    expect(r.metrics.snapshot().rejections['invalid_payload']).toBe(1000);
  });

  test('unknown points are refused when configured strict; assets learn from device status', async () => {
    const r = await rig({ unknownPoints: 'reject', assets: [], quarantineMs: 0 });
    r.p.ingest(msg(T0, { '103.W': good(1, 'W') }));
    expect(r.metrics.snapshot().rejections).toEqual({ unknown_asset: 1 });
    r.p.ingestStatus({ schemaVersion: 1, siteId: SITE, assetId: 'INV-01', ts: T0, state: 'online', lastSeen: T0, consecutiveFailures: 0 });
    r.p.ingest(msg(T0 + 1000, { '103.W': good(1, 'W'), '103.Hz': good(50, 'Hz') }));
    expect(stored(r, '103.W')).toHaveLength(1);
    expect(stored(r, '103.Hz')).toEqual([]);
    expect(r.metrics.snapshot().rejections).toEqual({ unknown_asset: 1, unknown_point: 1 });
    expect(r.p.knownAssets()).toContain('INV-01');
  });
});

describe('start-up order: telemetry of an asset not announced yet is held, not lost', () => {
  const status = (assetId: string, ts: number): unknown => ({ schemaVersion: 1, siteId: SITE, assetId, ts, state: 'online', lastSeen: ts, consecutiveFailures: 0, heartbeat: true });

  test('held until the adapter announces the asset, then processed in arrival order', async () => {
    const r = await rig({ assets: [] });
    for (let i = 0; i < 5; i++) r.p.ingest(msg(T0 + i * 1000, { '103.W': good(100 + i, 'W') }, 'WS-07'));
    expect(r.p.quarantined()).toBe(5);
    expect(stored(r, '103.W', 'WS-07')).toEqual([]);
    r.clock.advance(20_000);
    r.p.ingestStatus(status('WS-07', T0 + 20_000));
    expect(r.p.quarantined()).toBe(0);
    expect(stored(r, '103.W', 'WS-07').map((s) => s.v)).toEqual([100, 101, 102, 103, 104]);
    expect(r.metrics.snapshot().rejections).toEqual({});
  });

  test('an asset nobody announces is rejected unknown_asset when its hold expires, every message counted', async () => {
    const r = await rig({ assets: [], quarantineMs: 30_000 });
    for (let i = 0; i < 3; i++) r.p.ingest(msg(T0 + i * 1000, { '103.W': good(1, 'W') }, 'GHOST'));
    await r.clock.advanceAsync(29_000);
    expect(r.metrics.snapshot().rejections).toEqual({});
    await r.clock.advanceAsync(3_000);
    expect(r.metrics.snapshot().rejections).toEqual({ unknown_asset: 3 });
    expect(r.p.quarantined()).toBe(0);
  });

  test('the hold is bounded: past quarantineMaxMessages a message is rejected at once', async () => {
    const r = await rig({ assets: [], quarantineMaxMessages: 2 });
    for (let i = 0; i < 4; i++) r.p.ingest(msg(T0 + i * 1000, { '103.W': good(1, 'W') }, 'GHOST'));
    expect(r.p.quarantined()).toBe(2);
    expect(r.metrics.snapshot().rejections).toEqual({ unknown_asset: 2 });
  });

  test('an asset added to the configuration releases its held telemetry', async () => {
    const r = await rig({ assets: [] });
    r.p.ingest(msg(T0, { '103.W': good(7, 'W') }, 'MET-02'));
    const prev = validateConfig(processorConfigSpec, { siteId: SITE, assets: [] });
    const next = validateConfig(processorConfigSpec, { siteId: SITE, assets: ['MET-02'] });
    await r.p.reconfigure?.(next, prev);
    expect(stored(r, '103.W', 'MET-02').map((s) => s.v)).toEqual([7]);
  });
});

describe('pipeline', () => {
  test('units are converted to canonical units; enums and bitfields stored as SunSpec numbers', async () => {
    const r = await rig();
    r.p.ingest(msg(T0, { '103.W': good(41.5, 'kW'), '103.TmpCab': good(45.3, 'C'), '103.St': good('MPPT'), '103.Evt1': good('GROUND_FAULT|OVER_TEMP'), 'io.relay': good(true) }));
    expect(stored(r, '103.W')).toEqual([{ ts: T0, v: 41500, q: 'good' }]);
    expect(stored(r, '103.TmpCab')).toEqual([{ ts: T0, v: 45.3, q: 'good' }]);
    expect(stored(r, '103.St')).toEqual([{ ts: T0, v: 4, q: 'good' }]);
    expect(stored(r, '103.Evt1')).toEqual([{ ts: T0, v: 1 + 128, q: 'good' }]);
    expect(stored(r, 'io.relay')).toEqual([{ ts: T0, v: 1, q: 'good' }]);
    const out = r.bus.on('/processed/') as TelemetryMessage[];
    expect(out).toHaveLength(1);
    expect(out[0]?.points['103.W']).toEqual({ v: 41500, u: 'W', q: 'good' });
    expect(out[0]?.points['103.TmpCab']).toEqual({ v: 45.3, u: 'Cel', q: 'good' });
    expect(out[0]?.points['103.St']).toEqual({ v: 'MPPT', q: 'good' });
  });

  test('duplicates (same asset, point, time) are removed, also when re-delivered out of order', async () => {
    const r = await rig();
    const a = msg(T0, { '103.W': good(1, 'W') });
    r.p.ingest(a);
    r.p.ingest(msg(T0 + 1000, { '103.W': good(2, 'W') }));
    r.p.ingest(a); // re-delivery of an older message
    r.p.ingest(msg(T0 + 1000, { '103.W': good(2, 'W') })); // same time again
    expect(stored(r, '103.W').map((s) => s.v)).toEqual([1, 2]);
    expect(r.metrics.snapshot().rejections).toEqual({ duplicate: 2 });
    expect(r.bus.on('/processed/')).toHaveLength(2);
  });

  test('out-of-order samples are stored but do not move alarm state', async () => {
    const r = await rig();
    r.p.ingest(msg(T0 + 2000, { '103.TmpCab': good(40, 'C') }));
    r.p.ingest(msg(T0 + 1000, { '103.TmpCab': good(90, 'C') }));
    expect(stored(r, '103.TmpCab').map((s) => s.ts)).toEqual([T0 + 1000, T0 + 2000]);
    expect(r.bus.of('alarms')).toEqual([]);
  });

  test.each([
    ['bad quality kept as a valueless sample', { v: 5, q: 'bad' } as Point, [{ ts: T0, v: null, q: 'bad' }]],
    ['not implemented is not stored', { v: null, q: 'not_implemented' } as Point, []],
    ['uncertain stays uncertain', { v: 5, q: 'uncertain' } as Point, [{ ts: T0, v: 5, q: 'uncertain' }]],
  ])('quality: %s', async (_n, point, expected) => {
    const r = await rig();
    r.p.ingest(msg(T0, { '103.A': point }));
    expect(stored(r, '103.A')).toEqual(expected);
  });

  test('a value of another type than the series had is rejected wrong_type', async () => {
    const r = await rig();
    r.p.ingest(msg(T0, { 'x.mode': good('auto') }));
    r.p.ingest(msg(T0 + 1000, { 'x.mode': good(true) }));
    expect(r.metrics.snapshot().rejections).toEqual({ wrong_type: 1 });
  });

  test('device time far from gateway time marks samples uncertain', async () => {
    const r = await rig({ maxClockSkewMs: 2000 });
    r.p.ingest(msg(T0 - 10_000, { '103.A': good(3, 'A') }));
    expect(stored(r, '103.A')).toEqual([{ ts: T0 - 10_000, v: 3, q: 'uncertain' }]);
  });

  test('short gaps are interpolated and flagged; long gaps and gaps over bad reads are not', async () => {
    const r = await rig({ maxInterpolationGapMs: 5000 });
    const at = (k: number, v: number | null, q: Point['q'] = 'good'): void => {
      r.clock.advance(T0 + k * 1000 - r.clock.now());
      r.p.ingest(msg(T0 + k * 1000, { '103.A': { v, u: 'A', q } }));
    };
    at(0, 10);
    at(1, 11);
    at(2, 12);
    at(5, 15); // a 3 s gap: 3 and 4 filled
    at(15, 25); // a 10 s gap: longer than 5 s, not filled
    at(16, null, 'bad');
    at(18, 28); // bridges a bad read: not filled
    const s = stored(r, '103.A');
    expect(s.filter((x) => x.q === 'interpolated')).toEqual([
      { ts: T0 + 3000, v: 13, q: 'interpolated' },
      { ts: T0 + 4000, v: 14, q: 'interpolated' },
    ]);
    expect(s).toHaveLength(9);
    const fills = (r.bus.on('/processed/') as TelemetryMessage[]).filter((m) => m.points['103.A']?.q === 'interpolated');
    expect(fills.map((m) => m.ts)).toEqual([T0 + 3000, T0 + 4000]);
  });
});

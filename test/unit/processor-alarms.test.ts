/**
 * Alarm rules and lifecycle (docs/processor.md "Alarms"; dCMMS edge specification §3.2 alarm
 * checks, docs/specification.md), with an
 * injected clock and a real store file, so persistence across a restart is the real thing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { createMetrics } from '../../components/lib/metrics';
import { silentLogger } from '../../components/lib/logger';
import { validateConfig, ConfigError } from '../../components/lib/config';
import { validateAlarm, type AlarmMessage, type Point } from '../../components/lib/contract';
import { processorConfigSpec, type AlarmRuleConfig, type ProcessorConfig } from '../../components/processor/config';
import { createProcessor, type Processor } from '../../components/processor/processor';
import { RecordingBus } from '../../components/lib/testing/recording-bus';

const SITE = 'site-1';
const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);
let dir: string;
const open: Processor[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proc-alarm-'));
});
afterEach(async () => {
  for (const p of open.splice(0)) await p.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

let ids = 0;
async function start(over: Partial<ProcessorConfig> = {}, clock = new FakeClock(T0)) {
  const cfg = validateConfig(processorConfigSpec, { siteId: SITE, assets: ['INV-01', 'WS-01'], ...over });
  const bus = new RecordingBus();
  const p = createProcessor({ bus, logger: silentLogger, metrics: createMetrics({ clock }), clock, component: 'processor', fail: (e) => { throw e; }, workDir: dir, newId: () => `id-${++ids}` }, cfg);
  await p.start();
  open.push(p);
  let seq = 0;
  const send = (k: number, points: Record<string, Point>, assetId = 'INV-01'): void => {
    const ts = T0 + k * 1000;
    if (ts > clock.now()) clock.advance(ts - clock.now());
    p.ingest({ schemaVersion: 1, siteId: SITE, assetId, ts, seq: seq++, points });
  };
  const alarms = (): AlarmMessage[] => bus.of('alarms') as AlarmMessage[];
  const events = (): string[] => alarms().map((a) => `${a.type}:${String(a.details?.['event'])}`);
  return { p, bus, clock, send, alarms, events };
}
const c = (v: number): Point => ({ v, u: 'C', q: 'good' });
const s = (v: string): Point => ({ v, q: 'good' });

function only(rule: AlarmRuleConfig): Partial<ProcessorConfig> {
  return { alarmRules: [rule] };
}

describe('spec rules (defaults)', () => {
  test('over-temperature above 75 °C: raised once, updated, cleared below the deadband, one id', async () => {
    const r = await start();
    [70, 76, 77, 78, 82, 74, 73, 72.9].forEach((v, k) => r.send(k, { '103.TmpCab': c(v) }));
    expect(r.events()).toEqual(['over_temperature:raised', 'over_temperature:updated', 'over_temperature:cleared']);
    const [raised, updated, cleared] = r.alarms();
    expect(raised).toMatchObject({ state: 'raised', severity: 'high', value: 76, threshold: 75, point: '103.TmpCab', assetId: 'INV-01', source: 'processor' });
    expect(updated?.alarmId).toBe(raised?.alarmId);
    // 74 is inside the 2 °C deadband: the alarm clears at 73, and only once.
    expect(cleared).toMatchObject({ state: 'cleared', alarmId: raised?.alarmId, value: 73 });
    for (const a of r.alarms()) expect(validateAlarm(a)).toEqual({ ok: true, value: a });
  });

  test('possible soiling: irradiance below 200 W/m2 with module temperature above 50 °C (medium)', async () => {
    const r = await start();
    r.send(0, { poa: { v: 150, u: 'W/m2', q: 'good' }, moduleTemp: c(45) }, 'WS-01');
    r.send(1, { poa: { v: 150, u: 'W/m2', q: 'good' }, moduleTemp: c(55) }, 'WS-01');
    r.send(2, { poa: { v: 800, u: 'W/m2', q: 'good' }, moduleTemp: c(55) }, 'WS-01');
    expect(r.events()).toEqual(['possible_soiling:raised', 'possible_soiling:cleared']);
    expect(r.alarms()[0]).toMatchObject({ severity: 'medium', assetId: 'WS-01', details: { values: { poa: 150, moduleTemp: 55 } } });
  });

  test('SunSpec St FAULT and Evt1 bits map to named alarms', async () => {
    const r = await start();
    r.send(0, { '103.St': s('MPPT'), '103.Evt1': s('') });
    r.send(1, { '103.St': s('FAULT'), '103.Evt1': s('GROUND_FAULT') });
    r.send(2, { '103.St': s('FAULT'), '103.Evt1': s('GROUND_FAULT|OVER_TEMP') });
    r.send(3, { '103.St': s('MPPT'), '103.Evt1': s('OVER_TEMP') });
    expect(r.events()).toEqual(['inverter_fault:raised', 'ground_fault:raised', 'inverter_over_temperature:raised', 'inverter_fault:cleared', 'ground_fault:cleared']);
    expect(r.alarms().find((a) => a.type === 'ground_fault')).toMatchObject({ severity: 'critical', details: { bit: 'GROUND_FAULT' } });
  });

  test('communication loss from the adapter device status', async () => {
    const r = await start();
    const status = (state: string) => r.p.ingestStatus({ schemaVersion: 1, siteId: SITE, assetId: 'INV-01', ts: r.clock.now(), state, lastSeen: T0, consecutiveFailures: 3 });
    status('online');
    status('offline');
    status('offline');
    status('online');
    expect(r.events()).toEqual(['communication_loss:raised', 'communication_loss:cleared']);
  });
});

describe('rule kinds', () => {
  test('threshold on-delay and off-delay (sample time)', async () => {
    const r = await start(only({ id: 't', kind: 'threshold', type: 'high_current', severity: 'low', points: ['*.A'], op: 'above', limit: 10, onDelayMs: 2000, offDelayMs: 2000 }));
    const a = (v: number): Point => ({ v, u: 'A', q: 'good' });
    [11, 11, 9, 11, 11, 11, 5, 11, 5, 5, 5].forEach((v, k) => r.send(k, { '103.A': a(v) }));
    // raised at k=5 (held since k=3), cleared at k=10 (below since k=8; k=7 broke the first try).
    expect(r.alarms().map((x) => [x.state, x.ts - T0])).toEqual([['raised', 5000], ['cleared', 10000]]);
  });

  test('rate of change', async () => {
    const r = await start(only({ id: 'r', kind: 'rate', type: 'power_jump', severity: 'low', points: ['*.W'], maxPerS: 1000 }));
    [0, 500, 5000, 5500, 5600].forEach((v, k) => r.send(k, { '103.W': { v, u: 'W', q: 'good' } }));
    expect(r.alarms().map((x) => [x.state, x.value])).toEqual([['raised', 4500], ['cleared', 500]]);
  });

  test('frozen value (unchanged while samples keep coming), ignoring values near zero', async () => {
    const r = await start(only({ id: 'f', kind: 'frozen', type: 'frozen_value', severity: 'medium', points: ['*.W'], maxUnchangedMs: 3000, minAbs: 100 }));
    const w = (v: number): Point => ({ v, u: 'W', q: 'good' });
    [0, 0, 0, 0, 0, 500, 500, 500, 500, 501].forEach((v, k) => r.send(k, { '103.W': w(v) }));
    expect(r.alarms().map((x) => [x.state, x.ts - T0])).toEqual([['raised', 8000], ['cleared', 9000]]);
  });

  test('stale value on gateway time', async () => {
    const r = await start(only({ id: 'st', kind: 'stale', type: 'stale_value', severity: 'low', points: ['*.Hz'], maxAgeMs: 5000 }));
    r.send(0, { '103.Hz': { v: 50, u: 'Hz', q: 'good' } });
    r.clock.advance(4000);
    expect(r.alarms()).toEqual([]);
    r.clock.advance(2000);
    expect(r.events()).toEqual(['stale_value:raised']);
    r.send(7, { '103.Hz': { v: 50, u: 'Hz', q: 'good' } });
    expect(r.events()).toEqual(['stale_value:raised', 'stale_value:cleared']);
  });

  test('a rule missing its fields is a ConfigError naming the key', async () => {
    await expect(start(only({ id: 'x', kind: 'threshold', type: 'x', severity: 'low', points: ['*'] }))).rejects.toThrow(ConfigError);
    await expect(start(only({ id: 'x', kind: 'threshold', type: 'x', severity: 'low', points: ['*'] }))).rejects.toThrow(/alarmRules\.0\.op|needs 'op'/);
  });
});

describe('active alarms survive a restart (persisted in the store file)', () => {
  test('not raised again after restart; cleared later with the original id', async () => {
    const clock = new FakeClock(T0);
    const a = await start({}, clock);
    a.send(0, { '103.TmpCab': c(80) });
    const [raised] = a.alarms();
    expect(raised?.state).toBe('raised');
    await a.p.close();

    const b = await start({}, clock);
    expect(b.p.activeAlarms().map((x) => x.alarmId)).toEqual([raised?.alarmId]);
    b.send(1, { '103.TmpCab': c(81) });
    expect(b.alarms()).toEqual([]); // still active: not raised twice
    b.send(2, { '103.TmpCab': c(60) });
    expect(b.alarms().map((x) => [x.state, x.alarmId])).toEqual([['cleared', raised?.alarmId]]);
    await b.p.close();

    const d = await start({}, clock);
    expect(d.p.activeAlarms()).toEqual([]);
  });

  test('an alarm whose rule was removed is cleared at start', async () => {
    const clock = new FakeClock(T0);
    const a = await start({}, clock);
    a.send(0, { '103.TmpCab': c(80) });
    await a.p.close();
    const b = await start({ alarmRules: [] }, clock);
    expect(b.alarms().map((x) => [x.type, x.state, x.details?.['reason']])).toEqual([['over_temperature', 'cleared', 'rule_removed']]);
    expect(b.p.activeAlarms()).toEqual([]);
  });
});

describe('alarm rules changed while running (reconfigure)', () => {
  test('a removed rule clears its active alarm; a new rule raises on the next samples; transitions are journaled and numbered', async () => {
    const r = await start();
    r.send(0, { '103.TmpCab': c(80) });
    expect(r.events()).toEqual(['over_temperature:raised']);
    const prev = validateConfig(processorConfigSpec, { siteId: SITE, assets: ['INV-01', 'WS-01'] });
    const next = validateConfig(processorConfigSpec, {
      siteId: SITE,
      assets: ['INV-01', 'WS-01'],
      alarmRules: [{ id: 'cabinet-warm', kind: 'threshold', type: 'cabinet_warm', severity: 'low', points: ['103.TmpCab'], op: 'above', limit: 60 }],
    });
    await r.p.reconfigure!(next, prev);
    expect(r.events()).toEqual(['over_temperature:raised', 'over_temperature:cleared']);
    expect(r.alarms()[1]?.details?.['reason']).toBe('rule_removed');
    r.send(1, { '103.TmpCab': c(80) });
    expect(r.events()).toEqual(['over_temperature:raised', 'over_temperature:cleared', 'cabinet_warm:raised']);
    expect(r.alarms().map((a) => [a.transition, a.transitionSeq, a.sourceSeq])).toEqual([
      ['raised', 0, 1],
      ['cleared', 1, 2],
      ['raised', 0, 3],
    ]);
    expect(r.p.activeAlarms().map((a) => a.type)).toEqual(['cabinet_warm']);
  });
});

/**
 * LocalControl's interlocks (docs/local-control.md "Interlocks"): what keeps automation from
 * hurting the plant. Every blocked action is a `blocked` decision whose reason starts with the
 * interlock's name, and nothing is sent.
 */
import { Rig } from '../../components/local-control/testing/rig';
import type { ControlCommand, ControlDecision, Quality } from '../../components/lib/contract';

const FOUR = { 'INV-01': 60000, 'INV-02': 60000, 'INV-03': 60000, 'INV-04': 60000 };

let rig: Rig;
afterEach(async () => rig?.close());

/** Commands other than the alarm horn and beacon. */
function actions(r: Rig, assetId?: string): ControlCommand[] {
  return r.commands(assetId).filter((c) => !/^relay\.(alarmHorn|beacon)$/.test(String(c.params['point'])));
}

function blocked(r: Rig, assetId?: string): ControlDecision[] {
  return r.decisions(assetId).filter((d) => d.outcome === 'blocked');
}

describe('inputs must be fresh and good', () => {
  test.each([
    { what: '20 s old (maxInputAgeMs 10 s)', ageMs: 20_000, q: 'good' as Quality, reason: /^stale_input: IO-01\/di\.fireAlarm is 20000 ms old/ },
    { what: 'quality uncertain', ageMs: 0, q: 'uncertain' as Quality, reason: /^bad_quality: IO-01\/di\.fireAlarm has quality uncertain/ },
    { what: 'quality interpolated', ageMs: 0, q: 'interpolated' as Quality, reason: /^bad_quality: .* interpolated/ },
  ])('a fire alarm input $what blocks the emergency actions', async ({ ageMs, q, reason }) => {
    rig = await Rig.started({ config: { capacityW: FOUR } });
    await rig.status('INV-01', 'online', { models: [103] });
    await rig.telemetry('IO-01', { 'di.fireAlarm': { v: true, q } }, { ts: rig.clock.now() - ageMs });
    expect(actions(rig)).toEqual([]);
    const b = blocked(rig);
    expect(b.map((d) => [d.assetId, d.ruleId])).toEqual(expect.arrayContaining([['INV-01', 'emergency-shutdown-fire'], ['IO-01', 'breaker-trip-fire']]));
    for (const d of b) expect(d.reason).toMatch(reason);
    // Once per problem, not once per message or tick.
    await rig.telemetry('IO-01', { 'di.fireAlarm': { v: true, q } }, { ts: rig.clock.now() - ageMs });
    await rig.advance(5000);
    expect(blocked(rig)).toHaveLength(b.length);
    // A fresh good sample acts at once.
    await rig.telemetry('IO-01', { 'di.fireAlarm': true });
    expect(actions(rig).map((c) => c.assetId).sort()).toEqual(['INV-01', 'INV-02', 'INV-03', 'INV-04', 'IO-01']);
  });

  test('an alarm whose source has gone silent is not acted on until the source is heard again', async () => {
    rig = await Rig.started({ config: { capacityW: FOUR, maxAlarmSourceSilenceMs: 60_000 } });
    await rig.operator('manual', { assetId: 'INV-01' });
    await rig.raise('INV-01', 'over_temperature', 'high');
    // The Processor stops publishing (crashed with the alarm active): no snapshot for 2 min.
    rig.clock.clearInterval((rig as unknown as { snapshotTimer: unknown }).snapshotTimer);
    await rig.advance(120_000);
    await rig.operator('automatic', { assetId: 'INV-01' });
    expect(actions(rig, 'INV-01')).toEqual([]);
    expect(blocked(rig, 'INV-01').at(-1)?.reason).toMatch(/^stale_input: alarm source processor silent for 12\d s \(maxAlarmSourceSilenceMs 60000\)/);
    // It comes back with its snapshot: the alarm is still active, automation acts.
    await rig.processorSnapshot();
    await rig.advance(1000);
    expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail']);
  });
});

describe('manual mode', () => {
  test('an operator sets an asset to manual: automation is blocked; automatic gives it back and automation acts', async () => {
    rig = await Rig.started({ config: { capacityW: FOUR } });
    await rig.operator('manual', { assetId: 'INV-01', reason: 'maintenance' });
    await rig.raise('INV-01', 'over_temperature', 'high');
    expect(actions(rig, 'INV-01')).toEqual([]);
    const b = blocked(rig, 'INV-01');
    expect(b).toHaveLength(1);
    expect(b[0]?.reason).toMatch(/^manual_mode: INV-01 is in manual mode \(set by alice/);
    expect(rig.lc.manualAssets()).toEqual(['INV-01']);
    // Persisted: a restart keeps the asset manual.
    await rig.restart();
    await rig.processorSnapshot();
    await rig.advance(2000);
    expect(actions(rig, 'INV-01')).toEqual([]);
    expect(rig.lc.manualAssets()).toEqual(['INV-01']);
    await rig.operator('automatic', { assetId: 'INV-01' });
    expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail']);
    expect(rig.lc.manualAssets()).toEqual([]);
  });

  test('an asset in the configuration\'s manualAssets stays manual whatever an operator asks', async () => {
    rig = await Rig.started({ config: { capacityW: FOUR, manualAssets: ['INV-02'] } });
    await rig.operator('automatic', { assetId: 'INV-02' });
    await rig.raise('INV-02', 'ground_fault', 'critical');
    expect(actions(rig, 'INV-02')).toEqual([]);
    expect(blocked(rig, 'INV-02')[0]?.reason).toMatch(/^manual_mode: .*configuration manualAssets/);
  });
});

test('one action per asset in flight: a second waits for the first one\'s result, then goes', async () => {
  rig = await Rig.started();
  let hold = true;
  rig.answer = (c) => (c.assetId === 'CB-01' && hold ? null : 'succeeded');
  await rig.telemetry('CB-01', { 'string2.status': 'insulationFault', 'string5.status': 'insulationFault' });
  expect(actions(rig, 'CB-01').map((c) => c.params['point'])).toEqual(['string2.closed']);
  const b = blocked(rig, 'CB-01');
  expect(b).toHaveLength(1);
  expect(b[0]?.reason).toMatch(/^in_flight: isolate_string \(isolate-string-insulation-fault\) on CB-01 is under way/);
  hold = false;
  const first = actions(rig, 'CB-01')[0] as ControlCommand;
  await rig.bus.deliver('controlResult', `site/unit-site/control/CB-01/result`, { schemaVersion: 1, siteId: 'unit-site', assetId: 'CB-01', commandId: first.commandId, ts: rig.clock.now(), status: 'succeeded' }, { strict: true });
  await rig.flush();
  expect(actions(rig, 'CB-01').map((c) => c.params['point'])).toEqual(['string2.closed', 'string5.closed']);
});

test('rate limit: at most rateLimit.maxActions per asset in the window; the next waits for the window', async () => {
  rig = await Rig.started({ config: { rateLimit: { maxActions: 2, windowMs: 600_000 } } });
  await rig.telemetry('CB-01', { 'string1.status': 'insulationFault', 'string2.status': 'insulationFault', 'string3.status': 'insulationFault' });
  await rig.advance(3000);
  expect(actions(rig, 'CB-01').map((c) => c.params['point'])).toEqual(['string1.closed', 'string2.closed']);
  const b = blocked(rig, 'CB-01').filter((d) => d.reason?.startsWith('rate_limit'));
  expect(b).toHaveLength(1);
  expect(b[0]?.reason).toBe('rate_limit: 2 actions on CB-01 in the last 600 s (rateLimit.maxActions 2)');
  // Keep the input fresh while the window runs out.
  for (let i = 0; i < 61; i++) {
    await rig.telemetry('CB-01', { 'string1.status': 'open|insulationFault', 'string2.status': 'open|insulationFault', 'string3.status': 'insulationFault' });
    await rig.advance(10_000, 10_000);
  }
  expect(actions(rig, 'CB-01').map((c) => c.params['point'])).toEqual(['string1.closed', 'string2.closed', 'string3.closed']);
});

describe('capacity cap', () => {
  test('a bad temperature sensor on every inverter curtails at most half the site; the others are blocked, naming the cap', async () => {
    rig = await Rig.started({ config: { capacityW: FOUR } });
    for (const inv of Object.keys(FOUR)) await rig.raise(inv, 'over_temperature', 'high', { value: 3276.7 });
    await rig.advance(2000);
    const curtailed = actions(rig).filter((c) => c.action === 'curtail').map((c) => c.assetId);
    expect(curtailed).toEqual(['INV-01', 'INV-02']);
    const b = blocked(rig).filter((d) => d.reason?.startsWith('capacity_cap'));
    expect(b.map((d) => d.assetId)).toEqual(['INV-03', 'INV-04']);
    expect(b[0]?.reason).toBe("capacity_cap: 180000 W of the site's 240000 W (75 %) would be curtailed or shut down by automation, more than maxCurtailedShare 50 %");
  });

  test('ratings learned from model 120 WRtg; an inverter whose rating is unknown makes the capacity unknown', async () => {
    rig = await Rig.started();
    await rig.status('INV-01', 'online', { models: [1, 103, 120, 123] });
    await rig.status('INV-02', 'online', { models: [1, 103, 120, 123] });
    await rig.telemetry('INV-01', { '120.WRtg': 60000, '103.W': 30000 });
    await rig.raise('INV-01', 'over_temperature', 'high');
    expect(actions(rig, 'INV-01')).toEqual([]);
    expect(blocked(rig, 'INV-01')[0]?.reason).toMatch(/^capacity_unknown: the rated power of INV-02 is not known/);
    await rig.telemetry('INV-02', { '120.WRtg': 60000 });
    expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail']);
    // Persisted: known after a restart before any poll.
    expect(rig.lc.db?.capacities().map((c) => [c.assetId, c.watts])).toEqual([['INV-01', 60000], ['INV-02', 60000]]);
  });

  test('when a curtailed inverter is restored, a blocked one gets its turn', async () => {
    rig = await Rig.started({ config: { capacityW: { 'INV-01': 60000, 'INV-02': 60000, 'INV-03': 60000 } } });
    const a = await rig.raise('INV-01', 'over_temperature', 'high');
    await rig.raise('INV-02', 'over_temperature', 'high');
    expect(actions(rig).map((c) => c.assetId)).toEqual(['INV-01']);
    await rig.clear(a);
    await rig.advance(301_000);
    // (INV-01's curtailment is refreshed once during the hold-off, at 150 s.)
    expect(actions(rig).map((c) => `${c.assetId} ${c.action}`)).toEqual(['INV-01 curtail', 'INV-01 curtail', 'INV-01 restore', 'INV-02 curtail']);
  });
});

test('a device the adapter reports offline is not commanded until it is online again', async () => {
  rig = await Rig.started({ config: { capacityW: FOUR } });
  await rig.status('INV-01', 'offline');
  await rig.raise('INV-01', 'over_temperature', 'high');
  expect(actions(rig, 'INV-01')).toEqual([]);
  expect(blocked(rig, 'INV-01')[0]?.reason).toMatch(/^device_offline: INV-01 is offline/);
  await rig.status('INV-01', 'online');
  expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail']);
});

describe('conflicts', () => {
  test('two rules on one inverter: the strongest demand wins (shutdown over curtail, the lower limit over the higher)', async () => {
    rig = await Rig.started({
      config: {
        capacityW: FOUR,
        rules: [
          { id: 'hot', condition: { source: 'alarm', alarmType: 'over_temperature', assets: ['INV-*'] }, action: 'curtail', params: { percent: 60, revertSeconds: 300 } },
          { id: 'very-hot', condition: { source: 'alarm', alarmType: 'cabinet_hot', assets: ['INV-*'] }, action: 'curtail', params: { percent: 30, revertSeconds: 300 } },
          { id: 'ground', condition: { source: 'alarm', alarmType: 'ground_fault', assets: ['INV-*'] }, action: 'shutdown' },
        ],
      },
    });
    await rig.raise('INV-01', 'over_temperature', 'high');
    await rig.raise('INV-01', 'cabinet_hot', 'high');
    const hot = await rig.raise('INV-01', 'over_temperature', 'high', { value: 90 });
    void hot;
    await rig.raise('INV-01', 'ground_fault', 'critical');
    await rig.advance(1000);
    expect(actions(rig, 'INV-01').map((c) => (c.action === 'curtail' ? `curtail ${String(c.params['percent'])}` : c.action))).toEqual(['curtail 60', 'curtail 30', 'shutdown']);
    // Nothing releases a shutdown: when the curtail rules let go, no restore is sent.
    await rig.advance(900_000);
    expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail', 'curtail', 'shutdown']);
  });

  test('an operator acting on an asset overrides automation there until the rule fires anew', async () => {
    rig = await Rig.started({ config: { capacityW: FOUR } });
    const a = await rig.raise('INV-01', 'over_temperature', 'high');
    await rig.operator('restore', { assetId: 'INV-01', reason: 'checked on site: sensor broken' });
    await rig.advance(900_000);
    expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail', 'restore']);
    const op = rig.decisions('INV-01').find((d) => d.ruleId === 'operator');
    expect(op?.reason).toMatch(/overrides curtail-over-temperature/);
    // The alarm clears: once the hold-off is over the rule has let go (nothing to restore: the
    // operator's state is the operator's). The alarm comes back: a new firing, automation acts.
    await rig.clear(a);
    await rig.advance(301_000);
    expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail', 'restore']);
    await rig.raise('INV-01', 'over_temperature', 'high');
    expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail', 'restore', 'curtail']);
  });
});

test('a clock jump restarts hold-offs: a forward jump does not release a curtailment early', async () => {
  rig = await Rig.started({ config: { capacityW: FOUR } });
  const a = await rig.raise('INV-01', 'over_temperature', 'high');
  await rig.clear(a);
  await rig.advance(60_000);
  // The gateway's clock steps 10 min ahead (an NTP correction): timers still run at their pace.
  (rig.clock as unknown as { t: number }).t += 600_000;
  await rig.advance(5000);
  expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail', 'curtail']); // refreshed at once, not restored
  // The hold-off counts from the jump: refreshed once more at 150 s, restored after 300 s.
  await rig.advance(290_000);
  expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail', 'curtail', 'curtail']);
  await rig.advance(10_000);
  expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail', 'curtail', 'curtail', 'restore']);
});

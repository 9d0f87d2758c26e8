/**
 * LocalControl's lifecycle (docs/local-control.md "Knowing the site's state" and "Lifecycle"):
 * subscriptions from the contract, the alarm sync at start, a restart with a condition still true
 * (it acts again) or gone meanwhile (released after the hold-off), live reconfiguration, and an
 * idempotent close that leaves no timer behind.
 */
import { componentDecl, pubsubResource, type AlarmSyncRequest, type ControlCommand, type LocalFamily } from '../../components/lib/contract';
import { Rig } from '../../components/local-control/testing/rig';
import { validateConfig } from '../../components/lib/config';
import { localControlConfigSpec, type LocalControlConfig } from '../../components/local-control/config';

const INVERTERS = { 'INV-01': 60000, 'INV-02': 60000, 'INV-03': 60000 };

let rig: Rig;
afterEach(async () => rig?.close());

function actions(r: Rig, assetId?: string): ControlCommand[] {
  return r.commands(assetId).filter((c) => !/^relay\.(alarmHorn|beacon)$/.test(String(c.params['point'])));
}

test('subscribes to what the contract declares, and asks every alarm source for its state at start', async () => {
  rig = await Rig.started();
  const declared = componentDecl('com.dcmms.edge.LocalControl').topics.pubsub.subscribe;
  const families = rig.bus.subscribed().sort();
  // The alarm journal subscribes to alarmSync itself (it answers other consumers' requests).
  expect(families).toEqual(['alarmSnapshot', 'alarmSync', 'alarms', 'analytics', 'controlResult', 'deviceStatus', 'mlResult', 'operatorRequest', 'processedTelemetry']);
  expect(families.map((f) => pubsubResource(f as LocalFamily)).sort()).toEqual([...declared].sort());
  const sync = rig.bus.of<AlarmSyncRequest>('alarmSync');
  expect(sync).toHaveLength(1);
  expect(sync[0]).toMatchObject({ requester: 'local-control', siteId: 'unit-site' });
  expect(sync[0]?.from).toBeUndefined();
});

test('a restart with the condition still true acts again once the alarm source answers the sync', async () => {
  rig = await Rig.started({ config: { capacityW: INVERTERS } });
  await rig.raise('INV-01', 'over_temperature', 'high');
  expect(actions(rig, 'INV-01')).toHaveLength(1);
  await rig.restart();
  expect(rig.lc.holds().map((h) => h.ruleId)).toEqual(['curtail-over-temperature']);
  expect(rig.lc.applied()).toEqual([{ key: 'INV-01|power', want: { kind: 'curtail', percent: 50, revertSeconds: 300 }, ruleId: 'curtail-over-temperature', confirmed: false }]);
  // Nothing is sent on the hold's word alone: the alarm source has not answered yet.
  expect(actions(rig, 'INV-01')).toHaveLength(1);
  expect(rig.bus.of('alarmSync')).toHaveLength(2);
  await rig.processorSnapshot('local-control');
  const again = actions(rig, 'INV-01');
  expect(again.map((c) => c.action)).toEqual(['curtail', 'curtail']);
  expect(rig.decisions('INV-01').filter((d) => d.outcome === 'commanded').at(-1)?.reason).toMatch(/^sent again/);
});

test('a restart with the condition true and no memory of it (a new database) acts as on a live raise', async () => {
  rig = await Rig.started({ config: { capacityW: INVERTERS } });
  await rig.raise('INV-02', 'ground_fault', 'critical');
  expect(actions(rig, 'INV-02').map((c) => c.action)).toEqual(['shutdown']);
  // Another instance with its own (empty) database, as after the file was lost.
  const other = new Rig({ config: { capacityW: INVERTERS } });
  await other.start();
  try {
    const raisedAt = other.clock.now() - 3_600_000;
    await other.bus.deliver('alarmSnapshot', 'site/unit-site/alarms/state/processor', {
      schemaVersion: 1, siteId: 'unit-site', source: 'processor', ts: other.clock.now(), journalId: 'processor-journal', headSeq: 5, oldestSeq: 1, page: 1, pages: 1,
      active: [{ schemaVersion: 1, siteId: 'unit-site', assetId: 'INV-02', alarmId: 'gf-1', type: 'ground_fault', severity: 'critical', state: 'raised', ts: raisedAt, source: 'processor', transitionSeq: 0, journalId: 'processor-journal', sourceSeq: 5, replayed: true }],
    }, { strict: true });
    await other.flush();
    expect(actions(other, 'INV-02').map((c) => c.action)).toEqual(['shutdown']);
    // The latency counts from the alarm's raise an hour ago: honest about what happened.
    expect(other.decisions('INV-02')[0]?.latencyMs).toBeGreaterThanOrEqual(3_600_000);
  } finally {
    await other.close();
  }
});

test('a restart after the condition went away meanwhile: the hold-off starts when the source says so, then restore', async () => {
  rig = await Rig.started({ config: { capacityW: INVERTERS } });
  const a = await rig.raise('INV-03', 'over_temperature', 'high');
  await rig.lc.close();
  await rig.clear(a); // nobody listening
  await rig.restart();
  await rig.processorSnapshot('local-control');
  expect(actions(rig, 'INV-03').map((c) => c.action)).toEqual(['curtail']);
  await rig.advance(299_000);
  expect(actions(rig, 'INV-03').map((c) => c.action)).toEqual(['curtail']);
  await rig.advance(2000);
  expect(actions(rig, 'INV-03').map((c) => c.action)).toEqual(['curtail', 'restore']);
});

test('reconfigure applies rules, interlocks and outputs in place', async () => {
  rig = await Rig.started({ config: { capacityW: INVERTERS } });
  await rig.raise('INV-01', 'over_temperature', 'high');
  const base = rig.config as LocalControlConfig;
  let current: Readonly<LocalControlConfig> = base;
  const change = async (over: Partial<LocalControlConfig>): Promise<void> => {
    const next = validateConfig(localControlConfigSpec, { ...current, ...over });
    await rig.lc.reconfigure?.(next, current);
    current = next;
    await rig.flush();
  };
  // A new limit for the same rule: sent at once.
  const rules = base.rules.map((r) => (r.id === 'curtail-over-temperature' ? { ...r, params: { percent: 40, revertSeconds: 300 } } : r));
  await change({ rules });
  expect(actions(rig, 'INV-01').map((c) => `${c.action} ${String(c.params['percent'] ?? '')}`.trim())).toEqual(['curtail 50', 'curtail 40']);
  // Manual by configuration: automation lets the asset be (no refresh, no restore).
  await change({ manualAssets: ['INV-01'] });
  await rig.advance(200_000);
  expect(actions(rig, 'INV-01')).toHaveLength(2);
  // The rule removed (and the asset automatic again): its curtailment is released and restored.
  await change({ manualAssets: [], rules: rules.filter((r) => r.id !== 'curtail-over-temperature') });
  expect(actions(rig, 'INV-01').map((c) => c.action)).toEqual(['curtail', 'curtail', 'restore']);
  expect(rig.decisions('INV-01').find((d) => d.outcome === 'released')).toBeUndefined(); // the rule is gone: the restore says why
  expect(rig.decisions('INV-01').filter((d) => d.outcome === 'commanded').at(-1)?.reason).toMatch(/^release/);
  // Outputs: the beacon moved to another relay; the old one is switched off.
  await rig.status('IO-01', 'online', { heartbeat: true });
  await rig.advance(2000);
  expect(rig.commands('IO-01').map((c) => `${String(c.params['point'])}=${String(c.params['value'])}`)).toContain('relay.beacon=true');
  await change({ outputs: { ...base.outputs, relays: { critical: { assetId: 'IO-01', point: 'relay.alarmHorn' }, high: { assetId: 'IO-01', point: 'relay.spare4' } } } });
  expect(rig.commands('IO-01').map((c) => `${String(c.params['point'])}=${String(c.params['value'])}`).slice(-2).sort()).toEqual(['relay.beacon=false', 'relay.spare4=true']);
});

test('close is idempotent and leaves no timer behind', async () => {
  rig = await Rig.started({ config: { capacityW: INVERTERS } });
  rig.answer = () => null;
  await rig.raise('INV-01', 'over_temperature', 'high');
  await rig.advance(3000);
  rig.clock.clearInterval((rig as unknown as { snapshotTimer: unknown }).snapshotTimer);
  await rig.lc.close();
  await rig.lc.close();
  expect(rig.clock.pending).toBe(0);
  expect(rig.bus.subscribed()).toEqual([]);
  expect(rig.lc.db).toBeUndefined();
});

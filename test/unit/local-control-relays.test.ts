/**
 * Local alarm outputs (docs/local-control.md "Relays and acknowledgement"): the horn on IO-01
 * relay.alarmHorn while a critical alarm is active and not acknowledged, the beacon on
 * relay.beacon while any high-or-above alarm is active; written only on change, again after the
 * I/O module comes back; acknowledgements from the operator topic and from a push-button input,
 * audited; every transition and acknowledgement handed to the notification outputs.
 */
import { readAuditLog } from '../../components/local-control/db';
import type { AlarmNotifier } from '../../components/local-control/local-control';
import { Rig } from '../../components/local-control/testing/rig';
import type { AlarmMessage } from '../../components/lib/contract';

let rig: Rig;
afterEach(async () => rig?.close());

/** The relay writes to IO-01 so far, as `point=value`. */
function relays(r: Rig): string[] {
  return r.commands('IO-01').filter((c) => c.action === 'write').map((c) => `${String(c.params['point'])}=${String(c.params['value'])}`);
}

test('horn and beacon follow the active alarms, only on change; an acknowledgement silences the horn for that alarm', async () => {
  rig = await Rig.started();
  await rig.status('IO-01', 'online', { heartbeat: true });
  const a = await rig.raise('INV-01', 'communication_loss', 'critical');
  expect(relays(rig)).toEqual([]); // not before the start-up settle time
  await rig.advance(2000);
  expect(relays(rig)).toEqual(['relay.alarmHorn=true', 'relay.beacon=true']);
  const on = rig.decisions('IO-01').filter((d) => d.outcome === 'commanded');
  expect(on.map((d) => d.ruleId)).toEqual(['relay-critical', 'relay-high']);
  expect(on[0]?.inputs).toEqual([{ source: 'alarm', ref: `INV-01/communication_loss/${a.alarmId}`, value: 'critical', ts: a.ts }]);
  // Another alarm, same states: nothing written.
  const b = await rig.raise('INV-02', 'dc_over_voltage', 'high');
  await rig.advance(5000);
  expect(relays(rig)).toHaveLength(2);
  // Acknowledged: the horn goes off, the beacon stays.
  await rig.operator('acknowledge', { alarmId: a.alarmId, operator: 'bob' });
  expect(relays(rig)).toEqual(['relay.alarmHorn=true', 'relay.beacon=true', 'relay.alarmHorn=false']);
  const off = rig.decisions('IO-01').filter((d) => d.outcome === 'commanded').at(-1);
  expect(off?.inputs[0]).toMatchObject({ source: 'operator', ref: `acknowledge ${a.alarmId} by bob` });
  const acks = readAuditLog(rig.config.dbPath).filter((e) => e.kind === 'acknowledge');
  expect(acks.map((e) => [e.assetId, e.outcome, e.reason])).toEqual([['INV-01', 'done', 'by bob']]);
  // A second critical alarm sounds the horn again; clearing everything ends the beacon.
  const c = await rig.raise('INV-03', 'ground_fault', 'critical');
  expect(relays(rig).at(-1)).toBe('relay.alarmHorn=true');
  await rig.clear(c);
  expect(relays(rig).at(-1)).toBe('relay.alarmHorn=false');
  await rig.clear(a);
  await rig.clear(b);
  expect(relays(rig)).toEqual(['relay.alarmHorn=true', 'relay.beacon=true', 'relay.alarmHorn=false', 'relay.alarmHorn=true', 'relay.alarmHorn=false', 'relay.beacon=false']);
  // The acknowledgement of a cleared alarm is forgotten.
  expect(rig.lc.db?.acks()).toEqual([]);
});

test('with nothing active the relays are written off once at start, and again when the I/O module comes back online (not on heartbeats)', async () => {
  rig = await Rig.started();
  await rig.advance(2000);
  expect(relays(rig)).toEqual([]); // no adapter has announced IO-01 yet: nothing to write to
  await rig.status('IO-01', 'online', { heartbeat: true });
  expect(relays(rig)).toEqual(['relay.alarmHorn=false', 'relay.beacon=false']);
  await rig.status('IO-01', 'online', { heartbeat: true });
  expect(relays(rig)).toHaveLength(2);
  await rig.status('IO-01', 'offline');
  await rig.raise('INV-01', 'ground_fault', 'critical');
  expect(relays(rig)).toHaveLength(2);
  expect(rig.decisions('IO-01').filter((d) => d.outcome === 'blocked').map((d) => d.reason?.split(':')[0])).toEqual(['device_offline', 'device_offline']);
  await rig.status('IO-01', 'online');
  expect(relays(rig)).toEqual(['relay.alarmHorn=false', 'relay.beacon=false', 'relay.alarmHorn=true', 'relay.beacon=true']);
});

test('a configured acknowledge input going true acknowledges every critical alarm sounding the horn', async () => {
  rig = await Rig.started({ config: { outputs: { relays: { critical: { assetId: 'IO-01', point: 'relay.alarmHorn' } }, ackInput: { assetId: 'IO-01', point: 'di.spare5' } } } });
  const relays = (r: Rig): string[] => r.commands('IO-01').filter((c) => c.params['point'] === 'relay.alarmHorn').map((c) => `relay.alarmHorn=${String(c.params['value'])}`);
  await rig.status('IO-01', 'online', { heartbeat: true });
  await rig.advance(2000);
  const a = await rig.raise('INV-01', 'ground_fault', 'critical');
  const b = await rig.raise('INV-02', 'ground_fault', 'critical');
  await rig.telemetry('IO-01', { 'di.spare5': false });
  expect(relays(rig)).toEqual(['relay.alarmHorn=false', 'relay.alarmHorn=true']);
  await rig.telemetry('IO-01', { 'di.spare5': true });
  expect(relays(rig)).toEqual(['relay.alarmHorn=false', 'relay.alarmHorn=true', 'relay.alarmHorn=false']);
  const acks = readAuditLog(rig.config.dbPath).filter((e) => e.kind === 'acknowledge');
  expect(acks.map((e) => [e.assetId, e.reason])).toEqual([['INV-01', 'by io:IO-01/di.spare5'], ['INV-02', 'by io:IO-01/di.spare5']]);
  expect(rig.lc.db?.acks().map((x) => x.alarmId).sort()).toEqual([a.alarmId, b.alarmId].sort());
  // Held down: no second acknowledgement; a new alarm needs a new press.
  await rig.telemetry('IO-01', { 'di.spare5': true });
  await rig.raise('INV-03', 'ground_fault', 'critical');
  expect(relays(rig).at(-1)).toBe('relay.alarmHorn=true');
});

test('a stuck relay (the adapter\'s read-back fails) ends in control_failed on the I/O module', async () => {
  rig = await Rig.started({ config: { maxRetries: 1 } });
  rig.answer = (c) => (c.params['point'] === 'relay.alarmHorn' && c.params['value'] === true ? { status: 'failed', message: 'read-back 0 after writing 1' } : 'succeeded');
  await rig.status('IO-01', 'online', { heartbeat: true });
  await rig.advance(2000);
  await rig.raise('INV-01', 'ground_fault', 'critical');
  await rig.advance(5000);
  expect(rig.ownAlarms().filter((x) => x.type === 'control_failed').map((x) => [x.assetId, x.state])).toEqual([['IO-01', 'raised']]);
});

test('every alarm transition and acknowledgement goes to the notification outputs', async () => {
  const offered: AlarmMessage[] = [];
  const acked: string[] = [];
  const outputs: AlarmNotifier = { start: () => undefined, offer: (a) => offered.push(a), acknowledge: (id, by) => acked.push(`${id} ${by}`), close: async () => undefined };
  rig = await Rig.started({ deps: { createOutputs: () => outputs } });
  const a = await rig.raise('INV-01', 'ground_fault', 'critical');
  await rig.raise('INV-01', 'ground_fault', 'critical', { alarmId: a.alarmId, value: 2 });
  await rig.processorSnapshot(); // repeats what is known: not offered again
  await rig.operator('acknowledge', { alarmId: a.alarmId });
  await rig.clear(a);
  expect(offered.map((x) => `${x.source} ${x.transition} ${x.transitionSeq}`)).toEqual(['processor raised 0', 'processor updated 1', 'processor cleared 2']);
  expect(acked).toEqual([`${a.alarmId} alice`]);
});

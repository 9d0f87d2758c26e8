/**
 * LocalControl's default rules against the site simulator's naming (docs/local-control.md
 * "Rules and defaults"): each rule's condition, the command it sends, and what it does when the
 * condition goes away (release after the hold-off, latched actions, the revert timer's refresh).
 * The component runs on a RecordingBus with a FakeClock and a real SQLite file; the rig answers
 * commands as the ModbusAdapter would.
 */
import { Rig } from '../../components/local-control/testing/rig';
import type { ControlCommand } from '../../components/lib/contract';

const INVERTERS = { 'INV-01': 60000, 'INV-02': 60000, 'INV-03': 60000 };

let rig: Rig;
afterEach(async () => rig?.close());

/** The site's inverters and combiner box known to LocalControl, as the adapter's status announces them. */
async function site(r: Rig): Promise<void> {
  for (const a of Object.keys(INVERTERS)) await r.status(a, 'online', { models: [1, 103, 120, 123, 160] });
}

function brief(c: ControlCommand): unknown {
  return { assetId: c.assetId, action: c.action, params: c.params };
}

describe('default rules', () => {
  test('an over_temperature alarm curtails its inverter to 50 % with a 300 s revert timer', async () => {
    rig = await Rig.started({ config: { capacityW: INVERTERS } });
    await site(rig);
    await rig.raise('INV-02', 'over_temperature', 'high', { point: '103.TmpCab', value: 81 });
    expect(rig.commands('INV-02').map(brief)).toEqual([{ assetId: 'INV-02', action: 'curtail', params: { percent: 50, revertSeconds: 300 } }]);
    const cmd = rig.commands('INV-02')[0] as ControlCommand;
    expect(cmd.issuedBy).toBe('local-control');
    expect(cmd.expiresAt).toBe(cmd.ts + 5000);
    expect(rig.decisions('INV-02').map((d) => [d.ruleId, d.outcome])).toEqual([
      ['curtail-over-temperature', 'commanded'],
      ['curtail-over-temperature', 'succeeded'],
    ]);
    // Other inverters and a medium alarm are left alone.
    await rig.raise('INV-03', 'over_temperature', 'medium');
    expect(rig.commands('INV-03')).toEqual([]);
    expect(rig.bus.invalid).toEqual([]);
  });

  test('the curtailment is restored 5 min after the alarm cleared, not before; an alarm back within the hold-off keeps it', async () => {
    rig = await Rig.started({ config: { capacityW: INVERTERS } });
    await site(rig);
    const a = await rig.raise('INV-01', 'over_temperature', 'high');
    await rig.clear(a);
    await rig.advance(120_000);
    const b = await rig.raise('INV-01', 'over_temperature', 'high');
    await rig.clear(b);
    await rig.advance(299_000);
    expect(rig.commands('INV-01').map((c) => c.action).filter((x) => x === 'restore')).toEqual([]);
    await rig.advance(2000);
    expect(rig.commands('INV-01').filter((c) => c.action === 'restore')).toHaveLength(1);
    const released = rig.decisions('INV-01').filter((d) => d.outcome === 'released');
    expect(released).toHaveLength(1);
    expect(released[0]?.reason).toMatch(/false for 300 s/);
    expect(rig.lc.applied()).toEqual([]);
  });

  test('while the rule holds, the curtailment is sent again every revertSeconds/2 so the inverter never reverts', async () => {
    rig = await Rig.started({ config: { capacityW: INVERTERS } });
    await site(rig);
    await rig.raise('INV-01', 'over_temperature', 'high');
    const t0 = rig.clock.now();
    await rig.advance(620_000);
    const sends = rig.commands('INV-01').filter((c) => c.action === 'curtail').map((c) => Math.round((c.ts - t0) / 1000));
    expect(sends).toEqual([0, 150, 300, 450, 600]);
    const refresh = rig.decisions('INV-01').filter((d) => d.outcome === 'commanded' && d.reason?.startsWith('refresh'));
    expect(refresh).toHaveLength(4);
  });

  test('a combiner box string with an insulation fault is isolated: write string<k>.closed false, never reconnected by automation', async () => {
    rig = await Rig.started();
    await rig.telemetry('CB-02', { 'string1.status': '', 'string4.status': 'insulationFault', 'string4.current': 0 });
    expect(rig.commands('CB-02').map(brief)).toEqual([{ assetId: 'CB-02', action: 'write', params: { point: 'string4.closed', value: false } }]);
    const d = rig.decisions('CB-02');
    expect(d.map((x) => [x.action, x.outcome])).toEqual([
      ['isolate_string', 'commanded'],
      ['isolate_string', 'succeeded'],
    ]);
    expect(d[0]?.params).toEqual({ point: 'string4.closed', string: 4 });
    // Isolated, the box reports the string open with the fault; repaired, the fault goes: nothing is written.
    await rig.telemetry('CB-02', { 'string4.status': 'open|insulationFault' });
    await rig.advance(10_000);
    await rig.telemetry('CB-02', { 'string4.status': 'open' });
    await rig.advance(600_000);
    expect(rig.commands('CB-02')).toHaveLength(1);
    expect(rig.decisions('CB-02').at(-1)?.outcome).toBe('released');
    expect(rig.decisions('CB-02').at(-1)?.reason).toMatch(/stays until an operator/);
  });

  test.each([
    { what: 'irradiance up for 5 min', poa: 500, forMs: 300_000, isolated: true },
    { what: 'irradiance up for 4 min 50 s', poa: 500, forMs: 290_000, isolated: false },
    { what: 'irradiance low', poa: 150, forMs: 300_000, isolated: false },
  ])('a string with lowCurrent, $what: isolated $isolated', async ({ poa, forMs, isolated }) => {
    rig = await Rig.started();
    const t0 = rig.clock.now();
    while (rig.clock.now() - t0 <= forMs) {
      await rig.telemetry('WS-01', { poa });
      await rig.telemetry('CB-01', { 'string3.status': 'lowCurrent', 'string2.status': '' });
      await rig.advance(5000, 5000);
    }
    const writes = rig.commands('CB-01').map(brief);
    expect(writes).toEqual(isolated ? [{ assetId: 'CB-01', action: 'write', params: { point: 'string3.closed', value: false } }] : []);
  });

  test('the fire alarm input shuts every inverter down (capacity cap exempt, and says so) and trips the main breaker', async () => {
    rig = await Rig.started({ config: { capacityW: INVERTERS } });
    await site(rig);
    await rig.telemetry('IO-01', { 'di.fireAlarm': false, 'di.doorClosed': true });
    expect(rig.commands()).toEqual([]);
    await rig.telemetry('IO-01', { 'di.fireAlarm': true, 'di.doorClosed': true });
    // The alarm horn and beacon (written once at start, off) are not what this test is about.
    const actions = (): ControlCommand[] => rig.commands().filter((c) => !/^relay\.(alarmHorn|beacon)$/.test(String(c.params['point'])));
    const cmds = actions().map(brief);
    expect(cmds).toEqual(
      expect.arrayContaining([
        { assetId: 'INV-01', action: 'shutdown', params: {} },
        { assetId: 'INV-02', action: 'shutdown', params: {} },
        { assetId: 'INV-03', action: 'shutdown', params: {} },
        { assetId: 'IO-01', action: 'write', params: { point: 'relay.breakerTrip', value: true } },
      ]),
    );
    expect(cmds).toHaveLength(4);
    for (const inv of Object.keys(INVERTERS)) {
      const c = rig.decisions(inv).find((d) => d.outcome === 'commanded');
      expect(c?.ruleId).toBe('emergency-shutdown-fire');
      expect(c?.reason).toMatch(/^emergency: exempt from the capacity cap/);
    }
    // The alarm goes off: nothing is undone (an operator starts again).
    await rig.telemetry('IO-01', { 'di.fireAlarm': false });
    await rig.advance(600_000);
    expect(actions()).toHaveLength(4);
    expect(rig.lc.applied().map((a) => a.key).sort()).toEqual(['INV-01|power', 'INV-02|power', 'INV-03|power', 'IO-01|relay:relay.breakerTrip']);
  });

  test('a critical ground_fault alarm shuts its inverter down; a high one does not', async () => {
    rig = await Rig.started({ config: { capacityW: INVERTERS } });
    await site(rig);
    await rig.raise('INV-01', 'ground_fault', 'high');
    expect(rig.commands('INV-01')).toEqual([]);
    const a = await rig.raise('INV-03', 'ground_fault', 'critical', { point: '103.Evt1' });
    expect(rig.commands('INV-03').map(brief)).toEqual([{ assetId: 'INV-03', action: 'shutdown', params: {} }]);
    const d = rig.decisions('INV-03')[0];
    expect(d?.inputs).toEqual([{ source: 'alarm', ref: `INV-03/ground_fault/${a.alarmId}`, value: 'critical', ts: a.ts }]);
    await rig.clear(a);
    await rig.advance(600_000);
    expect(rig.commands('INV-03').map((c) => c.action)).toEqual(['shutdown']);
  });

  test('an operator start undoes a shutdown; the start is audited as the operator\'s', async () => {
    rig = await Rig.started({ config: { capacityW: INVERTERS } });
    await site(rig);
    const a = await rig.raise('INV-03', 'ground_fault', 'critical');
    await rig.clear(a);
    await rig.operator('start', { assetId: 'INV-03', reason: 'fault found and fixed' });
    expect(rig.commands('INV-03').map((c) => c.action)).toEqual(['shutdown', 'start']);
    const start = rig.decisions('INV-03').filter((d) => d.action === 'start');
    expect(start.map((d) => [d.ruleId, d.outcome])).toEqual([
      ['operator', 'commanded'],
      ['operator', 'succeeded'],
    ]);
    expect(rig.lc.applied()).toEqual([]);
  });
});

/**
 * LocalControl's commands (docs/local-control.md "Commands" and "The audit log"): retries with a
 * new commandId and backoff, `control_failed` raised through its alarm journal after the last
 * attempt and cleared by a later success, result timeouts, and an audit row for every step.
 */
import { readAuditLog } from '../../components/local-control/db';
import { Rig } from '../../components/local-control/testing/rig';
import type { AlarmMessage, ControlCommand, ControlDecision } from '../../components/lib/contract';

const INVERTERS = { 'INV-01': 60000, 'INV-02': 60000, 'INV-03': 60000 };

let rig: Rig;
afterEach(async () => rig?.close());

function actions(r: Rig, assetId?: string): ControlCommand[] {
  return r.commands(assetId).filter((c) => !/^relay\.(alarmHorn|beacon)$/.test(String(c.params['point'])));
}

function steps(ds: ControlDecision[]): string[] {
  return ds.map((d) => `${d.outcome}${d.attempt !== undefined ? ` #${d.attempt}` : ''}`);
}

test('a failed action is retried with new commandIds and backoff, then control_failed (high) is raised; a later success clears it', async () => {
  rig = await Rig.started({ config: { capacityW: INVERTERS, failedRetryAfterMs: 60_000 } });
  rig.answer = (c) => (c.assetId === 'INV-01' ? { status: 'failed', message: 'MODBUS_TIMEOUT' } : 'succeeded');
  await rig.raise('INV-01', 'over_temperature', 'high');
  await rig.advance(10_000);
  const cmds = actions(rig, 'INV-01');
  expect(cmds).toHaveLength(3); // maxRetries 2
  expect(new Set(cmds.map((c) => c.commandId)).size).toBe(3);
  const ds = rig.decisions('INV-01');
  expect(steps(ds)).toEqual(['commanded #1', 'retrying #1', 'commanded #2', 'retrying #2', 'commanded #3', 'failed #3']);
  // Backoff (equal jitter, at 0.5 here): 750 ms after the first failure, 1500 ms after the second.
  const at = (i: number): number => ds[i]?.ts ?? 0;
  expect([at(2) - at(1), at(4) - at(3)]).toEqual([750, 1500]);
  expect(new Set(ds.map((d) => d.decisionId)).size).toBe(1);
  expect(ds.at(-1)?.reason).toBe('failed: MODBUS_TIMEOUT (after 3 attempts)');
  const raised = rig.ownAlarms().filter((a) => a.type === 'control_failed');
  expect(raised).toHaveLength(1);
  expect(raised[0]).toMatchObject({ assetId: 'INV-01', severity: 'high', state: 'raised', source: 'local-control', transitionSeq: 0 });
  expect(raised[0]?.journalId).toBe(rig.lc.journal?.journalId);
  expect(rig.lc.healthState?.()).toBe('degraded');
  // The adapter works again; the action is tried again after failedRetryAfterMs and succeeds.
  rig.answer = () => 'succeeded';
  await rig.advance(60_000);
  expect(actions(rig, 'INV-01')).toHaveLength(4);
  const cleared = rig.ownAlarms().filter((a: AlarmMessage) => a.type === 'control_failed' && a.state === 'cleared');
  expect(cleared).toHaveLength(1);
  expect(cleared[0]?.alarmId).toBe(raised[0]?.alarmId);
  expect(rig.lc.healthState?.()).toBe('running');
  expect(rig.bus.invalid).toEqual([]);
});

test('rejected is not retried (the adapter refused the command itself)', async () => {
  rig = await Rig.started({ config: { capacityW: INVERTERS } });
  rig.answer = (c) => (c.assetId === 'INV-02' ? { status: 'rejected', message: 'the device has none of the models 123, 704' } : 'succeeded');
  await rig.raise('INV-02', 'over_temperature', 'high');
  await rig.advance(10_000);
  expect(actions(rig, 'INV-02')).toHaveLength(1);
  expect(steps(rig.decisions('INV-02'))).toEqual(['commanded #1', 'failed #1']);
  expect(rig.ownAlarms().map((a) => [a.type, a.assetId, a.state])).toEqual([['control_failed', 'INV-02', 'raised']]);
});

test('no result within resultTimeoutMs counts as a failure; a result arriving later is ignored', async () => {
  rig = await Rig.started({ config: { capacityW: INVERTERS, maxRetries: 1 } });
  rig.answer = (c) => (c.assetId === 'INV-01' ? null : 'succeeded');
  await rig.raise('INV-01', 'over_temperature', 'high');
  await rig.advance(9_000);
  expect(actions(rig, 'INV-01')).toHaveLength(1);
  await rig.advance(2_000);
  expect(steps(rig.decisions('INV-01'))).toEqual(['commanded #1', 'retrying #1', 'commanded #2']);
  expect(rig.decisions('INV-01')[1]?.reason).toMatch(/^no result within resultTimeoutMs 10000 ms; attempt 2 of 2/);
  const first = actions(rig, 'INV-01')[0] as ControlCommand;
  await rig.bus.deliver('controlResult', 'site/unit-site/control/INV-01/result', { schemaVersion: 1, siteId: 'unit-site', assetId: 'INV-01', commandId: first.commandId, ts: rig.clock.now(), status: 'succeeded' }, { strict: true });
  expect(steps(rig.decisions('INV-01'))).toEqual(['commanded #1', 'retrying #1', 'commanded #2']);
  expect(rig.metrics.snapshot().dropped['result_not_ours']).toBe(1);
});

test('every decision step and operator request is in the audit log, readable while the component runs', async () => {
  rig = await Rig.started({ config: { capacityW: INVERTERS } });
  rig.answer = (c) => (c.assetId === 'INV-01' && c.action === 'curtail' && actions(rig, 'INV-01').length === 1 ? 'failed' : 'succeeded');
  const a = await rig.raise('INV-01', 'over_temperature', 'high');
  await rig.advance(5000);
  await rig.operator('manual', { assetId: 'INV-02' });
  await rig.raise('INV-02', 'over_temperature', 'high');
  await rig.clear(a);
  await rig.advance(301_000);
  const published = rig.decisions();
  expect(published.map((d) => d.outcome)).toEqual(expect.arrayContaining(['commanded', 'retrying', 'succeeded', 'blocked', 'released']));
  const file = rig.config.dbPath;
  const log = readAuditLog(file, { limit: 1000 });
  const decisions = log.filter((e) => e.kind === 'decision');
  expect(decisions.map((e) => e.entry)).toEqual(published);
  expect(decisions.map((e) => [e.assetId, e.outcome, e.decisionId])).toEqual(published.map((d) => [d.assetId, d.outcome, d.decisionId]));
  const mode = log.filter((e) => e.kind === 'mode');
  expect(mode.map((e) => [e.assetId, e.action, e.outcome])).toEqual([['INV-02', 'manual', 'manual']]);
  // Filters: one asset, since a time, the newest n (oldest first).
  const inv2 = readAuditLog(file, { assetId: 'INV-02' });
  expect(inv2.every((e) => e.assetId === 'INV-02')).toBe(true);
  expect(inv2.map((e) => e.kind)).toEqual(['mode', 'decision']);
  const last2 = readAuditLog(file, { limit: 2 });
  expect(last2.map((e) => e.id)).toEqual(log.slice(-2).map((e) => e.id));
  expect(readAuditLog(file, { since: rig.clock.now() - 1000 }).every((e) => e.ts >= rig.clock.now() - 1000)).toBe(true);
  expect(() => readAuditLog(`${file}.missing`)).toThrow();
});

test('the audit log is bounded by age', async () => {
  rig = await Rig.started({ config: { capacityW: INVERTERS, auditRetentionMs: 86_400_000 } });
  await rig.raise('INV-01', 'ground_fault', 'critical');
  const n = readAuditLog(rig.config.dbPath).length;
  expect(n).toBeGreaterThan(0);
  await rig.advance(86_400_000 + 3_600_000, 600_000);
  expect(readAuditLog(rig.config.dbPath).filter((e) => e.assetId === 'INV-01')).toEqual([]);
});

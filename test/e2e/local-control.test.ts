/**
 * LocalControl end to end, with what ships: the BUILT ModbusAdapter, Processor and LocalControl
 * (greengrass-build/ recipes and bundles, started by the local runtime as their own processes)
 * against the site simulator (three inverters with model 123 revert timers, combiner boxes, the
 * I/O module). Each default rule acts on the plant, through the contract's control topic and the
 * adapter's verified writes:
 *
 *  - over-temperature -> curtailment to 50 %, with the inverter's own revert timer; a LocalControl
 *    frozen mid-curtailment (SIGSTOP) leaves a plant that reverts by itself; after SIGKILL the
 *    restarted component curtails again; the clear restores after the hold-off;
 *  - an asset in manual mode (set with `dcmms-edge control manual`) is left alone, and the audit
 *    log (`dcmms-edge control log`) says why;
 *  - a string ground fault -> that string isolated at its combiner box, the inverter shut down;
 *  - the fire alarm input -> every inverter shut down and the breaker tripped;
 *  - a bad rule -> the deployment fails with a message naming it.
 *
 * Needs `npm run build` first (npm test does it).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { filters, pubsubResource, type ComponentHealth, type ControlDecision } from '../../components/lib/contract';
import { DEFAULT_RULES } from '../../components/local-control/config';
import type { IpcClient } from '../../scripts/runtime/client';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import { version } from '../../package.json';
import { startNucleus, pubsubPolicy, type Harness } from '../helpers/nucleus';
import { componentPids } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const exec = promisify(execFile);
const PROJECT = path.resolve(__dirname, '../..');
const CLI = path.join(PROJECT, 'dist', 'cli.js');
const BUILD = path.join(PROJECT, 'greengrass-build');
const SITE = 'control-site';
const ADAPTER = 'com.dcmms.edge.ModbusAdapter';
const PROCESSOR = 'com.dcmms.edge.Processor';
const CONTROL = 'com.dcmms.edge.LocalControl';
const OBSERVER = 'com.test.ControlObserver';
const REVERT_S = 10; // the shortest revert time LocalControl accepts
const HOLD_OFF_MS = 3000;

let sim: SiteSimulator;
let h: Harness;
let observer: IpcClient;
const decisions: ControlDecision[] = [];
const health: ComponentHealth[] = [];

const inverter = (assetId: string) => sim.state().inverters.find((i) => i.assetId === assetId)!;
const decided = (pred: (d: ControlDecision) => boolean): boolean => decisions.some(pred);

/** The default rules, with a short revert time and hold-off so the test runs in seconds. */
function rules(): unknown[] {
  return DEFAULT_RULES.map((r) => (r.id === 'curtail-over-temperature' ? { ...r, params: { ...r.params, revertSeconds: REVERT_S }, release: { holdOffMs: HOLD_OFF_MS } } : r));
}

async function cli(...args: string[]): Promise<string> {
  const r = await exec(process.execPath, [CLI, ...args], { cwd: PROJECT, timeout: 30_000 });
  return r.stdout;
}

beforeAll(async () => {
  for (const n of [ADAPTER, PROCESSOR, CONTROL]) {
    if (!fs.existsSync(path.join(BUILD, 'recipes', `${n}-${version}.yaml`))) throw new Error(`greengrass-build/ has no ${n} recipe: run \`npm run build\` (npm test does)`);
  }
  // Noon, clear sky: every inverter produces, so a curtailment shows in the plant.
  sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 3, cloudiness: 0, startTime: new Date(Date.UTC(2026, 3, 15, 12, 0, 0)), timeScale: 1 });
  h = await startNucleus();
  const observed = await h.deploy([
    { name: OBSERVER, accessControl: pubsubPolicy(OBSERVER, ['SubscribeToTopic'], [pubsubResource('controlDecision', { siteId: SITE }), pubsubResource('componentHealth', { siteId: SITE })]) },
  ]);
  expect(observed.status).toBe('SUCCEEDED');
  observer = await h.client(OBSERVER);
  const subD = observer.subscribeToTopic({ topic: filters.controlDecision(SITE).filter });
  subD.on('message', (m) => void decisions.push(m.jsonMessage?.message as ControlDecision));
  const subH = observer.subscribeToTopic({ topic: filters.componentHealth(SITE).filter });
  subH.on('message', (m) => void health.push(m.jsonMessage?.message as ComponentHealth));
  await Promise.all([subD.activate(), subH.activate()]);

  const devices = sim.deviceConfig({ pollIntervalMs: 250 });
  const deployed = await h.run({
    recipeDirectoryPath: path.join(BUILD, 'recipes'),
    artifactsDirectoryPath: path.join(BUILD, 'artifacts'),
    rootComponentsToAdd: { [ADAPTER]: version, [PROCESSOR]: version, [CONTROL]: version },
    configuration: {
      [ADAPTER]: { merge: { siteId: SITE, metricsIntervalMs: 1000, ...devices }, reset: [] },
      [PROCESSOR]: { merge: { siteId: SITE, metricsIntervalMs: 1000, assets: devices.devices.map((d) => d.assetId) }, reset: [] },
      [CONTROL]: { merge: { siteId: SITE, metricsIntervalMs: 1000, rules: rules() }, reset: [] },
    },
  });
  expect(deployed.status).toBe('SUCCEEDED');
  await waitFor(() => [ADAPTER, PROCESSOR, CONTROL].every((n) => health.some((r) => r.componentName === n && r.state !== 'starting')), 30_000, 'every component running');
});

afterAll(async () => {
  await observer?.close();
  await h?.close();
  await sim?.close();
});

test('over-temperature: curtailed with its revert timer; a frozen LocalControl leaves a plant that reverts; restarted, it curtails again; restored after the hold-off', async () => {
  const fault = sim.injectFault({ kind: 'over-temperature', unit: 1 });
  await waitFor(() => inverter('INV-01').limitEnabled && inverter('INV-01').limitPct === 50, 20_000, 'INV-01 curtailed to 50 %');
  await waitFor(() => decided((d) => d.assetId === 'INV-01' && d.ruleId === 'curtail-over-temperature' && d.outcome === 'succeeded'), 10_000, 'the decision reported');
  expect(inverter('INV-02').limitEnabled).toBe(false);
  expect(inverter('INV-01').controls.revertAt.limit).toBeDefined(); // the inverter's own revert timer is armed

  // The gateway's control process hangs: nobody refreshes the limit, the inverter drops it itself.
  const [pid] = componentPids(h.nucleus.rootDir, CONTROL, version);
  process.kill(pid!, 'SIGSTOP');
  const frozenAt = Date.now();
  await waitFor(() => !inverter('INV-01').limitEnabled, (REVERT_S + 6) * 1000, 'INV-01 reverting by itself');
  expect(Date.now() - frozenAt).toBeGreaterThan((REVERT_S / 2) * 1000 - 500);
  // kill -9: the runtime starts it again, and the alarm still active is acted on again.
  process.kill(pid!, 'SIGKILL');
  await waitFor(() => inverter('INV-01').limitEnabled && inverter('INV-01').limitPct === 50, 30_000, 'INV-01 curtailed again after the restart');

  sim.clearFault(fault);
  const clearedAt = Date.now();
  await waitFor(() => !inverter('INV-01').limitEnabled, 30_000, 'INV-01 restored');
  expect(Date.now() - clearedAt).toBeGreaterThanOrEqual(HOLD_OFF_MS);
  await waitFor(() => decided((d) => d.assetId === 'INV-01' && d.action === 'restore' && d.outcome === 'succeeded'), 10_000, 'the restore reported');
});

test('manual mode: automation leaves the asset alone, and the audit log says why', async () => {
  const out = await cli('control', 'manual', '--root', h.nucleus.rootDir, '--site', SITE, '--asset', 'INV-02', '--reason', 'inverter service');
  expect(out).toContain('manual INV-02');
  const db = path.join(h.nucleus.rootDir, 'work', CONTROL, 'local-control.db');
  await waitFor(async () => /manual/.test(await cli('control', 'log', '--db', db, '--asset', 'INV-02')), 10_000, 'the request in the audit log');
  const fault = sim.injectFault({ kind: 'over-temperature', unit: 2 });
  await waitFor(() => decided((d) => d.assetId === 'INV-02' && d.outcome === 'blocked'), 20_000, 'a blocked decision for INV-02');
  expect(decisions.filter((d) => d.assetId === 'INV-02' && d.outcome === 'blocked').at(-1)?.reason).toMatch(/manual/);
  expect(inverter('INV-02').limitEnabled).toBe(false);
  const log = await cli('control', 'log', '--db', db, '--asset', 'INV-02');
  expect(log).toMatch(/INV-02.*blocked.*manual/);
  sim.clearFault(fault);
  await cli('control', 'automatic', '--root', h.nucleus.rootDir, '--site', SITE, '--asset', 'INV-02');
});

test('a string ground fault: the string is isolated at its combiner box; a ground fault inside the inverter shuts it down', async () => {
  const stringFault = sim.injectFault({ kind: 'ground-fault', unit: 3, string: 2 });
  await waitFor(() => sim.state().combiners.find((c) => c.inverterAssetId === 'INV-03')!.strings[1]!.closed === false, 20_000, 'string 2 of INV-03 isolated');
  const box = sim.state().combiners.find((c) => c.inverterAssetId === 'INV-03')!;
  expect(box.strings.filter((s) => !s.closed)).toHaveLength(1);
  await waitFor(() => decided((d) => d.assetId === box.assetId && d.action === 'isolate_string' && d.outcome === 'succeeded'), 10_000, 'the isolation reported');
  // Isolated fast enough, the inverter runs on its other strings; had the Processor seen the
  // inverter's GROUND_FAULT first, the emergency shutdown would have followed. Either way, one
  // string isolated and no other action on the box.
  sim.clearFault(stringFault);

  // A ground fault inside the inverter cannot be isolated at a string: the inverter is shut down.
  sim.injectFault({ kind: 'ground-fault', unit: 3 });
  await waitFor(() => !inverter('INV-03').connected, 20_000, 'INV-03 shut down');
  await waitFor(() => decided((d) => d.assetId === 'INV-03' && d.ruleId === 'shutdown-ground-fault' && d.outcome === 'succeeded'), 10_000, 'the shutdown reported');
  expect(box.strings.filter((s) => !s.closed)).toHaveLength(1);
});

test('the fire alarm input: every inverter shut down, the breaker tripped', async () => {
  sim.injectFault({ kind: 'digital-input', input: 'fireAlarm', value: true });
  await waitFor(() => sim.state().io.relays['breakerTrip'] === true, 20_000, 'the breaker trip relay on');
  await waitFor(() => ['INV-01', 'INV-02'].every((a) => !inverter(a).connected), 20_000, 'the inverters shut down');
  expect(sim.state().io.breakerClosed).toBe(false);
  await waitFor(() => decided((d) => d.ruleId === 'emergency-shutdown-fire' && d.outcome === 'succeeded'), 10_000, 'the shutdown reported');
});

test('a bad rule fails the deployment with a message naming it, and LocalControl keeps running', async () => {
  const before = componentPids(h.nucleus.rootDir, CONTROL, version);
  const bad = [{ id: 'no-percent', condition: { source: 'alarm', alarmType: 'over_temperature' }, action: 'curtail' }];
  const d = await h.run({ configuration: { [CONTROL]: { merge: { rules: bad }, reset: [] } } });
  expect(d.status).toBe('FAILED');
  expect(JSON.stringify(d)).toMatch(/rules\[0\]/);
  expect(componentPids(h.nucleus.rootDir, CONTROL, version)).toEqual(before);
});

/**
 * Component lifecycle of the local Greengrass runtime, with real `sh` processes
 * (docs/local-runtime.md "Components and their lifecycle").
 */
import fs from 'node:fs';
import path from 'node:path';
import { createLogger } from '../../components/lib/logger';
import type { Lifecycle, LifecycleStep } from '../../scripts/runtime/recipe';
import { ServiceDefinition, ServiceManager, ServiceManagerOptions, ServiceState } from '../../scripts/runtime/services';
import { tmpDir, waitFor } from '../helpers/wait';

let root: string;
let mgr: ServiceManager;
let events: string[];
let logLines: Record<string, unknown>[];

function step(script: string, extra: Partial<LifecycleStep> = {}): LifecycleStep {
  return { script, requiresPrivilege: false, setenv: {}, ...extra };
}

function def(name: string, lifecycle: Partial<Lifecycle>, more: Partial<ServiceDefinition> = {}): ServiceDefinition {
  return { name, version: '1.0.0', lifecycle: { setenv: {}, ...lifecycle }, dependencies: [], env: {}, ...more };
}

function manager(opts: Partial<ServiceManagerOptions> = {}): ServiceManager {
  const logger = createLogger({}, { write: (l) => void logLines.push(JSON.parse(l) as Record<string, unknown>), level: 'debug' });
  mgr = new ServiceManager({ rootDir: root, logger, stopGraceMs: 1000, ...opts });
  mgr.on('state', (name: string, state: ServiceState, previous: ServiceState) => events.push(`${name}:${previous}->${state}`));
  return mgr;
}

const work = (name: string, file = ''): string => path.join(root, 'work', name, file);
const read = (file: string): string => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
const lines = (file: string): string[] => read(file).split('\n').filter((l) => l !== '');
const eventsOf = (name: string): string[] => events.filter((e) => e.startsWith(`${name}:`)).map((e) => e.slice(name.length + 1));

/** True while a process with this pid exists and is not a zombie. */
function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

beforeEach(() => {
  root = tmpDir('/tmp/gg-');
  events = [];
  logLines = [];
});

afterEach(async () => {
  await mgr?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('steps and states', () => {
  test('install -> run -> FINISHED, with the output in the component log file', async () => {
    const m = manager();
    m.upsert(def('com.t.Hello', { install: step('echo installing; touch installed'), run: step('echo hello from run; echo oops >&2') }));
    m.start();
    await m.waitFor(['com.t.Hello'], ['FINISHED'], 20000);
    expect(eventsOf('com.t.Hello')).toEqual(['NEW->INSTALLED', 'INSTALLED->STARTING', 'STARTING->RUNNING', 'RUNNING->STOPPING', 'STOPPING->FINISHED']);
    expect(fs.existsSync(work('com.t.Hello', 'installed'))).toBe(true);
    // Output may reach the file a moment after the exit (pipes drain after 'exit'; the file is written asynchronously).
    const file = path.join(root, 'logs', 'com.t.Hello.log');
    await waitFor(() => read(file).includes('oops') && read(file).includes('hello from run'), 5000, 'log lines');
    const log = read(file);
    expect(log).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z \[stdout\] installing$/m);
    expect(log).toMatch(/Z \[stdout\] hello from run$/m);
    expect(log).toMatch(/Z \[stderr\] oops$/m);
    // One nucleus log line per state change.
    expect(logLines).toContainEqual(expect.objectContaining({ component: 'com.t.Hello', state: 'FINISHED', previous: 'STOPPING' }));
  });

  test('no Startup and no Run: FINISHED right after install', async () => {
    const m = manager();
    m.upsert(def('com.t.Empty', { install: step('true') }));
    m.start();
    await m.waitFor(['com.t.Empty'], ['FINISHED'], 20000);
    expect(eventsOf('com.t.Empty')).toEqual(['NEW->INSTALLED', 'INSTALLED->STARTING', 'STARTING->FINISHED']);
  });

  test('Startup that exits 0 gives RUNNING; Run is ignored when Startup exists', async () => {
    const m = manager();
    m.upsert(def('com.t.Daemon', { startup: step('sleep 0.3; touch started'), run: step('touch run-ran') }));
    m.start();
    await waitFor(() => m.state('com.t.Daemon') === 'STARTING', 20000, 'STARTING');
    expect(fs.existsSync(work('com.t.Daemon', 'started'))).toBe(false);
    await m.waitFor(['com.t.Daemon'], ['RUNNING'], 20000);
    expect(fs.existsSync(work('com.t.Daemon', 'started'))).toBe(true);
    expect(fs.existsSync(work('com.t.Daemon', 'run-ran'))).toBe(false);
    expect(logLines).toContainEqual(expect.objectContaining({ component: 'com.t.Daemon', msg: expect.stringContaining('Run is ignored') }));
  });

  test('Startup exiting non-zero and Startup timing out (default timeout from the options) both give ERRORED', async () => {
    const m = manager({ defaultTimeoutsSec: { startup: 1, install: undefined } });
    m.upsert(def('com.t.BadStart', { startup: step('exit 3') }));
    m.upsert(def('com.t.SlowStart', { install: step('true'), startup: step('sleep 30') }));
    m.start();
    await waitFor(() => eventsOf('com.t.BadStart').includes('STARTING->ERRORED'), 20000, 'BadStart ERRORED');
    const t0 = Date.now();
    await waitFor(() => eventsOf('com.t.SlowStart').includes('STARTING->ERRORED'), 20000, 'SlowStart ERRORED');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(logLines).toContainEqual(expect.objectContaining({ component: 'com.t.SlowStart', state: 'ERRORED', reason: 'startup timed out after 1 s' }));
  });

  test('Run with a Timeout that is still running gives ERRORED', async () => {
    const m = manager();
    m.upsert(def('com.t.SlowRun', { run: step('sleep 30', { timeoutSec: 1 }) }));
    m.start();
    await waitFor(() => eventsOf('com.t.SlowRun').includes('RUNNING->ERRORED'), 20000, 'run ERRORED');
    expect(logLines).toContainEqual(expect.objectContaining({ component: 'com.t.SlowRun', state: 'ERRORED', reason: 'run timed out after 1 s' }));
  });

  test('Bootstrap runs before the first Install only, and again for a new version', async () => {
    const m = manager();
    const lc = { bootstrap: step('echo b >> trace'), install: step('echo i >> trace'), run: step('sleep 30') };
    m.upsert(def('com.t.Boot', lc));
    m.start();
    await m.waitFor(['com.t.Boot'], ['RUNNING'], 20000);
    m.upsert(def('com.t.Boot', { ...lc, install: step('echo i2 >> trace') }));
    await waitFor(() => lines(work('com.t.Boot', 'trace')).length === 3 && m.state('com.t.Boot') === 'RUNNING', 20000, 'reinstalled');
    m.upsert(def('com.t.Boot', lc, { version: '2.0.0' }));
    await waitFor(() => lines(work('com.t.Boot', 'trace')).length === 5 && m.state('com.t.Boot') === 'RUNNING', 20000, 'new version');
    expect(lines(work('com.t.Boot', 'trace'))).toEqual(['b', 'i', 'i2', 'b', 'i']);
  });

  test('Install timeout gives ERRORED and kills the install step', async () => {
    const m = manager();
    m.upsert(def('com.t.SlowInstall', { install: step('echo $$ >> install.pids; sleep 30', { timeoutSec: 1 }) }));
    m.start();
    await waitFor(() => eventsOf('com.t.SlowInstall').includes('NEW->ERRORED'), 20000, 'install ERRORED');
    const pid = Number(lines(work('com.t.SlowInstall', 'install.pids'))[0]);
    expect(pidAlive(pid)).toBe(false);
  });

  test('Run exiting 1 three times gives BROKEN while another component keeps RUNNING', async () => {
    const m = manager();
    m.upsert(def('com.t.Crash', { run: step('echo run >> runs; exit 1') }));
    m.upsert(def('com.t.Steady', { run: step('sleep 30') }));
    m.start();
    await m.waitFor(['com.t.Crash'], ['BROKEN'], 20000);
    expect(eventsOf('com.t.Crash').filter((e) => e === 'RUNNING->ERRORED')).toHaveLength(2);
    expect(eventsOf('com.t.Crash')).toContain('RUNNING->BROKEN');
    expect(lines(work('com.t.Crash', 'runs'))).toHaveLength(3);
    expect(m.state('com.t.Steady')).toBe('RUNNING');
    // BROKEN stays BROKEN: no fourth run.
    await new Promise((r) => setTimeout(r, 300));
    expect(lines(work('com.t.Crash', 'runs'))).toHaveLength(3);
    await expect(m.waitFor(['com.t.Crash'], ['RUNNING'], 5000)).rejects.toThrow(/BROKEN/);
  });

  test('errors further apart than errorResetTimeMs never make BROKEN (injected clock)', async () => {
    let clock = 1_000_000;
    const m = manager({ now: () => clock, errorResetTimeMs: 60_000 });
    m.on('state', (_n: string, s: ServiceState) => {
      if (s === 'ERRORED') clock += 61_000;
    });
    m.upsert(def('com.t.Flaky', { run: step('echo run >> runs; exit 1') }));
    m.start();
    await waitFor(() => lines(work('com.t.Flaky', 'runs')).length >= 5, 20000, 'five runs');
    m.stopService('com.t.Flaky');
    await m.waitFor(['com.t.Flaky'], ['FINISHED'], 20000);
    expect(events).not.toContain('com.t.Flaky:RUNNING->BROKEN');
  });

  test('Recover runs when the component is ERRORED, before the retry', async () => {
    const m = manager();
    m.upsert(def('com.t.Recover', { run: step('echo run >> trace; exit 1'), recover: step('echo recover >> trace') }));
    m.start();
    await m.waitFor(['com.t.Recover'], ['BROKEN'], 20000);
    expect(lines(work('com.t.Recover', 'trace'))).toEqual(['run', 'recover', 'run', 'recover', 'run']);
  });

  test('Setenv precedence: process env < nucleus env < Lifecycle.Setenv < step Setenv', async () => {
    const m = manager();
    m.upsert(
      def(
        'com.t.Env',
        { setenv: { A: 'lifecycle', B: 'lifecycle' }, run: step('echo "$NUC|$A|$B|$PATH" > env.txt', { setenv: { B: 'step' } }) },
        { env: { NUC: 'nucleus', A: 'nucleus', B: 'nucleus' } },
      ),
    );
    m.start();
    await m.waitFor(['com.t.Env'], ['FINISHED'], 20000);
    expect(read(work('com.t.Env', 'env.txt')).trim()).toBe(`nucleus|lifecycle|step|${process.env.PATH}`);
  });

  test('Skipif exists/onpath, and their negation, skip the step', async () => {
    const m = manager();
    fs.writeFileSync(path.join(root, 'marker'), '');
    const marker = path.join(root, 'marker');
    const cases: Record<string, string> = {
      'com.t.SkipExists': `exists ${marker}`,
      'com.t.SkipOnpath': 'onpath sh',
      'com.t.SkipNotOnpath': '!onpath no-such-tool-xyz',
      'com.t.RunMissing': `exists ${marker}-missing`,
      'com.t.RunNotExists': `! exists ${marker}`,
    };
    for (const [name, skipif] of Object.entries(cases)) m.upsert(def(name, { install: step('touch installed', { skipif }) }));
    m.start();
    await m.waitFor(Object.keys(cases), ['FINISHED'], 20000);
    const installed = Object.keys(cases).filter((n) => fs.existsSync(work(n, 'installed')));
    expect(installed.sort()).toEqual(['com.t.RunMissing', 'com.t.RunNotExists']);
    expect(read(path.join(root, 'logs', 'com.t.SkipOnpath.log'))).toContain('[lifecycle] install skipped (Skipif onpath sh)');
  });

  test('Install runs again at every start (reinstall after a changed definition)', async () => {
    const m = manager();
    m.upsert(def('com.t.Re', { install: step('echo v1 >> installs'), run: step('sleep 30') }));
    m.start();
    await m.waitFor(['com.t.Re'], ['RUNNING'], 20000);
    m.upsert(def('com.t.Re', { install: step('echo v2 >> installs'), run: step('sleep 30') }, { version: '1.1.0' }));
    await waitFor(() => lines(work('com.t.Re', 'installs')).length === 2 && m.state('com.t.Re') === 'RUNNING', 20000, 'reinstalled');
    expect(lines(work('com.t.Re', 'installs'))).toEqual(['v1', 'v2']);
    expect(m.list()).toEqual([{ name: 'com.t.Re', version: '1.1.0', state: 'RUNNING' }]);
  });
});

describe('stopping', () => {
  test('Shutdown runs on stop, and the whole process tree is gone afterwards', async () => {
    const m = manager();
    m.upsert(def('com.t.Tree', { run: step('sleep 300 & echo $! > grandchild.pid; echo $$ > child.pid; wait'), shutdown: step('touch shutdown-ran') }));
    m.start();
    await waitFor(() => read(work('com.t.Tree', 'grandchild.pid')).trim() !== '' && read(work('com.t.Tree', 'child.pid')).trim() !== '', 20000, 'pids');
    const grandchild = Number(read(work('com.t.Tree', 'grandchild.pid')));
    const child = Number(read(work('com.t.Tree', 'child.pid')));
    expect(pidAlive(grandchild)).toBe(true);
    expect(m.stopService('com.t.Tree')).toBe(true);
    await m.waitFor(['com.t.Tree'], ['FINISHED'], 20000);
    expect(fs.existsSync(work('com.t.Tree', 'shutdown-ran'))).toBe(true);
    expect(pidAlive(child)).toBe(false);
    expect(pidAlive(grandchild)).toBe(false);
  });

  test('a process ignoring SIGTERM is SIGKILLed after the grace period', async () => {
    const m = manager({ stopGraceMs: 800 });
    m.upsert(def('com.t.Stubborn', { run: step("trap '' TERM; echo $$ > pid; while true; do sleep 0.1; done") }));
    m.start();
    await waitFor(() => read(work('com.t.Stubborn', 'pid')).trim() !== '', 20000, 'pid');
    const pid = Number(read(work('com.t.Stubborn', 'pid')));
    const t0 = Date.now();
    m.stopService('com.t.Stubborn');
    await m.waitFor(['com.t.Stubborn'], ['FINISHED'], 20000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(800);
    expect(pidAlive(pid)).toBe(false);
    expect(logLines).toContainEqual(expect.objectContaining({ component: 'com.t.Stubborn', msg: 'process tree ignored SIGTERM and was killed' }));
  });

  test('a Shutdown step that times out gives ERRORED, then FINISHED with the processes gone', async () => {
    const m = manager();
    m.upsert(def('com.t.SlowStop', { run: step('echo $$ > pid; sleep 30'), shutdown: step('sleep 30', { timeoutSec: 1 }) }));
    m.start();
    await waitFor(() => read(work('com.t.SlowStop', 'pid')).trim() !== '', 20000, 'pid');
    const pid = Number(read(work('com.t.SlowStop', 'pid')));
    m.stopService('com.t.SlowStop');
    await m.waitFor(['com.t.SlowStop'], ['FINISHED'], 20000);
    expect(eventsOf('com.t.SlowStop').slice(-3)).toEqual(['RUNNING->STOPPING', 'STOPPING->ERRORED', 'ERRORED->FINISHED']);
    expect(pidAlive(pid)).toBe(false);
  });

  test('close() stops dependents before their dependencies and is idempotent', async () => {
    const m = manager();
    const trace = path.join(root, 'trace');
    m.upsert(def('com.t.Base', { run: step('sleep 30'), shutdown: step(`echo base >> ${trace}`) }));
    m.upsert(def('com.t.Top', { run: step('sleep 30'), shutdown: step(`echo top >> ${trace}`) }, { dependencies: [{ name: 'com.t.Base', type: 'HARD' }] }));
    m.start();
    await m.waitFor(['com.t.Base', 'com.t.Top'], ['RUNNING'], 20000);
    await Promise.all([m.close(), m.close()]);
    expect(lines(trace)).toEqual(['top', 'base']);
    expect(m.state('com.t.Base')).toBe('FINISHED');
    expect(() => m.upsert(def('com.t.Late', {}))).toThrow(/closed/);
  });

  test('remove() stops and forgets a component', async () => {
    const m = manager();
    m.upsert(def('com.t.Gone', { run: step('echo $$ > pid; sleep 30'), shutdown: step('touch shutdown-ran') }));
    m.start();
    await waitFor(() => read(work('com.t.Gone', 'pid')).trim() !== '', 20000, 'pid');
    const pid = Number(read(work('com.t.Gone', 'pid')));
    await m.remove('com.t.Gone');
    expect(m.state('com.t.Gone')).toBeUndefined();
    expect(m.list()).toEqual([]);
    expect(fs.existsSync(work('com.t.Gone', 'shutdown-ran'))).toBe(true);
    expect(pidAlive(pid)).toBe(false);
  });
});

describe('dependencies', () => {
  test('a HARD dependent starts only after its dependency is RUNNING', async () => {
    const m = manager();
    m.upsert(def('com.t.B', { run: step('sleep 30') }, { dependencies: [{ name: 'com.t.A', type: 'HARD' }] }));
    m.upsert(def('com.t.A', { startup: step('sleep 0.5') }));
    m.start();
    await m.waitFor(['com.t.A', 'com.t.B'], ['RUNNING'], 20000);
    const aRunning = events.indexOf('com.t.A:STARTING->RUNNING');
    const bStarting = events.indexOf('com.t.B:INSTALLED->STARTING');
    expect(aRunning).toBeGreaterThanOrEqual(0);
    expect(bStarting).toBeGreaterThan(aRunning);
  });

  test('a SOFT dependency does not block', async () => {
    const m = manager();
    m.upsert(def('com.t.Slow', { startup: step('sleep 30') }));
    m.upsert(def('com.t.Soft', { run: step('sleep 30') }, { dependencies: [{ name: 'com.t.Slow', type: 'SOFT' }] }));
    m.start();
    await m.waitFor(['com.t.Soft'], ['RUNNING'], 20000);
    expect(m.state('com.t.Slow')).toBe('STARTING');
  });

  test('a RUNNING dependent restarts when its HARD dependency restarts', async () => {
    const m = manager();
    m.upsert(def('com.t.Dep', { run: step('sleep 30') }));
    m.upsert(def('com.t.User', { run: step('echo start >> starts; sleep 30') }, { dependencies: [{ name: 'com.t.Dep', type: 'HARD' }] }));
    m.start();
    await m.waitFor(['com.t.Dep', 'com.t.User'], ['RUNNING'], 20000);
    // Run is RUNNING as soon as it is launched: wait for the script itself before restarting.
    await waitFor(() => lines(work('com.t.User', 'starts')).length === 1, 20000, 'first start of the dependent');
    expect(m.restart('com.t.Dep')).toBe(true);
    await waitFor(() => lines(work('com.t.User', 'starts')).length === 2, 20000, 'second start of the dependent');
    await m.waitFor(['com.t.Dep', 'com.t.User'], ['RUNNING'], 20000);
    expect(eventsOf('com.t.User')).toContain('RUNNING->STOPPING');
    // The dependent started again only after its dependency was back.
    const depBack = events.lastIndexOf('com.t.Dep:STARTING->RUNNING');
    expect(events.lastIndexOf('com.t.User:INSTALLED->STARTING')).toBeGreaterThan(depBack);
  });

  test('a dependent of a BROKEN component keeps waiting; removing a HARD dependency restarts its dependents', async () => {
    const m = manager();
    m.upsert(def('com.t.Bad', { startup: step('exit 1') }));
    m.upsert(def('com.t.NeedsBad', { run: step('sleep 30') }, { dependencies: [{ name: 'com.t.Bad', type: 'HARD' }] }));
    m.upsert(def('com.t.Good', { run: step('sleep 30') }));
    m.upsert(def('com.t.NeedsGood', { run: step('sleep 30') }, { dependencies: [{ name: 'com.t.Good', type: 'HARD' }] }));
    m.start();
    await m.waitFor(['com.t.Bad'], ['BROKEN'], 20000);
    await m.waitFor(['com.t.NeedsGood'], ['RUNNING'], 20000);
    await m.waitFor(['com.t.NeedsBad'], ['INSTALLED'], 20000);
    expect(eventsOf('com.t.NeedsBad')).toEqual(['NEW->INSTALLED']);
    await expect(m.waitFor(['com.t.NeedsBad'], ['RUNNING'], 300)).rejects.toThrow(/com\.t\.NeedsBad: INSTALLED \(waiting for com\.t\.Bad\)/);
    await m.remove('com.t.Good');
    await m.waitFor(['com.t.NeedsGood'], ['INSTALLED'], 20000);
    expect(eventsOf('com.t.NeedsGood')).toContain('RUNNING->STOPPING');
  });

  test('a missing HARD dependency or a cycle leaves the component NEW, and waitFor says why', async () => {
    const m = manager();
    m.upsert(def('com.t.Orphan', { install: step('touch installed') }, { dependencies: [{ name: 'com.t.Nowhere', type: 'HARD' }] }));
    m.upsert(def('com.t.C1', {}, { dependencies: [{ name: 'com.t.C2', type: 'HARD' }] }));
    m.upsert(def('com.t.C2', {}, { dependencies: [{ name: 'com.t.C1', type: 'SOFT' }] }));
    m.upsert(def('com.t.Fine', { run: step('sleep 30') }));
    m.start();
    await expect(m.waitFor(['com.t.Orphan'], ['RUNNING', 'FINISHED'], 10000)).rejects.toThrow(/com\.t\.Orphan: NEW \(cannot start: HARD dependency com\.t\.Nowhere is not deployed\)/);
    await expect(m.waitFor(['com.t.C1'], ['RUNNING', 'FINISHED'], 10000)).rejects.toThrow(/dependency cycle com\.t\.C1 -> com\.t\.C2 -> com\.t\.C1/);
    await m.waitFor(['com.t.Fine'], ['RUNNING'], 20000);
    expect(m.state('com.t.Orphan')).toBe('NEW');
    expect(fs.existsSync(work('com.t.Orphan', 'installed'))).toBe(false);
    // Deploying the missing dependency unblocks it.
    m.upsert(def('com.t.Nowhere', { run: step('sleep 30') }));
    await m.waitFor(['com.t.Orphan'], ['FINISHED'], 20000);
  });
});

describe('control', () => {
  test('reportState: honoured and ignored transitions', async () => {
    const m = manager();
    m.upsert(def('com.t.Ipc', { startup: step('sleep 30') }));
    m.upsert(def('com.t.Done', { install: step('true') }));
    expect(m.reportState('com.t.Ipc', 'RUNNING')).toBe(false); // NEW -> RUNNING is not reportable
    expect(m.reportState('com.t.Nobody', 'RUNNING')).toBe(false);
    m.start();
    await waitFor(() => m.state('com.t.Ipc') === 'STARTING', 20000, 'STARTING');
    expect(m.reportState('com.t.Ipc', 'RUNNING')).toBe(true); // STARTING -> RUNNING
    await m.waitFor(['com.t.Ipc'], ['RUNNING'], 1000);
    expect(m.reportState('com.t.Ipc', 'RUNNING')).toBe(false); // RUNNING -> RUNNING ignored
    await m.waitFor(['com.t.Done'], ['FINISHED'], 20000);
    expect(m.reportState('com.t.Done', 'ERRORED')).toBe(false); // FINISHED -> ERRORED ignored
    expect(m.state('com.t.Done')).toBe('FINISHED');
    expect(m.reportState('com.t.Ipc', 'FINISHED')).toBe(true); // RUNNING -> FINISHED
    expect(m.state('com.t.Ipc')).toBe('FINISHED');
  });

  test('a report made while Shutdown runs is applied when it ends', async () => {
    const m = manager();
    m.upsert(def('com.t.Held', { startup: step('true'), shutdown: step('sleep 0.5') }));
    m.start();
    await m.waitFor(['com.t.Held'], ['RUNNING'], 20000);
    m.restart('com.t.Held');
    await waitFor(() => m.state('com.t.Held') === 'STOPPING', 20000, 'STOPPING');
    expect(m.reportState('com.t.Held', 'FINISHED')).toBe(true);
    expect(m.state('com.t.Held')).toBe('STOPPING');
    // Held until Shutdown ends, then STOPPING -> FINISHED; the pending restart still happens.
    await waitFor(() => eventsOf('com.t.Held').includes('STOPPING->FINISHED'), 20000, 'FINISHED');
    await m.waitFor(['com.t.Held'], ['RUNNING'], 20000);
  });

  test('reportState ERRORED from RUNNING counts as an error and is retried', async () => {
    const m = manager();
    m.upsert(def('com.t.SelfErr', { run: step('echo start >> starts; sleep 30') }));
    m.start();
    await m.waitFor(['com.t.SelfErr'], ['RUNNING'], 20000);
    await waitFor(() => lines(work('com.t.SelfErr', 'starts')).length === 1, 20000, 'first start');
    expect(m.reportState('com.t.SelfErr', 'ERRORED')).toBe(true);
    await waitFor(() => lines(work('com.t.SelfErr', 'starts')).length === 2, 20000, 'restarted');
    expect(eventsOf('com.t.SelfErr')).toEqual(expect.arrayContaining(['RUNNING->ERRORED', 'ERRORED->STOPPING', 'STOPPING->INSTALLED']));
  });

  test('restart() and stopService()', async () => {
    const m = manager();
    m.upsert(def('com.t.Ctl', { run: step('echo start >> starts; sleep 30') }));
    expect(m.restart('com.t.Ctl')).toBe(false); // never started
    expect(m.restart('com.t.Unknown')).toBe(false);
    expect(m.stopService('com.t.Unknown')).toBe(false);
    m.start();
    m.start(); // idempotent
    await waitFor(() => lines(work('com.t.Ctl', 'starts')).length === 1, 20000, 'first start');
    expect(m.restart('com.t.Ctl')).toBe(true);
    await waitFor(() => lines(work('com.t.Ctl', 'starts')).length === 2, 20000, 'restarted');
    await m.waitFor(['com.t.Ctl'], ['RUNNING'], 20000);
    expect(m.stopService('com.t.Ctl')).toBe(true);
    await m.waitFor(['com.t.Ctl'], ['FINISHED'], 20000);
    await new Promise((r) => setTimeout(r, 200));
    expect(m.state('com.t.Ctl')).toBe('FINISHED');
    expect(m.restart('com.t.Ctl')).toBe(true);
    await waitFor(() => lines(work('com.t.Ctl', 'starts')).length === 3, 20000, 'started from FINISHED');
  });

  test('restart() of a BROKEN component reinstalls it with a clean error count', async () => {
    const m = manager();
    m.upsert(def('com.t.Phoenix', { install: step('echo i >> installs'), run: step('echo r >> runs; exit 1') }));
    m.start();
    await m.waitFor(['com.t.Phoenix'], ['BROKEN'], 20000);
    expect(lines(work('com.t.Phoenix', 'runs'))).toHaveLength(3);
    expect(m.restart('com.t.Phoenix')).toBe(true);
    // Still BROKEN for a moment, but with a reinstall pending: waitFor must not give up.
    expect(m.state('com.t.Phoenix')).toBe('BROKEN');
    await m.waitFor(['com.t.Phoenix'], ['RUNNING'], 20000);
    await waitFor(() => lines(work('com.t.Phoenix', 'runs')).length === 6, 20000, 'three more runs');
    await m.waitFor(['com.t.Phoenix'], ['BROKEN'], 20000);
    expect(lines(work('com.t.Phoenix', 'installs'))).toHaveLength(2);
  });

  test('a component printing megabytes does not stall the others', async () => {
    const m = manager();
    // ~8 MB in 100-byte lines, plus one 200 kB line with no newline until the end.
    m.upsert(def('com.t.Loud', { run: step("head -c 8000000 /dev/zero | tr '\\0' 'a' | fold -w 100; head -c 200000 /dev/zero | tr '\\0' 'b'; echo; echo done") }));
    m.upsert(def('com.t.Quiet', { startup: step('sleep 0.2') }));
    m.start();
    await m.waitFor(['com.t.Quiet'], ['RUNNING'], 20000);
    await m.waitFor(['com.t.Loud'], ['FINISHED'], 30000);
    const log = path.join(root, 'logs', 'com.t.Loud.log');
    await waitFor(() => read(log).includes('[stdout] done'), 10000, 'log flushed');
    expect(fs.statSync(log).size).toBeGreaterThan(8_000_000);
    // The long line is kept, cut into pieces of at most 64 KiB.
    expect(read(log)).toMatch(/\[stdout\] b{65536}\n/);
  });
});

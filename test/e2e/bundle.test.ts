/**
 * End to end, as a fleet engineer tries the bundle locally: the built CLI runs the nucleus as its
 * own process, `dcmms-edge deployment create` deploys the esbuild bundle from greengrass-build/
 * with the Greengrass CLI's options, and the Health component reaches RUNNING and publishes its
 * site summary to IoT Core. Needs `npm run build` first (npm test does it).
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { IOT_ALL_TOPICS_FILTER, iotTopics, validateSiteHealthSummary } from '../../components/lib/contract';
import { version } from '../../package.json';
import { waitFor } from '../helpers/wait';

const exec = promisify(execFile);
const PROJECT = path.resolve(__dirname, '../..');
const CLI = path.join(PROJECT, 'dist', 'cli.js');
const BUILD = path.join(PROJECT, 'greengrass-build');
const SITE = 'e2e-site';

function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return exec(process.execPath, [CLI, ...args], { cwd: PROJECT, timeout: 60_000 });
}

describe('the built bundle in the local runtime, through the dcmms-edge CLI', () => {
  let root: string;
  let nucleus: ChildProcess;
  let nucleusOut = '';
  let brokerUrl: string;

  beforeAll(async () => {
    if (!fs.existsSync(CLI) || !fs.existsSync(path.join(BUILD, 'recipes'))) {
      throw new Error('dist/cli.js or greengrass-build/ is missing: run `npm run build` (npm test does)');
    }
    root = fs.mkdtempSync('/tmp/gg-e2e-');
    nucleus = spawn(process.execPath, [CLI, 'nucleus', '--root', root, '--thing-name', 'e2e-gateway'], { cwd: PROJECT, stdio: ['ignore', 'pipe', 'inherit'] });
    nucleus.stdout!.on('data', (d: Buffer) => (nucleusOut += d.toString()));
    await waitFor(() => /"msg":"nucleus started"/.test(nucleusOut), 30_000, 'nucleus start');
    const started = nucleusOut.split('\n').find((l) => l.includes('"msg":"nucleus started"'))!;
    brokerUrl = (JSON.parse(started) as { broker: string }).broker;
  });

  afterAll(async () => {
    if (nucleus.exitCode === null) {
      nucleus.kill('SIGKILL');
      await new Promise((r) => nucleus.once('exit', r));
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('deploys com.dcmms.edge.Site, runs Health, and Health reports to IoT Core', async () => {
    const cloud = await mqtt.connectAsync(brokerUrl, { protocolVersion: 4 });
    const received: { topic: string; payload: string }[] = [];
    cloud.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }));
    await cloud.subscribeAsync(IOT_ALL_TOPICS_FILTER, { qos: 1 });
    try {
      // LocalHmi on any free loopback port: other tests (and a developer's demo) may hold 8443.
      const update = JSON.stringify({
        'com.dcmms.edge.Health': { MERGE: { siteId: SITE, initialReportDelayMs: 300, reportIntervalMs: 10_000 } },
        'com.dcmms.edge.LocalHmi': { MERGE: { port: 0, bindAddress: '127.0.0.1' } },
      });
      const { stdout } = await cli(
        'deployment', 'create', '--root', root,
        '--recipeDir', path.join(BUILD, 'recipes'), '--artifactDir', path.join(BUILD, 'artifacts'),
        '--merge', `com.dcmms.edge.Site=${version}`, '--update-config', update, '--wait',
      );
      expect(stdout).toMatch(/Local deployment submitted! Deployment Id: [0-9a-f-]{36}/);
      expect(stdout).toContain('SUCCEEDED (SUCCESSFUL)');

      const list = (await cli('component', 'list', '--root', root)).stdout;
      expect(list).toMatch(/^com\.dcmms\.edge\.Health +[\d.]+ +RUNNING /m);
      expect(list).toMatch(/^com\.dcmms\.edge\.Site +[\d.]+ +FINISHED /m);

      await waitFor(() => received.some((m) => m.topic === iotTopics.health(SITE)), 20_000, 'health summary at IoT Core');
      const summary = validateSiteHealthSummary(JSON.parse(received.find((m) => m.topic === iotTopics.health(SITE))!.payload));
      expect(summary.ok).toBe(true);

      const log = fs.readFileSync(path.join(root, 'logs', 'com.dcmms.edge.Health.log'), 'utf8');
      expect(log).toContain('"level":"info"');
    } finally {
      await cloud.endAsync();
    }
  });

  it('restarts a component on request and it comes back RUNNING', async () => {
    const { stdout } = await cli('component', 'restart', '--root', root, '-n', 'com.dcmms.edge.Health');
    expect(stdout).toContain('com.dcmms.edge.Health: restart SUCCEEDED');
    await waitFor(async () => /^com\.dcmms\.edge\.Health +[\d.]+ +RUNNING /m.test((await cli('component', 'list', '--root', root)).stdout), 30_000);
    const log = fs.readFileSync(path.join(root, 'logs', 'greengrass.log'), 'utf8');
    const running = log
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { component?: string; msg?: string; state?: string })
      .filter((r) => r.component === 'com.dcmms.edge.Health' && r.msg === 'component state' && r.state === 'RUNNING');
    expect(running.length).toBeGreaterThanOrEqual(2);
  });

  it('switches the simulated cloud off and on for a running nucleus', async () => {
    expect((await cli('cloud', 'offline', '--root', root)).stdout).toContain('unreachable');
    await waitFor(() => nucleusOut.includes('IoT Core is now unreachable'), 10_000);
    expect((await cli('cloud', 'online', '--root', root)).stdout).toContain('reachable');
    await waitFor(() => nucleusOut.includes('IoT Core is reachable again'), 10_000);
  });

  it('refuses a deployment naming a version that is not in the store, and says why', async () => {
    const err = await cli('deployment', 'create', '--root', root, '--merge', 'com.dcmms.edge.Site=9.9.9', '--wait').catch((e: { code: number; stdout: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stdout: string }).stdout).toContain('FAILED (FAILED_NO_STATE_CHANGE)');
    expect((err as { stdout: string }).stdout).toContain('com.dcmms.edge.Site');
  });

  it('stops the nucleus and its components on SIGTERM within the grace time', async () => {
    const healthPid = Number(
      fs
        .readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .find((p) => {
          try {
            return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${root}/packages/artifacts/com.dcmms.edge.Health`);
          } catch {
            return false;
          }
        }),
    );
    expect(healthPid).toBeGreaterThan(0);
    const started = Date.now();
    nucleus.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => nucleus.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(fs.existsSync(`/proc/${healthPid}`)).toBe(false);
    expect(fs.existsSync(path.join(root, 'ipc.socket'))).toBe(false);
  });
});

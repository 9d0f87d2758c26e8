/**
 * `npm start` as a newcomer meets it: the built CLI's `demo` runs, and every command it prints is
 * run from another "terminal" (a child process with the demo's working directory) and must work.
 * Then what the demo prints must be readable: cloud batches decoded (never raw gzip), health
 * summarised with why it is degraded, the store paths, and the alarm the suggested string-fault
 * leads to (Analytics's string_underperformance) as its own line.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir, waitFor } from '../helpers/wait';

const PROJECT = path.join(__dirname, '..', '..');
const CLI = path.join(PROJECT, 'dist', 'cli.js');
const BUILD = path.join(PROJECT, 'greengrass-build');

let dir: string;
let demo: ChildProcess;
let out = '';

function run(cmdline: string): Promise<{ code: number; stdout: string; stderr: string }> {
  // The printed command line, `npx dcmms-edge ...`, with the built CLI in place of npx's lookup.
  const args = cmdline.replace(/^npx dcmms-edge\s+/, '').split(/\s+/);
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: dir, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  if (!fs.existsSync(CLI) || !fs.existsSync(path.join(BUILD, 'recipes'))) throw new Error('dist/cli.js or greengrass-build/ is missing: run `npm run build` (npm test does)');
  dir = tmpDir('/tmp/demo-');
  demo = spawn(process.execPath, [CLI, 'demo', '--build', BUILD, '--hmi-port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  demo.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(() => out.includes('Ctrl-C stops'), 60_000, 'the demo to deploy the bundle');
}, 90_000);

afterAll(async () => {
  if (demo && demo.exitCode === null) {
    const exited = new Promise((r) => demo.once('exit', r));
    demo.kill('SIGINT');
    await exited;
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('every command the demo prints works, as printed', async () => {
  expect(out).toMatch(/deployment [0-9a-f-]+: SUCCEEDED/);
  const printed = [...out.matchAll(/^\d\d:\d\d:\d\d {2,}(?:\s*)(npx dcmms-edge [^\n(]+?)\s*(?:\(.*)?$/gm)].map((m) => m[1]!.trim());
  // The `cloud online` inside the parenthesis of the `cloud offline` line.
  const online = /\(then: (npx dcmms-edge cloud online [^)]+)\)/.exec(out)?.[1];
  expect(online).toBeDefined();
  const commands = [...printed, online!];
  for (const c of ['simulator fault', 'component list', 'cloud offline', 'cloud online', 'status', 'alarms', 'query']) expect(commands.some((x) => x.includes(c))).toBe(true);
  for (const c of commands) {
    const r = await run(c);
    expect({ c, code: r.code, stderr: r.stderr }).toEqual({ c, code: 0, stderr: '' });
    if (c.includes('cloud offline')) await waitFor(() => out.includes('IoT Core is now unreachable'), 10_000, 'the demo to report the outage');
    if (c.includes('cloud online')) await waitFor(() => out.includes('IoT Core is now reachable again'), 10_000, 'the demo to report the end of the outage');
    if (c.includes('component list')) expect(r.stdout).toMatch(/^NAME +VERSION +STATE +UPTIME\ncom\.dcmms\.edge\./);
    if (c.includes(' query ')) expect(r.stdout).toMatch(/ W +good/);
  }
  // --json: the full records, configuration included.
  const full = JSON.parse((await run('npx dcmms-edge component list --root .nucleus --json')).stdout) as Array<{ componentName: string; state: string; configuration: Record<string, unknown> }>;
  expect(full.find((c) => c.componentName === 'com.dcmms.edge.Processor')).toMatchObject({ state: 'RUNNING', configuration: { siteId: 'demo-site' } });
}, 120_000);

test('the demo prints the store paths, and cloud messages decoded, one line each', async () => {
  for (const f of ['work/com.dcmms.edge.Processor/raw.db', 'work/com.dcmms.edge.Aggregator/aggregates.db', 'work/com.dcmms.edge.Uplink/outbox.db']) {
    expect(out).toContain(path.join('.nucleus', f));
  }
  await waitFor(() => /cloud <- dcmms\/demo-site\/events {2}events batch #\d+: \d+ items? \(/.test(out), 30_000, 'a decoded events batch');
  await waitFor(() => /cloud <- dcmms\/demo-site\/health {2}health: \w+/.test(out), 30_000, 'a health summary');
  // "degraded" says why; and no raw payload bytes anywhere (a gzip header, or the replacement character of undecodable bytes).
  for (const line of out.split('\n').filter((l) => l.includes('health: degraded'))) expect(line).toMatch(/health: degraded because \S/);
  expect(out).not.toMatch(/\uFFFD|\x1f\x8b/);
  for (const line of out.split('\n').filter((l) => l.includes('cloud <- '))) expect(line.length).toBeLessThan(600);
}, 60_000);

test('the printed string-fault leads to an alarm line, and `alarms` and `status` show it', async () => {
  // The first test injected it; Analytics raises string_underperformance once the string has been low for the demo's 1 minute.
  await waitFor(() => /ALARM INV-01 string_underperformance raised \(medium, analytics\)/.test(out), 200_000, 'the string_underperformance alarm');
  const alarms = await run('npx dcmms-edge alarms --root .nucleus');
  expect(alarms.stdout).toMatch(/medium +INV-01 +string_underperformance +analytics/);
  const status = await run('npx dcmms-edge status --root .nucleus');
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/^site demo-site/);
  expect(status.stdout).toMatch(/devices: 10, 10 reporting/);
  expect(status.stdout).toMatch(/active alarms: \d+ .*\n {2}INV-01 string_underperformance|active alarms: [\s\S]*INV-01 string_underperformance/);
  expect(status.stdout).toMatch(/cloud link: /);
  expect(status.stdout).toMatch(/backlog: /);
}, 240_000);

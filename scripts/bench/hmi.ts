/// <reference lib="dom" />
/**
 * LocalHmi (`node dist/bench.js --only hmi`; docs/local-hmi.md "Figures"): what an operator's
 * screen costs and how fast it is, measured the way it runs on a gateway.
 *
 * The local runtime runs as its own process (./nucleus-process.ts) with the BUILT ModbusAdapter
 * (1 s polls of the site simulator's 10 devices, as a site runs it), Processor and LocalHmi (the web
 * app inside its main.js), deployed with `dcmms-edge deployment create`. LocalHmi's rollups file is
 * one the benchmark fills first with 7 days of 1-minute rows of INV-01 103.W in the Aggregator's
 * own format (components/aggregator/db.ts), so the 7-day trend reads a full week. An observer
 * component (./hmi-worker.ts, the unmodified SDK client) reports every processed telemetry message
 * on the bus: the updates every SSE client must receive. Debian's Chromium, driven by
 * playwright-core, loads the pages over HTTPS (the generated self-signed certificate).
 *
 *   1. first load   a fresh browser context each time (no cache, a new TLS connection), logged in
 *                   through the API, opens #/overview: navigation start -> the overview's first
 *                   values in the DOM (the page's `hmi:overview-rendered` performance mark).
 *   2. 7-day trend  the trends page switches to 7 days of INV-01 103.W: the request sent -> the
 *                   answer parsed (fetch) -> uPlot's first draw hook (draw), from the page's own
 *                   marks (window.__hmi.stats.trend); switching to the last hour and back between
 *                   trials, so each is a fresh request.
 *   3. SSE fan-out  20 clients (Node, one session, as 20 tabs of a control room) on /api/events;
 *                   over the window every client must have a `telemetry` event for every processed
 *                   telemetry message the observer saw (asset and sample time), and the delay from
 *                   the observer's arrival to the client's is recorded (one clock: Date.now()).
 *   4. RSS          LocalHmi's VmRSS sampled every 200 ms through the whole run (max), and at the
 *                   end with the 20 clients attached.
 */
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { chromium, type Browser } from 'playwright-core';
import { AggDb } from '../../components/aggregator/db';
import { createSiteSimulator, type SiteSimulator } from '../simulator';
import type { HmiObserved } from './hmi-worker';
import { NucleusProcess, bundleWorker, delay, runCli, shellQuote, workerRecipe } from './nucleus-process';
import { readRss, sampleProcess } from './proc-sampler';
import os from 'node:os';

const SITE = 'demo-site';
const ADAPTER = 'com.dcmms.edge.ModbusAdapter';
const PROCESSOR = 'com.dcmms.edge.Processor';
const AGGREGATOR = 'com.dcmms.edge.Aggregator';
const HMI = 'com.dcmms.edge.LocalHmi';
const OBSERVER = 'com.bench.HmiObserver';
const POLL_MS = 1000;
const TREND = { assetId: 'INV-01', point: '103.W' };
const CHROMIUM = process.env.DCMMS_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const GOALS = { firstLoadMs: 1000, trend7dMs: 300, rssBytes: 100 * 1024 * 1024 };

export interface HmiBenchOptions {
  /** Holds dist/cli.js, greengrass-build/, package.json, scripts/bench/hmi-worker.ts. */
  projectRoot: string;
  log: (line: string) => void;
  /** The SSE window is 3 x seconds, at least 15 s. */
  seconds: number;
  loads?: number;
  trends?: number;
  clients?: number;
}

export interface Dist {
  p50: number;
  p90: number;
  max: number;
  mean: number;
}

export interface HmiFigures {
  firstLoad: { trials: number; renderedMs: Dist; domContentLoadedMs: Dist; transferKiB: number; goalMs: number };
  trend7d: { trials: number; points: number; source: string; fetchMs: Dist; drawMs: Dist; totalMs: Dist; goalMs: number };
  sse: {
    clients: number;
    windowS: number;
    /** Processed telemetry messages on the bus in the window that each client must receive. */
    updates: number;
    /** Messages older than one already seen for the asset (late, re-sent): LocalHmi shows the newest and sends no event for these (components/local-hmi/live.ts onTelemetry). */
    olderSkipped: number;
    receivedPerClient: { min: number; max: number };
    missing: number;
    extra: number;
    delayMs: Dist;
  };
  rss: { idleMiB: number; afterLoadsMiB: number; afterTrendsMiB: number; maxMiB: number; endMiB: number; withClientsMiB: number; goalMiB: number };
  rollupRows: number;
  /** How busy the whole machine was in each phase (every process, % of all cores), and the 1-minute load average at the end: the figures are only as quiet as the machine. */
  machine: { firstLoadBusyPct: number; trendBusyPct: number; sseBusyPct: number; loadAvg1: number };
}

const r1 = (x: number): number => Math.round(x * 10) / 10;
const mib = (b: number): number => r1(b / 1024 / 1024);

/** Nearest-rank percentiles, 0.1 ms (as ./control.ts). */
function dist(xs: number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return { p50: Number.NaN, p90: Number.NaN, max: Number.NaN, mean: Number.NaN };
  const pct = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { p50: r1(pct(50)), p90: r1(pct(90)), max: r1(s[s.length - 1]!), mean: r1(s.reduce((a, b) => a + b, 0) / s.length) };
}

async function until<T>(what: string, timeoutMs: number, fn: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await delay(100);
  }
}

/** 7 days of 1-minute rows of one series in the Aggregator's file format; returns the rows written. */
function fillRollups(file: string, now: number): number {
  const db = new AggDb(file);
  try {
    const s = db.series(TREND.assetId, TREND.point);
    db.setUnit(s, 'W');
    const end = Math.floor(now / 60_000) * 60_000;
    let rows = 0;
    db.tx(() => {
      for (let start = end - 7 * 86_400_000; start < end; start += 60_000) {
        // A clear-sky day's bell between 06:00 and 18:00 UTC, zero at night (a solar inverter's week).
        const hour = (start % 86_400_000) / 3_600_000;
        const mean = hour > 6 && hour < 18 ? 60_000 * Math.sin(((hour - 6) / 12) * Math.PI) : 0;
        const spread = mean * 0.02;
        db.upsert('1m', start, s.id, { n: 60, count: 60, min: mean - spread, max: mean + spread, sum: mean * 60, m2: 0, first: mean, last: mean, energy: mean / 60 });
        rows++;
      }
    });
    return rows;
  } finally {
    db.db.close();
  }
}

/** The LocalHmi node process of this nucleus (not its `sh -c` wrapper). */
function hmiPid(root: string): number | undefined {
  const needle = path.join(root, 'packages', 'artifacts', HMI);
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (path.basename(argv[0] ?? '') !== 'sh' && argv.slice(1).some((a) => a.startsWith(needle) && a.endsWith('main.js'))) return Number(p);
  }
  return undefined;
}

/** The first-start line of LocalHmi's log (docs/local-hmi.md "First start"). */
function credential(root: string): { username: string; password: string; port: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(root, 'logs', `${HMI}.log`), 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('first start: admin credential created')) continue;
    try {
      // The runtime prefixes each line of the component's stdout: `<time> [stdout] {json}`.
      const r = JSON.parse(line.slice(line.indexOf('{'))) as { username: string; password: string; url: string };
      return { username: r.username, password: r.password, port: Number(new URL(r.url).port) };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: true });

function request(port: number, method: string, p: string, opts: { cookie?: string; body?: unknown } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = https.request(
      { host: '127.0.0.1', port, method, path: p, agent, headers: { ...(opts.cookie ? { cookie: opts.cookie } : {}), ...(body ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** One SSE client: counts `telemetry` events by asset and sample time, with their arrival. */
class SseClient {
  readonly seen = new Map<string, number>();
  private req: ReturnType<typeof https.request> | undefined;
  opened = false;
  error: string | undefined;

  constructor(port: number, cookie: string) {
    this.req = https.request({ host: '127.0.0.1', port, path: '/api/events', agent: new https.Agent({ rejectUnauthorized: false }), headers: { cookie, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        this.error = `HTTP ${res.statusCode}`;
        res.resume();
        return;
      }
      this.opened = true;
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        const at = Date.now();
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (event !== 'telemetry' || !data) continue;
          try {
            const d = JSON.parse(data) as { assetId: string; ts: number };
            const k = `${d.assetId}@${d.ts}`;
            if (!this.seen.has(k)) this.seen.set(k, at);
          } catch {
            this.error = `bad event data ${data.slice(0, 80)}`;
          }
        }
      });
    });
    this.req.on('error', (e) => (this.error ??= e.message));
    this.req.end();
  }

  close(): void {
    this.req?.destroy();
  }
}

class Rig {
  sim!: SiteSimulator;
  n!: NucleusProcess;
  browser: Browser | undefined;
  private server: net.Server | undefined;
  private observer: net.Socket | undefined;
  readonly observed: Array<{ a: string; ts: number; at: number }> = [];
  readonly errors: string[] = [];
  readonly cli: string;
  readonly build: string;
  readonly version: string;
  readonly worker: string;
  private rssTimer: NodeJS.Timeout | undefined;
  rssMax = 0;
  /** Before any browser or SSE client: the process with the plant's telemetry flowing. */
  rssIdle = 0;
  pid = 0;
  port = 0;
  cookie = '';
  cred!: { username: string; password: string; port: number };
  rollupRows = 0;

  get projectRoot(): string {
    return this.opts.projectRoot;
  }

  constructor(private readonly opts: HmiBenchOptions) {
    this.cli = path.join(opts.projectRoot, 'dist', 'cli.js');
    this.build = path.join(opts.projectRoot, 'greengrass-build');
    this.version = (JSON.parse(fs.readFileSync(path.join(opts.projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
    for (const c of [ADAPTER, PROCESSOR, AGGREGATOR, HMI]) {
      const recipe = path.join(this.build, 'recipes', `${c}-${this.version}.yaml`);
      if (!fs.existsSync(this.cli) || !fs.existsSync(recipe)) throw new Error(`${this.cli} or ${recipe} is missing: run 'npm run build' first (npm run bench does)`);
    }
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: run 'npm run test:peers' (Debian's chromium)`);
    this.worker = bundleWorker(opts.projectRoot, 'hmi-worker.ts', 'bench-hmi-worker.js');
  }

  async start(): Promise<void> {
    this.sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 3, cloudiness: 0, startTime: new Date(Date.UTC(2026, 3, 15, 12, 0, 0)), timeScale: 1 });
    const ready = this.listen();
    this.n = await NucleusProcess.start({ cliPath: this.cli });
    const port = (this.server!.address() as net.AddressInfo).port;
    const run = [shellQuote(process.execPath), shellQuote(this.worker), '--port', String(port), '--site', SITE].join(' ');
    const sub = { description: 'reads the processed telemetry LocalHmi shows', operations: ['aws.greengrass#SubscribeToTopic'], resources: [`site/${SITE}/processed/+/telemetry`] };
    await this.n.deploy([workerRecipe(OBSERVER, 'dCMMS Edge LocalHmi benchmark: observes processed telemetry', [sub], run)]);
    await Promise.race([ready, delay(60_000).then(() => Promise.reject(new Error('the observer component did not subscribe within 60 s')))]);

    const rollups = path.join(this.n.root, 'bench-rollups', 'aggregates.db');
    fs.mkdirSync(path.dirname(rollups), { recursive: true });
    this.rollupRows = fillRollups(rollups, Date.now());
    await this.deployComponents(rollups);
    this.cred = await until('first-start credential in the LocalHmi log', 60_000, () => credential(this.n.root));
    this.port = this.cred.port;
    this.pid = await until('LocalHmi process', 10_000, () => hmiPid(this.n.root));
    this.rssTimer = setInterval(() => {
      try {
        this.rssMax = Math.max(this.rssMax, readRss(this.pid));
      } catch {
        // gone: the figures will say so through the failed steps
      }
    }, 200);
    const login = await request(this.port, 'POST', '/api/login', { body: { username: this.cred.username, password: this.cred.password } });
    if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.body}`);
    const setCookie = login.headers['set-cookie'];
    this.cookie = (Array.isArray(setCookie) ? setCookie : [String(setCookie)]).map((c) => c.split(';')[0]).join('; ');
    // The screen has something to show: every inverter's power is on the overview.
    await until('inverter power on the overview', 60_000, async () => {
      const o = await request(this.port, 'GET', '/api/overview', { cookie: this.cookie });
      if (o.status !== 200) return undefined;
      const inv = (JSON.parse(o.body) as { inverters: Array<{ acPowerW: number | null }> }).inverters;
      return inv.length === 3 && inv.every((i) => typeof i.acPowerW === 'number') ? true : undefined;
    });
    this.rssIdle = readRss(this.pid);
    this.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server = net.createServer((sock) => {
        this.observer = sock;
        readline.createInterface({ input: sock }).on('line', (line) => {
          let e: HmiObserved;
          try {
            e = JSON.parse(line) as HmiObserved;
          } catch {
            this.errors.push(`observer sent a bad line: ${line.slice(0, 100)}`);
            return;
          }
          if (e.k === 'ready') resolve();
          else if (e.k === 'error') this.errors.push(`observer: ${e.error}`);
          else this.observed.push({ a: e.a, ts: e.ts, at: e.at });
        });
      });
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1');
    });
  }

  /** The built components from a copy of greengrass-build/ (a build running meanwhile rewrites it). */
  private async deployComponents(rollups: string): Promise<void> {
    const snap = path.join(this.n.root, 'bench-build');
    fs.mkdirSync(path.join(snap, 'recipes'), { recursive: true });
    for (const c of [ADAPTER, PROCESSOR, AGGREGATOR, HMI]) {
      const recipe = `${c}-${this.version}.yaml`;
      fs.copyFileSync(path.join(this.build, 'recipes', recipe), path.join(snap, 'recipes', recipe));
      fs.cpSync(path.join(this.build, 'artifacts', c, this.version), path.join(snap, 'artifacts', c, this.version), { recursive: true });
    }
    const devices = this.sim.deviceConfig({ pollIntervalMs: POLL_MS });
    const update = {
      [ADAPTER]: { MERGE: { siteId: SITE, ...devices } },
      [PROCESSOR]: { MERGE: { siteId: SITE, assets: devices.devices.map((d) => d.assetId) } },
      [HMI]: { MERGE: { siteId: SITE, port: 0, bindAddress: '127.0.0.1', rollupPath: rollups } },
    };
    const args = [this.cli, 'deployment', 'create', '--root', this.n.root, '--recipeDir', path.join(snap, 'recipes'), '--artifactDir', path.join(snap, 'artifacts')];
    for (const c of [ADAPTER, PROCESSOR, HMI]) args.push('--merge', `${c}=${this.version}`);
    args.push('--update-config', JSON.stringify(update), '--wait');
    const { code, output } = await runCli(args);
    if (code !== 0 || !output.includes('SUCCEEDED')) {
      throw new Error(`deployment failed (exit ${code}):\n${output}\n${[ADAPTER, PROCESSOR, HMI].map((c) => this.n.componentLog(c)).join('\n')}\nnucleus:\n${this.n.tail()}`);
    }
  }

  async stop(ok: boolean): Promise<void> {
    if (this.rssTimer) clearInterval(this.rssTimer);
    await this.browser?.close().catch(() => undefined);
    this.observer?.end();
    if (this.n) {
      await this.n.stop({ keepRoot: !ok });
      if (!ok) this.opts.log(`hmi: failed; nucleus root kept at ${this.n.root}`);
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.sim?.close();
    agent.destroy();
  }
}

async function firstLoads(rig: Rig, trials: number, log: (l: string) => void): Promise<HmiFigures['firstLoad']> {
  const rendered: number[] = [];
  const dcl: number[] = [];
  let bytes = 0;
  for (let i = 0; i < trials; i++) {
    const context = await rig.browser!.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1024, height: 768 } });
    try {
      const base = `https://127.0.0.1:${rig.port}/`;
      const login = await context.request.post(`${base}api/login`, { data: { username: rig.cred.username, password: rig.cred.password } });
      if (login.status() !== 200) throw new Error(`browser login failed: ${login.status()}`);
      const page = await context.newPage();
      await page.goto(`${base}#/overview`);
      await page.waitForSelector('.overview[data-ready="true"]', { timeout: 15_000 });
      const t = await page.evaluate(() => {
        const mark = performance.getEntriesByName('hmi:overview-rendered')[0];
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
        const res = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
        return { rendered: mark?.startTime ?? Number.NaN, dcl: nav?.domContentLoadedEventEnd ?? Number.NaN, bytes: (nav?.encodedBodySize ?? 0) + res.reduce((s, r) => s + r.encodedBodySize, 0) };
      });
      rendered.push(t.rendered);
      dcl.push(t.dcl);
      bytes = t.bytes;
    } finally {
      await context.close();
    }
  }
  log(`hmi: first load of the overview x ${trials}: p50 ${dist(rendered).p50} ms`);
  return { trials, renderedMs: dist(rendered), domContentLoadedMs: dist(dcl), transferKiB: r1(bytes / 1024), goalMs: GOALS.firstLoadMs };
}

async function trends(rig: Rig, trials: number, log: (l: string) => void): Promise<HmiFigures['trend7d']> {
  const context = await rig.browser!.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1024, height: 768 } });
  const fetchMs: number[] = [];
  const drawMs: number[] = [];
  const totalMs: number[] = [];
  let points = 0;
  let source = '';
  try {
    const base = `https://127.0.0.1:${rig.port}/`;
    await context.request.post(`${base}api/login`, { data: { username: rig.cred.username, password: rig.cred.password } });
    const page = await context.newPage();
    await page.goto(`${base}#/trends?asset=${TREND.assetId}&point=${encodeURIComponent(TREND.point)}&range=1h`);
    await page.waitForSelector('#chart[data-state="drawn"][data-range="1h"]', { timeout: 15_000 });
    for (let i = 0; i < trials; i++) {
      await page.click('button[data-range="7d"]');
      await page.waitForSelector('#chart[data-state="drawn"][data-range="7d"]', { timeout: 15_000 });
      const s = await page.evaluate(() => (window as unknown as { __hmi: { stats: { trend: { fetchMs: number; drawMs: number; totalMs: number; points: number; source: string } } } }).__hmi.stats.trend);
      fetchMs.push(s.fetchMs);
      drawMs.push(s.drawMs);
      totalMs.push(s.totalMs);
      points = s.points;
      source = s.source;
      await page.click('button[data-range="1h"]');
      await page.waitForSelector('#chart[data-state="drawn"][data-range="1h"]', { timeout: 15_000 });
    }
    // The docs' picture of a week (docs/local-hmi.md "Pages"): only when asked, as the browser test does.
    if (process.env.DCMMS_HMI_SCREENSHOTS === '1') {
      await page.click('button[data-range="7d"]');
      await page.waitForSelector('#chart[data-state="drawn"][data-range="7d"]', { timeout: 15_000 });
      await page.screenshot({ path: path.join(rig.projectRoot, 'docs', 'images', 'hmi-trends-7d.png') });
    }
  } finally {
    await context.close();
  }
  log(`hmi: 7-day trend x ${trials}: p50 ${dist(totalMs).p50} ms (${points} points)`);
  return { trials, points, source, fetchMs: dist(fetchMs), drawMs: dist(drawMs), totalMs: dist(totalMs), goalMs: GOALS.trend7dMs };
}

async function fanOut(rig: Rig, clients: number, windowS: number, log: (l: string) => void): Promise<{ sse: HmiFigures['sse']; withClientsRss: number }> {
  const list = Array.from({ length: clients }, () => new SseClient(rig.port, rig.cookie));
  try {
    await until(`${clients} SSE streams open`, 15_000, () => (list.every((c) => c.opened || c.error) ? true : undefined));
    const failed = list.filter((c) => c.error);
    if (failed.length) throw new Error(`${failed.length} SSE client(s) failed: ${failed[0]!.error}`);
    // Updates sent from now on must reach every client; the first second lets every stream settle.
    await delay(1000);
    const from = Date.now();
    await delay(windowS * 1000);
    const to = Date.now();
    const withClientsRss = readRss(rig.pid);
    // Let what was published by `to` arrive.
    await delay(2000);
    // In bus order, a message older than the newest already seen for its asset is not news for
    // the screen: LocalHmi keeps the newest and sends nothing for it. Only the others must arrive.
    const newest = new Map<string, number>();
    let olderSkipped = 0;
    const updates: typeof rig.observed = [];
    for (const o of rig.observed) {
      const older = o.ts < (newest.get(o.a) ?? -Infinity);
      if (!older) newest.set(o.a, o.ts);
      if (o.at < from || o.at >= to) continue;
      if (older) olderSkipped++;
      else updates.push(o);
    }
    let missing = 0;
    let extra = 0;
    const delays: number[] = [];
    const received: number[] = [];
    const onBus = new Set(rig.observed.map((o) => `${o.a}@${o.ts}`));
    for (const c of list) {
      let n = 0;
      for (const u of updates) {
        const at = c.seen.get(`${u.a}@${u.ts}`);
        if (at === undefined) missing++;
        else {
          n++;
          delays.push(at - u.at);
        }
      }
      received.push(n);
      // Events in the window the bus never carried (should be none).
      for (const [k, at] of c.seen) if (at >= from && at < to && !onBus.has(k)) extra++;
    }
    const lost = updates.filter((u) => list.every((c) => !c.seen.has(`${u.a}@${u.ts}`))).map((u) => `${u.a}@${new Date(u.ts).toISOString().slice(11, 23)} (bus ${u.at - u.ts} ms after)`);
    log(`hmi: ${clients} SSE clients x ${updates.length} updates in ${windowS} s: ${missing} missing${lost.length ? `; missed by every client: ${lost.slice(0, 5).join(', ')}` : ''}`);
    return {
      sse: { clients, windowS, updates: updates.length, olderSkipped, receivedPerClient: { min: Math.min(...received), max: Math.max(...received) }, missing, extra, delayMs: dist(delays) },
      withClientsRss,
    };
  } finally {
    for (const c of list) c.close();
  }
}

export async function runHmiBench(opts: HmiBenchOptions): Promise<HmiFigures> {
  const rig = new Rig(opts);
  let ok = false;
  try {
    opts.log('hmi: starting the simulator, the nucleus, the observer and the built ModbusAdapter, Processor and LocalHmi');
    await rig.start();
    const busy = (a: { sysBusy: number; sysTotal: number }, b: { sysBusy: number; sysTotal: number }): number => r1((100 * (b.sysBusy - a.sysBusy)) / Math.max(1, b.sysTotal - a.sysTotal));
    const s0 = sampleProcess(rig.pid);
    const firstLoad = await firstLoads(rig, opts.loads ?? 10, opts.log);
    const s1 = sampleProcess(rig.pid);
    const afterLoads = readRss(rig.pid);
    const trend7d = await trends(rig, opts.trends ?? 10, opts.log);
    const s2 = sampleProcess(rig.pid);
    const afterTrends = readRss(rig.pid);
    const { sse, withClientsRss } = await fanOut(rig, opts.clients ?? 20, Math.max(15, opts.seconds * 3), opts.log);
    const s3 = sampleProcess(rig.pid);
    const end = readRss(rig.pid);
    if (rig.errors.length) throw new Error(rig.errors.join('; '));
    ok = true;
    return {
      firstLoad,
      trend7d,
      sse,
      rss: { idleMiB: mib(rig.rssIdle), afterLoadsMiB: mib(afterLoads), afterTrendsMiB: mib(afterTrends), maxMiB: mib(Math.max(rig.rssMax, end, withClientsRss)), endMiB: mib(end), withClientsMiB: mib(withClientsRss), goalMiB: mib(GOALS.rssBytes) },
      rollupRows: rig.rollupRows,
      machine: { firstLoadBusyPct: busy(s0, s1), trendBusyPct: busy(s1, s2), sseBusyPct: busy(s2, s3), loadAvg1: r1(os.loadavg()[0] ?? 0) },
    };
  } finally {
    await rig.stop(ok);
  }
}

const d = (x: Dist): string => `p50 ${x.p50}  p90 ${x.p90}  max ${x.max} ms`;

export function formatHmiReport(f: HmiFigures): string {
  return [
    `first load of the overview (navigation start -> first values), ${f.firstLoad.trials} fresh contexts: ${d(f.firstLoad.renderedMs)}  (goal < ${f.firstLoad.goalMs} ms)`,
    `  DOMContentLoaded ${d(f.firstLoad.domContentLoadedMs)}; ${f.firstLoad.transferKiB} KiB transferred`,
    `7-day trend of ${TREND.assetId} ${TREND.point} (${f.rollupRows} 1-minute rows -> ${f.trend7d.points} points, ${f.trend7d.source}), ${f.trend7d.trials} trials:`,
    `  fetch ${d(f.trend7d.fetchMs)}`,
    `  draw  ${d(f.trend7d.drawMs)}`,
    `  total ${d(f.trend7d.totalMs)}  (goal < ${f.trend7d.goalMs} ms)`,
    `SSE: ${f.sse.clients} clients, ${f.sse.updates} telemetry updates in ${f.sse.windowS} s (and ${f.sse.olderSkipped} older than shown, not sent): each received ${f.sse.receivedPerClient.min}..${f.sse.receivedPerClient.max}, missing ${f.sse.missing}, not on the bus ${f.sse.extra}`,
    `  bus -> client ${d(f.sse.delayMs)}`,
    `LocalHmi RSS: before any client ${f.rss.idleMiB} MiB, after the first loads ${f.rss.afterLoadsMiB} MiB, after the trends ${f.rss.afterTrendsMiB} MiB, max ${f.rss.maxMiB} MiB, with ${f.sse.clients} SSE clients ${f.rss.withClientsMiB} MiB, at the end ${f.rss.endMiB} MiB  (goal < ${f.rss.goalMiB} MiB)`,
    `machine busy (all processes, % of all cores): first loads ${f.machine.firstLoadBusyPct} %, trends ${f.machine.trendBusyPct} %, SSE ${f.machine.sseBusyPct} %; load average ${f.machine.loadAvg1}${f.machine.loadAvg1 > 2 ? '  (warning: a busy machine; run again on a quiet one before quoting)' : ''}`,
  ].join('\n');
}

/** Correctness only (benchmarks do not fail on speed): an update a client did not get. */
export function hmiProblems(f: HmiFigures): string[] {
  const p: string[] = [];
  if (f.sse.updates === 0) p.push('no telemetry update in the SSE window');
  if (f.sse.missing > 0) p.push(`${f.sse.missing} telemetry update(s) missing across ${f.sse.clients} SSE clients`);
  if (f.trend7d.points === 0) p.push('the 7-day trend drew no points');
  return p;
}

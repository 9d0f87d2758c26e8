/**
 * The Processor runtime benchmark's component (./processor-runtime.ts):
 *
 *   node bench-processor-worker.js load  --name N --site S --assets A --points P --period-ms T --seconds D --window W
 *   node bench-processor-worker.js alarm --name N --site S --asset X --points P --period-ms T --rounds R --warmup U
 *
 * Run by the local runtime from a recipe, with the unmodified SDK client built from the
 * environment the nucleus gives it, as a SCADA adapter would run. It publishes contract raw
 * telemetry (`topics.rawTelemetry`) and reads the Processor's output off the bus: its health
 * report (`topics.componentHealth(site, 'processor')`) for `load`, its alarms (`filters.alarms`)
 * for `alarm`. Figures go to result.json in its work folder; it exits 0 when done (FINISHED).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { filters, topics, type Point, type TelemetryMessage } from '../../components/lib/contract';
import { RESULT_FILE, latencyFigures, type LatencyFigures } from './ipc-protocol';

type Client = greengrasscoreipc.Client;
const RECEIVE_ALL = greengrasscoreipc.model.ReceiveMode.RECEIVE_ALL_MESSAGES;

/** After the last publish, how long to wait for the Processor's health report to show every message in. */
const CATCH_UP_TIMEOUT_MS = 30_000;
/** How long one alarm round waits for its alarm before counting it missing. */
const ALARM_TIMEOUT_MS = 5_000;

const nowNs = (): bigint => process.hrtime.bigint();

/** One health report of the Processor as the worker saw it (hrtime of arrival). */
export interface HealthSample {
  tNs: string;
  messagesIn: number;
  messagesOut: number;
  errors: number;
  queueDepth: number;
  queues: Record<string, number>;
  rejections: Record<string, number>;
  dropped: Record<string, number>;
}

export interface LoadResult {
  role: 'load';
  component: string;
  assets: number;
  pointsPerMessage: number;
  periodMs: number;
  /** Publishes answered with success. */
  sent: number;
  errors: number;
  firstError?: string;
  messageBytes: number;
  /** hrtime ns: first publish sent, last publish answered. */
  startNs: string;
  endNs: string;
  /** How far behind its schedule a publish went out: the publisher's own shortfall. */
  maxLagMs: number;
  lateOver100Ms: number;
  /** Health reports from just before the load to the catch-up. */
  health: HealthSample[];
  /** messagesIn of the last report before the first publish. */
  baselineIn: number;
  /** hrtime ns of the first report with every sent message in (undefined: not within the timeout). */
  caughtUpNs?: string;
}

export interface AlarmResult {
  role: 'alarm';
  component: string;
  pointsPerMessage: number;
  rounds: number;
  /** Publish call -> the alarm delivered on the worker's subscription. */
  latency: LatencyFigures;
  /** Publish call -> PublishToTopic answered. */
  publishRtt: LatencyFigures;
  raised: number;
  cleared: number;
  missing: number;
  /** Alarms delivered that were not the one awaited (must be 0). */
  unexpected: number;
  startNs: string;
  endNs: string;
}

export interface ErrorResult {
  role: 'error';
  component: string;
  error: string;
}

export type ProcessorWorkerResult = LoadResult | AlarmResult | ErrorResult;

function writeResult(result: ProcessorWorkerResult): void {
  const file = path.join(process.cwd(), RESULT_FILE);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(result));
  fs.renameSync(`${file}.tmp`, file);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function messageOf(ev: greengrasscoreipc.model.SubscriptionResponseMessage): Record<string, unknown> | undefined {
  const m: unknown = ev.jsonMessage?.message;
  return typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : undefined;
}

/**
 * A SunSpec-like inverter poll of `points` points: model 160 modules (DCA A, DCV V, DCW W,
 * Tmp C: converted to Cel), model 103 AC power and cabinet temperature. Values move from poll to
 * poll so the store's encoder and the rules see real work. `tmpCab` sets 103.TmpCab (°C).
 */
export function inverterPoll(site: string, asset: string, ts: number, seq: number, points: number, tmpCab: number): TelemetryMessage {
  const pts: Record<string, Point> = {};
  pts['103.W'] = { v: 50_000 + ((seq * 37) % 2000), u: 'W', q: 'good' };
  pts['103.TmpCab'] = { v: tmpCab, u: 'C', q: 'good' };
  const kinds = ['DCA', 'DCV', 'DCW', 'Tmp'] as const;
  for (let i = 0; i < points - 2; i++) {
    const module = i >> 2;
    const kind = kinds[i & 3]!;
    const a = 5 + ((seq * 7 + module) % 100) / 10;
    const v = 600 + ((seq + module) % 50);
    switch (kind) {
      case 'DCA':
        pts[`160.module.${module}.DCA`] = { v: a, u: 'A', q: 'good' };
        break;
      case 'DCV':
        pts[`160.module.${module}.DCV`] = { v, u: 'V', q: 'good' };
        break;
      case 'DCW':
        pts[`160.module.${module}.DCW`] = { v: Math.round(a * v), u: 'W', q: 'good' };
        break;
      case 'Tmp':
        pts[`160.module.${module}.Tmp`] = { v: 40 + ((seq + module) % 10) / 2, u: 'C', q: 'good' };
        break;
    }
  }
  return { schemaVersion: 1, siteId: site, assetId: asset, ts, seq, points: pts };
}

// --- load ---------------------------------------------------------------------------------------

interface LoadOptions {
  site: string;
  assets: number;
  points: number;
  periodMs: number;
  seconds: number;
  window: number;
}

function healthSample(t: bigint, m: Record<string, unknown>): HealthSample | undefined {
  const x = m['metrics'];
  if (typeof x !== 'object' || x === null) return undefined;
  const s = x as Record<string, unknown>;
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  const rec = (v: unknown): Record<string, number> => (typeof v === 'object' && v !== null ? (v as Record<string, number>) : {});
  return {
    tNs: String(t),
    messagesIn: num(s['messagesIn']),
    messagesOut: num(s['messagesOut']),
    errors: num(s['errors']),
    queueDepth: num(s['queueDepth']),
    queues: rec(s['queues']),
    rejections: rec(s['rejections']),
    dropped: rec(s['dropped']),
  };
}

/**
 * Every asset polls every `periodMs` with timestamps exactly that far apart (no gaps, so the
 * Processor interpolates nothing); the assets' polls are spread evenly over the period. A publish
 * goes out when its slot is due, with at most `window` calls outstanding: the offered rate is
 * assets x points x 1000 / periodMs samples/s, and `maxLagMs` says whether the publisher kept it.
 */
async function runLoad(client: Client, name: string, o: LoadOptions): Promise<LoadResult> {
  const health: HealthSample[] = [];
  let onHealth: (h: HealthSample) => void = () => undefined;
  const hs = client.subscribeToTopic({ topic: topics.componentHealth(o.site, 'processor'), receiveMode: RECEIVE_ALL });
  hs.on('message', (ev) => {
    const m = messageOf(ev);
    const h = m ? healthSample(nowNs(), m) : undefined;
    if (!h) return;
    health.push(h);
    onHealth(h);
  });
  await hs.activate();
  // A baseline report before the load (metricsIntervalMs is set short by the benchmark).
  await withTimeout(new Promise<void>((resolve) => (onHealth = () => resolve())), 30_000, 'a first Processor health report');
  onHealth = () => undefined;
  const baselineIn = health[health.length - 1]!.messagesIn;

  const slotNs = (o.periodMs * 1e6) / o.assets;
  const epoch0 = Date.now();
  const assetIds = Array.from({ length: o.assets }, (_, a) => `INV-${String(a + 1).padStart(3, '0')}`);
  const topicOf = assetIds.map((a) => topics.rawTelemetry(o.site, a));
  const totalSlots = Math.floor((o.seconds * 1000 * o.assets) / o.periodMs);
  const messageBytes = JSON.stringify(inverterPoll(o.site, assetIds[0]!, epoch0, 0, o.points, 45)).length;

  let slot = 0;
  let inFlight = 0;
  let sent = 0;
  let errors = 0;
  let firstError: string | undefined;
  let maxLagMs = 0;
  let lateOver100Ms = 0;
  const startNs = nowNs();
  let endNs = startNs;

  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finishIfDone = (): boolean => {
      if (slot >= totalSlots && inFlight === 0) {
        endNs = nowNs();
        clearTimeout(timer);
        resolve();
        return true;
      }
      return false;
    };
    const pump = (): void => {
      timer = undefined;
      const now = nowNs();
      while (slot < totalSlots && inFlight < o.window) {
        const due = startNs + BigInt(Math.round(slot * slotNs));
        if (due > now) break;
        const lagMs = Number(now - due) / 1e6;
        if (lagMs > maxLagMs) maxLagMs = lagMs;
        if (lagMs > 100) lateOver100Ms++;
        const a = slot % o.assets;
        const k = Math.floor(slot / o.assets);
        const ts = epoch0 + Math.round((a * o.periodMs) / o.assets) + k * o.periodMs;
        const message = inverterPoll(o.site, assetIds[a]!, ts, k, o.points, 45 + (k % 5));
        slot++;
        inFlight++;
        client
          .publishToTopic({ topic: topicOf[a]!, publishMessage: { jsonMessage: { message } } })
          .then(
            () => void sent++,
            (err: unknown) => {
              errors++;
              firstError ??= err instanceof Error ? err.message : String(err);
            },
          )
          .finally(() => {
            inFlight--;
            if (!finishIfDone() && timer === undefined) timer = setTimeout(pump, 0);
          });
      }
      if (finishIfDone()) return;
      if (timer === undefined && slot < totalSlots && inFlight < o.window) {
        const due = startNs + BigInt(Math.round(slot * slotNs));
        timer = setTimeout(pump, Math.max(0, Number(due - nowNs()) / 1e6));
      }
    };
    pump();
  });

  // Wait for a health report showing every sent message taken in by the Processor.
  const target = baselineIn + sent;
  let caughtUpNs: bigint | undefined;
  const last = health[health.length - 1];
  if (last && last.messagesIn >= target) caughtUpNs = BigInt(last.tNs);
  else {
    await withTimeout(
      new Promise<void>((resolve) => {
        onHealth = (h) => {
          if (h.messagesIn >= target) {
            caughtUpNs = BigInt(h.tNs);
            resolve();
          }
        };
      }),
      CATCH_UP_TIMEOUT_MS,
      `the Processor to take in ${target - baselineIn} messages`,
    ).catch(() => undefined); // reported: caughtUpNs stays undefined
  }
  await hs.close();
  return {
    role: 'load',
    component: name,
    assets: o.assets,
    pointsPerMessage: o.points,
    periodMs: o.periodMs,
    sent,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    messageBytes,
    startNs: String(startNs),
    endNs: String(endNs),
    maxLagMs,
    lateOver100Ms,
    health: health.filter((h) => h === health[0] || BigInt(h.tNs) >= startNs - 2_000_000_000n),
    baselineIn,
    ...(caughtUpNs !== undefined ? { caughtUpNs: String(caughtUpNs) } : {}),
  };
}

// --- alarm --------------------------------------------------------------------------------------

interface AlarmOptions {
  site: string;
  asset: string;
  points: number;
  periodMs: number;
  rounds: number;
  warmup: number;
}

/**
 * One poll at a time, every `periodMs` of sample time (regular, so nothing is interpolated):
 * 103.TmpCab alternates 80 °C (above the default over-temperature limit of 75: raised) and 60 °C
 * (below the limit minus the 2 °C deadband: cleared). Each poll is published only after the
 * previous one's alarm arrived, so every sample is one unloaded publish -> alarm delivery.
 */
async function runAlarm(client: Client, name: string, o: AlarmOptions): Promise<AlarmResult> {
  let waiting: { state: string; resolve: (t: bigint) => void } | undefined;
  let raised = 0;
  let cleared = 0;
  let unexpected = 0;
  const sub = client.subscribeToTopic({ topic: filters.alarms(o.site).filter, receiveMode: RECEIVE_ALL });
  sub.on('message', (ev) => {
    const t = nowNs();
    const m = messageOf(ev);
    if (!m || m['assetId'] !== o.asset || m['type'] !== 'over_temperature') {
      unexpected++;
      return;
    }
    if (m['state'] === 'raised') raised++;
    else if (m['state'] === 'cleared') cleared++;
    if (waiting && m['state'] === waiting.state) {
      const w = waiting;
      waiting = undefined;
      w.resolve(t);
    } else unexpected++;
  });
  await sub.activate();

  const topic = topics.rawTelemetry(o.site, o.asset);
  const latency: number[] = [];
  const rtt: number[] = [];
  let missing = 0;
  const epoch0 = Date.now();
  const startWall = nowNs();
  const total = o.warmup + o.rounds;
  for (let i = 0; i < total; i++) {
    const due = startWall + BigInt(i * o.periodMs) * 1_000_000n;
    const wait = Number(due - nowNs()) / 1e6;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const high = i % 2 === 0;
    const message = inverterPoll(o.site, o.asset, epoch0 + i * o.periodMs, i, o.points, high ? 80 : 60);
    const delivered = new Promise<bigint>((resolve) => (waiting = { state: high ? 'raised' : 'cleared', resolve }));
    const t0 = nowNs();
    const answered = client.publishToTopic({ topic, publishMessage: { jsonMessage: { message } } }).then(() => nowNs());
    let t1: bigint;
    let t2: bigint;
    try {
      [t1, t2] = await withTimeout(Promise.all([answered, delivered]), ALARM_TIMEOUT_MS, `the alarm of poll ${i}`);
    } catch {
      waiting = undefined;
      if (i >= o.warmup) missing++;
      continue;
    }
    if (i < o.warmup) continue;
    rtt.push(Number(t1 - t0) / 1000);
    latency.push(Number(t2 - t0) / 1000);
  }
  const endNs = nowNs();
  await sub.close();
  return {
    role: 'alarm',
    component: name,
    pointsPerMessage: o.points,
    rounds: o.rounds,
    latency: latencyFigures(Float64Array.from(latency)),
    publishRtt: latencyFigures(Float64Array.from(rtt)),
    raised,
    cleared,
    missing,
    unexpected,
    startNs: String(startWall),
    endNs: String(endNs),
  };
}

// --- main ---------------------------------------------------------------------------------------

let finished = false;

function fail(name: string, err: unknown): never {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  try {
    writeResult({ role: 'error', component: name, error: message });
  } finally {
    process.stderr.write(`processor bench worker ${name} failed: ${message}\n`);
    process.exit(1);
  }
}

function positive(v: string | undefined, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${flag} must be a positive number, not ${String(v)}`);
  return n;
}

async function main(): Promise<void> {
  const [role, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      name: { type: 'string' },
      site: { type: 'string' },
      asset: { type: 'string' },
      assets: { type: 'string' },
      points: { type: 'string' },
      'period-ms': { type: 'string' },
      seconds: { type: 'string' },
      window: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
    },
  });
  const name = values.name ?? 'unnamed';
  const site = values.site ?? 's1';
  process.once('SIGTERM', () => process.exit(finished ? 0 : 143));
  // Never outlive a benchmark that went wrong.
  const budgetS = role === 'load' ? positive(values.seconds, 'seconds') + 120 : 300;
  setTimeout(() => fail(name, new Error('worker watchdog expired')), budgetS * 1000).unref();

  const client = greengrasscoreipc.createClient();
  client.on('disconnection', (ev) => {
    if (!finished) fail(name, new Error(`IPC connection lost: ${String(ev?.reason ?? 'no reason')}`));
  });
  await client.connect();

  let result: ProcessorWorkerResult;
  switch (role) {
    case 'load':
      result = await runLoad(client, name, {
        site,
        assets: positive(values.assets, 'assets'),
        points: positive(values.points, 'points'),
        periodMs: positive(values['period-ms'], 'period-ms'),
        seconds: positive(values.seconds, 'seconds'),
        window: positive(values.window, 'window'),
      });
      break;
    case 'alarm':
      result = await runAlarm(client, name, {
        site,
        asset: values.asset ?? 'INV-A1',
        points: positive(values.points, 'points'),
        periodMs: positive(values['period-ms'], 'period-ms'),
        rounds: positive(values.rounds, 'rounds'),
        warmup: Number(values.warmup ?? 0),
      });
      break;
    default:
      throw new Error(`role must be load or alarm, not ${JSON.stringify(role)}`);
  }
  finished = true;
  writeResult(result);
  await withTimeout(client.close(), 5_000, 'client close').catch(() => undefined);
  process.exit(0);
}

main().catch((err: unknown) => fail(process.argv[process.argv.indexOf('--name') + 1] ?? 'unnamed', err));

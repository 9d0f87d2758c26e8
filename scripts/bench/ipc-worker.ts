/**
 * The IPC benchmark's components: `node bench-worker.js sub|pub|lat --name <ComponentName> ...`,
 * run by the local runtime from a recipe (bundled by ./ipc.ts to dist/bench-worker.js at bench
 * start). Like every component, it is configured by the environment the nucleus gives it:
 * `greengrasscoreipc.createClient()` reads AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT and
 * SVCUID (Greengrass Developer Guide, "Component environment variable reference"). Figures go to
 * result.json in the cwd (its work folder); the process exits 0 when done, so the nucleus reports
 * the component FINISHED.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import {
  DataMessage,
  LatencyResult,
  PublisherResult,
  RESULT_FILE,
  SubscriberResult,
  TOPICS,
  WorkerResult,
  latencyFigures,
} from './ipc-protocol';

type Client = greengrasscoreipc.Client;
const RECEIVE_ALL = greengrasscoreipc.model.ReceiveMode.RECEIVE_ALL_MESSAGES;

/** How long a publisher waits for its subscribers, and subscribers for the end of the run. */
const COORDINATION_TIMEOUT_MS = 60_000;
/** After `done`, how long a subscriber waits for messages still on their way. */
const DRAIN_TIMEOUT_MS = 30_000;
const LATENCY_WARMUP = 200;
const LATENCY_MAX_SAMPLES = 20_000;

const nowNs = (): bigint => process.hrtime.bigint();
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

function writeResult(result: WorkerResult): void {
  // Write then rename, so the orchestrator polling for the file never reads half of it.
  const file = path.join(process.cwd(), RESULT_FILE);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(result));
  fs.renameSync(`${file}.tmp`, file);
}

/** A growable Float64Array of µs samples. */
class Samples {
  private buf = new Float64Array(4096);
  private n = 0;
  push(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }
  view(): Float64Array {
    return this.buf.subarray(0, this.n);
  }
}

/** Builds `{ seq, t, pad }` whose JSON is exactly `bytes` long (ASCII only). */
function messageFactory(bytes: number): (seq: number) => DataMessage {
  const overhead = JSON.stringify({ seq: 0, t: 0, pad: '' }).length - 2; // minus the two digits
  const filler = 'x'.repeat(bytes);
  return (seq) => {
    const t = nowUs();
    const padLength = Math.max(0, bytes - overhead - String(seq).length - String(t).length);
    return { seq, t, pad: filler.slice(0, padLength) };
  };
}

async function publish(client: Client, topic: string, message: object): Promise<void> {
  await client.publishToTopic({ topic, publishMessage: { jsonMessage: { message } } });
}

function messageOf(ev: greengrasscoreipc.model.SubscriptionResponseMessage): Record<string, unknown> | undefined {
  const m: unknown = ev.jsonMessage?.message;
  return typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : undefined;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// --- subscriber ---------------------------------------------------------------------------------

async function runSubscriber(client: Client, name: string): Promise<SubscriberResult> {
  let received = 0;
  let unique = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let maxSeq = -1;
  let seen = new Uint8Array(1 << 16);
  let firstNs = 0n;
  let lastNs = 0n;
  const latency = new Samples();
  let progress: () => void = () => undefined;

  const data = client.subscribeToTopic({ topic: TOPICS.data, receiveMode: RECEIVE_ALL });
  data.on('message', (ev) => {
    const t = nowNs();
    const m = messageOf(ev);
    const seq = m?.seq;
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || typeof m?.t !== 'number') return;
    if (received === 0) firstNs = t;
    lastNs = t;
    received++;
    latency.push(Number(t / 1000n) - m.t);
    if (seq >= seen.length) {
      const next = new Uint8Array(Math.max(seen.length * 2, seq + 1));
      next.set(seen);
      seen = next;
    }
    if (seen[seq]) duplicates++;
    else {
      seen[seq] = 1;
      unique++;
    }
    if (seq < maxSeq) outOfOrder++;
    else maxSeq = seq;
    progress();
  });
  await data.activate();

  const sendReady = (): Promise<void> => publish(client, TOPICS.ready, { component: name });
  const hello = client.subscribeToTopic({ topic: TOPICS.hello });
  hello.on('message', () => {
    sendReady().catch((err: unknown) => fail(name, err));
  });
  await hello.activate();

  const done = client.subscribeToTopic({ topic: TOPICS.done });
  const expected = new Promise<number>((resolve) => {
    done.on('message', (ev) => {
      const sent = messageOf(ev)?.sent;
      if (typeof sent === 'number') resolve(sent);
    });
  });
  await done.activate();
  await sendReady();

  // A connection the nucleus closes mid-run (a slow reader past its outbound limit) is a figure
  // of the run, not a crash of the benchmark: report what arrived.
  const lost = new Promise<string>((resolve) => {
    client.on('disconnection', (ev) => resolve(String(ev?.reason ?? 'no reason')));
  });
  const outcome = await withTimeout(
    Promise.race([expected.then((n) => ({ sent: n })), lost.then((reason) => ({ reason }))]),
    COORDINATION_TIMEOUT_MS,
    `${TOPICS.done}`,
  );
  // Counters are read when the result is built, after any drain below.
  const result = (expected: number | null, extra: Partial<SubscriberResult> = {}): SubscriberResult => ({
    role: 'sub',
    component: name,
    expected,
    received,
    unique,
    duplicates,
    outOfOrder,
    firstNs: String(firstNs),
    lastNs: String(lastNs),
    latency: latencyFigures(latency.view()),
    ...extra,
  });
  if ('reason' in outcome) return result(null, { disconnected: outcome.reason });
  const sent = outcome.sent;
  const uniqueAtDone = unique;
  // The done message was published after every data publish was answered, but the client may
  // hand over events of different streams out of order: wait for stragglers rather than count
  // them lost.
  if (unique < sent) {
    const drained = new Promise<undefined>((resolve) => {
      progress = () => {
        if (unique >= sent) resolve(undefined);
      };
      progress();
    });
    // Resolves with the disconnect reason if the connection is lost meanwhile.
    const reason = await withTimeout(Promise.race([drained, lost]), DRAIN_TIMEOUT_MS, `${sent - unique} missing message(s)`).catch(
      () => undefined, // what is still missing is counted lost
    );
    if (reason !== undefined) return result(sent, { uniqueAtDone, disconnected: reason });
  }
  return result(sent, { uniqueAtDone });
}

// --- publisher ----------------------------------------------------------------------------------

interface PublisherOptions {
  subscribers: number;
  seconds: number;
  bytes: number;
  window: number;
}

async function waitForSubscribers(client: Client, count: number): Promise<void> {
  const ready = new Set<string>();
  let allReady: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (allReady = resolve));
  const ctl = client.subscribeToTopic({ topic: TOPICS.ready });
  ctl.on('message', (ev) => {
    const c = messageOf(ev)?.component;
    if (typeof c === 'string') ready.add(c);
    if (ready.size >= count) allReady();
  });
  await ctl.activate();
  // Subscribers that started first said ready before anyone listened: ask again until all answer.
  const deadline = Date.now() + COORDINATION_TIMEOUT_MS;
  while (ready.size < count) {
    if (Date.now() > deadline) throw new Error(`only ${ready.size} of ${count} subscribers ready after ${COORDINATION_TIMEOUT_MS} ms`);
    await publish(client, TOPICS.hello, {});
    await Promise.race([all, new Promise((r) => setTimeout(r, 500))]);
  }
  await ctl.close();
}

async function runPublisher(client: Client, name: string, o: PublisherOptions): Promise<PublisherResult> {
  await waitForSubscribers(client, o.subscribers);
  const make = messageFactory(o.bytes);
  const messageBytes = JSON.stringify(make(0)).length;

  let nextSeq = 0;
  let inFlight = 0;
  let sent = 0;
  let errors = 0;
  let firstError: string | undefined;
  let stopped = false;
  const startNs = nowNs();
  const deadline = startNs + BigInt(Math.round(o.seconds * 1e9));
  let endNs = startNs;

  // A bounded window of outstanding PublishToTopic calls: each answer launches the next call.
  await new Promise<void>((resolve) => {
    const onAnswer = (): void => {
      inFlight--;
      if (!stopped) launch();
      else if (inFlight === 0) {
        endNs = nowNs();
        resolve();
      }
    };
    const launch = (): void => {
      while (!stopped && inFlight < o.window) {
        if (nowNs() >= deadline) {
          stopped = true;
          break;
        }
        inFlight++;
        client
          .publishToTopic({ topic: TOPICS.data, publishMessage: { jsonMessage: { message: make(nextSeq++) } } })
          .then(
            () => {
              sent++;
            },
            (err: unknown) => {
              errors++;
              firstError ??= err instanceof Error ? err.message : String(err);
            },
          )
          .finally(onAnswer);
      }
      if (stopped && inFlight === 0) {
        endNs = nowNs();
        resolve();
      }
    };
    launch();
  });

  // `sent` counts successes only; a failed publish is a lost message, reported as an error.
  await publish(client, TOPICS.done, { sent: nextSeq });
  return {
    role: 'pub',
    component: name,
    attempted: nextSeq,
    sent,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    messageBytes,
    window: o.window,
    startNs: String(startNs),
    endNs: String(endNs),
  };
}

// --- latency ------------------------------------------------------------------------------------

async function runLatency(client: Client, name: string, o: { seconds: number; bytes: number }): Promise<LatencyResult> {
  const make = messageFactory(o.bytes);
  let waiting: { seq: number; resolve: (t: bigint) => void } | undefined;
  const sub = client.subscribeToTopic({ topic: TOPICS.latency, receiveMode: RECEIVE_ALL });
  sub.on('message', (ev) => {
    const t = nowNs();
    const seq = messageOf(ev)?.seq;
    if (waiting && seq === waiting.seq) {
      const w = waiting;
      waiting = undefined;
      w.resolve(t);
    }
  });
  await sub.activate();

  const rtt = new Samples();
  const delivery = new Samples();
  const startNs = nowNs();
  const deadline = startNs + BigInt(Math.round(o.seconds * 1e9));
  for (let seq = 0; seq < LATENCY_WARMUP + LATENCY_MAX_SAMPLES; seq++) {
    if (seq >= LATENCY_WARMUP && nowNs() >= deadline) break;
    const delivered = new Promise<bigint>((resolve) => (waiting = { seq, resolve }));
    const message = make(seq);
    const t0 = nowNs();
    const answered = client.publishToTopic({ topic: TOPICS.latency, publishMessage: { jsonMessage: { message } } }).then(() => nowNs());
    const [t1, t2] = await withTimeout(Promise.all([answered, delivered]), 5_000, `message ${seq}`);
    if (seq < LATENCY_WARMUP) continue;
    rtt.push(Number(t1 - t0) / 1000);
    delivery.push(Number(t2 - t0) / 1000);
  }
  const endNs = nowNs();
  await sub.close();
  return {
    role: 'lat',
    component: name,
    messageBytes: JSON.stringify(make(0)).length,
    publishRtt: latencyFigures(rtt.view()),
    delivery: latencyFigures(delivery.view()),
    startNs: String(startNs),
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
    process.stderr.write(`bench worker ${name} failed: ${message}\n`);
    process.exit(1);
  }
}

function positiveNumber(v: unknown, flag: string): number {
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
      subscribers: { type: 'string' },
      seconds: { type: 'string' },
      bytes: { type: 'string' },
      window: { type: 'string' },
    },
  });
  const name = values.name ?? 'unnamed';
  process.once('SIGTERM', () => process.exit(finished ? 0 : 143));
  // Never outlive a benchmark that went wrong.
  const seconds = values.seconds === undefined ? 5 : positiveNumber(values.seconds, 'seconds');
  setTimeout(() => fail(name, new Error('worker watchdog expired')), (seconds + 120) * 1000);

  const client = greengrasscoreipc.createClient();
  client.on('disconnection', (ev) => {
    // A subscriber reports a lost connection as its result (runSubscriber).
    if (!finished && role !== 'sub') fail(name, new Error(`IPC connection lost: ${String(ev?.reason ?? 'no reason')}`));
  });
  await client.connect();

  let result: WorkerResult;
  switch (role) {
    case 'sub':
      result = await runSubscriber(client, name);
      break;
    case 'pub':
      result = await runPublisher(client, name, {
        subscribers: positiveNumber(values.subscribers, 'subscribers'),
        seconds,
        bytes: positiveNumber(values.bytes, 'bytes'),
        window: positiveNumber(values.window, 'window'),
      });
      break;
    case 'lat':
      result = await runLatency(client, name, { seconds, bytes: positiveNumber(values.bytes, 'bytes') });
      break;
    default:
      throw new Error(`role must be sub, pub or lat, not ${JSON.stringify(role)}`);
  }
  finished = true;
  writeResult(result);
  await withTimeout(client.close(), 5_000, 'client close').catch(() => undefined);
  process.exit(0);
}

main().catch((err: unknown) => fail(process.argv[process.argv.indexOf('--name') + 1] ?? 'unnamed', err));

/**
 * Stream Manager benchmark (`node dist/bench.js --only streammanager`; docs/stream-manager.md
 * "Exports", docs/benchmarks.md): AWS's client (`aws-greengrass-core-sdk/stream-manager`, in this
 * process) against the local runtime's Stream Manager (a nucleus in a child process,
 * scripts/bench/stream-manager-nucleus.ts), peers in child processes of their own
 * (scripts/bench/stream-manager-peers.ts).
 *
 *   appends   AppendMessage of 1 KiB and 64 KiB payloads for --seconds each, WINDOW calls in
 *             flight on one client, to a File stream without exports: appends/s and MB/s; 1 KiB
 *             also with the client's socket set to TCP_NODELAY (1KiBNoDelay), which AWS's client
 *             does not do: the difference is what Nagle's algorithm costs its two writes a frame.
 *   s3        S3_FILES files of 1 MiB as S3 tasks (s3TaskExecutor, status stream at INFO), appended
 *             with the export disabled, then enabled: from the update to the last Success status
 *             read back; then the Uplink's own S3
 *             exporter (components/uplink/exporters/s3.ts, credentials from a loopback TES) puts
 *             the same files' bytes, one PutObject at a time as the S3 tasks run, to the same s3rver,
 *             and the S3 task exporter alone (in this process, without the server) on the same files.
 *   kinesis   KINESIS_RECORDS 1 KiB messages appended to a stream whose Kinesis export (batch 500,
 *             to kinesalite) is disabled, then enabled with UpdateMessageStream: from the update
 *             until DescribeMessageStream reports the last one exported; the
 *             records are then read back from kinesalite and counted (a lost or doubled record is
 *             a problem).
 *   rss       the nucleus's RSS (/proc/<pid>/status VmRSS) idle without the Stream Manager, idle
 *             with it, and the peak in each phase: the Stream Manager's share is the difference.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createS3Exporter } from '../../components/uplink/exporters/s3';
import { createS3TaskExporter } from '../runtime/stream-manager/exporters/s3-task';
import { describeMachine } from './machine';
import { bundleWorker, delay } from './nucleus-process';
import { ProcSampler, readRss } from './proc-sampler';
import { ownChild, startFakeTes, startKinesalitePeer, startS3rverPeer, type Peer } from './stream-manager-peers';

const WINDOW = 32;
const S3_FILES = 100;
const FILE_BYTES = 1024 * 1024;
const KINESIS_RECORDS = 20_000;
const BUCKET = 'bench-sm';
const SM = 'aws.greengrass.StreamManager';

/* eslint-disable @typescript-eslint/no-explicit-any */
interface SmClient {
  appendMessage(stream: string, data: Buffer): Promise<number>;
  createMessageStream(def: any): Promise<void>;
  updateMessageStream(def: any): Promise<void>;
  deleteMessageStream(stream: string): Promise<void>;
  readMessages(stream: string, options?: any): Promise<Array<{ sequenceNumber: number; payload: Buffer }>>;
  describeMessageStream(stream: string): Promise<any>;
  onConnected(f: () => void): void;
  onError(f: (e: Error) => void): void;
  close(): void;
}

function loadSdk(): any {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('aws-greengrass-core-sdk/stream-manager');
}

const quiet = { error: () => undefined, info: () => undefined, debug: () => undefined, warn: () => undefined };
const r1 = (n: number): number => Math.round(n * 10) / 10;
const mib = (b: number): number => r1(b / 1024 / 1024);

/** The nucleus child: its pid, the Stream Manager's port and token once deployed. */
class NucleusChild {
  private constructor(
    private readonly child: ReturnType<typeof fork>,
    readonly pid: number,
    readonly root: string,
  ) {}

  static async start(projectRoot: string, endpoints: { s3: string; kinesis: string }): Promise<NucleusChild> {
    const script = bundleWorker(projectRoot, 'stream-manager-nucleus.ts', 'bench-sm-nucleus.js');
    const root = fs.mkdtempSync('/tmp/gb-sm-');
    const child = fork(script, [JSON.stringify({ root, ...endpoints })], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    ownChild(child);
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-4000)));
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: any) => (m && typeof m.ready === 'number' ? resolve(m.ready) : reject(new Error(`nucleus child: ${JSON.stringify(m)}`))));
      child.once('exit', (c) => reject(new Error(`the nucleus child exited (${c}) during start: ${err}`)));
    });
    return new NucleusChild(child, pid, root);
  }

  deploy(): Promise<{ port: number; token: string }> {
    return new Promise((resolve, reject) => {
      this.child.once('message', (m: any) => (m && typeof m.port === 'number' ? resolve(m) : reject(new Error(`Stream Manager deployment: ${JSON.stringify(m)}`))));
      this.child.send('deploy');
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const gone = new Promise((r) => this.child.once('exit', r));
      this.child.send('stop');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(t);
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * AWS's client, with the token in the environment as a component process has it. With `noDelay`,
 * its socket gets TCP_NODELAY (the client leaves Nagle's algorithm on and writes each frame's
 * header and payload with two writes): only to show what that costs, never how a component runs.
 */
async function connect(sm: any, port: number, token: string, noDelay = false): Promise<SmClient> {
  const saved = process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
  process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN = token;
  const original = net.createConnection;
  if (noDelay) {
    (net as { createConnection: unknown }).createConnection = (...args: Parameters<typeof net.createConnection>) => original(...args).setNoDelay(true);
  }
  try {
    return await withTimeout(
      new Promise<SmClient>((resolve, reject) => {
        const c: SmClient = new sm.StreamManagerClient({ port, logger: quiet, onErrorCb: (e: Error) => reject(e) });
        c.onConnected(() => resolve(c));
      }),
      10_000,
      'connect',
    );
  } finally {
    (net as { createConnection: unknown }).createConnection = original;
    if (saved === undefined) delete process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    else process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN = saved;
  }
}

/** AWS's JS client has no request timeout: a request the server never answers would hang the benchmark. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_r, reject) => (t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** RSS of `pid` averaged over `ms` (samples every 100 ms), after GC and timers have settled. */
async function settledRss(pid: number, ms = 2000): Promise<number> {
  await delay(1000);
  const xs: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    xs.push(readRss(pid));
    await delay(100);
  }
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Runs `body` with the nucleus sampled every 100 ms; returns its result with the peak RSS and CPU% over it. */
async function sampled<T>(pid: number, body: () => Promise<T>): Promise<{ result: T; rssPeakBytes: number; cpuPercent: number }> {
  const s = new ProcSampler(pid, 100);
  s.start();
  const t0 = process.hrtime.bigint();
  const result = await body();
  await delay(150);
  const w = s.window(t0, process.hrtime.bigint());
  s.stop();
  return { result, rssPeakBytes: w.rssMaxBytes, cpuPercent: Math.round(w.cpuPercent) };
}

async function appendPhase(client: SmClient, sm: any, bytes: number, seconds: number, problems: string[]): Promise<{ appends: number; appendsPerS: number; mbPerS: number; p50Ms: number; p99Ms: number }> {
  const name = `bench-append-${bytes}`;
  await client.createMessageStream(new sm.MessageStreamDefinition().withName(name).withStrategyOnFull(sm.StrategyOnFull.OverwriteOldestData));
  const payload = randomBytes(bytes);
  const lat: number[] = [];
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (performance.now() < end) {
        const a = performance.now();
        await withTimeout(client.appendMessage(name, payload), 30_000, `append to ${name}`);
        lat.push(performance.now() - a);
        n++;
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  // What was appended is what is stored: the newest message read back byte for byte.
  const info = await withTimeout(client.describeMessageStream(name), 10_000, 'DescribeMessageStream');
  const newest = info.storageStatus.newestSequenceNumber as number;
  const back = await withTimeout(client.readMessages(name, new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(newest).withMinMessageCount(1).withMaxMessageCount(1)), 10_000, 'ReadMessages');
  if (newest + 1 !== n || !back[0]?.payload.equals(payload)) problems.push(`append ${bytes} B: ${n} appends, newest sequence number ${newest}, read back ${back[0]?.payload.length ?? 0} bytes${back[0]?.payload.equals(payload) ? '' : ' that differ'}`);
  await client.deleteMessageStream(name);
  lat.sort((a, b) => a - b);
  return { appends: n, appendsPerS: Math.round(n / s), mbPerS: r1((n * bytes) / 1e6 / s), p50Ms: r1(lat[Math.floor(lat.length / 2)] ?? 0), p99Ms: r1(lat[Math.floor(lat.length * 0.99)] ?? 0) };
}

async function s3TaskPhase(client: SmClient, sm: any, files: string[], problems: string[]): Promise<{ tasks: number; seconds: number; tasksPerS: number; mbPerS: number }> {
  await client.createMessageStream(new sm.MessageStreamDefinition().withName('BenchS3Status').withStrategyOnFull(sm.StrategyOnFull.OverwriteOldestData));
  const status = new sm.StatusConfig().withStatusLevel(sm.StatusLevel.INFO).withStatusStreamName('BenchS3Status');
  // Tasks appended with the export disabled, then enabled: the figure is the uploads', not the appends'.
  const def = (disabled: boolean): any =>
    new sm.MessageStreamDefinition()
      .withName('BenchS3Tasks')
      .withStrategyOnFull(sm.StrategyOnFull.OverwriteOldestData)
      .withExportDefinition(new sm.ExportDefinition().withS3TaskExecutor([new sm.S3ExportTaskExecutorConfig().withIdentifier('bench-s3').withStatusConfig(status).withDisabled(disabled)]));
  await client.createMessageStream(def(true));
  for (const [i, f] of files.entries()) {
    const task = new sm.S3ExportTaskDefinition().withInputUrl(`file:${f}`).withBucket(BUCKET).withKey(`sm/!{timestamp:yyyy/MM/dd}/${i}.bin`);
    await client.appendMessage('BenchS3Tasks', sm.util.validateAndSerializeToJsonBytes(task));
  }
  const t0 = performance.now();
  await client.updateMessageStream(def(false));
  let next = 0;
  let done = 0;
  let failed = 0;
  while (done + failed < files.length) {
    const got = await withTimeout(
      client.readMessages('BenchS3Status', new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(next).withMinMessageCount(1).withMaxMessageCount(100).withReadTimeoutMillis(30_000)),
      40_000,
      `reading S3 task statuses from ${next} (${done} Success, ${failed} Failure so far)`,
    );
    for (const m of got) {
      const st = sm.util.deserializeJsonBytesToObj(m.payload, sm.StatusMessage);
      if (st.status === sm.Status.Success) done++;
      else if (st.status === sm.Status.Failure) {
        failed++;
        problems.push(`S3 task failed: ${st.message}`);
      }
    }
    next = got[got.length - 1]!.sequenceNumber + 1;
  }
  const s = (performance.now() - t0) / 1000;
  return { tasks: done, seconds: r1(s), tasksPerS: r1(done / s), mbPerS: r1((done * FILE_BYTES) / 1e6 / s) };
}

async function uplinkPhase(files: string[], s3Url: string): Promise<{ objects: number; seconds: number; objectsPerS: number; mbPerS: number }> {
  const token = randomBytes(16).toString('hex');
  const tes = await startFakeTes(token);
  const ex = createS3Exporter({
    siteId: 'bench-site',
    thingName: 'bench-thing',
    bucket: BUCKET,
    prefix: 'uplink/',
    endpoint: s3Url,
    region: 'us-east-1',
    forcePathStyle: true,
    requestTimeoutMs: 30_000,
    outboxId: 'bench',
    tes: { fullUri: tes.url, authorizationToken: token },
  });
  try {
    const t0 = performance.now();
    for (const [i, f] of files.entries()) {
      // The Uplink's bytes come from its outbox; here from the same files the S3 tasks read.
      const body = await fs.promises.readFile(f);
      await ex.send({ seq: i, cls: '1m', oldestAt: Date.now(), createdAt: Date.now(), count: 1, body });
    }
    const s = (performance.now() - t0) / 1000;
    return { objects: files.length, seconds: r1(s), objectsPerS: r1(files.length / s), mbPerS: r1((files.length * FILE_BYTES) / 1e6 / s) };
  } finally {
    await ex.close();
    await tes.close();
  }
}

/** The S3 task exporter alone, in this process, one task a batch as the server sends them: what the runner and the store add is the difference. */
async function s3ExporterAlonePhase(files: string[], s3Url: string): Promise<{ tasks: number; seconds: number; tasksPerS: number; mbPerS: number }> {
  const noop = (): void => undefined;
  const ex = createS3TaskExporter({ identifier: 'alone', statusConfig: { statusStreamName: 'status' } }, 'alone', {
    region: 'us-east-1',
    endpoints: { s3: s3Url },
    appendToStream: () => Promise.resolve(0),
    log: { info: noop, warn: noop, error: noop },
  });
  try {
    const t0 = performance.now();
    for (const [i, f] of files.entries()) {
      await ex.send([{ streamName: 'alone', sequenceNumber: i, ingestTime: Date.now(), payload: Buffer.from(JSON.stringify({ inputUrl: `file:${f}`, bucket: BUCKET, key: `alone/${i}.bin` })) }]);
    }
    const s = (performance.now() - t0) / 1000;
    if (ex.uploaded.tasks !== files.length) throw new Error(`S3 exporter alone: ${ex.uploaded.tasks} of ${files.length} uploaded (${JSON.stringify(ex.rejections.byReason)})`);
    return { tasks: files.length, seconds: r1(s), tasksPerS: r1(files.length / s), mbPerS: r1((files.length * FILE_BYTES) / 1e6 / s) };
  } finally {
    await ex.close();
  }
}

async function kinesisPhase(client: SmClient, sm: any, kinesisUrl: string, problems: string[]): Promise<{ records: number; seconds: number; recordsPerS: number; mbPerS: number }> {
  const kin = new KinesisClient({ region: 'us-east-1', endpoint: kinesisUrl, credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, requestHandler: new NodeHttpHandler() });
  try {
    await kin.send(new CreateStreamCommand({ StreamName: 'bench', ShardCount: 4 }));
    // Appended first with the export disabled, then enabled: the figure is the export's, not the appends'.
    const def = (disabled: boolean): any =>
      new sm.MessageStreamDefinition()
        .withName('BenchKinesis')
        .withStrategyOnFull(sm.StrategyOnFull.OverwriteOldestData)
        .withExportDefinition(new sm.ExportDefinition().withKinesis([new sm.KinesisConfig().withIdentifier('bench-k').withKinesisStreamName('bench').withBatchSize(500).withDisabled(disabled)]));
    await client.createMessageStream(def(true));
    const payload = (i: number): Buffer => Buffer.concat([Buffer.from(`${String(i).padStart(8, '0')}:`), randomBytes(1024 - 9)]);
    let i = 0;
    let last = -1;
    await Promise.all(
      Array.from({ length: WINDOW }, async () => {
        while (i < KINESIS_RECORDS) {
          const n = i++;
          last = Math.max(last, await client.appendMessage('BenchKinesis', payload(n)));
        }
      }),
    );
    const t0 = performance.now();
    await client.updateMessageStream(def(false));
    const deadline = Date.now() + 300_000;
    for (;;) {
      const info = await withTimeout(client.describeMessageStream('BenchKinesis'), 10_000, 'DescribeMessageStream');
      const st = info.exportStatuses?.[0];
      if (st && st.lastExportedSequenceNumber >= last) break;
      if (Date.now() > deadline) throw new Error(`Kinesis export not done after 300 s: ${st?.lastExportedSequenceNumber} of ${last}, ${st?.errorMessage ?? 'no error'}`);
      await delay(20);
    }
    const s = (performance.now() - t0) / 1000;
    // Every record once in kinesalite.
    const seen = new Set<string>();
    let total = 0;
    const shards = await kin.send(new ListShardsCommand({ StreamName: 'bench' }));
    for (const sh of shards.Shards ?? []) {
      let it = (await kin.send(new GetShardIteratorCommand({ StreamName: 'bench', ShardId: sh.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      for (;;) {
        const got = await kin.send(new GetRecordsCommand({ ShardIterator: it!, Limit: 10_000 }));
        for (const r of got.Records ?? []) {
          total++;
          seen.add(Buffer.from(r.Data!).subarray(0, 8).toString());
        }
        if (!got.Records?.length) break;
        it = got.NextShardIterator;
      }
    }
    if (total !== KINESIS_RECORDS || seen.size !== KINESIS_RECORDS) problems.push(`kinesis: ${total} records in kinesalite, ${seen.size} distinct, ${KINESIS_RECORDS} appended`);
    return { records: total, seconds: r1(s), recordsPerS: Math.round(KINESIS_RECORDS / s), mbPerS: r1((KINESIS_RECORDS * 1024) / 1e6 / s) };
  } finally {
    kin.destroy();
  }
}

export async function runStreamManagerBench(ctx: { projectRoot: string; seconds: number; log: (line: string) => void }): Promise<{ figures: Record<string, unknown>; problems: string[] }> {
  const log = (s: string): void => ctx.log(`streammanager: ${s}`);
  const problems: string[] = [];
  const peers: Peer[] = [];
  let nucleus: NucleusChild | undefined;
  let client: SmClient | undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-sm-files-'));
  try {
    const s3 = await startS3rverPeer(ctx.projectRoot, BUCKET);
    peers.push(s3);
    const kin = await startKinesalitePeer(ctx.projectRoot);
    peers.push(kin);
    log(`s3rver ${s3.url}, kinesalite ${kin.url}; starting the nucleus`);
    nucleus = await NucleusChild.start(ctx.projectRoot, { s3: s3.url, kinesis: kin.url });
    const idleNoSm = await settledRss(nucleus.pid);
    const { port, token } = await nucleus.deploy();
    const sm = loadSdk();
    client = await connect(sm, port, token);
    const idleSm = await settledRss(nucleus.pid);
    log(`${SM} on port ${port}; nucleus RSS ${mib(idleNoSm)} MiB without it, ${mib(idleSm)} MiB with it idle`);

    const appends: Record<string, unknown> = {};
    const rssPeak: Record<string, number> = {};
    const cpu: Record<string, number> = {};
    const fast = await connect(sm, port, token, true);
    for (const [name, bytes, c] of [['1KiB', 1024, client], ['1KiBNoDelay', 1024, fast], ['64KiB', 64 * 1024, client]] as const) {
      log(`appends ${name} for ${ctx.seconds} s, ${WINDOW} in flight`);
      const r = await sampled(nucleus.pid, () => appendPhase(c, sm, bytes, ctx.seconds, problems));
      appends[name] = r.result;
      rssPeak[`appends${name}`] = mib(r.rssPeakBytes);
      cpu[`appends${name}`] = r.cpuPercent;
    }
    fast.close();

    const files = Array.from({ length: S3_FILES }, (_x, i) => {
      const f = path.join(dir, `f${i}.bin`);
      fs.writeFileSync(f, randomBytes(FILE_BYTES));
      return f;
    });
    log(`${S3_FILES} S3 tasks of 1 MiB files through the Stream Manager`);
    const s3r = await sampled(nucleus.pid, () => s3TaskPhase(client!, sm, files, problems));
    rssPeak['s3Tasks'] = mib(s3r.rssPeakBytes);
    cpu['s3Tasks'] = s3r.cpuPercent;
    log('the same files through the Uplink\'s S3 exporter');
    const uplink = await uplinkPhase(files, s3.url);
    log('the same files through the S3 task exporter alone, in this process');
    const alone = await s3ExporterAlonePhase(files, s3.url);

    log(`${KINESIS_RECORDS} records of 1 KiB exported to kinesalite`);
    const kr = await sampled(nucleus.pid, () => kinesisPhase(client!, sm, kin.url, problems));
    rssPeak['kinesis'] = mib(kr.rssPeakBytes);
    cpu['kinesis'] = kr.cpuPercent;

    const figures = {
      machine: describeMachine(),
      window: WINDOW,
      appends,
      s3: { files: S3_FILES, fileMiB: FILE_BYTES / 1024 / 1024, streamManagerTasks: s3r.result, s3TaskExporterAlone: alone, uplinkS3Exporter: uplink },
      kinesis: kr.result,
      rssMiB: {
        nucleusIdleWithoutStreamManager: mib(idleNoSm),
        nucleusIdleWithStreamManager: mib(idleSm),
        streamManagerIdle: mib(idleSm - idleNoSm),
        peak: rssPeak,
        streamManagerPeak: mib(Math.max(...Object.values(rssPeak)) * 1024 * 1024 - idleNoSm),
      },
      nucleusCpuPercent: cpu,
    };
    return { figures, problems };
  } finally {
    client?.close();
    await nucleus?.stop();
    for (const p of peers) await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function formatStreamManagerReport(f: Record<string, unknown>): string {
  const a = f['appends'] as Record<string, { appendsPerS: number; mbPerS: number; p50Ms: number; p99Ms: number }>;
  const s3 = f['s3'] as { files: number; streamManagerTasks: { tasksPerS: number; mbPerS: number; seconds: number }; s3TaskExporterAlone: { tasksPerS: number; mbPerS: number }; uplinkS3Exporter: { objectsPerS: number; mbPerS: number; seconds: number } };
  const k = f['kinesis'] as { records: number; recordsPerS: number; seconds: number; mbPerS: number };
  const r = f['rssMiB'] as { nucleusIdleWithoutStreamManager: number; nucleusIdleWithStreamManager: number; streamManagerIdle: number; peak: Record<string, number>; streamManagerPeak: number };
  const cpu = f['nucleusCpuPercent'] as Record<string, number>;
  return [
    ...Object.entries(a).map(([size, x]) => `append ${size}${size.endsWith('NoDelay') ? ' (client socket with TCP_NODELAY)' : ''}: ${x.appendsPerS} appends/s, ${x.mbPerS} MB/s (latency p50 ${x.p50Ms} ms, p99 ${x.p99Ms} ms; ${f['window']} in flight; nucleus CPU ${cpu[`appends${size}`]} %)`),
    `S3 tasks, ${s3.files} x 1 MiB: Stream Manager ${s3.streamManagerTasks.tasksPerS} files/s, ${s3.streamManagerTasks.mbPerS} MB/s (${s3.streamManagerTasks.seconds} s, enabled to last Success status); the S3 task exporter alone ${s3.s3TaskExporterAlone.tasksPerS} files/s, ${s3.s3TaskExporterAlone.mbPerS} MB/s; Uplink S3 exporter ${s3.uplinkS3Exporter.objectsPerS} files/s, ${s3.uplinkS3Exporter.mbPerS} MB/s (${s3.uplinkS3Exporter.seconds} s)`,
    `Kinesis: ${k.records} records of 1 KiB exported in ${k.seconds} s once enabled: ${k.recordsPerS} records/s, ${k.mbPerS} MB/s`,
    `nucleus RSS: ${r.nucleusIdleWithoutStreamManager} MiB idle without the Stream Manager, ${r.nucleusIdleWithStreamManager} MiB with it idle (+${r.streamManagerIdle} MiB); peaks ${Object.entries(r.peak).map(([p, v]) => `${p} ${v}`).join(', ')} MiB (Stream Manager at most +${r.streamManagerPeak} MiB)`,
  ].join('\n');
}

/**
 * The Stream Manager's exporters against real peers on loopback: s3TaskExecutor against s3rver (and a
 * fault-injecting front for 5xx and a store that is away), kinesis against kinesalite (and a front
 * that fails some records of a PutRecords, as Kinesis does under throttling), http against a
 * loopback HTTP server, and the IoT SiteWise recorder against its file.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CreateStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createHttpExporter } from '../../scripts/runtime/stream-manager/exporters/http';
import { createKinesisExporter } from '../../scripts/runtime/stream-manager/exporters/kinesis';
import { createS3TaskExporter, MIB } from '../../scripts/runtime/stream-manager/exporters/s3-task';
import { createSiteWiseRecorder } from '../../scripts/runtime/stream-manager/exporters/sitewise';
import type { ExportEnvironment, StoredMessage } from '../../scripts/runtime/stream-manager/types';
import { startFaultProxy, startS3rver, type FaultProxy, type S3rver } from '../helpers/s3rver';
import { startNucleus, type Harness } from '../helpers/nucleus';
import { waitFor } from '../helpers/wait';
import { connectClient, definition, sm, type SmClient } from '../unit/stream-manager-helpers';

interface TestEnv extends ExportEnvironment {
  statuses: Map<string, Array<Record<string, unknown>>>;
  logs: Array<{ level: string; msg: string; f?: object }>;
}

function testEnv(endpoints: ExportEnvironment['endpoints'], statusStreams: string[] = ['status']): TestEnv {
  const statuses = new Map<string, Array<Record<string, unknown>>>(statusStreams.map((s) => [s, []]));
  const logs: TestEnv['logs'] = [];
  return {
    region: 'us-east-1',
    endpoints,
    statuses,
    logs,
    appendToStream(name, payload) {
      const s = statuses.get(name);
      if (!s) return Promise.reject(new Error(`stream ${name} not found`));
      s.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>);
      return Promise.resolve(s.length - 1);
    },
    log: {
      info: (msg, f) => void logs.push({ level: 'info', msg, ...(f ? { f } : {}) }),
      warn: (msg, f) => void logs.push({ level: 'warn', msg, ...(f ? { f } : {}) }),
      error: (msg, f) => void logs.push({ level: 'error', msg, ...(f ? { f } : {}) }),
    },
  };
}

let seq = 0;
function msg(payload: string | Buffer, streamName = 'tasks'): StoredMessage {
  return { streamName, sequenceNumber: seq++, ingestTime: Date.now(), payload: typeof payload === 'string' ? Buffer.from(payload) : payload };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-exporters-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function file(name: string, bytes: Buffer | string): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, bytes);
  return p;
}

describe('s3TaskExecutor against s3rver', () => {
  let s3: S3rver;
  let proxy: FaultProxy;
  beforeAll(async () => {
    s3 = await startS3rver('sm-bucket');
    proxy = await startFaultProxy(s3.url);
  });
  afterAll(async () => {
    await proxy.close();
    await s3.stop();
  });

  async function body(key: string): Promise<Buffer> {
    const got = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return Buffer.from(await got.Body!.transformToByteArray());
  }

  it('uploads each task file to its bucket and key, with metadata and the key pattern, and reports InProgress then Success', async () => {
    const env = testEnv({ s3: s3.url });
    const ex = createS3TaskExporter({ identifier: 's3-export', statusConfig: { statusStreamName: 'status' } }, 'tasks', env);
    const a = file('a.csv', 'ts,power\n1,2\n');
    const b = file('b.bin', Buffer.from([0, 1, 2, 255]));
    const today = new Date();
    const day = `${today.getUTCFullYear()}/${String(today.getUTCMonth() + 1).padStart(2, '0')}/${String(today.getUTCDate()).padStart(2, '0')}`;
    const batch = [
      msg(JSON.stringify({ inputUrl: `file:${a}`, bucket: s3.bucket, key: 'site-1/!{timestamp:yyyy/MM/dd}/a.csv', userMetadata: { site: 'S1' } })),
      msg(JSON.stringify({ inputUrl: `file://${b}`, bucket: s3.bucket, key: 'plain/b.bin' })),
    ];
    await ex.send(batch);
    expect((await body(`site-1/${day}/a.csv`)).toString()).toBe('ts,power\n1,2\n');
    expect(await body('plain/b.bin')).toEqual(Buffer.from([0, 1, 2, 255]));
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `site-1/${day}/a.csv` }));
    expect(head.Metadata).toEqual({ site: 'S1' });
    const st = env.statuses.get('status')!;
    expect(st.map((s) => [s['status'], s['statusContext'] && (s['statusContext'] as Record<string, unknown>)['sequenceNumber']])).toEqual([
      [2, batch[0]!.sequenceNumber],
      [0, batch[0]!.sequenceNumber],
      [2, batch[1]!.sequenceNumber],
      [0, batch[1]!.sequenceNumber],
    ]);
    expect(st[1]).toMatchObject({
      eventType: 0,
      statusLevel: 2,
      status: 0,
      statusContext: { s3ExportTaskDefinition: { inputUrl: `file:${a}`, bucket: s3.bucket, key: 'site-1/!{timestamp:yyyy/MM/dd}/a.csv', userMetadata: { site: 'S1' } }, exportIdentifier: 's3-export', streamName: 'tasks' },
    });
    expect(typeof st[1]!['timestampEpochMs']).toBe('number');
    expect(ex.uploaded).toMatchObject({ tasks: 2, multipart: 0 });
    await ex.close();
  });

  it('uploads a file above the threshold in 5 MiB parts (DEBUG shows each part)', async () => {
    const env = testEnv({ s3: s3.url });
    const ex = createS3TaskExporter({ identifier: 'big', sizeThresholdForMultipartUploadBytes: 5 * MIB, statusConfig: { statusStreamName: 'status', statusLevel: 3 } }, 'tasks', env);
    const data = Buffer.alloc(12 * MIB + 123);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i);
    const f = file('big.bin', data);
    await ex.send([msg(JSON.stringify({ inputUrl: `file:${f}`, bucket: s3.bucket, key: 'big/big.bin' }))]);
    expect((await body('big/big.bin')).equals(data)).toBe(true);
    expect(ex.uploaded.multipart).toBe(1);
    const st = env.statuses.get('status')!;
    expect(st.map((s) => s['status'])).toEqual([2, 2, 2, 2, 0]);
    expect(st.filter((s) => s['statusLevel'] === 3).map((s) => s['message'])).toEqual([expect.stringMatching(/part 1 of 3/), expect.stringMatching(/part 2 of 3/), expect.stringMatching(/part 3 of 3/)]);
    await ex.close();
  });

  it('a missing file, bad JSON, a missing field and a bucket that does not exist: Failure statuses, the batch resolves and the good task is uploaded', async () => {
    const env = testEnv({ s3: s3.url });
    const ex = createS3TaskExporter({ identifier: 'bad', statusConfig: { statusStreamName: 'status', statusLevel: 0 } }, 'tasks', env);
    const good = file('good.txt', 'good');
    const batch = [
      msg(JSON.stringify({ inputUrl: `file:${path.join(tmp, 'nope.txt')}`, bucket: s3.bucket, key: 'x/nope.txt' })),
      msg('{"inputUrl": '),
      msg(JSON.stringify({ inputUrl: `file:${good}`, key: 'x/no-bucket.txt' })),
      msg(JSON.stringify({ inputUrl: `file:${good}`, bucket: 'no-such-bucket', key: 'x/good.txt' })),
      msg(JSON.stringify({ inputUrl: `file:${good}`, bucket: s3.bucket, key: 'x/!{timestamp:yyyy VV}' })),
      msg(JSON.stringify({ inputUrl: `file:${good}`, bucket: s3.bucket, key: 'x/good.txt' })),
    ];
    await ex.send(batch);
    const st = env.statuses.get('status')!;
    // ERROR level: only the failures, one per bad task.
    expect(st.map((s) => [s['status'], (s['statusContext'] as Record<string, unknown>)['sequenceNumber']])).toEqual(batch.slice(0, 5).map((m) => [1, m.sequenceNumber]));
    expect(st[0]!['message']).toMatch(/nope\.txt/);
    expect(st[1]!['statusContext']).not.toHaveProperty('s3ExportTaskDefinition');
    expect(st[2]!['message']).toMatch(/bucket is missing/);
    expect(st[3]!['message']).toMatch(/NoSuchBucket/);
    expect(st[4]!['message']).toMatch(/VV|'V'/);
    expect((await body('x/good.txt')).toString()).toBe('good');
    expect(ex.rejections.byReason).toEqual({ input_file: 1, not_json: 1, bucket: 1, s3_refused: 1, key_pattern: 1 });
    expect(env.logs.filter((l) => l.level === 'error').length).toBeGreaterThanOrEqual(1);
    await ex.close();
  });

  it('without a status stream the tasks still run (the missing stream is logged)', async () => {
    const env = testEnv({ s3: s3.url }, []);
    const ex = createS3TaskExporter({ identifier: 'nostatus', statusConfig: { statusStreamName: 'gone' } }, 'tasks', env);
    await ex.send([msg(JSON.stringify({ inputUrl: `file:${file('ns.txt', 'ns')}`, bucket: s3.bucket, key: 'ns/ns.txt' }))]);
    expect((await body('ns/ns.txt')).toString()).toBe('ns');
    expect(env.logs.some((l) => l.level === 'warn' && /status stream/.test(l.msg))).toBe(true);
    await ex.close();
  });

  it('a 5xx or a store that is away rejects the batch; the retry does not upload the tasks that already succeeded', async () => {
    const env = testEnv({ s3: proxy.url });
    // When the first task reports Success, the store answers the next request with a 500.
    const append = env.appendToStream.bind(env);
    let armed = true;
    env.appendToStream = async (name, payload) => {
      const n = await append(name, payload);
      if (armed && (JSON.parse(payload.toString()) as { status: number }).status === 0) {
        armed = false;
        proxy.fail500(1);
      }
      return n;
    };
    const ex = createS3TaskExporter({ identifier: 'flaky', statusConfig: { statusStreamName: 'status' } }, 'tasks', env);
    const batch = [1, 2, 3].map((i) => msg(JSON.stringify({ inputUrl: `file:${file(`f${i}.txt`, `f${i}`)}`, bucket: s3.bucket, key: `flaky/f${i}.txt` })));
    proxy.putLog.length = 0;
    await expect(ex.send(batch)).rejects.toThrow(/InternalError/);
    expect(proxy.counts.injected500).toBeGreaterThanOrEqual(1);
    // The store is away: a connection error rejects too.
    proxy.setDown(true);
    await expect(ex.send(batch)).rejects.toThrow();
    proxy.setDown(false);
    await ex.send(batch);
    // One successful PUT per task, none twice; no Failure status (a transient error is not a failed task).
    expect(proxy.putLog.filter((e) => e.status === 200).map((e) => e.path)).toEqual(['/sm-bucket/flaky/f1.txt', '/sm-bucket/flaky/f2.txt', '/sm-bucket/flaky/f3.txt']);
    expect(env.statuses.get('status')!.filter((s) => s['status'] === 1)).toEqual([]);
    expect(env.statuses.get('status')!.filter((s) => s['status'] === 0)).toHaveLength(3);
    const list = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'flaky/' }));
    expect(list.KeyCount).toBe(3);
    await ex.close();
  });

  it('a multipart upload that meets a 500 half-way is continued by the retry: only the parts S3 does not have are sent', async () => {
    const env = testEnv({ s3: proxy.url });
    // When part 1 is in (its DEBUG status), the store answers the next request (part 2) with a 500.
    const append = env.appendToStream.bind(env);
    let armed = true;
    env.appendToStream = async (name, payload) => {
      const n = await append(name, payload);
      if (armed && /part 1 of 3/.test((JSON.parse(payload.toString()) as { message: string }).message)) {
        armed = false;
        proxy.fail500(1);
      }
      return n;
    };
    const ex = createS3TaskExporter({ identifier: 'resume', statusConfig: { statusStreamName: 'status', statusLevel: 3 } }, 'tasks', env);
    const data = Buffer.alloc(11 * MIB);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i ^ 0x5a5a5a5a, i);
    const batch = [msg(JSON.stringify({ inputUrl: `file:${file('resume.bin', data)}`, bucket: s3.bucket, key: 'resume/resume.bin' }))];
    proxy.putLog.length = 0;
    await expect(ex.send(batch)).rejects.toThrow(/InternalError/);
    await ex.send(batch);
    expect((await body('resume/resume.bin')).equals(data)).toBe(true);
    // Parts are PUTs: 1 and 3 once, 2 twice (the 500, then the retry); part 1 was not sent again.
    expect(proxy.putLog.map((e) => e.status)).toEqual([200, 500, 200, 200]);
    expect(ex.uploaded).toMatchObject({ tasks: 1, multipart: 1, resumedParts: 1 });
    expect(env.statuses.get('status')!.filter((s) => s['status'] === 1)).toEqual([]);
    await ex.close();
  });

  it('expired credentials reject (not a Failure), and the retry asks the Token Exchange Service again', async () => {
    proxy.checkTokenExpiry(true);
    try {
      const env = testEnv({ s3: proxy.url });
      let asked = 0;
      // The TES's session tokens carry their expiry (local-<expiresAtMs>-<n>); the first one has already expired.
      env.credentials = () => {
        asked++;
        const expiresAt = asked === 1 ? Date.now() - 1000 : Date.now() + 3_600_000;
        return Promise.resolve({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', sessionToken: `local-${expiresAt}-${asked}` });
      };
      const ex = createS3TaskExporter({ identifier: 'tes', statusConfig: { statusStreamName: 'status', statusLevel: 0 } }, 'tasks', env);
      const batch = [msg(JSON.stringify({ inputUrl: `file:${file('tes.txt', 'tes')}`, bucket: s3.bucket, key: 'tes/tes.txt' }))];
      await expect(ex.send(batch)).rejects.toThrow(/ExpiredToken/);
      await ex.send(batch);
      expect(asked).toBe(2);
      expect((await body('tes/tes.txt')).toString()).toBe('tes');
      expect(env.statuses.get('status')).toEqual([]);
      await ex.close();
    } finally {
      proxy.checkTokenExpiry(false);
    }
  });
});

/** kinesalite on a loopback port, and a front that can fail every other record of the next PutRecords. */
async function startKinesalite(): Promise<{ url: string; close(): Promise<void> }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const kinesalite = require('kinesalite') as (o: object) => http.Server;
  const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

interface KinesisFront {
  url: string;
  /** The next PutRecords: records at odd positions are answered ProvisionedThroughputExceededException and not forwarded. */
  failOddOnce(): void;
  putRecordsCalls: number;
  close(): Promise<void>;
}

async function startKinesisFront(target: string): Promise<KinesisFront> {
  const t = new URL(target);
  let failOdd = false;
  const front: KinesisFront = {
    url: '',
    failOddOnce: () => void (failOdd = true),
    putRecordsCalls: 0,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let bodyIn = Buffer.concat(chunks);
      const isPut = String(req.headers['x-amz-target'] ?? '').endsWith('.PutRecords');
      if (isPut) front.putRecordsCalls++;
      let failed: number[] = [];
      let total = 0;
      if (isPut && failOdd) {
        failOdd = false;
        const j = JSON.parse(bodyIn.toString('utf8')) as { StreamName: string; Records: unknown[] };
        total = j.Records.length;
        failed = j.Records.map((_r, i) => i).filter((i) => i % 2 === 1);
        j.Records = j.Records.filter((_r, i) => i % 2 === 0);
        bodyIn = Buffer.from(JSON.stringify(j));
      }
      const headers = { ...req.headers, 'content-length': String(bodyIn.length) };
      const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers }, (r) => {
        const out: Buffer[] = [];
        r.on('data', (c: Buffer) => out.push(c));
        r.on('end', () => {
          let bodyOut = Buffer.concat(out);
          if (failed.length > 0 && r.statusCode === 200) {
            const j = JSON.parse(bodyOut.toString('utf8')) as { FailedRecordCount: number; Records: unknown[] };
            const ok = [...j.Records];
            j.Records = Array.from({ length: total }, (_x, i) => (failed.includes(i) ? { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: 'Rate exceeded for shard (injected)' } : ok.shift()));
            j.FailedRecordCount = failed.length;
            bodyOut = Buffer.from(JSON.stringify(j));
          }
          res.writeHead(r.statusCode ?? 502, { ...r.headers, 'content-length': String(bodyOut.length) });
          res.end(bodyOut);
        });
      });
      up.on('error', () => (res.writeHead(502), res.end()));
      up.end(bodyIn);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  front.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return front;
}

describe('kinesis against kinesalite', () => {
  let kin: { url: string; close(): Promise<void> };
  let front: KinesisFront;
  let client: KinesisClient;
  beforeAll(async () => {
    kin = await startKinesalite();
    front = await startKinesisFront(kin.url);
    client = new KinesisClient({ region: 'us-east-1', endpoint: kin.url, credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, requestHandler: new NodeHttpHandler() });
  });
  afterAll(async () => {
    client.destroy();
    await front.close();
    await kin.close();
  });

  async function createStream(name: string, shards: number): Promise<void> {
    await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  }
  async function records(name: string): Promise<Array<{ data: string; key: string }>> {
    const out: Array<{ data: string; key: string }> = [];
    const shards = await client.send(new ListShardsCommand({ StreamName: name }));
    for (const s of shards.Shards ?? []) {
      let it = (await client.send(new GetShardIteratorCommand({ StreamName: name, ShardId: s.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      for (;;) {
        const got = await client.send(new GetRecordsCommand({ ShardIterator: it! }));
        for (const r of got.Records ?? []) out.push({ data: Buffer.from(r.Data!).toString('utf8'), key: r.PartitionKey! });
        if (!got.Records?.length) break;
        it = got.NextShardIterator;
      }
    }
    return out;
  }

  it('puts every message as one record with a random partition key, 500 records a request at most', async () => {
    await createStream('telemetry', 2);
    const ex = createKinesisExporter({ identifier: 'k', kinesisStreamName: 'telemetry' }, 'src', testEnv({ kinesis: front.url }));
    const calls = front.putRecordsCalls;
    const batch = Array.from({ length: 620 }, (_x, i) => msg(`m-${i}`, 'src'));
    await ex.send(batch);
    expect(front.putRecordsCalls - calls).toBe(2);
    const got = await records('telemetry');
    expect(got.map((r) => r.data).sort()).toEqual(batch.map((m) => m.payload.toString()).sort());
    expect(new Set(got.map((r) => r.key)).size).toBe(620);
    expect(got.every((r) => /^[0-9a-f-]{36}$/.test(r.key))).toBe(true);
    expect(ex.counts).toMatchObject({ records: 620, failedRecords: 0 });
    await ex.close();
  });

  it('a partial failure rejects the batch, and the retry sends only the records that failed: each record once in the stream', async () => {
    await createStream('partial', 1);
    const ex = createKinesisExporter({ identifier: 'k', kinesisStreamName: 'partial' }, 'src', testEnv({ kinesis: front.url }));
    const batch = Array.from({ length: 10 }, (_x, i) => msg(`p-${i}`, 'src'));
    front.failOddOnce();
    await expect(ex.send(batch)).rejects.toThrow(/5 of 10 records failed \(ProvisionedThroughputExceededException/);
    expect((await records('partial')).length).toBe(5);
    await ex.send(batch);
    const got = await records('partial');
    expect(got.map((r) => r.data).sort()).toEqual(batch.map((m) => m.payload.toString()).sort());
    expect(ex.counts).toMatchObject({ records: 10, failedRecords: 5 });
    await ex.close();
  });

  it('a stream that does not exist rejects with what Kinesis said; a record over 1 MiB is skipped and counted', async () => {
    const env = testEnv({ kinesis: kin.url });
    const missing = createKinesisExporter({ identifier: 'k', kinesisStreamName: 'nope' }, 'src', env);
    await expect(missing.send([msg('x', 'src')])).rejects.toThrow(/ResourceNotFoundException/);
    await missing.close();
    await createStream('sizes', 1);
    const ex = createKinesisExporter({ identifier: 'k', kinesisStreamName: 'sizes' }, 'src', env);
    await ex.send([msg('small', 'src'), msg(Buffer.alloc(1024 * 1024, 1), 'src'), msg('after', 'src')]);
    expect((await records('sizes')).map((r) => r.data)).toEqual(['small', 'after']);
    expect(ex.rejections.byReason).toEqual({ record_too_large: 1 });
    await ex.close();
  });

  it('no answer at all (the endpoint is closed) rejects', async () => {
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((r) => dead.close(() => r()));
    const ex = createKinesisExporter({ identifier: 'k', kinesisStreamName: 'telemetry' }, 'src', testEnv({ kinesis: url }));
    await expect(ex.send([msg('x', 'src')])).rejects.toThrow(/ECONNREFUSED/);
    await ex.close();
  });
});

describe('http against a loopback server', () => {
  let server: http.Server;
  let url: string;
  const got: Array<{ type: string; body: Buffer }> = [];
  let failNext = 0;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--;
          res.writeHead(503).end('busy');
          return;
        }
        got.push({ type: String(req.headers['content-type']), body: Buffer.concat(chunks) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest`;
  });
  afterAll(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  beforeEach(() => {
    got.length = 0;
  });

  it('RAW_NOT_BATCHED: one POST per message with its bytes', async () => {
    const ex = createHttpExporter({ identifier: 'h', uri: url, exportFormat: 0 }, 'src', testEnv({}));
    const batch = [msg('a', 'src'), msg(Buffer.from([0, 255]), 'src'), msg('c', 'src')];
    await ex.send(batch);
    expect(got.map((g) => g.body)).toEqual(batch.map((m) => m.payload));
    expect(got[0]!.type).toBe('application/octet-stream');
  });

  it('JSON_BATCHED: one POST with the batch as Message objects, payloads base64', async () => {
    const ex = createHttpExporter({ identifier: 'h', uri: url, exportFormat: 1 }, 'src', testEnv({}));
    const batch = [msg('a', 'src'), msg('b', 'src')];
    await ex.send(batch);
    expect(got).toHaveLength(1);
    expect(got[0]!.type).toBe('application/json');
    expect(JSON.parse(got[0]!.body.toString())).toEqual(batch.map((m) => ({ streamName: 'src', sequenceNumber: m.sequenceNumber, ingestTime: m.ingestTime, payload: m.payload.toString('base64') })));
  });

  it('a non-2xx answer rejects with the status; the retry sends only what was not delivered', async () => {
    const ex = createHttpExporter({ identifier: 'h', uri: url }, 'src', testEnv({}));
    const batch = [msg('1', 'src'), msg('2', 'src'), msg('3', 'src')];
    // The first message is delivered, the second meets a 503.
    let calls = 0;
    const origPush = got.push.bind(got);
    got.push = (...items) => {
      calls++;
      if (calls === 1) failNext = 1;
      return origPush(...items);
    };
    await expect(ex.send(batch)).rejects.toThrow(/HTTP 503 busy/);
    got.push = origPush;
    await ex.send(batch);
    expect(got.map((g) => g.body.toString())).toEqual(['1', '2', '3']);
  });
});

describe('IotSitewise recorder', () => {
  it('records valid entries as JSON lines and counts and logs the rest', async () => {
    const out = path.join(tmp, 'sw', 'entries.jsonl');
    const env = testEnv({ sitewiseFile: out });
    const ex = createSiteWiseRecorder({ identifier: 'sw' }, 'site', env);
    const s = Math.floor(Date.now() / 1000);
    const entry = (id: string, over: Record<string, unknown> = {}): string => JSON.stringify({ entryId: id, propertyAlias: '/site/inv1/power', propertyValues: [{ value: { doubleValue: 42.5 }, timestamp: { timeInSeconds: s, offsetInNanos: 5 }, quality: 'GOOD' }], ...over });
    const batch = [
      msg(entry('e1'), 'site'),
      msg('not json', 'site'),
      msg(entry('e2', { propertyValues: [] }), 'site'),
      msg(entry('e1'), 'site'), // the same entryId twice in one request
      msg(entry('e3', { propertyValues: [{ value: { integerValue: 7 }, timestamp: { timeInSeconds: s - 30 * 86400, offsetInNanos: 0 } }] }), 'site'),
      ...Array.from({ length: 8 }, (_x, i) => msg(entry(`n${i}`), 'site')),
    ];
    await ex.send(batch);
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { entry: { entryId: string }; sequenceNumber: number; exportIdentifier: string });
    expect(lines.map((l) => l.entry.entryId)).toEqual(['e1', ...Array.from({ length: 8 }, (_x, i) => `n${i}`)]);
    expect(lines[0]).toMatchObject({ exportIdentifier: 'sw', streamName: 'site', sequenceNumber: batch[0]!.sequenceNumber, entry: JSON.parse(entry('e1')) as object });
    expect(ex.rejections.byReason).toEqual({ not_json: 1, property_values: 1, duplicate_entry_id: 1, timestamp_out_of_range: 1 });
    // 13 entries: two requests of at most 10.
    expect(ex.counts).toMatchObject({ entries: 9, values: 9, requests: 2 });
    expect(env.logs.filter((l) => l.level === 'warn').length).toBeGreaterThanOrEqual(1);
    await ex.close();
  });
});

/**
 * The whole path: AWS's client appends what AWS's SDK serialises (S3ExportTaskDefinition,
 * PutAssetPropertyValueEntry via util.validateAndSerializeToJsonBytes) to the local runtime's
 * Stream Manager, whose exporters deliver to s3rver, kinesalite and the SiteWise file, and the
 * client reads the S3 task's StatusMessages back with the SDK's own deserialiser.
 */
describe('through the local runtime, with AWS\'s client', () => {
  let s3: S3rver;
  let kin: { url: string; close(): Promise<void> };
  let kinClient: KinesisClient;
  let h: Harness;
  let client: SmClient;
  const sitewiseFile = path.join(tmp, 'runtime-sitewise.jsonl');
  const SM = 'aws.greengrass.StreamManager';

  beforeAll(async () => {
    s3 = await startS3rver('sm-runtime');
    kin = await startKinesalite();
    kinClient = new KinesisClient({ region: 'us-east-1', endpoint: kin.url, credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, requestHandler: new NodeHttpHandler() });
    h = await startNucleus({
      tes: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', lifetimeMs: 3_600_000 },
      streamManager: { endpoints: { s3: s3.url, kinesis: kin.url, sitewiseFile }, retryInitialMs: 50, retryMaxMs: 500 },
    });
    const d = await h.run({ rootComponentsToAdd: { [SM]: '2.2.1' }, configuration: { [SM]: { merge: { STREAM_MANAGER_SERVER_PORT: '0' }, reset: [] } } });
    expect(d.status).toBe('SUCCEEDED');
    await waitFor(() => h.nucleus.streamManager.running !== undefined, 10_000, 'the Stream Manager to run');
    // A component's token, as the nucleus gives it to a component that depends on the Stream Manager.
    client = await connectClient(h.nucleus.streamManager.running!.port, h.nucleus.tokenFor(SM));
  }, 60_000);
  afterAll(async () => {
    client?.close();
    await h?.close();
    kinClient?.destroy();
    await kin?.close();
    await s3?.stop();
  });

  async function exported(stream: string, lastSeq: number): Promise<void> {
    await waitFor(async () => {
      const info = await client.describeMessageStream(stream);
      const st = info.exportStatuses?.[0];
      return st !== undefined && st.lastExportedSequenceNumber >= lastSeq;
    }, 20_000, `${stream} exported up to ${lastSeq}`);
  }

  it('S3 tasks: the file lands in s3rver and the status stream says InProgress then Success, readable as the SDK\'s StatusMessage', async () => {
    await client.createMessageStream(definition('S3Status'));
    const statusConfig = new sm.StatusConfig().withStatusLevel(sm.StatusLevel.INFO).withStatusStreamName('S3Status');
    await client.createMessageStream(definition('S3Tasks').withExportDefinition(new sm.ExportDefinition().withS3TaskExecutor([new sm.S3ExportTaskExecutorConfig().withIdentifier('s3-tasks').withStatusConfig(statusConfig)])));
    const f = file('runtime.csv', 'a,b\n1,2\n');
    const task = new sm.S3ExportTaskDefinition().withInputUrl(`file:${f}`).withBucket(s3.bucket).withKey('runtime/!{timestamp:yyyy}/runtime.csv').withUserMetadata({ site: 'S1' });
    const seqNo = await client.appendMessage('S3Tasks', sm.util.validateAndSerializeToJsonBytes(task));
    const statuses: Array<Record<string, any>> = [];
    let next = 0;
    while (!statuses.some((s) => s.status === sm.Status.Success || s.status === sm.Status.Failure)) {
      const got = await client.readMessages('S3Status', new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(next).withMinMessageCount(1).withMaxMessageCount(10).withReadTimeoutMillis(10_000));
      for (const m of got) statuses.push(sm.util.deserializeJsonBytesToObj(m.payload, sm.StatusMessage));
      next = got[got.length - 1]!.sequenceNumber + 1;
    }
    expect(statuses.map((s) => s.status)).toEqual([sm.Status.InProgress, sm.Status.Success]);
    const ok = statuses[1]!;
    expect(ok.eventType).toBe(sm.EventType.S3Task);
    expect(ok.statusLevel).toBe(sm.StatusLevel.INFO);
    expect(ok.statusContext.exportIdentifier).toBe('s3-tasks');
    expect(ok.statusContext.streamName).toBe('S3Tasks');
    expect(ok.statusContext.sequenceNumber).toBe(seqNo);
    expect(ok.statusContext.s3ExportTaskDefinition.bucket).toBe(s3.bucket);
    expect(ok.statusContext.s3ExportTaskDefinition.inputUrl).toBe(`file:${f}`);
    expect(typeof ok.timestampEpochMs).toBe('number');
    const key = `runtime/${new Date().getUTCFullYear()}/runtime.csv`;
    const got = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).toString()).toBe('a,b\n1,2\n');
    expect(got.Metadata).toEqual({ site: 'S1' });
  });

  it('kinesis: appended messages arrive in kinesalite, in order', async () => {
    await kinClient.send(new CreateStreamCommand({ StreamName: 'runtime-k', ShardCount: 1 }));
    await client.createMessageStream(definition('ToKinesis').withExportDefinition(new sm.ExportDefinition().withKinesis([new sm.KinesisConfig().withIdentifier('k').withKinesisStreamName('runtime-k').withBatchSize(2)])));
    let last = 0;
    for (const p of ['k1', 'k2', 'k3']) last = await client.appendMessage('ToKinesis', Buffer.from(p));
    await exported('ToKinesis', last);
    const shards = await kinClient.send(new ListShardsCommand({ StreamName: 'runtime-k' }));
    const it0 = await kinClient.send(new GetShardIteratorCommand({ StreamName: 'runtime-k', ShardId: shards.Shards![0]!.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }));
    const recs = await kinClient.send(new GetRecordsCommand({ ShardIterator: it0.ShardIterator! }));
    expect((recs.Records ?? []).map((r) => Buffer.from(r.Data!).toString())).toEqual(['k1', 'k2', 'k3']);
  });

  it('kinesis: a 200 KiB message appended by AWS\'s client arrives whole in kinesalite (the client does not cut it)', async () => {
    await kinClient.send(new CreateStreamCommand({ StreamName: 'runtime-big', ShardCount: 1 }));
    await client.createMessageStream(definition('ToKinesisBig').withExportDefinition(new sm.ExportDefinition().withKinesis([new sm.KinesisConfig().withIdentifier('kb').withKinesisStreamName('runtime-big')])));
    const big = Buffer.alloc(200 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
    const last = await client.appendMessage('ToKinesisBig', big);
    await exported('ToKinesisBig', last);
    const shards = await kinClient.send(new ListShardsCommand({ StreamName: 'runtime-big' }));
    const it0 = await kinClient.send(new GetShardIteratorCommand({ StreamName: 'runtime-big', ShardId: shards.Shards![0]!.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }));
    const recs = await kinClient.send(new GetRecordsCommand({ ShardIterator: it0.ShardIterator! }));
    expect(recs.Records).toHaveLength(1);
    expect(Buffer.from(recs.Records![0]!.Data!).equals(big)).toBe(true);
  });

  it('IotSitewise: an entry the SDK serialised is recorded; a bad one is skipped and the stream moves on', async () => {
    await client.createMessageStream(definition('ToSiteWise').withExportDefinition(new sm.ExportDefinition().withIotSitewise([new sm.IoTSiteWiseConfig().withIdentifier('sw').withBatchSize(5)])));
    const now = Math.floor(Date.now() / 1000);
    const value = new sm.AssetPropertyValue().withValue(new sm.Variant().withDoubleValue(12.5)).withQuality(sm.Quality.GOOD).withTimestamp(new sm.TimeInNanos().withTimeInSeconds(now).withOffsetInNanos(7));
    const entry = new sm.PutAssetPropertyValueEntry().withEntryId('runtime-1').withPropertyAlias('/site/inv1/power').withPropertyValues([value]);
    await client.appendMessage('ToSiteWise', Buffer.from('{"entryId": 7}'));
    const last = await client.appendMessage('ToSiteWise', sm.util.validateAndSerializeToJsonBytes(entry));
    await exported('ToSiteWise', last);
    const lines = fs.readFileSync(sitewiseFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { entry: any; streamName: string });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.streamName).toBe('ToSiteWise');
    expect(lines[0]!.entry).toMatchObject({ entryId: 'runtime-1', propertyAlias: '/site/inv1/power', propertyValues: [{ value: { doubleValue: 12.5 }, quality: 'GOOD', timestamp: { timeInSeconds: now, offsetInNanos: 7 } }] });
  });

  it('an export config an exporter cannot use is refused at create time (InvalidRequest naming the key)', async () => {
    const bad = definition('BadKinesis').withExportDefinition(new sm.ExportDefinition().withKinesis([new sm.KinesisConfig().withIdentifier('k').withKinesisStreamName('no spaces allowed')]));
    await expect(client.createMessageStream(bad)).rejects.toThrow(/kinesisStreamName/);
  });
});

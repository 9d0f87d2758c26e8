/**
 * Stream Manager conformance: AWS's own client (aws-greengrass-core-sdk 1.7.0, `stream-manager/`,
 * protocol 1.1.0) against the local runtime's built-in Stream Manager (docs/stream-manager.md),
 * deployed as aws.greengrass.StreamManager with STREAM_MANAGER_SERVER_PORT 0. Each client gets the
 * port as a component would (IPC GetConfiguration of the component's `port`) and the token as a
 * component process has it (AWS_CONTAINER_AUTHORIZATION_TOKEN = its SVCUID).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { silentLogger } from '../../components/lib/logger';
import { connectIpc } from '../../scripts/runtime/client';
import { Nucleus, createNucleus } from '../../scripts/runtime/nucleus';
import type { ExportEnvironment, ExportKind, ExporterFactory, StoredMessage } from '../../scripts/runtime/stream-manager/types';
import { Harness, startNucleus } from '../helpers/nucleus';
import { waitFor } from '../helpers/wait';
import { SmClient, connectClient, definition, sm, uncheckedDefinition } from '../unit/stream-manager-helpers';

const SM = 'aws.greengrass.StreamManager';
const A = 'com.test.SmWriter';
const B = 'com.test.SmReader';

const smConfig = { [SM]: { merge: { STREAM_MANAGER_SERVER_PORT: '0' }, reset: [] as string[] } };
const clientRecipe = (name: string) => ({ name, dependencies: { [SM]: { VersionRequirement: '^2.0.0', DependencyType: 'HARD' as const } } });

/** The port as a component reads it: GetConfiguration(aws.greengrass.StreamManager, ["port"]). */
async function portOf(nucleus: Nucleus, component: string): Promise<number> {
  const ipc = await connectIpc(nucleus.socketPath, nucleus.tokenFor(component));
  try {
    const r = await ipc.getConfiguration({ componentName: SM, keyPath: ['port'] });
    return Number((r.value as Record<string, unknown>)['port']);
  } finally {
    await ipc.close();
  }
}

/** An exporter that records what it was sent; `fail` makes it reject. */
function recordingExporters(): { factories: Partial<Record<ExportKind, ExporterFactory>>; sent: StoredMessage[][]; fail: { on: boolean } } {
  const sent: StoredMessage[][] = [];
  const fail = { on: false };
  const factory: ExporterFactory = () => ({
    kind: 'http',
    send: async (batch) => {
      if (fail.on) throw new Error('destination refused (test)');
      sent.push(batch);
    },
    close: async () => undefined,
  });
  return { factories: { http: factory, kinesis: factory }, sent, fail };
}

describe('Stream Manager conformance with AWS client', () => {
  let h: Harness;
  let port: number;
  let a: SmClient;
  let b: SmClient;
  let clock = Date.now();
  const exporters = recordingExporters();

  beforeAll(async () => {
    h = await startNucleus({ streamManager: { exporterFactories: exporters.factories, now: () => clock, ttlSweepMs: 50, retryInitialMs: 50, retryMaxMs: 200 } });
    const status = await h.deploy([clientRecipe(A), clientRecipe(B)], { configuration: smConfig });
    expect(status.status).toBe('SUCCEEDED');
    port = await portOf(h.nucleus, A);
    a = await connectClient(port, h.nucleus.tokenFor(A));
    b = await connectClient(port, h.nucleus.tokenFor(B));
  });

  afterAll(async () => {
    a?.close();
    b?.close();
    await h.close();
  });

  test('runs as the component aws.greengrass.StreamManager: RUNNING, on the port its configuration names', async () => {
    expect(h.nucleus.services.state(SM)).toBe('RUNNING');
    expect(port).toBeGreaterThan(0);
    expect(port).toBe(h.nucleus.streamManager.running!.port);
  });

  test('create, list, describe, update, delete', async () => {
    await a.createMessageStream(definition('crud').withMaxSize(4096).withStreamSegmentSize(1024).withPersistence(sm.Persistence.Memory));
    expect(await b.listStreams()).toContain('crud');
    const info = await b.describeMessageStream('crud');
    expect(info.definition.name).toBe('crud');
    expect(info.definition.maxSize).toBe(4096);
    expect(info.definition.streamSegmentSize).toBe(1024);
    expect(info.definition.strategyOnFull).toBe(sm.StrategyOnFull.OverwriteOldestData);
    expect(info.definition.persistence).toBe(sm.Persistence.Memory);
    expect(info.storageStatus.totalBytes).toBe(0);
    expect(info.exportStatuses ?? []).toEqual([]);

    await a.updateMessageStream(definition('crud').withMaxSize(8192).withStreamSegmentSize(2048).withPersistence(sm.Persistence.Memory).withTimeToLiveMillis(120000));
    const updated = await b.describeMessageStream('crud');
    expect(updated.definition.maxSize).toBe(8192);
    expect(updated.definition.timeToLiveMillis).toBe(120000);
    // Fields left out of an update go back to their defaults.
    await a.updateMessageStream(definition('crud').withPersistence(sm.Persistence.Memory));
    const reset = await b.describeMessageStream('crud');
    expect(reset.definition.maxSize).toBe(256 * 1024 * 1024);
    expect(reset.definition.timeToLiveMillis).toBeNull();

    await a.deleteMessageStream('crud');
    expect(await b.listStreams()).not.toContain('crud');
    await expect(b.describeMessageStream('crud')).rejects.toBeInstanceOf(sm.ResourceNotFoundException);
  });

  test('append and read: sequence numbers, payload bytes, ingest time, start and counts', async () => {
    await a.createMessageStream(definition('rw'));
    const seqs: number[] = [];
    for (let i = 0; i < 5; i++) seqs.push(await a.appendMessage('rw', Buffer.from(`m${i}`)));
    expect(seqs).toEqual([0, 1, 2, 3, 4]);
    const one = await b.readMessages('rw');
    expect(one).toHaveLength(1);
    expect(one[0]!.payload.toString()).toBe('m0');
    expect(one[0]!.streamName).toBe('rw');
    expect(one[0]!.ingestTime).toBe(clock);
    const some = await b.readMessages('rw', new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(2).withMinMessageCount(2).withMaxMessageCount(10));
    expect(some.map((m) => [m.sequenceNumber, m.payload.toString()])).toEqual([[2, 'm2'], [3, 'm3'], [4, 'm4']]);
    await expect(b.readMessages('rw', new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(5))).rejects.toBeInstanceOf(sm.NotEnoughMessagesException);
    await expect(b.readMessages('rw', new sm.ReadMessagesOptions().withMinMessageCount(6).withMaxMessageCount(6))).rejects.toBeInstanceOf(sm.NotEnoughMessagesException);
    const binary = Buffer.from([0, 255, 1, 254, 0]);
    const s = await a.appendMessage('rw', binary);
    expect((await b.readMessages('rw', new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(s)))[0]!.payload).toEqual(binary);
  });

  test('long poll: a read waits for the messages it asks for, other requests on the socket go on meanwhile', async () => {
    await a.createMessageStream(definition('poll'));
    const started = Date.now();
    const waiting = b.readMessages('poll', new sm.ReadMessagesOptions().withMinMessageCount(2).withMaxMessageCount(2).withReadTimeoutMillis(10000));
    // The same client's other requests are answered while its read waits.
    expect(await b.listStreams()).toContain('poll');
    await a.appendMessage('poll', Buffer.from('first'));
    await a.appendMessage('poll', Buffer.from('second'));
    const got = await waiting;
    expect(got.map((m) => m.payload.toString())).toEqual(['first', 'second']);
    expect(Date.now() - started).toBeLessThan(5000);

    const t0 = Date.now();
    await expect(b.readMessages('poll', new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(2).withReadTimeoutMillis(300))).rejects.toBeInstanceOf(sm.NotEnoughMessagesException);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  test('unknown streams: ResourceNotFound for every operation that names one', async () => {
    await expect(a.appendMessage('nope', Buffer.from('x'))).rejects.toBeInstanceOf(sm.ResourceNotFoundException);
    await expect(a.readMessages('nope')).rejects.toBeInstanceOf(sm.ResourceNotFoundException);
    await expect(a.describeMessageStream('nope')).rejects.toBeInstanceOf(sm.ResourceNotFoundException);
    await expect(a.deleteMessageStream('nope')).rejects.toBeInstanceOf(sm.ResourceNotFoundException);
    await expect(a.updateMessageStream(definition('nope'))).rejects.toBeInstanceOf(sm.ResourceNotFoundException);
  });

  test.each([
    ['a name outside the pattern', (d: any) => d.withName('bad/name').withStrategyOnFull(sm.StrategyOnFull.RejectNewData)],
    ['an empty name', (d: any) => d.withName('').withStrategyOnFull(sm.StrategyOnFull.RejectNewData)],
    ['a name over 255 characters', (d: any) => d.withName('n'.repeat(256)).withStrategyOnFull(sm.StrategyOnFull.RejectNewData)],
    ['maxSize below 1 KiB', (d: any) => d.withName('v1').withStrategyOnFull(sm.StrategyOnFull.RejectNewData).withMaxSize(1023)],
    ['streamSegmentSize below 1 KiB', (d: any) => d.withName('v2').withStrategyOnFull(sm.StrategyOnFull.RejectNewData).withStreamSegmentSize(1000)],
    ['streamSegmentSize over 2 GiB', (d: any) => d.withName('v3').withStrategyOnFull(sm.StrategyOnFull.RejectNewData).withStreamSegmentSize(2 ** 31).withMaxSize(2 ** 32)],
    ['timeToLiveMillis below 60 s', (d: any) => d.withName('v4').withStrategyOnFull(sm.StrategyOnFull.RejectNewData).withTimeToLiveMillis(59999)],
    ['no strategyOnFull', (d: any) => d.withName('v5')],
    ['maxSize below streamSegmentSize', (d: any) => d.withName('v6').withStrategyOnFull(sm.StrategyOnFull.RejectNewData).withMaxSize(2048).withStreamSegmentSize(4096)],
  ])('create with %s: InvalidRequest', async (_what, build) => {
    const err = await a.createMessageStream(build(uncheckedDefinition())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(sm.InvalidRequestException);
    expect(err).not.toBeInstanceOf(sm.UpdateNotAllowedException);
    expect((err as { status: { asMap(): number } }).status.asMap()).toBe(3);
  });

  test('export configs: bad values, a kind without an exporter and duplicate identifiers are InvalidRequest', async () => {
    const exportDef = (configs: { http?: any[]; kinesis?: any[]; iotAnalytics?: any[] }) => {
      const e = new sm.ExportDefinition();
      if (configs.http) e.withHttp(configs.http);
      if (configs.kinesis) e.withKinesis(configs.kinesis);
      if (configs.iotAnalytics) e.withIotAnalytics(configs.iotAnalytics);
      return e;
    };
    class UncheckedHttp extends (sm.HTTPConfig as any) {}
    const badBatch = new UncheckedHttp().withIdentifier('h1').withUri('http://127.0.0.1:1/').withBatchSize(501);
    await expect(a.createMessageStream(definition('ex1').withExportDefinition(exportDef({ http: [badBatch] })))).rejects.toBeInstanceOf(sm.InvalidRequestException);
    const badPriority = new UncheckedHttp().withIdentifier('h1').withUri('http://127.0.0.1:1/').withPriority(11);
    await expect(a.createMessageStream(definition('ex2').withExportDefinition(exportDef({ http: [badPriority] })))).rejects.toBeInstanceOf(sm.InvalidRequestException);
    const badInterval = new UncheckedHttp().withIdentifier('h1').withUri('http://127.0.0.1:1/').withBatchIntervalMillis(1000);
    await expect(a.createMessageStream(definition('ex3').withExportDefinition(exportDef({ http: [badInterval] })))).rejects.toBeInstanceOf(sm.InvalidRequestException);
    const analytics = new sm.IoTAnalyticsConfig().withIdentifier('an').withIotChannel('ch');
    const err = await a.createMessageStream(definition('ex4').withExportDefinition(exportDef({ iotAnalytics: [analytics] }))).catch((e: Error) => e);
    expect(err).toBeInstanceOf(sm.InvalidRequestException);
    expect((err as Error).message).toMatch(/supported: .*http/);
    const dup = [new sm.HTTPConfig().withIdentifier('same').withUri('http://127.0.0.1:1/'), new sm.KinesisConfig().withIdentifier('same').withKinesisStreamName('k')];
    await expect(a.createMessageStream(definition('ex5').withExportDefinition(exportDef({ http: [dup[0]], kinesis: [dup[1]] })))).rejects.toBeInstanceOf(sm.InvalidRequestException);
    expect(await a.listStreams()).not.toEqual(expect.arrayContaining(['ex1', 'ex2', 'ex3', 'ex4', 'ex5']));
  });

  test('create of an existing stream is InvalidRequest', async () => {
    await a.createMessageStream(definition('dup'));
    await expect(a.createMessageStream(definition('dup'))).rejects.toBeInstanceOf(sm.InvalidRequestException);
  });

  test('update rules: persistence, a maxSize below the stored bytes and an export starting beyond the next message are UpdateNotAllowed', async () => {
    await a.createMessageStream(definition('upd').withMaxSize(8192).withStreamSegmentSize(1024));
    for (let i = 0; i < 10; i++) await a.appendMessage('upd', Buffer.alloc(200, i));
    const e1 = await a.updateMessageStream(definition('upd').withMaxSize(8192).withStreamSegmentSize(1024).withPersistence(sm.Persistence.Memory)).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(sm.UpdateNotAllowedException);
    const e2 = await a.updateMessageStream(definition('upd').withMaxSize(1024).withStreamSegmentSize(1024)).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(sm.UpdateNotAllowedException);
    // An export may start at most at the next sequence number (10 here).
    const exportFrom = (start: number) => new sm.ExportDefinition().withHttp([new sm.HTTPConfig().withIdentifier('h').withUri('http://127.0.0.1:1/').withStartSequenceNumber(start).withDisabled(true)]);
    const e3 = await a.updateMessageStream(definition('upd').withMaxSize(8192).withStreamSegmentSize(1024).withExportDefinition(exportFrom(11))).catch((e: unknown) => e);
    expect(e3).toBeInstanceOf(sm.UpdateNotAllowedException);
    await a.updateMessageStream(definition('upd').withMaxSize(8192).withStreamSegmentSize(1024).withExportDefinition(exportFrom(10)));
    expect((await a.describeMessageStream('upd')).exportStatuses[0].lastExportedSequenceNumber).toBe(9);
    // An update within the rules keeps the data.
    await a.updateMessageStream(definition('upd').withMaxSize(16384).withStreamSegmentSize(1024));
    expect((await a.describeMessageStream('upd')).storageStatus.newestSequenceNumber).toBe(9);
  });

  test('a full RejectNewData stream refuses appends with RequestPayloadTooLarge and keeps what it has', async () => {
    await a.createMessageStream(definition('full-reject', 'reject').withMaxSize(2048).withStreamSegmentSize(1024));
    const accepted: number[] = [];
    let refused: unknown;
    for (let i = 0; i < 20 && !refused; i++) {
      try {
        accepted.push(await a.appendMessage('full-reject', Buffer.alloc(200, i)));
      } catch (e) {
        refused = e;
      }
    }
    expect(refused).toBeInstanceOf(sm.RequestPayloadTooLargeException);
    expect((refused as Error).message).toMatch(/full/);
    const info = await a.describeMessageStream('full-reject');
    expect(info.storageStatus.oldestSequenceNumber).toBe(0);
    expect(info.storageStatus.newestSequenceNumber).toBe(accepted[accepted.length - 1]);
    expect(info.storageStatus.totalBytes).toBeLessThanOrEqual(2048);
    // A message larger than the whole stream can never fit, whatever the strategy.
    await a.createMessageStream(definition('tiny').withMaxSize(1024).withStreamSegmentSize(1024));
    await expect(a.appendMessage('tiny', Buffer.alloc(1024))).rejects.toBeInstanceOf(sm.RequestPayloadTooLargeException);
  });

  test('a full OverwriteOldestData stream drops its oldest whole segments', async () => {
    await a.createMessageStream(definition('full-overwrite').withMaxSize(2048).withStreamSegmentSize(1024));
    for (let i = 0; i < 30; i++) expect(await a.appendMessage('full-overwrite', Buffer.alloc(200, i))).toBe(i);
    const info = await a.describeMessageStream('full-overwrite');
    expect(info.storageStatus.newestSequenceNumber).toBe(29);
    expect(info.storageStatus.oldestSequenceNumber).toBeGreaterThan(0);
    expect(info.storageStatus.totalBytes).toBeLessThanOrEqual(2048);
    // Reading from 0 starts at the oldest message still there.
    const first = await a.readMessages('full-overwrite', new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(0));
    expect(first[0]!.sequenceNumber).toBe(info.storageStatus.oldestSequenceNumber);
    expect(first[0]!.payload[0]).toBe(info.storageStatus.oldestSequenceNumber);
  });

  test('timeToLiveMillis: expired data goes, numbering continues', async () => {
    await a.createMessageStream(definition('ttl').withTimeToLiveMillis(60000).withStreamSegmentSize(1024));
    for (let i = 0; i < 8; i++) await a.appendMessage('ttl', Buffer.alloc(300, i));
    clock += 30_000;
    await a.appendMessage('ttl', Buffer.from('younger'));
    clock += 45_000;
    // 75 s after the first messages, 45 s after the last: every segment whose newest message is
    // older than 60 s goes; the one holding 'younger' stays.
    await waitFor(async () => (await a.describeMessageStream('ttl')).storageStatus.oldestSequenceNumber > 0, 5000, 'expiry');
    const msgs = await a.readMessages('ttl', new sm.ReadMessagesOptions().withMaxMessageCount(20));
    expect(msgs.map((m) => m.payload.toString())).toContain('younger');
    expect(msgs[0]!.sequenceNumber).toBeGreaterThan(0);
    clock += 61_000;
    await waitFor(async () => (await a.describeMessageStream('ttl')).storageStatus.totalBytes === 0, 5000, 'all expired');
    expect(await a.appendMessage('ttl', Buffer.from('after'))).toBe(9);
  });

  test('two clients at once: concurrent appends get distinct, gapless sequence numbers', async () => {
    await a.createMessageStream(definition('shared'));
    const [sa, sb] = await Promise.all([
      Promise.all(Array.from({ length: 50 }, (_, i) => a.appendMessage('shared', Buffer.from(`a${i}`)))),
      Promise.all(Array.from({ length: 50 }, (_, i) => b.appendMessage('shared', Buffer.from(`b${i}`)))),
    ]);
    const all = [...sa, ...sb].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const read = await b.readMessages('shared', new sm.ReadMessagesOptions().withMinMessageCount(100).withMaxMessageCount(100));
    expect(new Set(read.map((m) => m.payload.toString())).size).toBe(100);
  });

  test('exports: describe shows each config\'s progress; a failing destination shows its error and is retried', async () => {
    const http = new sm.HTTPConfig().withIdentifier('to-test').withUri('http://127.0.0.1:1/').withBatchSize(3);
    await a.createMessageStream(definition('exp').withExportDefinition(new sm.ExportDefinition().withHttp([http])));
    for (let i = 0; i < 7; i++) await a.appendMessage('exp', Buffer.from(`e${i}`));
    await waitFor(async () => (await a.describeMessageStream('exp')).exportStatuses[0].lastExportedSequenceNumber === 6, 5000, 'export');
    const st = (await a.describeMessageStream('exp')).exportStatuses[0];
    expect(st.exportConfigIdentifier).toBe('to-test');
    expect(st.exportedMessagesCount).toBe(7);
    expect(st.exportedBytesFromStream).toBe(14);
    expect(exporters.sent.flat().filter((m) => m.streamName === 'exp').map((m) => m.sequenceNumber)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    exporters.fail.on = true;
    await a.appendMessage('exp', Buffer.from('late'));
    await waitFor(async () => (await a.describeMessageStream('exp')).exportStatuses[0].errorMessage === 'destination refused (test)', 5000, 'error shown');
    exporters.fail.on = false;
    await waitFor(async () => (await a.describeMessageStream('exp')).exportStatuses[0].lastExportedSequenceNumber === 7, 5000, 'retried');
    expect((await a.describeMessageStream('exp')).exportStatuses[0].errorMessage).toBeNull();
  });

  test('a component process that depends on it has its token as AWS_CONTAINER_AUTHORIZATION_TOKEN, and that token connects', async () => {
    const name = 'com.test.SmEnv';
    const status = await h.deploy([{ ...clientRecipe(name), lifecycle: { Run: 'printenv AWS_CONTAINER_AUTHORIZATION_TOKEN > token.txt' } }]);
    expect(status.status).toBe('SUCCEEDED');
    const file = path.join(h.root, 'work', name, 'token.txt');
    await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim().length > 0, 10000, 'token file');
    const token = fs.readFileSync(file, 'utf8').trim();
    expect(token).toBe(h.nucleus.tokenFor(name));
    const c = await connectClient(port, token);
    expect(Array.isArray(await c.listStreams())).toBe(true);
    c.close();
  });

  test('a bad or missing token is refused at connect (Unauthorized), and the server goes on', async () => {
    await expect(connectClient(port, 'NOT-A-TOKEN')).rejects.toBeInstanceOf(sm.ConnectFailedException);
    await expect(connectClient(port, undefined)).rejects.toBeInstanceOf(sm.ConnectFailedException);
    expect(h.nucleus.streamManager.running!.stats().rejected['client refused: bad or missing authToken']).toBe(2);
    await a.createMessageStream(definition('after-refusal'));
    expect(await a.listStreams()).toContain('after-refusal');
  });
});

describe('Stream Manager lifecycle and persistence in the local runtime', () => {
  const roots: string[] = [];
  afterAll(() => {
    for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
  });

  /** `fileLog`: log to <root>/logs/greengrass.log as the runtime does by default. */
  async function nucleusAt(root: string, fileLog = false): Promise<Nucleus> {
    const n = createNucleus({
      rootDir: root,
      ...(fileLog ? {} : { logger: silentLogger }),
      deployment: { componentUpdateTimeoutMs: 2000, configValidationTimeoutMs: 2000, deploymentTimeoutMs: 30_000, stableMs: 300 },
      lifecycle: { stopGraceMs: 1000 },
    });
    await n.start();
    return n;
  }

  async function deploy(n: Nucleus, root: string, configuration: Record<string, { merge?: Record<string, unknown>; reset: string[] }> = smConfig): Promise<void> {
    const dir = path.join(root, `recipes-${Date.now()}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.json'), JSON.stringify({
      RecipeFormatVersion: '2020-01-25', ComponentName: A, ComponentVersion: '1.0.0',
      ComponentDependencies: { [SM]: { VersionRequirement: '^2.0.0', DependencyType: 'HARD' } },
      Manifests: [{ Platform: { os: '*' } }],
    }));
    const id = n.deployments.submit({ rootComponentsToAdd: { [A]: '1.0.0' }, rootComponentsToRemove: [], configuration, recipeDirectoryPath: dir, failureHandlingPolicy: 'DO_NOTHING' });
    await n.deployments.whenIdle();
    expect(n.deployments.status(id)!.status).toBe('SUCCEEDED');
  }

  test('File streams, their data and numbering survive a runtime restart; Memory streams do not', async () => {
    const root = fs.mkdtempSync('/tmp/gg-');
    roots.push(root);
    let n = await nucleusAt(root);
    await deploy(n, root);
    let c = await connectClient(await portOf(n, A), n.tokenFor(A));
    await c.createMessageStream(definition('keep').withStreamSegmentSize(1024).withFlushOnWrite(true));
    await c.createMessageStream(definition('volatile').withPersistence(sm.Persistence.Memory));
    for (let i = 0; i < 20; i++) await c.appendMessage('keep', Buffer.alloc(100, i));
    await c.appendMessage('volatile', Buffer.from('gone'));
    c.close();
    expect(fs.readdirSync(path.join(root, 'work', SM, 'streams')).length).toBe(1);
    await n.close();

    n = await nucleusAt(root);
    // Restored from the persisted deployment: RUNNING again, on a new port, with the new port in its configuration.
    await n.services.waitFor([SM], ['RUNNING'], 10000);
    await n.streamManager.settled();
    c = await connectClient(await portOf(n, A), n.tokenFor(A));
    expect(await c.listStreams()).toEqual(['keep']);
    const msgs = await c.readMessages('keep', new sm.ReadMessagesOptions().withMaxMessageCount(100));
    expect(msgs.map((m) => m.payload[0])).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(await c.appendMessage('keep', Buffer.from('next'))).toBe(20);
    c.close();
    await n.close();
  });

  test('removing aws.greengrass.StreamManager from the deployment stops it; its port closes', async () => {
    const root = fs.mkdtempSync('/tmp/gg-');
    roots.push(root);
    const n = await nucleusAt(root);
    await deploy(n, root);
    const p = await portOf(n, A);
    const id = n.deployments.submit({ rootComponentsToAdd: {}, rootComponentsToRemove: [A], configuration: {}, failureHandlingPolicy: 'DO_NOTHING' });
    await n.deployments.whenIdle();
    expect(n.deployments.status(id)!.status).toBe('SUCCEEDED');
    await n.streamManager.settled();
    expect(n.services.state(SM)).toBeUndefined();
    expect(n.streamManager.running).toBeUndefined();
    await expect(connectClient(p, n.tokenFor(A))).rejects.toThrow(/ECONNREFUSED/);
    await n.close();
  });

  test('configuration: a changed key restarts it on its new settings; a value not allowed keeps it from starting, naming the key', async () => {
    const root = fs.mkdtempSync('/tmp/gg-');
    roots.push(root);
    const n = await nucleusAt(root, true);
    await deploy(n, root);
    const p1 = n.streamManager.running!.port;
    const id = n.deployments.submit({ rootComponentsToAdd: {}, rootComponentsToRemove: [], configuration: { [SM]: { merge: { STREAM_MANAGER_AUTHENTICATE_CLIENT: 'false' }, reset: [] } }, failureHandlingPolicy: 'DO_NOTHING' });
    await n.deployments.whenIdle();
    expect(n.deployments.status(id)!.status).toBe('SUCCEEDED');
    await waitFor(() => n.streamManager.running !== undefined && n.streamManager.running.port !== p1, 10000, 'restart');
    // Authentication is off now: a client without a token is let in.
    const open = await connectClient(await portOf(n, A), undefined);
    expect(await open.listStreams()).toEqual([]);
    open.close();

    const bad = n.deployments.submit({ rootComponentsToAdd: {}, rootComponentsToRemove: [], configuration: { [SM]: { merge: { STREAM_MANAGER_SERVER_PORT: '70000' }, reset: [] } }, failureHandlingPolicy: 'DO_NOTHING' });
    await n.deployments.whenIdle();
    expect(n.deployments.status(bad)!.status).toBe('FAILED');
    expect(n.services.state(SM)).toBe('BROKEN');
    expect(fs.readFileSync(path.join(root, 'logs', 'greengrass.log'), 'utf8')).toMatch(/STREAM_MANAGER_SERVER_PORT must be an integer from 0 to 65535/);
    await n.close();
  });

  test('the runtime\'s own exporters: an http export (JSON_BATCHED) reaches a loopback server in order', async () => {
    const received: { sequenceNumber: number; payload: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        for (const m of JSON.parse(body) as { sequenceNumber: number; payload: string }[]) received.push({ sequenceNumber: m.sequenceNumber, payload: Buffer.from(m.payload, 'base64').toString() });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const root = fs.mkdtempSync('/tmp/gg-');
    roots.push(root);
    const n = await nucleusAt(root);
    await deploy(n, root);
    const c = await connectClient(await portOf(n, A), n.tokenFor(A));
    const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`;
    const cfg = new sm.HTTPConfig().withIdentifier('web').withUri(uri).withExportFormat(sm.ExportFormat.JSON_BATCHED).withBatchSize(2);
    await c.createMessageStream(definition('to-web').withExportDefinition(new sm.ExportDefinition().withHttp([cfg])));
    for (let i = 0; i < 5; i++) await c.appendMessage('to-web', Buffer.from(`w${i}`));
    await waitFor(async () => (await c.describeMessageStream('to-web')).exportStatuses[0].lastExportedSequenceNumber === 4, 10000, 'http export');
    expect(received).toEqual([0, 1, 2, 3, 4].map((i) => ({ sequenceNumber: i, payload: `w${i}` })));
    c.close();
    await n.close();
    await new Promise((r) => server.close(r));
  });

  test('exporters get AWS credentials from the runtime\'s Token Exchange Service, cached until shortly before they expire', async () => {
    const root = fs.mkdtempSync('/tmp/gg-');
    roots.push(root);
    let env: ExportEnvironment | undefined;
    const n = createNucleus({
      rootDir: root,
      logger: silentLogger,
      deployment: { componentUpdateTimeoutMs: 2000, configValidationTimeoutMs: 2000, deploymentTimeoutMs: 30_000, stableMs: 300 },
      tes: { accessKeyId: 'LOCALTESTKEY', secretAccessKey: 'local-secret', lifetimeMs: 3_600_000 },
      streamManager: {
        region: 'eu-west-1',
        endpoints: { s3: 'http://127.0.0.1:9/' },
        exporterFactories: {
          http: (_config, _stream, e) => {
            env = e;
            return { kind: 'http', send: async () => undefined, close: async () => undefined };
          },
        },
      },
    });
    await n.start();
    await deploy(n, root);
    const c = await connectClient(await portOf(n, A), n.tokenFor(A));
    await c.createMessageStream(definition('cred').withExportDefinition(new sm.ExportDefinition().withHttp([new sm.HTTPConfig().withIdentifier('h').withUri('http://127.0.0.1:1/')])));
    expect(env!.region).toBe('eu-west-1');
    // The configured endpoint, and the SiteWise recorder's file in the Stream Manager's store folder.
    expect(env!.endpoints).toEqual({ s3: 'http://127.0.0.1:9/', sitewiseFile: expect.stringMatching(/[/]work[/]aws\.greengrass\.StreamManager[/]sitewise-entries\.jsonl$/) });
    const creds = await env!.credentials!();
    expect(creds.accessKeyId).toBe('LOCALTESTKEY');
    expect(creds.sessionToken).toMatch(/^local-/);
    expect(n.tes!.stats().issued).toBe(1);
    // Cached until 5 minutes before they expire, as the SDKs' container provider does.
    await env!.credentials!();
    expect(n.tes!.stats().issued).toBe(1);
    c.close();
    await n.close();
  });

  test('kill -9 of the runtime process: every acknowledged append is there after restart, numbering continues', async () => {
    const root = fs.mkdtempSync('/tmp/gg-');
    roots.push(root);
    const childJs = path.join(root, 'sm-child.js');
    buildSync({
      stdin: {
        contents: `
          const { createNucleus } = require(${JSON.stringify(path.resolve(__dirname, '../../scripts/runtime/nucleus'))});
          const { silentLogger } = require(${JSON.stringify(path.resolve(__dirname, '../../components/lib/logger'))});
          (async () => {
            const root = process.argv[2];
            const n = createNucleus({ rootDir: root, logger: silentLogger, deployment: { stableMs: 200 } });
            await n.start();
            const id = n.deployments.submit({ rootComponentsToAdd: { '${A}': '1.0.0' }, rootComponentsToRemove: [], configuration: ${JSON.stringify(smConfig)}, recipeDirectoryPath: process.argv[3], failureHandlingPolicy: 'DO_NOTHING' });
            await n.deployments.whenIdle();
            if (n.deployments.status(id).status !== 'SUCCEEDED') throw new Error('deployment failed');
            await n.streamManager.settled();
            process.stdout.write(JSON.stringify({ port: n.streamManager.running.port, token: n.tokenFor('${A}') }) + '\\n');
          })().catch((e) => { console.error(e); process.exit(1); });
        `,
        resolveDir: __dirname,
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      target: 'node20',
      outfile: childJs,
      external: ['aws-iot-device-sdk-v2', 'aws-crt', 'better-sqlite3', '@aws-sdk/*', '@smithy/*', 'aedes', 'cbor'],
      logLevel: 'error',
    });
    const recipes = path.join(root, 'recipes');
    fs.mkdirSync(recipes);
    fs.writeFileSync(path.join(recipes, 'a.json'), JSON.stringify({
      RecipeFormatVersion: '2020-01-25', ComponentName: A, ComponentVersion: '1.0.0',
      ComponentDependencies: { [SM]: { VersionRequirement: '^2.0.0', DependencyType: 'HARD' } },
      Manifests: [{ Platform: { os: '*' } }],
    }));
    const child = spawn(process.execPath, [childJs, root, recipes], { env: { ...process.env, NODE_PATH: path.resolve(__dirname, '../../node_modules') }, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.once('exit', r));
    const info = await new Promise<{ port: number; token: string }>((resolve, reject) => {
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]!));
      });
      child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    const c = await connectClient(info.port, info.token);
    await c.createMessageStream(definition('crash').withStreamSegmentSize(4096));
    // Sequence number -> payload of every append the server acknowledged.
    const acked = new Map<number, Buffer>();
    // Eight writers keep appending while the process is killed: some appends are in flight when it dies.
    const writers = Array.from({ length: 8 }, (_, w) =>
      (async () => {
        for (let i = 0; ; i++) {
          const payload = Buffer.alloc(150 + ((i * 8 + w) % 200), `${w}:${i};`);
          try {
            acked.set((await Promise.race([c.appendMessage('crash', payload), exited.then(() => Promise.reject(new Error('gone')))])) as number, payload);
          } catch {
            return;
          }
        }
      })(),
    );
    await waitFor(() => acked.size >= 600, 20000, '600 appends');
    child.kill('SIGKILL');
    await exited;
    await Promise.all(writers);
    c.close();
    const n = await nucleusAt(root);
    await n.services.waitFor([SM], ['RUNNING'], 10000);
    await n.streamManager.settled();
    const c2 = await connectClient(await portOf(n, A), n.tokenFor(A));
    const info2 = await c2.describeMessageStream('crash');
    const newest = info2.storageStatus.newestSequenceNumber as number;
    expect(newest).toBeGreaterThanOrEqual(Math.max(...acked.keys()));
    const msgs: { sequenceNumber: number; payload: Buffer }[] = [];
    while (msgs.length <= newest) {
      msgs.push(...(await c2.readMessages('crash', new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(msgs.length).withMaxMessageCount(500))));
    }
    expect(msgs.map((m) => m.sequenceNumber)).toEqual(Array.from({ length: newest + 1 }, (_, i) => i));
    for (const [seq, payload] of acked) expect(msgs[seq]!.payload).toEqual(payload);
    expect(await c2.appendMessage('crash', Buffer.from('after'))).toBe(newest + 1);
    c2.close();
    await n.close();
  });
});

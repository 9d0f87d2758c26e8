/**
 * The Stream Manager's export runner, with test exporters passed in: batching (batchSize,
 * batchIntervalMillis), priority order, retry with a capped backoff, disabled, startSequenceNumber,
 * progress persisted across a restart, and a factory refusing its config.
 */
import fs from 'node:fs';
import { ConfigError } from '../../components/lib/errors';
import { silentLogger } from '../../components/lib/logger';
import { parseDefinition } from '../../scripts/runtime/stream-manager/definition';
import { ExportRunner } from '../../scripts/runtime/stream-manager/exports';
import { RequestError, Status } from '../../scripts/runtime/stream-manager/protocol';
import { MessageStream, StreamStore } from '../../scripts/runtime/stream-manager/store';
import type { ExportConfig, ExporterFactory, StoredMessage } from '../../scripts/runtime/stream-manager/types';
import { waitFor } from '../helpers/wait';

interface Sent {
  stream: string;
  id: string;
  seqs: number[];
  at: number;
}

function harness(opts: { now?: () => number; retryInitialMs?: number; retryMaxMs?: number; concurrency?: number } = {}) {
  const root = fs.mkdtempSync('/tmp/sm-exp-');
  const sent: Sent[] = [];
  const failing = new Set<string>();
  const gate: { hold?: Promise<void> } = {};
  const attempts = new Map<string, number[]>();
  const factory: ExporterFactory = (config: ExportConfig, streamName: string) => {
    if (config['refuse']) throw new ConfigError('refuse', `export '${config.identifier}': refuse is not allowed`);
    return {
      kind: 'http',
      async send(batch: StoredMessage[]) {
        const list = attempts.get(config.identifier) ?? [];
        list.push(Date.now());
        attempts.set(config.identifier, list);
        if (gate.hold) await gate.hold;
        if (failing.has(config.identifier)) throw new Error(`${config.identifier} is down`);
        sent.push({ stream: streamName, id: config.identifier, seqs: batch.map((m) => m.sequenceNumber), at: Date.now() });
      },
      close: async () => undefined,
    };
  };
  const store = new StreamStore(root, silentLogger);
  const runner = new ExportRunner({
    factories: { http: factory },
    env: { region: 'us-east-1', endpoints: {}, appendToStream: () => Promise.reject(new Error('unused')), log: { info: () => undefined, warn: () => undefined, error: () => undefined } },
    log: silentLogger,
    now: opts.now ?? Date.now,
    retryInitialMs: opts.retryInitialMs ?? 20,
    retryMaxMs: opts.retryMaxMs ?? 100,
    concurrency: opts.concurrency,
  });
  const create = (name: string, http: Record<string, unknown>[]): MessageStream => {
    const d = parseDefinition({ name, strategyOnFull: 1, exportDefinition: { http: http.map((h) => ({ uri: 'http://127.0.0.1:1/', ...h })) } }, runner.supportedKinds);
    const s = store.create(d);
    runner.attach(s, runner.prepare(d));
    return s;
  };
  return { root, sent, failing, gate, attempts, store, runner, create, factory };
}

describe('Stream Manager export runner', () => {
  test('batchSize: messages go in order, in batches of at most batchSize, as soon as they are there', async () => {
    const h = harness();
    const s = h.create('b', [{ identifier: 'e', batchSize: 4 }]);
    for (let i = 0; i < 10; i++) s.append(Buffer.from(`m${i}`), Date.now());
    await waitFor(() => h.runner.statuses('b')[0]!.lastExportedSequenceNumber === 9, 5000);
    expect(h.sent.flatMap((x) => x.seqs)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(Math.max(...h.sent.map((x) => x.seqs.length))).toBeLessThanOrEqual(4);
    expect(h.runner.statuses('b')[0]).toMatchObject({ exportConfigIdentifier: 'e', exportedMessagesCount: 10, exportedBytesFromStream: 20 });
    await h.runner.close();
    h.store.close();
  });

  test('batchIntervalMillis: fewer than batchSize wait until the oldest is that old; a full batch goes at once', async () => {
    let clock = 1_000_000;
    const h = harness({ now: () => clock });
    const s = h.create('i', [{ identifier: 'e', batchSize: 5, batchIntervalMillis: 60000 }]);
    for (let i = 0; i < 3; i++) s.append(Buffer.from('x'), clock);
    h.runner.kick();
    await new Promise((r) => setTimeout(r, 100));
    expect(h.sent).toEqual([]);
    clock += 60_000;
    h.runner.kick();
    await waitFor(() => h.sent.length === 1, 5000);
    expect(h.sent[0]!.seqs).toEqual([0, 1, 2]);
    for (let i = 0; i < 5; i++) s.append(Buffer.from('y'), clock);
    await waitFor(() => h.sent.length === 2, 5000);
    expect(h.sent[1]!.seqs).toEqual([3, 4, 5, 6, 7]);
    await h.runner.close();
    h.store.close();
  });

  test('priority: a priority 1 stream drains before a priority 10 one when both have data', async () => {
    const h = harness({ concurrency: 5 });
    const hold = { release: () => undefined as void };
    h.gate.hold = new Promise<void>((r) => (hold.release = r));
    const low = h.create('low', [{ identifier: 'low', batchSize: 2, priority: 10 }]);
    const high = h.create('high', [{ identifier: 'high', batchSize: 2, priority: 1 }]);
    const none = h.create('none', [{ identifier: 'none', batchSize: 2 }]);
    for (let i = 0; i < 6; i++) {
      low.append(Buffer.from('l'), Date.now());
      high.append(Buffer.from('h'), Date.now());
      none.append(Buffer.from('n'), Date.now());
    }
    // Everything is appended while the first batch is held; from then on order is by priority.
    await waitFor(() => h.attempts.size > 0, 5000);
    hold.release();
    h.gate.hold = undefined;
    await waitFor(() => h.sent.length === 9, 5000);
    const order = h.sent.map((x) => x.id);
    expect(order.slice(0, 3)).toEqual(['high', 'high', 'high']);
    expect(order.lastIndexOf('low')).toBeLessThan(order.indexOf('none'));
    expect(order.slice(-3)).toEqual(['none', 'none', 'none']);
    await h.runner.close();
    h.store.close();
  });

  test('a failing destination: errorMessage shown, retried with growing delays capped, others not held up', async () => {
    const h = harness({ retryInitialMs: 20, retryMaxMs: 40 });
    h.failing.add('down');
    const s = h.create('f', [{ identifier: 'down', priority: 1 }, { identifier: 'up', priority: 5 }]);
    s.append(Buffer.from('x'), Date.now());
    await waitFor(() => (h.attempts.get('down')?.length ?? 0) >= 6, 5000);
    await waitFor(() => h.runner.statuses('f')[1]!.lastExportedSequenceNumber === 0, 5000, 'up delivers while down backs off');
    const st = h.runner.statuses('f')[0]!;
    expect(st.errorMessage).toBe('down is down');
    expect(st.lastExportedSequenceNumber).toBe(-1);
    const t = h.attempts.get('down')!;
    const gaps = t.slice(1).map((x, i) => x - t[i]!);
    // Equal jitter: each delay is at least half its step (10 ms at first). Uncapped, the fifth delay
    // would be 160-320 ms; capped at 40 ms it stays well under 150 ms even on a busy machine.
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(9);
    expect(gaps[4]).toBeLessThan(150);
    h.failing.delete('down');
    await waitFor(() => h.runner.statuses('f')[0]!.lastExportedSequenceNumber === 0, 5000);
    expect(h.runner.statuses('f')[0]!.errorMessage).toBeUndefined();
    await h.runner.close();
    h.store.close();
  });

  test('disabled pauses a config with its progress; enabling resumes where it stopped', async () => {
    const h = harness();
    const s = h.create('d', [{ identifier: 'e', disabled: true }]);
    s.append(Buffer.from('a'), Date.now());
    await new Promise((r) => setTimeout(r, 100));
    expect(h.sent).toEqual([]);
    const d = parseDefinition({ name: 'd', strategyOnFull: 1, exportDefinition: { http: [{ identifier: 'e', uri: 'http://127.0.0.1:1/', disabled: false }] } }, h.runner.supportedKinds);
    h.runner.attach(s, h.runner.prepare(d));
    await waitFor(() => h.sent.length === 1, 5000);
    expect(h.sent[0]!.seqs).toEqual([0]);
    await h.runner.close();
    h.store.close();
  });

  test('startSequenceNumber, and progress that survives a restart: nothing delivered twice but the batch in flight', async () => {
    const h = harness();
    const s = h.create('p', [{ identifier: 'e', startSequenceNumber: 3, batchSize: 2 }]);
    for (let i = 0; i < 6; i++) s.append(Buffer.from('x'), Date.now());
    await waitFor(() => h.runner.statuses('p')[0]!.lastExportedSequenceNumber === 5, 5000);
    expect(h.sent.flatMap((x) => x.seqs)).toEqual([3, 4, 5]);
    await h.runner.close();
    h.store.close();

    const store = new StreamStore(h.root, silentLogger);
    store.recover();
    const sent: number[] = [];
    const runner = new ExportRunner({
      factories: { http: () => ({ kind: 'http', send: async (b) => void sent.push(...b.map((m) => m.sequenceNumber)), close: async () => undefined }) },
      env: { region: 'us-east-1', endpoints: {}, appendToStream: () => Promise.reject(new Error('unused')), log: { info: () => undefined, warn: () => undefined, error: () => undefined } },
      log: silentLogger,
      now: Date.now,
    });
    const p = store.get('p')!;
    runner.attach(p, runner.prepare(p.definition));
    p.append(Buffer.from('after'), Date.now());
    await waitFor(() => runner.statuses('p')[0]!.lastExportedSequenceNumber === 6, 5000);
    expect(sent).toEqual([6]);
    expect(runner.statuses('p')[0]!.exportedMessagesCount).toBe(4);
    await runner.close();
    store.close();
  });

  test('a factory that refuses its config makes create InvalidRequest naming the key; a kind without a factory too', () => {
    const h = harness();
    const d = parseDefinition({ name: 'x', strategyOnFull: 1, exportDefinition: { http: [{ identifier: 'e', uri: 'u', refuse: true }] } }, h.runner.supportedKinds);
    let err: unknown;
    try {
      h.runner.prepare(d);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).status).toBe(Status.InvalidRequest);
    expect((err as Error).message).toMatch(/refuse is not allowed/);
    expect(() => parseDefinition({ name: 'x', strategyOnFull: 1, exportDefinition: { kinesis: [{ identifier: 'k', kinesisStreamName: 'k' }] } }, h.runner.supportedKinds)).toThrow(/no kinesis exporter \(supported: http\)/);
    h.store.close();
  });
});

/**
 * The Uplink's outbox and sender with in-memory exporters: priority order, confirm-before-delete,
 * the overflow and age policies (counted), restart persistence, compression, backoff and the alarm
 * slot. Real SQLite files in a temp folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock, settle } from '../../components/lib/testing/fake-clock';
import { CLASSES, type RecordClass } from '../../components/uplink/classes';
import { UPLINK_DEFAULTS } from '../../components/uplink/config';
import { Outbox } from '../../components/uplink/outbox';
import { Sender } from '../../components/uplink/sender';
import { ExportError, type ExportBatch, type Exporter } from '../../components/uplink/exporters/types';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-ob-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const seal = (ob: Outbox, now: number, force = true) =>
  ob.seal({ now, delayMs: UPLINK_DEFAULTS.batchDelayMs, maxRecords: 100, maxBytes: 120 * 1024, gzipLevel: 6, force }, () => [0]);

const body = (cls: RecordClass, i: number, pad = 100) => JSON.stringify({ cls, i, pad: 'x'.repeat(pad) });

test('batches go out in priority order, then by age, and leave only when confirmed', () => {
  const ob = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 1e9 });
  const order: RecordClass[] = ['health', '1m', 'alarms', '1d', 'events', '15m', 'alarms'];
  order.forEach((c, i) => {
    ob.append([{ cls: c, receivedAt: 1000 + i, body: body(c, i) }]);
    seal(ob, 1000 + i);
  });
  const got = ob.next(0, new Set(), 100).map((b) => b.cls);
  expect(got).toEqual(['alarms', 'alarms', 'events', '1m', '15m', '1d', 'health']);
  const first = ob.next(0, new Set(), 1)[0]!;
  expect(ob.next(0, new Set([first.id]), 1)[0]!.id).not.toBe(first.id);
  ob.confirm(0, first);
  expect(ob.next(0, new Set(), 100)).toHaveLength(6);
  const lines = gunzipSync(ob.load(ob.next(0, new Set(), 1)[0]!)!.body).toString().trim().split('\n');
  expect(JSON.parse(lines[0]!)).toMatchObject({ cls: 'alarms', i: 6 });
  ob.close();
});

test('a batch needed by two exporters stays until both confirmed; it survives a reopen', () => {
  const file = path.join(dir, 'o.db');
  let ob = new Outbox({ path: file, synchronous: 'FULL', maxBytes: 1e9 });
  ob.append([{ cls: 'alarms', receivedAt: 1, body: body('alarms', 1) }]);
  ob.seal({ now: 2, delayMs: UPLINK_DEFAULTS.batchDelayMs, maxRecords: 10, maxBytes: 1e5, gzipLevel: 6 }, () => [0, 1]);
  const b = ob.next(0, new Set(), 1)[0]!;
  ob.confirm(0, b);
  const id = ob.id;
  ob.close();
  ob = new Outbox({ path: file, synchronous: 'FULL', maxBytes: 1e9 });
  expect(ob.id).toBe(id);
  expect(ob.next(0, new Set(), 10)).toHaveLength(0);
  expect(ob.next(1, new Set(), 10).map((x) => x.id)).toEqual([b.id]);
  ob.confirm(1, b);
  expect(ob.backlog().alarms).toBe(0);
  expect(ob.bytes).toBe(0);
  ob.close();
});

test('overflow: lowest priority and oldest go first, alarms last, and every drop is counted', () => {
  const ob = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 40_000 });
  // Fill with a mix: 1m, health, 15m records (unsealed) and an alarm batch.
  let t = 0;
  for (const c of ['1m', 'health', '15m', 'alarms'] as const) for (let i = 0; i < 40; i++) ob.append([{ cls: c, receivedAt: t++, body: body(c, i, 350) }]);
  const before = ob.backlog();
  expect(ob.bytes).toBeLessThanOrEqual(40_000);
  const dropped = ob.droppedCounts();
  // Health went first, then 15m, then 1m; no alarm was dropped while anything else was left.
  expect(dropped['overflow_health']).toBe(40);
  expect(dropped['overflow_alarms']).toBeUndefined();
  expect(before.alarms).toBe(40);
  // A new low-priority record cannot evict more urgent data: it is dropped itself, counted.
  const hBefore = ob.droppedCounts()['overflow_health'] ?? 0;
  ob.append([{ cls: 'health', receivedAt: t++, body: body('health', 99, 350) }]);
  expect(ob.droppedCounts()['overflow_health']).toBe(hBefore + 1);
  expect(ob.backlog().alarms).toBe(40);
  // Alarms evict everything else first, then the oldest alarms.
  for (let i = 0; i < 200; i++) ob.append([{ cls: 'alarms', receivedAt: t++, body: body('alarms', 100 + i, 350) }]);
  const after = ob.backlog();
  for (const c of CLASSES.filter((x) => x !== 'alarms')) expect(after[c]).toBe(0);
  expect(ob.droppedCounts()['overflow_alarms']).toBeGreaterThan(0);
  expect(ob.bytes).toBeLessThanOrEqual(40_000);
  const total = Object.values(ob.droppedCounts()).reduce((a, b) => a + b, 0);
  expect(total + after.alarms).toBe(4 * 40 + 1 + 200);
  ob.close();
});

test('age bound: records and batches older than maxAgeMs are dropped and counted', () => {
  const ob = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 1e9 });
  ob.append([{ cls: '1m', receivedAt: 0, body: body('1m', 0) }]);
  seal(ob, 0);
  ob.append([{ cls: '1m', receivedAt: 10, body: body('1m', 1) }, { cls: 'events', receivedAt: 5000, body: body('events', 2) }]);
  expect(ob.expire(1000 + 100, 1000)).toBe(2);
  expect(ob.droppedCounts()).toEqual({ expired_1m: 2 });
  expect(ob.backlog().events).toBe(1);
  ob.close();
});

test('gzip batches respect the size limit and compress repetitive JSON well', () => {
  const ob = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 1e9 });
  const items = Array.from({ length: 3000 }, (_, i) => ({ cls: '1m' as const, receivedAt: 1, body: JSON.stringify({ schemaVersion: 1, siteId: 's', assetId: `inv-${i % 50}`, interval: '1m', start: 1e12 + i * 60000, series: { W: { count: 60, min: 1000 + (i % 7), max: 2000 + (i % 13), avg: 1500.25 + i, stddev: 12.5 } } }) }));
  ob.append(items);
  const batches = ob.seal({ now: 2, delayMs: UPLINK_DEFAULTS.batchDelayMs, maxRecords: 2000, maxBytes: 4 * 1024, gzipLevel: 6, force: true }, () => [0]);
  expect(batches.length).toBeGreaterThan(3);
  for (const b of batches) expect(b.bytes).toBeLessThanOrEqual(4 * 1024);
  expect(batches.reduce((s, b) => s + b.count, 0)).toBe(3000);
  expect(ob.compressionRatio()).toBeGreaterThan(4);
  ob.close();
});

class FakeExporter implements Exporter {
  readonly name = 'fake';
  up = true;
  sent: ExportBatch[] = [];
  hold = false;
  private held: Array<() => void> = [];
  send(b: ExportBatch): Promise<void> {
    if (!this.up) return Promise.reject(new ExportError('DOWN', 'down'));
    if (this.hold) return new Promise((r) => this.held.push(() => (this.sent.push(b), r())));
    this.sent.push(b);
    return Promise.resolve();
  }
  release(): void {
    const h = this.held;
    this.held = [];
    h.forEach((f) => f());
  }
  close = () => Promise.resolve();
}

test('sender: backoff while down, drain in priority order after, an alarm takes the reserved slot', async () => {
  const clock = new FakeClock();
  const ob = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 1e9 });
  const ex = new FakeExporter();
  ex.up = false;
  const metrics = createMetrics({ clock });
  const s = new Sender({ index: 0, exporter: ex, outbox: ob, clock, logger: silentLogger, metrics, concurrency: 3, backoffInitialMs: 1000, backoffMaxMs: 8000, random: () => 1 });
  for (let i = 0; i < 10; i++) {
    ob.append([{ cls: i % 2 ? '1m' : 'health', receivedAt: clock.now(), body: body('1m', i) }]);
    seal(ob, clock.now());
  }
  s.kick();
  await settle();
  expect(s.isOnline).toBe(false);
  const delays: number[] = [];
  for (let k = 0; k < 4; k++) {
    delays.push(s.status().nextAttemptAt! - clock.now());
    await clock.advanceAsync(s.status().nextAttemptAt! - clock.now());
    await settle();
  }
  expect(delays).toEqual([1000, 2000, 4000, 8000]);
  expect(ex.sent).toHaveLength(0);
  expect(ob.next(0, new Set(), 100)).toHaveLength(10);
  // Back up: everything drains, 1m before health; with sends held, the last slot stays free for an alarm.
  ex.up = true;
  ex.hold = true;
  await clock.advanceAsync(8000);
  await settle();
  expect(s.inFlightCount).toBe(1); // the retry: one batch
  ex.release();
  await settle();
  expect(s.isOnline).toBe(true);
  expect(s.inFlightCount).toBe(2); // concurrency 3, the last slot kept for alarms
  ob.append([{ cls: 'alarms', receivedAt: clock.now(), body: body('alarms', 1) }]);
  seal(ob, clock.now());
  s.kick(true);
  expect(s.inFlightCount).toBe(3);
  for (let k = 0; k < 20 && ob.next(0, new Set(), 1).length > 0; k++) {
    ex.release();
    await settle();
  }
  ex.release();
  await settle();
  expect(ex.sent.map((b) => b.cls)).toEqual(['1m', '1m', '1m', 'alarms', '1m', '1m', 'health', 'health', 'health', 'health', 'health']);
  expect(ob.backlog()).toEqual({ alarms: 0, events: 0, '1m': 0, '15m': 0, '1d': 0, health: 0 });
  expect(s.isOnline).toBe(true);
  s.close();
  ob.close();
});

class ManualExporter implements Exporter {
  readonly name = 'manual';
  attempts = 0;
  private pending: Array<{ ok: () => void; fail: (e: Error) => void }> = [];
  send(): Promise<void> {
    this.attempts++;
    return new Promise((ok, fail) => this.pending.push({ ok, fail }));
  }
  get waiting(): number {
    return this.pending.length;
  }
  failAll(): void {
    const p = this.pending;
    this.pending = [];
    p.forEach((x) => x.fail(new ExportError('S3_TIMEOUT', 'timed out')));
  }
  failOne(): void {
    this.pending.shift()?.fail(new ExportError('S3_500', 'internal error'));
  }
  close = () => Promise.resolve();
}

test('sender: sends still hanging when the backoff ends do not stop the retries (no alarm needed)', async () => {
  const clock = new FakeClock();
  const ob = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 1e9 });
  const ex = new ManualExporter();
  const s = new Sender({ index: 0, exporter: ex, outbox: ob, clock, logger: silentLogger, metrics: createMetrics({ clock }), concurrency: 4, backoffInitialMs: 1000, backoffMaxMs: 8000, random: () => 1 });
  for (let i = 0; i < 6; i++) {
    ob.append([{ cls: '1m', receivedAt: clock.now(), body: body('1m', i) }]);
    seal(ob, clock.now());
  }
  s.kick();
  expect(ex.waiting).toBe(3); // one slot kept for alarms
  // A black-holed network: the first send fails, the others hang past the first backoff.
  ex.failOne();
  await settle();
  expect(s.isOnline).toBe(false);
  await clock.advanceAsync(1000); // the backoff ends while two sends still hang
  const first = ex.attempts;
  ex.failAll();
  await settle();
  // The retry that found sends in flight must still happen once they have settled.
  await clock.advanceAsync(10_000);
  expect(ex.attempts).toBeGreaterThan(first);
  s.close();
  ob.close();
});

class ProbedExporter extends FakeExporter {
  probes = 0;
  probe(): Promise<void> {
    this.probes++;
    return this.up ? Promise.resolve() : Promise.reject(new ExportError('S3_ECONNREFUSED', 'connection refused'));
  }
}

test('sender: while offline it probes every probeIntervalMs, so the drain starts within one interval of the return, not after the backoff', async () => {
  const clock = new FakeClock();
  const ob = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 1e9 });
  const ex = new ProbedExporter();
  ex.up = false;
  const s = new Sender({ index: 0, exporter: ex, outbox: ob, clock, logger: silentLogger, metrics: createMetrics({ clock }), concurrency: 3, backoffInitialMs: 1000, backoffMaxMs: 300_000, probeIntervalMs: 2000, random: () => 1 });
  for (let i = 0; i < 5; i++) {
    ob.append([{ cls: '15m', receivedAt: clock.now(), body: body('15m', i) }]);
    seal(ob, clock.now());
  }
  s.kick();
  await settle();
  // A long outage: every probe fails; probes do not grow the backoff and stay 2 s apart.
  for (let k = 0; k < 50; k++) await clock.advanceAsync(2000);
  expect(s.isOnline).toBe(false);
  expect(ex.probes).toBeGreaterThanOrEqual(49);
  expect(s.status().consecutiveFailures).toBe(1);
  expect(s.status().lastError).toContain('S3_ECONNREFUSED');
  ex.up = true;
  const back = clock.now();
  await clock.advanceAsync(2000);
  await settle();
  expect(s.isOnline).toBe(true);
  expect(ex.sent.length).toBeGreaterThan(0);
  expect(clock.now() - back).toBeLessThanOrEqual(2000);
  expect(s.status().lastError).toBeNull();
  s.close();
  ob.close();
});

test('sender: a destination that answers probes but refuses data is not hammered: the backoff is waited out', async () => {
  const clock = new FakeClock();
  const ob = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 1e9 });
  const ex = new ProbedExporter();
  ex.up = true;
  let refuse = true;
  const send = ex.send.bind(ex);
  ex.send = (b) => (refuse ? Promise.reject(new ExportError('S3_403', 'access denied', { refused: true })) : send(b));
  const s = new Sender({ index: 0, exporter: ex, outbox: ob, clock, logger: silentLogger, metrics: createMetrics({ clock }), concurrency: 2, backoffInitialMs: 1000, backoffMaxMs: 300_000, probeIntervalMs: 1000, random: () => 1 });
  ob.append([{ cls: '15m', receivedAt: clock.now(), body: body('15m', 1) }]);
  seal(ob, clock.now());
  const attempts: number[] = [];
  const orig = ex.send;
  ex.send = (b) => (attempts.push(clock.now()), orig(b));
  s.kick();
  for (let k = 0; k < 40; k++) await clock.advanceAsync(1000);
  // Sends at 0, then after 1, 2, 4, 8, 16 s of backoff: not once per probe interval.
  const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
  expect(gaps).toEqual([1000, 2000, 4000, 8000, 16000]);
  refuse = false;
  s.close();
  ob.close();
});

test('outbox: a transaction that fails (disk full) leaves the in-memory totals equal to the database', () => {
  const ob = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 1e9 });
  ob.append([{ cls: 'alarms', receivedAt: 1, body: body('alarms', 0) }]);
  const db = (ob as unknown as { db: { pragma(s: string): unknown } }).db;
  const pages = db.pragma('page_count') as Array<{ page_count: number }>;
  db.pragma(`max_page_count = ${pages[0]!.page_count}`);
  const big = Array.from({ length: 200 }, (_x, i) => ({ cls: '1m' as const, receivedAt: 2 + i, body: body('1m', i, 2000) }));
  expect(() => ob.append(big)).toThrow(/full/i);
  expect(ob.backlog()).toEqual({ alarms: 1, events: 0, '1m': 0, '15m': 0, '1d': 0, health: 0 });
  const bytes = ob.bytes;
  ob.close();
  const again = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 1e9 });
  expect(again.bytes).toBe(bytes);
  expect(again.backlog().alarms).toBe(1);
  again.close();
});

test('outbox: space freed by delivered batches goes back to the file system', () => {
  const ob = new Outbox({ path: path.join(dir, 'o.db'), synchronous: 'NORMAL', maxBytes: 1e9 });
  for (let i = 0; i < 3000; i++) ob.append([{ cls: '1m', receivedAt: i, body: body('1m', i, 400) }]);
  const full = ob.fileBytes();
  for (const b of seal(ob, 5000)) ob.confirm(0, b);
  while (ob.reclaim() > 0);
  expect(ob.backlog()['1m']).toBe(0);
  expect(ob.fileBytes()).toBeLessThan(full / 4);
  ob.close();
});

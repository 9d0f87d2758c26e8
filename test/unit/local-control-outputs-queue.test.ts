/**
 * LocalControl's alarm notifications, queue and delivery (docs/local-control-outputs.md): one
 * durable notification per routed channel, de-duplicated on (alarmId, transitionSeq, channel)
 * across deliveries and restarts, removed only when the channel accepted it, retried with
 * exponential backoff, bounded by age and count with counted drops, batched per channel. Real
 * SQLite files, in-memory channels (components/local-control/outputs/testing/fake-channel.ts), the
 * FakeClock.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AlarmMessage, Severity } from '../../components/lib/contract';
import { alarm, T0 } from '../../components/local-control/outputs/testing/alarms';
import { InputError } from '../../components/lib/errors';
import { createLogger, type Logger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { createAlarmOutputs, type AlarmOutputs, type AlarmOutputsOptions, type ChannelOptions } from '../../components/local-control/outputs';
import { FakeChannel } from '../../components/local-control/outputs/testing/fake-channel';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-out-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const webhook = (name: string, over: Partial<ChannelOptions> = {}): ChannelOptions => ({ type: 'webhook', name, url: 'https://sms.example.invalid/send', ...over }) as ChannelOptions;

interface Rig {
  clock: FakeClock;
  metrics: Metrics;
  lines: string[];
  logger: Logger;
  channels: Map<string, FakeChannel>;
  outputs: AlarmOutputs;
  reopen(over?: Partial<AlarmOutputsOptions>): AlarmOutputs;
}

function rig(over: Partial<AlarmOutputsOptions> = {}, fakes: Array<{ name: string; maxBatch?: number; intervalMs?: number }> = [{ name: 'a' }, { name: 'b' }]): Rig {
  const clock = new FakeClock(T0);
  const metrics = createMetrics({ clock });
  const lines: string[] = [];
  const logger = createLogger({}, { write: (l) => lines.push(l), now: () => clock.now() });
  const channels = new Map<string, FakeChannel>();
  const base: AlarmOutputsOptions = {
    dbPath: path.join(dir, 'notify.db'),
    siteId: 'plant-7',
    channels: fakes.map((f) => webhook(f.name)),
    backoffInitialMs: 1000,
    backoffMaxMs: 8000,
    ...over,
  };
  const make = (opts: AlarmOutputsOptions): AlarmOutputs => {
    const o = createAlarmOutputs(
      {
        clock,
        logger,
        metrics,
        random: () => 0.999999, // the upper end of the jitter: delays are exactly the doubling steps
        makeChannel: (c) => {
          const f = fakes.find((x) => x.name === c.name);
          const ch = new FakeChannel(c.name, clock, f?.maxBatch ?? 1, f?.intervalMs ?? 0);
          const old = channels.get(c.name);
          if (old) ch.behaviour = old.behaviour;
          channels.set(c.name, ch);
          return ch;
        },
      },
      opts,
    );
    o.start();
    return o;
  };
  const r: Rig = {
    clock,
    metrics,
    lines,
    logger,
    channels,
    outputs: make(base),
    reopen: (o2 = {}) => {
      r.outputs = make({ ...base, ...o2 });
      return r.outputs;
    },
  };
  return r;
}

test('each routed channel gets one notification; the same transition offered again is notified once', async () => {
  const r = rig();
  const first = r.outputs.offer(alarm('al-1'));
  expect(first).toMatchObject({ queued: ['a', 'b'], duplicates: [] });
  // A replay (journal sync, snapshot) of the same transition, before and after delivery.
  expect(r.outputs.offer({ ...alarm('al-1'), replayed: true })).toMatchObject({ queued: [], duplicates: ['a', 'b'] });
  await r.clock.advanceAsync(0);
  expect(r.channels.get('a')!.delivered).toEqual(['al-1#0']);
  expect(r.channels.get('b')!.delivered).toEqual(['al-1#0']);
  expect(r.outputs.offer(alarm('al-1'))).toMatchObject({ queued: [], duplicates: ['a', 'b'] });
  // The next transition of the same alarm is a new notification.
  r.outputs.offer(alarm('al-1', { transition: 'cleared', state: 'cleared', transitionSeq: 1 }));
  await r.clock.advanceAsync(0);
  expect(r.channels.get('a')!.delivered).toEqual(['al-1#0', 'al-1#1']);
  expect(r.metrics.snapshot().messagesOut).toBe(4);
  expect(r.metrics.snapshot().rejections['notify_duplicate']).toBe(4);
  expect(r.outputs.status().queued).toBe(0);
  await r.outputs.close();
});

test('the queue file is WAL; a restart loses nothing queued and still knows what was notified', async () => {
  const r = rig();
  r.channels.get('a')!.behaviour = 'fail';
  r.channels.get('b')!.behaviour = 'fail';
  r.outputs.offer(alarm('al-1'));
  r.outputs.offer(alarm('al-2', { severity: 'critical' }));
  await r.clock.advanceAsync(0);
  expect(r.outputs.status().queued).toBe(4);
  await r.outputs.close();
  const db = new Database(path.join(dir, 'notify.db'), { readonly: true });
  expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  db.close();

  r.channels.get('a')!.behaviour = 'accept';
  r.channels.get('b')!.behaviour = 'accept';
  r.reopen();
  await r.clock.advanceAsync(0);
  expect(r.channels.get('a')!.delivered).toEqual(['al-1#0', 'al-2#0']);
  expect(r.channels.get('b')!.delivered).toEqual(['al-1#0', 'al-2#0']);
  await r.outputs.close();
  // Delivered before the restart: a replay after it is still a duplicate.
  r.reopen();
  expect(r.outputs.offer(alarm('al-1'))).toMatchObject({ queued: [], duplicates: ['a', 'b'] });
  await r.outputs.close();
});

test('a channel that is down keeps its notifications and retries with exponential backoff until it accepts', async () => {
  const r = rig({}, [{ name: 'a' }]);
  const a = r.channels.get('a')!;
  a.behaviour = 'fail';
  r.outputs.offer(alarm('al-1'));
  await r.clock.advanceAsync(0);
  await r.clock.advanceAsync(1000 + 2000 + 4000 + 8000 + 8000);
  // 1 s doubling, capped at 8 s.
  expect(a.attempts.map((t) => t - T0)).toEqual([0, 1000, 3000, 7000, 15000, 23000]);
  expect(r.outputs.status().channels[0]).toMatchObject({ state: 'retrying', queued: 1, consecutiveFailures: 6, lastError: 'FAKE_DOWN: fake channel down' });
  const warn = r.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'notification channel unavailable; retrying with backoff');
  expect(warn).toHaveLength(1);
  a.behaviour = 'accept';
  await r.clock.advanceAsync(8000);
  expect(a.delivered).toEqual(['al-1#0']);
  expect(r.outputs.status()).toMatchObject({ queued: 0, channels: [{ state: 'idle', consecutiveFailures: 0, lastError: null }] });
  expect(r.metrics.snapshot().errors).toBe(6);
  await r.outputs.close();
});

test('a notification the destination refuses is dropped, counted and logged, and the channel goes on', async () => {
  const r = rig({}, [{ name: 'a' }]);
  const a = r.channels.get('a')!;
  a.behaviour = 'refuse';
  r.outputs.offer(alarm('al-1'));
  await r.clock.advanceAsync(0);
  expect(a.attempts).toHaveLength(1);
  await r.clock.advanceAsync(60_000);
  expect(a.attempts).toHaveLength(1); // not retried
  expect(r.outputs.status()).toMatchObject({ queued: 0, dropped: { webhook_refused: 1 } });
  expect(r.metrics.snapshot().dropped['notify_webhook_refused']).toBe(1);
  expect(r.lines.some((l) => l.includes('notification refused by the destination; dropped') && l.includes('al-1'))).toBe(true);
  a.behaviour = 'accept';
  r.outputs.offer(alarm('al-2'));
  await r.clock.advanceAsync(0);
  expect(a.delivered).toEqual(['al-2#0']);
  await r.outputs.close();
});

test('notifications not delivered within maxAgeMs are dropped, counted and logged; stale transitions are not queued', async () => {
  const r = rig({ maxAgeMs: 600_000, housekeepingIntervalMs: 60_000, backoffMaxMs: 60_000 }, [{ name: 'a' }]);
  const a = r.channels.get('a')!;
  a.behaviour = 'fail';
  r.outputs.offer(alarm('al-1'));
  await r.clock.advanceAsync(300_000);
  r.outputs.offer(alarm('al-2', { ts: T0 + 300_000 }));
  await r.clock.advanceAsync(360_000); // al-1 is 660 s old, al-2 360 s
  expect(r.outputs.status()).toMatchObject({ queued: 1, dropped: { expired: 1 } });
  expect(r.metrics.snapshot().dropped['notify_expired']).toBe(1);
  expect(r.lines.some((l) => l.includes('notifications not delivered within maxAgeMs; dropped'))).toBe(true);
  a.behaviour = 'accept';
  await r.clock.advanceAsync(60_000);
  expect(a.delivered).toEqual(['al-2#0']);
  // A replay of a transition older than the bound is not notified.
  expect(r.outputs.offer(alarm('old', { ts: r.clock.now() - 700_000 })).queued).toEqual([]);
  expect(r.metrics.snapshot().dropped['notify_stale']).toBe(1);
  await r.outputs.close();
});

test('the count bound drops the least important, oldest notification first, counted', async () => {
  const r = rig({ maxQueued: 10 }, [{ name: 'a' }]);
  r.channels.get('a')!.behaviour = 'fail';
  const sev: Severity[] = ['low', 'critical', 'low', 'critical', 'low', 'critical', 'low', 'critical', 'low', 'critical'];
  sev.forEach((s, i) => r.outputs.offer(alarm(`al-${i}`, { severity: s })));
  expect(r.outputs.status().queued).toBe(10);
  // Full: a high one evicts the oldest low one; a low one evicts the oldest low one (older goes first).
  expect(r.outputs.offer(alarm('high-new', { severity: 'high' }))).toMatchObject({ queued: ['a'], dropped: [] });
  expect(r.outputs.offer(alarm('low-new', { severity: 'low' }))).toMatchObject({ queued: ['a'], dropped: [] });
  expect(r.outputs.status()).toMatchObject({ queued: 10, dropped: { queue_full: 2 } });
  // Only criticals and highs left above the lows: three more criticals take the remaining lows.
  for (const id of ['c1', 'c2', 'c3', 'c4']) r.outputs.offer(alarm(id, { severity: 'critical' }));
  // Now nothing queued matters less than a medium one: the medium one is the drop.
  expect(r.outputs.offer(alarm('med-new', { severity: 'medium' }))).toMatchObject({ queued: [], dropped: ['a'] });
  expect(r.metrics.snapshot().dropped['notify_queue_full']).toBe(7);
  expect(r.lines.filter((l) => l.includes('notification queue full')).length).toBe(1); // rate-limited
  r.channels.get('a')!.behaviour = 'accept';
  await r.clock.advanceAsync(20_000);
  expect(r.channels.get('a')!.delivered.sort()).toEqual(['al-1#0', 'al-3#0', 'al-5#0', 'al-7#0', 'al-9#0', 'high-new#0', 'c1#0', 'c2#0', 'c3#0', 'c4#0'].sort());
  await r.outputs.close();
});

test('batching: at most one send per batchIntervalMs with everything since the last; 0 sends each at once', async () => {
  const r = rig({}, [
    { name: 'digest', maxBatch: 100, intervalMs: 60_000 },
    { name: 'each', maxBatch: 1, intervalMs: 0 },
  ]);
  const digest = r.channels.get('digest')!;
  const each = r.channels.get('each')!;
  r.outputs.offer(alarm('al-1'));
  await r.clock.advanceAsync(0);
  expect(digest.sends.map((s) => s.notifications.length)).toEqual([1]); // the first goes at once
  await r.clock.advanceAsync(1000);
  r.outputs.offer(alarm('al-2'));
  r.outputs.offer(alarm('al-3'));
  await r.clock.advanceAsync(10_000);
  r.outputs.offer(alarm('al-4'));
  await r.clock.advanceAsync(48_999);
  expect(digest.sends).toHaveLength(1);
  await r.clock.advanceAsync(1);
  expect(digest.sends.map((s) => [s.at - T0, s.notifications.map((n) => n.alarm.alarmId)])).toEqual([
    [0, ['al-1']],
    [60_000, ['al-2', 'al-3', 'al-4']],
  ]);
  expect(each.sends.map((s) => s.at - T0)).toEqual([0, 1000, 1000, 11_000]);
  // Transitions offered in the same turn share the first mail.
  await r.clock.advanceAsync(120_000);
  r.outputs.offer(alarm('al-5'));
  r.outputs.offer(alarm('al-6'));
  await r.clock.advanceAsync(0);
  expect(digest.sends[2]!.notifications.map((n) => n.alarm.alarmId)).toEqual(['al-5', 'al-6']);
  await r.outputs.close();
});

test('a batch larger than maxBatch is followed at once by the rest', async () => {
  const r = rig({}, [{ name: 'digest', maxBatch: 2, intervalMs: 60_000 }]);
  for (let i = 0; i < 5; i++) r.outputs.offer(alarm(`al-${i}`));
  await r.clock.advanceAsync(0);
  expect(r.channels.get('digest')!.sends.map((s) => [s.at - T0, s.notifications.length])).toEqual([
    [0, 2],
    [0, 2],
    [0, 1],
  ]);
  await r.outputs.close();
});

test('progress a channel saved survives a failure and a restart', async () => {
  const r = rig({}, [{ name: 'a' }]);
  const a = r.channels.get('a')!;
  a.behaviour = 'fail';
  const seen: Array<string | null> = [];
  a.during = (batch, ctx) => {
    seen.push(batch[0]!.progress);
    ctx.saveProgress(batch[0]!.id, JSON.stringify({ parts: (seen.length) }));
  };
  r.outputs.offer(alarm('al-1'));
  await r.clock.advanceAsync(1000);
  expect(seen).toEqual([null, '{"parts":1}']);
  await r.outputs.close();
  r.reopen();
  const b = r.channels.get('a')!;
  b.during = (batch) => seen.push(batch[0]!.progress);
  b.behaviour = 'accept';
  await r.clock.advanceAsync(0);
  expect(seen[2]).toBe('{"parts":2}');
  expect(b.delivered).toEqual(['al-1#0']);
  await r.outputs.close();
});

test('notifications of a channel removed from the options are dropped at start, counted', async () => {
  const r = rig();
  r.channels.get('a')!.behaviour = 'fail';
  r.channels.get('b')!.behaviour = 'fail';
  r.outputs.offer(alarm('al-1'));
  await r.outputs.close();
  r.reopen({ channels: [webhook('a')] });
  expect(r.outputs.status()).toMatchObject({ dropped: { channel_removed: 1 } });
  expect(r.metrics.snapshot().dropped['notify_channel_removed']).toBe(1);
  await r.outputs.close();
});

test('an invalid alarm is an InputError (the bus counts it); nothing is queued', async () => {
  const r = rig();
  expect(() => r.outputs.offer({ ...alarm('x'), severity: 'urgent' } as unknown as AlarmMessage)).toThrow(InputError);
  expect(() => r.outputs.offer({ alarmId: 'x' } as unknown as AlarmMessage)).toThrow(/alarm not notified/);
  expect(r.outputs.status().queued).toBe(0);
  await r.outputs.close();
});

test('close ends a send in flight; the notification stays queued for the next start', async () => {
  const r = rig({}, [{ name: 'a' }]);
  r.channels.get('a')!.behaviour = 'hang';
  r.outputs.offer(alarm('al-1'));
  await r.clock.advanceAsync(0);
  expect(r.outputs.status().channels[0]!.state).toBe('sending');
  await r.outputs.close();
  expect(r.clock.pending).toBe(0);
  r.channels.get('a')!.behaviour = 'accept';
  r.reopen();
  await r.clock.advanceAsync(0);
  expect(r.channels.get('a')!.delivered).toEqual(['al-1#0']);
  await r.outputs.close();
});

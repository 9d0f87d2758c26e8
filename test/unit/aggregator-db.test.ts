/**
 * The Aggregator's own database (aggregates.db, one writer: the Aggregator): file modes, space
 * given back after retention, statements prepared once, and the outbox left for the next tick
 * when the bus only queued a publish.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AggDb } from '../../components/aggregator/db';
import type { Bus, PublishOutcome } from '../../components/lib/bus-types';
import type { Topic } from '../../components/lib/contract';
import { aggRig, series, tmp, writeStore } from './aggregator-helpers';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('aggregates.db', () => {
  test('is 0640 (owner writes, group reads) with its -wal and -shm, whatever the umask', () => {
    const dir = tmp('agg-db-mode-');
    dirs.push(dir);
    const old = process.umask(0o022);
    try {
      const db = new AggDb(path.join(dir, 'agg.db'));
      db.tx(() => db.setProgress('1m', 1));
      for (const f of ['agg.db', 'agg.db-wal', 'agg.db-shm']) expect((fs.statSync(path.join(dir, f)).mode & 0o777).toString(8)).toBe('640');
      db.close();
    } finally {
      process.umask(old);
    }
  });
});

describe('write paths', () => {
  const T0 = Date.UTC(2025, 0, 15, 6);
  const H = 3_600_000;
  const M = 60_000;

  function fill(d: string, hours: number, seriesN: number): void {
    const store = writeStore(d);
    for (let k = 0; k < seriesN; k++) store.append(series(`inv-${k % 4}`, `P${k}`, T0, T0 + hours * H, k + 1, 100 + k));
    store.flush();
    store.close();
  }

  test('a new aggregates.db is auto_vacuum INCREMENTAL; one made before keeps its mode', () => {
    const d = tmp('agg-db-vacuum-');
    dirs.push(d);
    const fresh = new AggDb(path.join(d, 'new.db'));
    expect(fresh.db.pragma('auto_vacuum', { simple: true })).toBe(2);
    fresh.close();
    const old = new Database(path.join(d, 'old.db'));
    old.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    old.close();
    const before = new AggDb(path.join(d, 'old.db'));
    expect(before.db.pragma('auto_vacuum', { simple: true })).toBe(0);
    before.close();
  });

  test('retention gives the pages it freed back to the file system', async () => {
    const d = tmp('agg-db-reclaim-');
    dirs.push(d);
    fill(d, 6, 24);
    const now = T0 + 6 * H + 20_000;
    const first = await aggRig(d, now, { initialBackfillMs: 6 * H + 20_000 });
    const pages = (): number => first.agg.db?.db.pragma('page_count', { simple: true }) as number;
    const full = pages();
    expect(first.agg.counters().reclaimedPages).toBe(0); // nothing old enough to delete yet
    await first.close();
    const size = fs.statSync(path.join(d, 'agg.db')).size;

    // 1-minute rows kept for an hour: five of the six hours go at the first tick.
    const second = await aggRig(d, now, { retention1mMs: H });
    try {
      const db = second.agg.db as AggDb;
      const left = db.db.pragma('page_count', { simple: true }) as number;
      expect(db.rows('1m', 0, Infinity).length).toBe(59 * 24); // the minutes that started within the last hour, 24 series
      expect(second.agg.counters().reclaimedPages).toBeGreaterThan(full / 3);
      expect(left).toBeLessThan(full * 0.6);
      expect(db.freePages()).toBe(0); // the first run keeps no reserve
      expect(fs.statSync(path.join(d, 'agg.db')).size).toBeLessThan(size * 0.6); // checkpointed: the file itself shrank
    } finally {
      await second.close();
    }
  });

  test('ticks that close, re-aggregate and publish prepare no statement and build no transaction wrapper', async () => {
    const d = tmp('agg-db-prepare-');
    dirs.push(d);
    fill(d, 1, 8);
    const rig = await aggRig(d, T0 + H + 20_000, { initialBackfillMs: H + 20_000 });
    try {
      const db = (rig.agg.db as AggDb).db;
      const calls = { prepare: 0, transaction: 0 };
      const prepare = db.prepare.bind(db);
      const transaction = db.transaction.bind(db);
      db.prepare = ((sql: string) => {
        calls.prepare++;
        return prepare(sql);
      }) as typeof db.prepare;
      db.transaction = ((fn: never) => {
        calls.transaction++;
        return transaction(fn);
      }) as typeof db.transaction;
      const store = writeStore(d);
      store.append([...series('inv-0', 'P0', T0 + H, T0 + H + 3 * M, 99, 5), { assetId: 'inv-1', point: 'P1', ts: T0 + 10 * M + 1, v: -1, q: 'good' }]);
      store.flush();
      store.close();
      const published = rig.nucleus.published.length;
      rig.clock.t += 3 * M;
      await rig.agg.tick();
      expect(rig.nucleus.published.length - published).toBeGreaterThan(3); // new minutes and the late one went out
      expect(rig.agg.counters().reaggregated).toBe(1);
      expect(calls).toEqual({ prepare: 0, transaction: 0 });
    } finally {
      await rig.close();
    }
  });

  test('when the bus only queues a publish (IPC down), publishing stops for the tick and the rows wait; counts what went out', async () => {
    const d = tmp('agg-db-queued-');
    dirs.push(d);
    fill(d, 1, 4);
    let allow = 5;
    const attempts: string[] = [];
    const queuing = (real: Bus): Bus =>
      new Proxy(real, {
        get(target, prop) {
          if (prop === 'publish') {
            return (topic: Topic<object>, payload: object): Promise<PublishOutcome> => {
              attempts.push(topic);
              if (allow <= 0) return Promise.resolve('queued');
              allow--;
              return target.publish(topic, payload);
            };
          }
          const v = Reflect.get(target, prop) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    const rig = await aggRig(d, T0 + H + 20_000, { initialBackfillMs: H + 20_000 }, { bus: queuing });
    try {
      const db = rig.agg.db as AggDb;
      // 60 minutes and 4 quarters of 4 assets: 256 rows. Five went out; then each tick made one
      // try, which was queued, and stopped (the rig's start ran one or two ticks).
      const queued = rig.agg.counters().publishQueued;
      expect(queued).toBeGreaterThanOrEqual(1);
      expect(attempts.length).toBe(5 + queued);
      expect(rig.aggregates().length).toBe(5);
      expect(db.outboxSize()).toBe(256 - 5);
      expect(rig.agg.counters().published).toBe(5);
      await rig.agg.tick(); // still down: one try, nothing lost
      expect(attempts.length).toBe(5 + queued + 1);
      expect(db.outboxSize()).toBe(256 - 5);
      allow = Infinity; // IPC back
      await rig.agg.tick();
      expect(db.outboxSize()).toBe(0);
      expect(rig.agg.counters()).toMatchObject({ published: 256, publishQueued: queued + 1 });
      expect(new Set(rig.aggregates().map((m) => `${m.interval} ${m.start} ${m.assetId}`)).size).toBe(256);
    } finally {
      await rig.close();
    }
  });
});

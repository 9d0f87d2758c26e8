import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AlarmJournal, type NewTransition } from '../../components/lib/alarm-journal';
import { CONTRACT_VERSION, topics, type AlarmMessage, type AlarmSnapshot } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';

const SITE = 's1';
const T0 = Date.UTC(2026, 5, 1, 12);

function transition(alarmId: string, state: 'raised' | 'cleared', over: Partial<NewTransition> = {}): NewTransition {
  return { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'INV-01', alarmId, type: 'over_temperature', severity: 'high', state, ts: T0, source: 'processor', ...over };
}

describe('alarm journal', () => {
  let dir: string;
  let db: Database.Database;
  let bus: RecordingBus;
  let clock: FakeClock;
  let journal: AlarmJournal;
  const open = (over: { retentionMs?: number; maxEntries?: number; maxReplay?: number } = {}): AlarmJournal =>
    new AlarmJournal({ db, bus, clock, logger: silentLogger, metrics: createMetrics({ clock }), siteId: SITE, source: 'processor', snapshotIntervalMs: 60_000, ...over });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));
    db = new Database(path.join(dir, 'j.db'));
    db.pragma('journal_mode = WAL');
    bus = new RecordingBus();
    clock = new FakeClock(T0);
    journal = open();
  });
  afterEach(async () => {
    await journal.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("numbers every transition without gaps, and each alarm's transitions from 0", () => {
    const a = journal.emit(transition('A', 'raised'));
    const b = journal.emit(transition('B', 'raised'));
    const a2 = journal.emit(transition('A', 'raised', { value: 80 }));
    const a3 = journal.emit(transition('A', 'cleared'));
    expect([a, b, a2, a3].map((m) => [m.alarmId, m.transition, m.transitionSeq, m.sourceSeq])).toEqual([
      ['A', 'raised', 0, 1],
      ['B', 'raised', 0, 2],
      ['A', 'updated', 1, 3],
      ['A', 'cleared', 2, 4],
    ]);
    expect(new Set([a, b, a2, a3].map((m) => m.journalId))).toEqual(new Set([journal.journalId]));
    expect(bus.of<AlarmMessage>('alarms').map((m) => m.sourceSeq)).toEqual([1, 2, 3, 4]);
    expect(bus.invalid).toEqual([]);
    expect(journal.active().map((m) => [m.alarmId, m.transitionSeq])).toEqual([['B', 0]]);
  });

  test("the source's own state change commits with the transition, or neither does", () => {
    db.exec('CREATE TABLE state (k TEXT PRIMARY KEY)');
    expect(() =>
      journal.emit(transition('A', 'raised'), () => {
        db.prepare(`INSERT INTO state VALUES ('A')`).run();
        throw new Error('disk gone');
      }),
    ).toThrow('disk gone');
    expect(db.prepare('SELECT count(*) FROM state').pluck().get()).toBe(0);
    expect(journal.position().headSeq).toBe(0);
    expect(bus.of('alarms')).toEqual([]);
    journal.emit(transition('A', 'raised'), () => void db.prepare(`INSERT INTO state VALUES ('A')`).run());
    expect(db.prepare('SELECT count(*) FROM state').pluck().get()).toBe(1);
    expect(journal.position().headSeq).toBe(1);
  });

  test('a sync request gets a snapshot and the transitions from the asked sequence number on, marked replayed', async () => {
    await journal.start();
    for (const id of ['A', 'B', 'C']) journal.emit(transition(id, 'raised'));
    journal.emit(transition('B', 'cleared'));
    bus.published.length = 0;
    await bus.deliver('alarmSync', topics.alarmSync(SITE), { schemaVersion: 1, siteId: SITE, ts: T0, requester: 'uplink', from: { processor: { journalId: journal.journalId, seq: 3 } } }, { strict: true });
    const snap = bus.of<AlarmSnapshot>('alarmSnapshot');
    expect(snap).toHaveLength(1);
    expect(snap[0]).toMatchObject({ source: 'processor', requestedBy: 'uplink', headSeq: 4, oldestSeq: 1, page: 1, pages: 1 });
    expect(snap[0]?.active.map((a) => a.alarmId)).toEqual(['A', 'C']);
    const replayed = bus.of<AlarmMessage>('alarms');
    expect(replayed.map((m) => [m.sourceSeq, m.alarmId, m.transition, m.replayed])).toEqual([
      [3, 'C', 'raised', true],
      [4, 'B', 'cleared', true],
    ]);
    expect(bus.invalid).toEqual([]);
  });

  test('a request naming another journal (this file was made anew) replays everything held', async () => {
    await journal.start();
    journal.emit(transition('A', 'raised'));
    journal.emit(transition('A', 'cleared'));
    bus.published.length = 0;
    await bus.deliver('alarmSync', topics.alarmSync(SITE), { schemaVersion: 1, siteId: SITE, ts: T0, requester: 'uplink', from: { processor: { journalId: 'an-old-journal', seq: 900 } } });
    expect(bus.of<AlarmMessage>('alarms').map((m) => m.sourceSeq)).toEqual([1, 2]);
  });

  test('snapshots go out at start, periodically, and in pages of 200 alarms', async () => {
    for (let i = 0; i < 450; i++) journal.emit(transition(`A${i}`, 'raised'));
    bus.published.length = 0;
    await journal.start();
    expect(bus.of<AlarmSnapshot>('alarmSnapshot').map((s) => [s.page, s.pages, s.active.length])).toEqual([
      [1, 3, 200],
      [2, 3, 200],
      [3, 3, 50],
    ]);
    await clock.advanceAsync(60_000);
    expect(bus.of<AlarmSnapshot>('alarmSnapshot')).toHaveLength(6);
    expect(bus.invalid).toEqual([]);
  });

  test('the journal is bounded by age and count; active alarms stay in the snapshot', async () => {
    await journal.close();
    journal = open({ retentionMs: 3_600_000, maxEntries: 3 });
    journal.emit(transition('OLD', 'raised', { ts: T0 }));
    clock.advance(2 * 3_600_000);
    for (const id of ['B', 'C', 'D', 'E']) journal.emit(transition(id, 'raised', { ts: clock.now() }));
    expect(journal.prune()).toBe(2);
    expect(journal.position()).toMatchObject({ headSeq: 5, oldestSeq: 3 });
    expect(journal.active().map((a) => a.alarmId)).toEqual(['OLD', 'B', 'C', 'D', 'E']);
  });

  test('journal id and sequence survive a reopen', async () => {
    journal.emit(transition('A', 'raised'));
    const id = journal.journalId;
    await journal.close();
    journal = open();
    expect(journal.journalId).toBe(id);
    const m = journal.emit(transition('A', 'cleared'));
    expect([m.sourceSeq, m.transitionSeq, m.transition]).toEqual([2, 1, 'cleared']);
  });
});

describe('alarm queue overflow is itself an alarm', () => {
  test('raised when the bus drops alarm messages, updated while it goes on, cleared after a quiet spell', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));
    const db = new Database(path.join(dir, 'j.db'));
    const bus = new RecordingBus();
    let dropped = 0;
    Object.defineProperty(bus, 'criticalDropped', { get: () => dropped });
    const clock = new FakeClock(T0);
    const journal = new AlarmJournal({ db, bus, clock, logger: silentLogger, metrics: createMetrics({ clock }), siteId: SITE, source: 'processor', overflowClearMs: 60_000 });
    await journal.start();
    await clock.advanceAsync(10_000);
    expect(bus.of('alarms')).toEqual([]);
    dropped = 3;
    await clock.advanceAsync(5000);
    dropped = 7;
    await clock.advanceAsync(5000);
    await clock.advanceAsync(70_000);
    const got = bus.of<AlarmMessage>('alarms').map((a) => [a.assetId, a.type, a.severity, a.transition, a.value]);
    expect(got).toEqual([
      ['gateway', 'alarm_delivery_overflow', 'critical', 'raised', 3],
      ['gateway', 'alarm_delivery_overflow', 'critical', 'updated', 7],
      ['gateway', 'alarm_delivery_overflow', 'critical', 'cleared', 7],
    ]);
    expect(new Set(bus.of<AlarmMessage>('alarms').map((a) => a.alarmId)).size).toBe(1);
    await journal.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

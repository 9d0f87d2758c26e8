/**
 * `dcmms-edge analytics`: Analytics's latest results and active alarms from its own database, read
 * with a read-only connection while the writer keeps it open (as on a running gateway).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AnalyticsDb } from '../../components/analytics/db';
import { AlarmJournal } from '../../components/lib/alarm-journal';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { CliUsageError } from '../../scripts/cli/args';
import { runAnalytics } from '../../scripts/cli/analytics';

const T = Date.UTC(2026, 5, 21, 10, 0, 0);
let dir: string;
let db: AnalyticsDb;
let out: string[];
let spy: jest.SpyInstance;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'analytics-cli-'));
  db = new AnalyticsDb(path.join(dir, 'analytics.db'));
  db.putResults([
    { assetId: 'INV-01', kind: 'performance_ratio', ts: T, value: 84.213, u: '%', details: { coverage: 0.97, day: { value: 82.5, reason: null }, availability: { value: 100, reason: null } } },
    { assetId: 'INV-01', kind: 'string_imbalance', ts: T, value: 48.7, u: '%', details: { flagged: ['3'], worstString: '3' } },
    { assetId: 'TRK-01', kind: 'tracker_deviation', ts: T, value: 8.02, u: 'deg', details: { actualDeg: -40.1, idealDeg: -48.12, backtracking: false } },
    { assetId: 'INV-02', kind: 'soiling', ts: T, value: null, u: '%', details: { reason: 'insufficient_irradiance' } },
  ]);
  const clock = new FakeClock(T);
  const journal = new AlarmJournal({ db: db.db, bus: new RecordingBus(), clock, logger: silentLogger, metrics: createMetrics({ clock }), siteId: 's', source: 'analytics' });
  journal.record({ schemaVersion: 1, siteId: 's', assetId: 'TRK-01', alarmId: 'a1', type: 'tracker_misalignment', severity: 'medium', state: 'raised', ts: T, source: 'analytics', message: 'tracker TRK-01 is 8.0° off its ideal angle' });
  out = [];
  spy = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out.push(String(s));
    return true;
  });
});

afterEach(() => {
  spy.mockRestore();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a table of the latest result per asset and kind, the reason of a null, and the active alarms', async () => {
  expect(await runAnalytics(['--db', path.join(dir, 'analytics.db')])).toBe(0);
  const text = out.join('');
  const lines = text.split('\n');
  expect(lines[0]).toMatch(/^asset\s+kind\s+value\s+at \(UTC\)\s+notes$/);
  expect(text).toMatch(/INV-01\s+performance_ratio\s+84\.21 %\s+2026-06-21 10:00:00\s+day 82\.5 %; coverage 97 %; availability 100\.0 %/);
  expect(text).toMatch(/INV-01\s+string_imbalance\s+48\.70 %.*flagged 3; worst string 3/);
  expect(text).toMatch(/TRK-01\s+tracker_deviation\s+8\.020 deg.*actual -40\.1°, ideal -48\.12°/);
  expect(text).toMatch(/INV-02\s+soiling\s+-\s+.*\(insufficient_irradiance\)/);
  expect(text).toMatch(/active alarms: \n  TRK-01  tracker_misalignment \(medium\) since 2026-06-21 10:00:00: tracker TRK-01 is 8\.0° off/);
});

test('--asset and --kind filter, --json prints one object; a missing database or no --db is an error', async () => {
  expect(await runAnalytics(['--db', path.join(dir, 'analytics.db'), '--asset', 'INV-01', '--kind', 'string_imbalance', '--json'])).toBe(0);
  const j = JSON.parse(out.join('')) as { results: Array<{ kind: string }>; activeAlarms: unknown[] };
  expect(j.results.map((r) => r.kind)).toEqual(['string_imbalance']);
  expect(j.activeAlarms).toHaveLength(1);
  await expect(runAnalytics([])).rejects.toThrow(CliUsageError);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  expect(await runAnalytics(['--root', path.join(dir, 'nowhere')])).toBe(1);
  err.mockRestore();
});

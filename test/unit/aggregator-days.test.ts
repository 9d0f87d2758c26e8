/**
 * Daily buckets in the site's time zone (docs/aggregator.md "Time zone"): DST days of 23 and 25 hours, a zone whose
 * midnight is skipped, the config check of the zone, and the node-schedule rules and wiring.
 */
import fs from 'node:fs';
import { createAggregator } from '../../components/aggregator/aggregator';
import { aggregatorConfigSpec } from '../../components/aggregator/config';
import { rules } from '../../components/aggregator/scheduler';
import { Zone } from '../../components/aggregator/tz';
import { validateConfig } from '../../components/lib/config';
import { ConfigError } from '../../components/lib/errors';
import type { StoreSample } from '../../components/lib/store';
import { aggRig, tmp, writeStore } from './aggregator-helpers';

const H = 3_600_000;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('Zone (Intl only)', () => {
  test.each([
    ['Europe/Berlin', '2025-03-30', 23, Date.UTC(2025, 2, 29, 23)],
    ['Europe/Berlin', '2025-10-26', 25, Date.UTC(2025, 9, 25, 22)],
    ['Europe/Berlin', '2025-06-01', 24, Date.UTC(2025, 4, 31, 22)],
    ['America/New_York', '2025-03-09', 23, Date.UTC(2025, 2, 9, 5)],
    ['America/New_York', '2025-11-02', 25, Date.UTC(2025, 10, 2, 4)],
    ['Asia/Kolkata', '2025-03-09', 24, Date.UTC(2025, 2, 8, 18, 30)],
    ['UTC', '2025-03-30', 24, Date.UTC(2025, 2, 30)],
  ])('%s %s has %i hours from local midnight', (tz, day, hours, start) => {
    const z = new Zone(tz);
    const d = z.day(day);
    expect(d.start).toBe(start);
    expect(d.end - d.start).toBe(hours * H);
    expect(z.dateOf(d.start)).toBe(day);
    expect(z.dateOf(d.start - 1)).not.toBe(day);
    expect(z.dateOf(d.end - 1)).toBe(day);
    expect(z.dayOf(d.start + 12 * H)).toEqual(d);
    expect(z.next(d).start).toBe(d.end);
  });

  test('a day whose midnight does not exist starts at its first instant (America/Santiago, DST at 00:00)', () => {
    const z = new Zone('America/Santiago');
    const d = z.day('2025-09-07');
    expect(d.end - d.start).toBe(23 * H);
    expect(new Intl.DateTimeFormat('en-GB', { timeZone: 'America/Santiago', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d.start)).toBe('01:00');
    expect(z.dateOf(d.start - 1)).toBe('2025-09-06');
  });

  test('an unknown time zone is a ConfigError naming timeZone, found by validation (so a deployment proposing it fails) and by the factory', () => {
    const check = () => validateConfig(aggregatorConfigSpec, { timeZone: 'Mars/Olympus', storePath: '/x/raw.db' });
    expect(check).toThrow(ConfigError);
    expect(check).toThrow(/timeZone/);
    const config = { ...validateConfig(aggregatorConfigSpec, { storePath: '/x/raw.db' }), timeZone: 'Mars/Olympus' };
    const make = () => createAggregator({} as never, config);
    expect(make).toThrow(ConfigError);
    expect(make).toThrow(/timeZone/);
  });

  test('cron rules: the minute job after closeDelayMs, the day job at 00:05 local (spec §5.2)', () => {
    expect(rules(15000, 300000)).toEqual({ minute: '16 * * * * *', day: '1 5 0 * * *' });
  });
});

describe('daily rollups across DST changes', () => {
  test.each([
    ['Europe/Berlin', Date.UTC(2025, 2, 29, 23), 23],
    ['Europe/Berlin', Date.UTC(2025, 9, 25, 22), 25],
    ['America/New_York', Date.UTC(2025, 10, 2, 4), 25],
  ])('%s day starting %d has %i hours of minutes in its daily bucket', async (tz, start, hours) => {
    const dir = tmp('agg-dst-');
    dirs.push(dir);
    // one sample a minute from 2 h before the day to 1 h after it
    const s: StoreSample[] = [];
    for (let t = start - 2 * H; t < start + (hours + 1) * H; t += 60_000) s.push({ assetId: 'inv-1', point: 'W', ts: t + 30_000, v: 1, q: 'good' });
    const store = writeStore(dir);
    store.append(s);
    store.flush();
    store.seal();
    store.close();
    const now = start + (hours + 1) * H;
    const rig = await aggRig(dir, now, { timeZone: tz, initialBackfillMs: now - start + 2 * H });
    try {
      const day = rig.aggregates('1d').find((m) => m.start === start);
      expect(day).toBeDefined();
      expect(day?.end).toBe(start + hours * H);
      expect(day?.series['W']?.count).toBe(hours * 60);
      expect(day?.series['W']?.energyWh).toBeCloseTo(hours, 9); // 1 W for `hours` hours
      const summary = rig.summaries().find((x) => x.start === start);
      expect(summary?.end).toBe(start + hours * H);
      expect(summary?.timeZone).toBe(tz);
      // the schedule is wired: firing the minute job runs a tick (nothing new to close, no error)
      const n = rig.nucleus.published.length;
      rig.scheduler.fire('aggregator-1m');
      await rig.agg.tick();
      expect(rig.nucleus.published.length).toBe(n);
      expect([...rig.scheduler.jobs.values()].map((j) => j.tz)).toEqual([tz, tz]);
    } finally {
      await rig.close();
    }
  });
});

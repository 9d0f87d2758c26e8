/** Equipment health score and its accumulators (components/analytics/health.ts). */
import { AlarmHistory, CommQuality, DEFAULT_HEALTH_OPTIONS, healthScore, ThermalStress, type HealthInputs } from '../../components/analytics/health';

const H = 3_600_000;
const NOW = Date.UTC(2026, 5, 21, 12);

const healthy: HealthInputs = {
  availabilityPct: 100,
  prPct: 82,
  peerPrPct: [81, 82, 83],
  alarms: { critical: 0, high: 0, medium: 0, low: 0 },
  thermal: { aboveMs: 0, observedMs: 7 * 24 * H },
  comms: { good: 1000, total: 1000 },
};

describe('health score', () => {
  test('weights sum to 100; a healthy asset scores 100', () => {
    const w = DEFAULT_HEALTH_OPTIONS.weights;
    expect(w.availability + w.prVsPeers + w.alarms + w.thermal + w.comms).toBe(100);
    const r = healthScore(healthy);
    expect(r.value).toBeCloseTo(100, 9);
    expect(Object.keys(r.details['factors'] as object)).toEqual(['availability', 'prVsPeers', 'alarms', 'thermal', 'comms']);
  });

  test('hand-worked: every factor partly down', () => {
    // availability 95 %: (95 - 80) / 20 = 0.75 x 30 = 22.5
    // PR 74 % vs peers' median 82 %: ratio 0.90244; (0.90244 - 0.8) / 0.17 = 0.60258 x 25 = 15.0646
    // alarms 1 high + 2 medium: penalty 5 + 4 = 9; 1 - 9/20 = 0.55 x 20 = 11
    // thermal 2 % of the time above the limit: 1 - 0.02/0.05 = 0.6 x 15 = 9
    // comms 97 % good: (0.97 - 0.9) / 0.09 = 0.77778 x 10 = 7.7778
    // score = 22.5 + 15.0646 + 11 + 9 + 7.7778 = 65.3424
    const r = healthScore({
      availabilityPct: 95,
      prPct: 74,
      peerPrPct: [81, 82, 83],
      alarms: { critical: 0, high: 1, medium: 2, low: 0 },
      thermal: { aboveMs: 0.02 * 100 * H, observedMs: 100 * H },
      comms: { good: 970, total: 1000 },
    });
    expect(r.value).toBeCloseTo(65.3424, 3);
    const f = r.details['factors'] as Record<string, { points: number; subscore: number; weight: number }>;
    expect(f['availability']?.points).toBeCloseTo(22.5, 9);
    expect(f['prVsPeers']?.points).toBeCloseTo(15.0646, 3);
    expect(f['alarms']?.points).toBeCloseTo(11, 9);
    expect(f['thermal']?.points).toBeCloseTo(9, 9);
    expect(f['comms']?.points).toBeCloseTo(7.7778, 3);
  });

  test('a missing factor is left out and the others scaled to 100; too few factors -> null', () => {
    // No peers for PR: the other weights 30 + 20 + 15 + 10 = 75 are scaled by 100/75.
    const r = healthScore({ ...healthy, availabilityPct: 90, peerPrPct: [] });
    // availability 0.5 x 30 x 100/75 = 20; the rest full: (20 + 15 + 10) x 100/75 = 60. Score 80.
    expect(r.value).toBeCloseTo(80, 9);
    expect(r.details['missing']).toEqual(['prVsPeers']);
    const none = healthScore({ availabilityPct: null, prPct: null, peerPrPct: [], alarms: null, thermal: null, comms: { good: 1, total: 1 } });
    expect(none).toMatchObject({ value: null, reason: 'insufficient_data' });
  });

  test('weights that do not sum to 100 are a ConfigError naming weights', () => {
    expect(() => healthScore(healthy, { weights: { availability: 50, prVsPeers: 25, alarms: 20, thermal: 15, comms: 10 } })).toThrow(/weights/);
  });
});

describe('accumulators', () => {
  test('AlarmHistory counts each raise once within 7 days', () => {
    const h = new AlarmHistory();
    h.add({ alarmId: 'a', severity: 'high', ts: NOW - 1 * H, state: 'raised' });
    h.add({ alarmId: 'a', severity: 'high', ts: NOW - 0.5 * H, state: 'raised', transition: 'updated' });
    h.add({ alarmId: 'a', severity: 'high', ts: NOW - 0.2 * H, state: 'cleared' });
    h.add({ alarmId: 'b', severity: 'critical', ts: NOW - 8 * 24 * H, state: 'raised' });
    h.add({ alarmId: 'c', severity: 'low', ts: NOW - 6 * 24 * H, state: 'raised' });
    expect(h.counts(NOW)).toEqual({ critical: 0, high: 1, medium: 0, low: 1 });
  });

  test('ThermalStress: time above the limit, held between samples, gaps not bridged', () => {
    const t = new ThermalStress(70);
    // 60 s samples for 2 h: 72 °C for the first 30 min, 60 °C after; a 10 min gap is not counted.
    for (let s = 0; s <= 120; s++) {
      if (s > 80 && s < 90) continue;
      t.add(NOW - 2 * H + s * 60_000, s < 30 ? 72 : 60, 'good', 'Cel');
    }
    const tot = t.totals(NOW);
    expect(tot.aboveMs).toBe(30 * 60_000);
    expect(tot.observedMs).toBe(110 * 60_000); // 120 min minus the 10 min spanning the gap
  });

  test('CommQuality: good share; missed polls count against it', () => {
    const c = new CommQuality();
    c.add(NOW - H, 'good', 95);
    c.add(NOW - H, 'bad', 2);
    c.add(NOW - H, 'not_implemented', 50);
    c.addMissed(NOW - H, 3);
    expect(c.totals(NOW)).toEqual({ good: 95, total: 100 });
  });
});

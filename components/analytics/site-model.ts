/**
 * The site as Analytics models it (docs/analytics-component.md "The site model"): for each
 * configured asset, the accumulators of the formula modules (performance.ts: weather stations and
 * inverters; strings.ts: one imbalance detector per inverter) and the tracker monitors (tracker.ts),
 * fed the same way from live telemetry and from the store; `evaluate` turns them into figures (one
 * per asset and kind, plus the site's) and alarm judgements.
 *
 * Nothing here does I/O or reads a clock: time comes in with the samples and `now`, so a replay of
 * the store gives the figures the live stream gave.
 */
import { Zone } from '../aggregator/tz';
import type { AlarmMessage, AnalyticsKind, Point } from '../lib/contract';
import type { StoreReader } from '../lib/store';
import type { Judgement } from './alarms';
import { thresholdsFor, type AnalyticsConfig } from './config';
import { AlarmHistory, CommQuality, healthScore, ThermalStress } from './health';
import { availability, binCellTemp, DEFAULT_WCPR_OPTIONS, InverterAccumulator, performanceRatio, specificYield, WeatherAccumulator, weatherCorrectedPr, type EvalOptions } from './performance';
import { cleaningRecommendation, soilingLoss, soilingRate, soilingRatio, type SoilingInterval } from './soiling';
import { StringImbalanceDetector, stringCurrents } from './strings';
import { solarPosition } from '../lib/solar';
import { TrackerMonitor } from './tracker';
import { binRange, rollingWindow, type AnalyticsResult } from './types';

/** One result as the component publishes it (AnalyticsMessage without the envelope). */
export interface Figure {
  assetId: string;
  kind: AnalyticsKind;
  ts: number;
  value: number | null;
  u?: string;
  details: Record<string, unknown>;
}

/** What became of a fed message: samples used, and refusals by reason (out_of_order, unknown_unit...). */
export interface Fed {
  used: number;
  refused: Record<string, number>;
}

/** The asset id of site-level figures. */
export const SITE_ASSET = 'site';

const BIN_MS = 60_000;
const DAY_MS = 86_400_000;
/** Refusals that are normal operation, not bad input: a point the device does not serve, a bad read. */
const QUIET = new Set(['ok', 'bad_quality', 'no_value', 'duplicate']);

interface Station {
  id: string;
  acc: WeatherAccumulator;
  /** Newest accepted POA (the string detector's irradiance condition) and module temperature. */
  poa: { ts: number; v: number } | null;
  moduleC: { ts: number; v: number } | null;
}

interface Inverter {
  id: string;
  acc: InverterAccumulator;
  strings: StringImbalanceDetector;
  /** The detector's result of the newest poll (it is judged on every poll, published per evaluation). */
  lastStrings: { ts: number; r: AnalyticsResult } | null;
  station: string;
  thermal: ThermalStress;
  comms: CommQuality;
}

/** Soiling ratio per local day (day number since the epoch in the site's zone), for the soiling rate. */
export type SoilingDays = Record<string, Array<{ day: number; ratio: number }>>;

export class SiteModel {
  private readonly trackers = new Map<string, TrackerMonitor>();
  private readonly stations = new Map<string, Station>();
  private readonly inverters = new Map<string, Inverter>();
  /** Alarm raises per asset over 7 days (every source's: the health score's alarm factor). */
  private readonly alarmHistory = new Map<string, AlarmHistory>();
  private soilingDays: SoilingDays = {};
  private readonly zone: Zone;
  /** asset -> points of interest (a point list for the store replay; '160.*' stands for model 160's inputs). */
  private readonly interest = new Map<string, Set<string>>();

  constructor(private readonly c: Readonly<AnalyticsConfig>) {
    this.zone = new Zone(c.timeZone);
    this.build();
  }

  private build(only?: ReadonlySet<string>): void {
    const c = this.c;
    const want = (id: string): boolean => !only || only.has(id);
    const loc = { latitude: c.latitude, longitude: c.longitude, elevation: c.elevationM };
    for (const [id, t] of Object.entries(c.trackers)) {
      if (!want(id)) continue;
      const m = new TrackerMonitor(id, t, loc);
      this.trackers.set(id, m);
      this.interest.set(id, new Set(m.points()));
    }
    for (const [id, w] of Object.entries(c.weatherStations)) {
      if (!want(id)) continue;
      // A week of bins: the weather-corrected PR's trailing T_cell reference (performance.ts).
      this.stations.set(id, { id, acc: new WeatherAccumulator({ binMs: BIN_MS, retentionMs: 8 * DAY_MS }), poa: null, moduleC: null });
      this.interest.set(id, new Set([w.poaPoint, w.ambientPoint, w.modulePoint, w.windPoint].filter((p) => p !== '')));
    }
    for (const [id, inv] of Object.entries(c.inverters)) {
      if (!want(id)) continue;
      const th = thresholdsFor(c, id);
      this.inverters.set(id, {
        id,
        station: inv.weatherStation,
        // A local day (25 h at most) plus the rolling window.
        acc: new InverterAccumulator(id, inv.pStcKw * 1000, { binMs: BIN_MS, retentionMs: DAY_MS + 2 * 3_600_000 + c.windowMs, gammaPerK: inv.gammaPerK }),
        lastStrings: null,
        thermal: new ThermalStress(c.thermalLimitC),
        comms: new CommQuality(),
        strings: new StringImbalanceDetector(id, { thresholdRatio: th.stringFraction, clearRatio: Math.min(1, th.stringFraction + 0.1), onDelayMs: th.stringForMs, minIrradianceWm2: th.stringMinPoaWm2 }),
      });
      this.interest.set(id, new Set([c.powerPoint, c.energyPoint, c.statePoint, c.temperaturePoint].filter((p) => p !== '')));
    }
  }

  isAsset(assetId: string): boolean {
    return this.interest.has(assetId);
  }

  assets(): string[] {
    return [...this.interest.keys()];
  }

  /** Whether a stored series is read at replay. */
  private reads(assetId: string, point: string): boolean {
    if (this.interest.get(assetId)?.has(point)) return true;
    return this.inverters.has(assetId) && /^160\.module\.\d+\.(DCA|DCSt|IDStr)$/.test(point);
  }

  /** One message's points of one asset (live or rebuilt from the store). */
  feed(assetId: string, ts: number, points: Readonly<Record<string, Point>>): Fed {
    const fed: Fed = { used: 0, refused: {} };
    const note = (r: string): void => {
      if (r === 'ok') fed.used++;
      else if (!QUIET.has(r)) fed.refused[r] = (fed.refused[r] ?? 0) + 1;
    };
    const t = this.trackers.get(assetId);
    if (t) for (const [p, x] of Object.entries(points)) if (t.feed(p, ts, x.v, x.q)) note('ok');
    const st = this.stations.get(assetId);
    if (st) {
      const w = this.c.weatherStations[assetId]!;
      const get = (p: string): Point | undefined => (p === '' ? undefined : points[p]);
      const poa = get(w.poaPoint);
      if (poa) {
        const r = st.acc.addPoa(ts, poa.v, poa.q, poa.u);
        note(r);
        if (r === 'ok' && typeof poa.v === 'number') st.poa = { ts, v: poa.v };
      }
      const tm = get(w.modulePoint);
      if (tm) {
        const r = st.acc.addModuleTemp(ts, tm.v, tm.q, tm.u);
        note(r);
        if (r === 'ok' && typeof tm.v === 'number' && (tm.u === undefined || tm.u === 'Cel' || tm.u === 'C')) st.moduleC = { ts, v: tm.v };
      }
      const ta = get(w.ambientPoint);
      if (ta) note(st.acc.addAmbientTemp(ts, ta.v, ta.q, ta.u));
      const wi = get(w.windPoint);
      if (wi) note(st.acc.addWind(ts, wi.v, wi.q, wi.u));
    }
    const inv = this.inverters.get(assetId);
    if (inv) {
      const c = this.c;
      // State first: it classifies the power segment that ends at this sample.
      const s = c.statePoint === '' ? undefined : points[c.statePoint];
      if (s) note(inv.acc.addState(ts, s.v, s.q));
      const w = points[c.powerPoint];
      if (w) note(inv.acc.addPower(ts, w.v, w.q, w.u));
      const e = c.energyPoint === '' ? undefined : points[c.energyPoint];
      if (e) note(inv.acc.addEnergy(ts, e.v, e.q, e.u));
      const tp = c.temperaturePoint === '' ? undefined : points[c.temperaturePoint];
      if (tp) inv.thermal.add(ts, tp.v, tp.q, tp.u);
      // Communication quality: one sample per poll, the power point's quality. Not every point of
      // every message: the static models (1, 120) are read once per connection and their points
      // interpolated between heartbeats, which would count as bad communication on a healthy link.
      if (w) inv.comms.add(ts, w.q);
      const sc = stringCurrents(points);
      if (Object.keys(sc.currents).length > 0) {
        const u = inv.strings.update(ts, sc.currents, this.poaAt(inv.station, ts), sc.names);
        if (u.result.details['ignored'] === undefined) inv.lastStrings = { ts, r: u.result };
      }
    }
    return fed;
  }

  /**
   * POA at the station at `ts`: its newest sample when within 5 min of `ts` (live), else the mean of
   * the 1-minute bin holding `ts` (a replayed inverter sample from the morning, whose station was
   * replayed to the end of the day first).
   */
  private poaAt(stationId: string, ts: number): number | null {
    const st = this.stations.get(stationId);
    if (!st) return null;
    if (st.poa && Math.abs(ts - st.poa.ts) <= 5 * 60_000) return st.poa.v;
    return st.acc.means(Math.floor(ts / BIN_MS), 0.25).poaWm2;
  }

  /** Assets in the order a replay feeds them: weather stations first (the string detector reads their POA). */
  replayOrder(assets: readonly string[]): string[] {
    return [...assets].sort((a, b) => (this.stations.has(a) ? 0 : 1) - (this.stations.has(b) ? 0 : 1));
  }

  /** Start of the local day holding `now`: what a start or a rebuild replays from the store. */
  replayFrom(now: number): number {
    return this.zone.dayOf(now).start;
  }

  /** New, empty accumulators for these assets (before their day is replayed again). */
  resetAssets(assets: readonly string[]): void {
    this.build(new Set(assets));
  }

  /**
   * Feeds [from, to] of every series read (or of some assets) from the store: each asset's samples
   * grouped by time into messages again, in time order (a state sample must come before the power
   * it classifies; the string detector wants a poll's inputs together). Weather stations first, so
   * the string detector of an inverter replayed after them sees their irradiance.
   */
  replay(store: StoreReader, from: number, to: number, assets?: readonly string[]): { samples: number; series: number; ms: number; lastTs: number } {
    const t0 = performance.now();
    const bySeries = new Map<string, string[]>();
    const units = new Map<string, string | null>();
    for (const s of store.listSeries()) {
      if (!this.reads(s.assetId, s.point)) continue;
      units.set(`${s.assetId}\u0000${s.point}`, s.unit);
      const l = bySeries.get(s.assetId) ?? [];
      l.push(s.point);
      bySeries.set(s.assetId, l);
    }
    const order = this.replayOrder(assets ?? this.assets());
    let samples = 0;
    let series = 0;
    let lastTs = -Infinity;
    for (const assetId of order) {
      const msgs = new Map<number, Record<string, Point>>();
      for (const point of bySeries.get(assetId) ?? []) {
        series++;
        const u = units.get(`${assetId}\u0000${point}`) ?? undefined;
        for (const s of store.range({ assetId, point }, from, to)) {
          let m = msgs.get(s.ts);
          if (!m) msgs.set(s.ts, (m = {}));
          m[point] = { v: s.v, q: s.q, ...(u ? { u } : {}) };
          samples++;
        }
      }
      for (const ts of [...msgs.keys()].sort((a, b) => a - b)) {
        this.feed(assetId, ts, msgs.get(ts)!);
        if (ts > lastTs) lastTs = ts;
      }
      // The interval mean is of live samples since the last evaluation, not of the replayed day.
      this.trackers.get(assetId)?.resetInterval();
    }
    return { samples, series, ms: performance.now() - t0, lastTs };
  }

  evaluate(now: number): { figures: Figure[]; judgements: Judgement[] } {
    const figures: Figure[] = [];
    const judgements: Judgement[] = [];
    this.evaluateTrackers(now, figures, judgements);
    this.evaluatePerformance(now, figures, judgements);
    this.evaluateSoiling(now, figures, judgements);
    this.evaluateHealth(now, figures, judgements);
    return { figures, judgements };
  }

  /** Sun above the horizon at an instant, cached per minute: bins without POA count against coverage only in daylight. */
  private readonly daylight = new Map<number, boolean>();
  private readonly isDaylight = (ts: number): boolean => {
    const k = Math.floor(ts / BIN_MS);
    let d = this.daylight.get(k);
    if (d === undefined) {
      if (this.daylight.size > 4 * 1440) this.daylight.clear();
      d = solarPosition(ts, { latitude: this.c.latitude, longitude: this.c.longitude, elevation: this.c.elevationM }).elevation > 0;
      this.daylight.set(k, d);
    }
    return d;
  };

  private evalOptions(assetId: string): Partial<EvalOptions> {
    return { minIrradianceWm2: thresholdsFor(this.c, assetId).minPoaWm2, isDaylight: this.isDaylight };
  }

  private evaluatePerformance(now: number, figures: Figure[], judgements: Judgement[]): void {
    const c = this.c;
    const rolling = { ...rollingWindow(now, c.windowMs, BIN_MS), now };
    const dayRange = this.zone.dayOf(now);
    const day = { from: dayRange.start, to: Math.min(now, dayRange.end) };
    const fig = (assetId: string, kind: AnalyticsKind, r: AnalyticsResult, extra: Record<string, unknown> = {}): Figure => ({
      assetId,
      kind,
      ts: now,
      value: r.value === null ? null : round(r.value),
      ...(r.u ? { u: r.u } : {}),
      details: { period: 'rolling', windowMs: c.windowMs, ...roundAll(r.details), ...extra },
    });
    const brief = (r: AnalyticsResult): Record<string, unknown> => ({ value: r.value === null ? null : round(r.value), reason: r.reason, ...pick(r.details, ['eAcWh', 'hPoaWhM2', 'coverage', 'expectedWh', 'tCellTypAvgC']) });

    for (const inv of this.inverters.values()) {
      const st = this.stations.get(inv.station);
      if (!st) continue;
      const o = this.evalOptions(inv.id);
      const pr = performanceRatio(inv.acc, st.acc, rolling, o);
      const prDay = performanceRatio(inv.acc, st.acc, day, o);
      const avail = availability(inv.acc, st.acc, day, o);
      const availRolling = availability(inv.acc, st.acc, rolling, o);
      const sy = specificYield(inv.acc, day, st.acc, o);
      figures.push(
        fig(inv.id, 'performance_ratio', pr, {
          day: { day: dayRange.day, ...brief(prDay) },
          availability: { value: avail.value === null ? null : round(avail.value), reason: avail.reason, u: '%', rolling: availRolling.value === null ? null : round(availRolling.value) },
          specificYield: { value: sy.value === null ? null : round(sy.value), reason: sy.reason, u: 'kWh/kWp' },
        }),
      );
      const wc = weatherCorrectedPr(inv.acc, st.acc, rolling, o);
      const wcDay = weatherCorrectedPr(inv.acc, st.acc, day, o);
      figures.push(fig(inv.id, 'performance_ratio_temp_corrected', wc, { day: { day: dayRange.day, ...brief(wcDay) } }));

      const th = thresholdsFor(c, inv.id);
      judgements.push({
        assetId: inv.id,
        type: 'low_pr',
        subject: '',
        active: pr.value === null ? null : pr.value < th.lowPrBelow ? true : pr.value >= th.lowPrBelow + th.lowPrHysteresis ? false : null,
        forMs: th.lowPrForMs,
        value: pr.value,
        threshold: th.lowPrBelow,
        message: pr.value === null ? `performance ratio of ${inv.id} back` : `performance ratio of ${inv.id} ${pr.value.toFixed(1)} % over the last ${Math.round(c.windowMs / 60000)} min, below ${th.lowPrBelow} %`,
      });
    }
    this.evaluateSite(now, rolling, day, dayRange.day, figures);
    this.evaluateStrings(now, figures, judgements);
  }

  /** Site figures: Σ E_AC over Σ P_STC when one weather station feeds every inverter; else the P_STC-weighted mean of the inverters'. */
  private evaluateSite(now: number, rolling: { from: number; to: number; now: number }, day: { from: number; to: number }, dayName: string, figures: Figure[]): void {
    const list = [...this.inverters.values()].filter((i) => this.stations.has(i.station));
    if (list.length === 0) return;
    const stations = new Set(list.map((i) => i.station));
    for (const kind of ['performance_ratio', 'performance_ratio_temp_corrected'] as const) {
      const fn = kind === 'performance_ratio' ? performanceRatio : weatherCorrectedPr;
      if (stations.size === 1) {
        const st = this.stations.get(list[0]!.station)!;
        const o = { minIrradianceWm2: this.c.alarmThresholds.minPoaWm2, isDaylight: this.isDaylight };
        const r = fn(list.map((i) => i.acc), st.acc, rolling, o);
        const d = fn(list.map((i) => i.acc), st.acc, day, o);
        figures.push({
          assetId: SITE_ASSET,
          kind,
          ts: now,
          value: r.value === null ? null : round(r.value),
          u: '%',
          details: { period: 'rolling', windowMs: this.c.windowMs, ...roundAll(r.details), day: { day: dayName, value: d.value === null ? null : round(d.value), reason: d.reason, ...pick(d.details, ['eAcWh', 'hPoaWhM2', 'coverage']) } },
        });
      } else {
        const own = figures.filter((f) => f.kind === kind && this.inverters.has(f.assetId));
        const weighted = own.filter((f) => f.value !== null);
        const w = weighted.reduce((a, f) => a + this.c.inverters[f.assetId]!.pStcKw, 0);
        const v = w > 0 ? weighted.reduce((a, f) => a + f.value! * this.c.inverters[f.assetId]!.pStcKw, 0) / w : null;
        figures.push({ assetId: SITE_ASSET, kind, ts: now, value: v === null ? null : round(v), u: '%', details: { period: 'rolling', method: 'pstc_weighted_mean', inverters: weighted.map((f) => f.assetId), ...(v === null ? { reason: 'no_inverter_figure' } : {}) } });
      }
    }
  }

  private evaluateStrings(now: number, figures: Figure[], judgements: Judgement[]): void {
    const maxAge = Math.max(3 * this.c.evaluateIntervalMs, 180_000);
    for (const inv of this.inverters.values()) {
      const last = inv.lastStrings;
      if (!last || now - last.ts > maxAge) {
        figures.push({ assetId: inv.id, kind: 'string_imbalance', ts: now, value: null, u: '%', details: { reason: last ? 'stale_string_currents' : 'no_string_currents', ...(last ? { lastTs: last.ts } : {}) } });
        continue;
      }
      const r = last.r;
      figures.push({ assetId: inv.id, kind: 'string_imbalance', ts: now, value: r.value === null ? null : round(r.value), u: '%', details: roundAll(r.details) });
      const strings = (r.details['strings'] ?? {}) as Record<string, { ratio: number | null; flagged: boolean; currentA: number | null; name?: string }>;
      const th = thresholdsFor(this.c, inv.id);
      for (const [id, s] of Object.entries(strings)) {
        judgements.push({
          assetId: inv.id,
          type: 'string_underperformance',
          subject: id,
          // Cleared only when judged back at the clear ratio: a string not (yet) flagged by a detector
          // that started again (a restart, a new day's replay) keeps an alarm the journal holds.
          active: s.flagged ? true : s.ratio !== null && r.value !== null && s.ratio >= Math.min(1, th.stringFraction + 0.1) ? false : null,
          forMs: 0,
          value: s.ratio === null ? null : round(s.ratio * 100),
          threshold: th.stringFraction * 100,
          point: `160.module.${id}.DCA`,
          message: s.flagged ? `string ${id}${s.name ? ` (${s.name})` : ''} of ${inv.id} carries ${s.ratio === null ? '?' : (s.ratio * 100).toFixed(0)} % of its peers' median current` : `string ${id} of ${inv.id} back in line with its peers`,
          details: { string: id, ...(s.name ? { name: s.name } : {}), currentA: s.currentA },
        });
      }
    }
  }

  /** An alarm transition of any source on the site: the health score counts raises per asset over 7 days. */
  noteAlarm(a: AlarmMessage): void {
    if (!this.inverters.has(a.assetId)) return;
    let h = this.alarmHistory.get(a.assetId);
    if (!h) this.alarmHistory.set(a.assetId, (h = new AlarmHistory()));
    h.add(a);
  }

  /**
   * Irradiance and cell temperature at an inverter's or its combiner's strings at `now`: its
   * weather station's newest POA and module temperature (T_cell = T_m + G/1000 x 3 °C), if fresh.
   */
  conditionsFor(assetId: string, now: number): { irradiance: number; temperature: number } | null {
    const inv = [...this.inverters.values()].find((i) => i.id === assetId || this.c.inverters[i.id]?.combiner === assetId);
    const st = inv ? this.stations.get(inv.station) : undefined;
    if (!st?.poa || !st.moduleC || now - st.poa.ts > 5 * 60_000 || now - st.moduleC.ts > 5 * 60_000) return null;
    return { irradiance: st.poa.v, temperature: st.moduleC.v + (st.poa.v / 1000) * 3 };
  }

  /** What a reconfiguration keeps from the model it replaces: alarm history and daily soiling ratios. */
  adopt(prev: SiteModel): void {
    for (const [id, h] of prev.alarmHistory) if (this.inverters.has(id)) this.alarmHistory.set(id, h);
    this.soilingDays = prev.soilingDays;
  }

  /** The daily soiling ratios kept across restarts (analytics.db). */
  soilingHistory(): SoilingDays {
    return this.soilingDays;
  }
  loadSoilingHistory(d: SoilingDays | undefined): void {
    this.soilingDays = d ?? {};
  }

  /**
   * Soiling per inverter over the local day so far (soiling.ts): 1-minute intervals of mean AC
   * power against the clean reference cell (the weather station's POA), with the cell temperature
   * from the same bin; throttled and clipping minutes left out. Value: the soiling ratio in percent;
   * details: the day's loss in kWh and money, the soiling rate over the days since the last cleaning
   * and the cleaning advice.
   */
  private evaluateSoiling(now: number, figures: Figure[], judgements: Judgement[]): void {
    const c = this.c;
    const day = this.zone.dayOf(now);
    const dayNo = Math.round(day.start / DAY_MS);
    const { first, last } = binRange(day.start, Math.min(now, day.end), BIN_MS);
    const totalPStc = Object.values(c.inverters).reduce((a, i) => a + i.pStcKw, 0);
    for (const inv of this.inverters.values()) {
      const st = this.stations.get(inv.station);
      if (!st) continue;
      const ic = c.inverters[inv.id]!;
      const intervals: SoilingInterval[] = [];
      let actualWh = 0;
      for (let i = first; i <= last; i++) {
        const m = st.acc.means(i, 0.5);
        const e = inv.acc.binEnergy(i, 0.5);
        if (e) actualWh += e.wh;
        const t = binCellTemp(m, DEFAULT_WCPR_OPTIONS);
        const a = inv.acc.binAvailability(i);
        intervals.push({
          durationMs: BIN_MS,
          cleanIrradianceWm2: m.cleanRefWm2 ?? m.poaWm2,
          cellTempC: t?.c ?? null,
          actualW: e ? (e.wh * 3_600_000) / BIN_MS : null,
          // Not producing while the light was there (throttled, starting, off): not soiling.
          excluded: a.producingMs < BIN_MS * 0.5,
        });
      }
      const r = soilingRatio(intervals, { pStcW: ic.pStcKw * 1000, gammaPerK: ic.gammaPerK, baselineRatio: c.soilingBaselineRatio, minUsedMs: c.soilingMinUsedMs, ...(ic.acRatingKw ? { clipW: ic.acRatingKw * 1000 } : {}) });
      const details: Record<string, unknown> = { period: 'day', day: day.day, ...roundAll(r.details) };
      if (r.value !== null) {
        const sr = r.value / 100;
        const days = (this.soilingDays[inv.id] ??= []);
        const today = days.find((d) => d.day === dayNo);
        if (today) today.ratio = sr;
        else days.push({ day: dayNo, ratio: sr });
        while (days.length > 60) days.shift();
        const loss = soilingLoss(sr, actualWh, c.energyPrice);
        const rate = soilingRate(days);
        const cost = ic.cleaningCost ?? (totalPStc > 0 ? (c.cleaningCost * ic.pStcKw) / totalPStc : c.cleaningCost);
        // The clean array's energy of a day: today's so far scaled up is not known before sunset;
        // the day's actual energy over the ratio is what today gave, a floor for a full day.
        const advice = cleaningRecommendation({ soilingRatio: sr, ratePerDay: rate.ratePerDay, expectedDailyKWh: actualWh / 1000 / Math.max(sr, 0.01), pricePerKWh: c.energyPrice, cleaningCost: cost, daysUntilNaturalCleaning: c.cleaningHorizonDays });
        Object.assign(details, {
          lossKWh: loss ? round(loss.lossWh / 1000) : null,
          lossMoney: loss ? round(loss.lossMoney) : null,
          currency: c.currency,
          ratePctPerDay: rate.ratePerDay === null ? null : round(rate.ratePerDay * 100),
          cleaning: { recommend: advice.clean, avoidableLoss: round(advice.avoidableLoss), cleaningCost: round(cost), horizonDays: advice.horizonDays, optimalIntervalDays: advice.optimalIntervalDays === null ? null : round(advice.optimalIntervalDays) },
        });
      }
      figures.push({ assetId: inv.id, kind: 'soiling', ts: now, value: r.value === null ? null : round(r.value), u: '%', details });
      const th = thresholdsFor(c, inv.id);
      const cleaning = details['cleaning'] as { recommend: boolean } | undefined;
      judgements.push({
        assetId: inv.id,
        type: 'soiling_loss',
        subject: '',
        active: r.value === null ? null : r.value < th.soilingRatioBelow && cleaning?.recommend === true ? true : r.value >= th.soilingRatioBelow + 1 ? false : null,
        forMs: 0,
        value: r.value,
        threshold: th.soilingRatioBelow,
        message: r.value === null ? `soiling of ${inv.id} back within its limit` : `soiling ratio of ${inv.id} ${r.value.toFixed(1)} %: cleaning pays (${String(details['lossMoney'])} ${c.currency} lost today)`,
        details: { lossKWh: details['lossKWh'], lossMoney: details['lossMoney'], currency: c.currency },
      });
    }
  }

  /** Health score per inverter (health.ts): the day's availability, rolling PR against its peers, alarms, thermal stress, comms. */
  private evaluateHealth(now: number, figures: Figure[], judgements: Judgement[]): void {
    const prOf = new Map(figures.filter((f) => f.kind === 'performance_ratio' && this.inverters.has(f.assetId)).map((f) => [f.assetId, f]));
    for (const inv of this.inverters.values()) {
      const pr = prOf.get(inv.id);
      // The day's availability; the rolling window's while the day has too little data (a start at noon).
      const a = pr?.details['availability'] as { value: number | null; rolling: number | null } | undefined;
      const avail = a?.value ?? a?.rolling ?? null;
      const peers = [...prOf].filter(([id, f]) => id !== inv.id && f.value !== null).map(([, f]) => f.value as number);
      const r = healthScore({
        availabilityPct: avail,
        prPct: pr?.value ?? null,
        peerPrPct: peers,
        alarms: this.alarmHistory.get(inv.id)?.counts(now) ?? { critical: 0, high: 0, medium: 0, low: 0 },
        thermal: inv.thermal.totals(now),
        comms: inv.comms.totals(now),
      });
      figures.push({ assetId: inv.id, kind: 'health_score', ts: now, value: r.value === null ? null : round(r.value), details: r.details });
      const th = thresholdsFor(this.c, inv.id);
      judgements.push({
        assetId: inv.id,
        type: 'low_health',
        subject: '',
        active: r.value === null ? null : r.value < th.lowHealthBelow ? true : r.value >= th.lowHealthBelow + 5 ? false : null,
        forMs: 0,
        value: r.value,
        threshold: th.lowHealthBelow,
        message: r.value === null ? `health of ${inv.id} back` : `health score of ${inv.id} ${r.value.toFixed(0)} / 100`,
      });
    }
  }

  private evaluateTrackers(now: number, figures: Figure[], judgements: Judgement[]): void {
    const maxAge = Math.max(3 * this.c.evaluateIntervalMs, 180_000);
    for (const [id, m] of this.trackers) {
      const f = m.evaluate(now, maxAge);
      figures.push({ assetId: id, kind: 'tracker_deviation', ts: now, value: f.value, u: 'deg', details: f.details });
      const th = thresholdsFor(this.c, id);
      judgements.push({
        assetId: id,
        type: 'tracker_misalignment',
        subject: '',
        // The interval's mean |deviation| when there is one, so one sample caught mid-move does not decide.
        active: f.value === null ? null : judgeAbs(f, th.trackerDeviationDeg),
        forMs: th.trackerForMs,
        value: f.value,
        threshold: th.trackerDeviationDeg,
        point: this.c.trackers[id]?.anglePoint ?? '',
        message: f.value === null ? `tracker ${id} back on its ideal angle` : `tracker ${id} is ${Math.abs(f.value).toFixed(1)}° off its ideal angle (${String(f.details['idealDeg'])}°)`,
        details: { idealDeg: f.details['idealDeg'], actualDeg: f.details['actualDeg'] },
      });
    }
  }
}

function judgeAbs(f: { value: number | null; details: Record<string, unknown> }, limit: number): boolean {
  const mean = f.details['meanAbsDeg'];
  const dev = typeof mean === 'number' ? mean : Math.abs(f.value ?? 0);
  return dev > limit;
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function roundAll(d: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) out[k] = typeof v === 'number' && Number.isFinite(v) ? round(v) : v;
  return out;
}

function pick(d: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (k in d) out[k] = typeof d[k] === 'number' ? round(d[k] as number) : d[k];
  return out;
}

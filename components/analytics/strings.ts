/**
 * String current imbalance from SunSpec model 160 (Multiple MPPT Inverter Extension): each input's
 * (module's) DC current `160.module.<n>.DCA` against the median of its peers on the same inverter.
 * A stateful detector per inverter with raise/clear hysteresis; docs/analytics.md "string_imbalance".
 *
 * Why the median of the peers: one faulty string cannot drag its own reference down (it is left
 * out), and one faulty peer cannot either (a median, not a mean, as the specification's §4.2 mean
 * would). Why a time and an irradiance condition: clouds passing over a large array and low light
 * make currents differ for minutes without any fault.
 */
import type { Point, Quality } from '../lib/contract';
import { AnalyticsResult, checkNumber, DEFAULT_ACCEPTED_QUALITIES, median, withDefaults } from './types';

export interface StringImbalanceOptions {
  /** A string is low when its current is below this fraction of its peers' median. */
  thresholdRatio: number;
  /** A flagged string clears at or above this fraction (hysteresis: above thresholdRatio). */
  clearRatio: number;
  /** Low continuously for this long (sample time) with enough light: raise, ms. */
  onDelayMs: number;
  /** Back at or above clearRatio continuously for this long: clear, ms. */
  offDelayMs: number;
  /** Evaluate only with POA at or above this, W/m2. */
  minIrradianceWm2: number;
  /** Evaluate a string only when its peers' median current is at least this, A. */
  minPeerCurrentA: number;
  /** Peers needed for a median (strings with a current, besides the one judged). */
  minPeers: number;
  /** Updates further apart than this restart the pending timers, ms. */
  maxGapMs: number;
}

export const DEFAULT_STRING_IMBALANCE_OPTIONS: Readonly<StringImbalanceOptions> = Object.freeze({
  thresholdRatio: 0.8,
  clearRatio: 0.9,
  onDelayMs: 15 * 60_000,
  offDelayMs: 5 * 60_000,
  minIrradianceWm2: 200,
  minPeerCurrentA: 1,
  minPeers: 2,
  maxGapMs: 5 * 60_000,
});

export type ImbalanceReason = 'missing_irradiance' | 'insufficient_irradiance' | 'too_few_strings' | 'low_current';

export interface ImbalanceEvent {
  transition: 'raised' | 'cleared';
  assetId: string;
  /** The string (model 160 module number, or the key given), and its name (IDStr) when known. */
  stringId: string;
  name?: string;
  ts: number;
  /** Current over the peers' median at this update; null when it could not be judged. */
  ratio: number | null;
  currentA: number | null;
  peersMedianA: number | null;
  /** When the condition began (raise) or ended (clear), sample time. */
  since: number;
}

interface PerString {
  lowSince: number | null;
  okSince: number | null;
  flagged: boolean;
  ratio: number | null;
}

/** Ratio of each string's current to the median of the others'; null where it cannot be judged. */
export function peerRatios(currents: Readonly<Record<string, number | null>>, minPeers = 2, minPeerCurrentA = 1): Record<string, { ratio: number; peersMedianA: number } | null> {
  const ids = Object.keys(currents);
  const out: Record<string, { ratio: number; peersMedianA: number } | null> = {};
  for (const id of ids) {
    const own = currents[id];
    const peers = ids.filter((o) => o !== id).map((o) => currents[o]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    const m = median(peers);
    out[id] = own === null || own === undefined || !Number.isFinite(own) || peers.length < minPeers || m === null || m < minPeerCurrentA ? null : { ratio: own / m, peersMedianA: m };
  }
  return out;
}

/**
 * Per-input currents from one processed telemetry message of an inverter: `160.module.<n>.DCA`
 * keyed by n. An input is left out (null) when its current is not of an accepted quality, or its
 * `160.module.<n>.DCSt` says it is OFF (disconnected on purpose: an open combiner switch or an
 * isolated string is not an imbalance). Names from `160.module.<n>.IDStr` where present.
 */
export function stringCurrents(points: Readonly<Record<string, Point>>, acceptQualities: readonly Quality[] = DEFAULT_ACCEPTED_QUALITIES): { currents: Record<string, number | null>; names: Record<string, string> } {
  const currents: Record<string, number | null> = {};
  const names: Record<string, string> = {};
  for (const [key, p] of Object.entries(points)) {
    const m = /^160\.module\.(\d+)\.(DCA|IDStr)$/.exec(key);
    if (m === null) continue;
    const n = m[1] as string;
    if (m[2] === 'IDStr') {
      if (typeof p.v === 'string' && p.v !== '') names[n] = p.v;
      continue;
    }
    const off = points[`160.module.${n}.DCSt`]?.v;
    const ok = typeof p.v === 'number' && Number.isFinite(p.v) && acceptQualities.includes(p.q) && off !== 'OFF' && off !== 1;
    const a = ok ? (p.u === 'mA' ? (p.v as number) / 1000 : (p.v as number)) : null;
    currents[n] = a;
  }
  return { currents, names };
}

/**
 * One inverter's detector. Feed it every poll, in sample-time order: `update(ts, currents, poa)`.
 * A raised string stays raised through the night or a data gap (nothing says it recovered); it
 * clears only after offDelayMs judged at or above clearRatio.
 */
export class StringImbalanceDetector {
  readonly options: StringImbalanceOptions;
  private readonly strings = new Map<string, PerString>();
  private lastTs = -Infinity;

  constructor(
    readonly assetId: string,
    options?: Partial<StringImbalanceOptions>,
  ) {
    const o = withDefaults<StringImbalanceOptions>(DEFAULT_STRING_IMBALANCE_OPTIONS, options);
    checkNumber('thresholdRatio', o.thresholdRatio, 0, 1, { minExclusive: true });
    checkNumber('clearRatio', o.clearRatio, o.thresholdRatio, 1);
    checkNumber('onDelayMs', o.onDelayMs, 0, 7 * 86_400_000);
    checkNumber('offDelayMs', o.offDelayMs, 0, 7 * 86_400_000);
    checkNumber('minIrradianceWm2', o.minIrradianceWm2, 0, 1500);
    checkNumber('minPeerCurrentA', o.minPeerCurrentA, 0, 1e4, { minExclusive: true });
    checkNumber('minPeers', o.minPeers, 1, 1000, { integer: true });
    checkNumber('maxGapMs', o.maxGapMs, 0, 86_400_000, { minExclusive: true });
    this.options = o;
  }

  /** Strings flagged now. */
  flagged(): string[] {
    return [...this.strings].filter(([, s]) => s.flagged).map(([id]) => id);
  }

  /**
   * One poll: currents by string (null = no usable value or disconnected), the site's POA (W/m2,
   * null when unknown), names (IDStr) for the events. Returns the transitions it caused and the
   * result to publish (kind `string_imbalance`: the lowest ratio in percent).
   * An update older than the previous one is ignored (no transitions, reason-less null result).
   */
  update(ts: number, currents: Readonly<Record<string, number | null>>, poaWm2: number | null, names: Readonly<Record<string, string>> = {}): { events: ImbalanceEvent[]; result: AnalyticsResult<ImbalanceReason> } {
    const o = this.options;
    const events: ImbalanceEvent[] = [];
    if (ts <= this.lastTs) return { events, result: { value: null, u: '%', reason: null, details: { ignored: 'out_of_order', ts } } };
    const gap = ts - this.lastTs > o.maxGapMs;
    this.lastTs = ts;
    const ratios = peerRatios(currents, o.minPeers, o.minPeerCurrentA);
    const lit = poaWm2 !== null && Number.isFinite(poaWm2) && poaWm2 >= o.minIrradianceWm2;
    for (const id of new Set([...Object.keys(currents), ...this.strings.keys()])) {
      let s = this.strings.get(id);
      if (s === undefined) {
        s = { lowSince: null, okSince: null, flagged: false, ratio: null };
        this.strings.set(id, s);
      }
      const r = ratios[id] ?? null;
      s.ratio = r?.ratio ?? null;
      if (gap) {
        s.lowSince = null;
        s.okSince = null;
      }
      if (!lit || r === null) {
        // Not judged: pending timers restart, a raised string stays raised.
        s.lowSince = null;
        s.okSince = null;
        continue;
      }
      const ev = (transition: ImbalanceEvent['transition'], since: number): ImbalanceEvent => ({
        transition,
        assetId: this.assetId,
        stringId: id,
        ...(names[id] !== undefined ? { name: names[id] } : {}),
        ts,
        ratio: r.ratio,
        currentA: currents[id] ?? null,
        peersMedianA: r.peersMedianA,
        since,
      });
      if (r.ratio < o.thresholdRatio) {
        s.okSince = null;
        s.lowSince ??= ts;
        if (!s.flagged && ts - s.lowSince >= o.onDelayMs) {
          s.flagged = true;
          events.push(ev('raised', s.lowSince));
        }
      } else if (r.ratio >= o.clearRatio) {
        s.lowSince = null;
        s.okSince ??= ts;
        if (s.flagged && ts - s.okSince >= o.offDelayMs) {
          s.flagged = false;
          events.push(ev('cleared', s.okSince));
        }
      } else {
        // In the hysteresis band: neither raising nor clearing progresses.
        s.lowSince = null;
        s.okSince = null;
      }
    }
    return { events, result: this.result(ts, currents, ratios, poaWm2, lit, names) };
  }

  private result(
    ts: number,
    currents: Readonly<Record<string, number | null>>,
    ratios: ReturnType<typeof peerRatios>,
    poaWm2: number | null,
    lit: boolean,
    names: Readonly<Record<string, string>>,
  ): AnalyticsResult<ImbalanceReason> {
    const strings: Record<string, { currentA: number | null; ratio: number | null; flagged: boolean; name?: string }> = {};
    for (const [id, s] of this.strings) strings[id] = { currentA: currents[id] ?? null, ratio: ratios[id]?.ratio ?? null, flagged: s.flagged, ...(names[id] !== undefined ? { name: names[id] } : {}) };
    const details: Record<string, unknown> = {
      ts,
      poaWm2,
      thresholdRatio: this.options.thresholdRatio,
      clearRatio: this.options.clearRatio,
      minIrradianceWm2: this.options.minIrradianceWm2,
      flagged: this.flagged(),
      strings,
    };
    const judged = Object.entries(ratios).filter((e): e is [string, { ratio: number; peersMedianA: number }] => e[1] !== null);
    let reason: ImbalanceReason | null = null;
    if (poaWm2 === null || !Number.isFinite(poaWm2)) reason = 'missing_irradiance';
    else if (!lit) reason = 'insufficient_irradiance';
    else if (Object.values(currents).filter((v) => v !== null).length < this.options.minPeers + 1) reason = 'too_few_strings';
    else if (judged.length === 0) reason = 'low_current';
    if (reason !== null) return { value: null, u: '%', reason, details: { ...details, reason } };
    const worst = judged.reduce((a, b) => (b[1].ratio < a[1].ratio ? b : a));
    return { value: worst[1].ratio * 100, u: '%', reason: null, details: { ...details, worstString: worst[0] } };
  }
}

/**
 * MLInference's alarms (docs/ml-inference.md "Alarms"): `predicted_fault` (the fault classifier's
 * probability that an inverter is not normal) and `anomaly` (the anomaly detector's score, low =
 * anomalous), per inverter, with hysteresis on two axes:
 *
 *   - raise: the score past `raise` in `forCount` inferences in a row (one window is 15 minutes of
 *     data, so a single odd window does not page anybody);
 *   - clear: the score back past `clear` (a second threshold on the healthy side of `raise`), once;
 *   - in between, or no score (night, missing data, no model): nothing changes; a raised alarm stays
 *     raised, since "no score" is not "healthy".
 *
 * Every transition is journaled (the alarm journal in MLInference's own SQLite file, docs/alarms.md)
 * before it is published; the raised alarms are taken back from the journal at start, so a restart
 * neither repeats a raise nor forgets to clear.
 */
import { randomUUID } from 'node:crypto';
import type { NewTransition } from '../lib/alarm-journal';
import { CONTRACT_VERSION, type AlarmMessage, type Severity } from '../lib/contract';

export const ML_ALARM_TYPES = ['predicted_fault', 'anomaly'] as const;
export type MlAlarmType = (typeof ML_ALARM_TYPES)[number];

/** A prediction is a warning ahead of the fault, not the fault: medium; an unexplained deviation: low. */
export const ML_ALARM_SEVERITY: Readonly<Record<MlAlarmType, Severity>> = { predicted_fault: 'medium', anomaly: 'low' };

export interface Hysteresis {
  raise: number;
  clear: number;
  forCount: number;
}

interface Condition {
  count: number;
  raised?: AlarmMessage | undefined;
}

export interface MlAlarmsDeps {
  now: () => number;
  siteId: () => string;
  source: string;
  emit: (t: NewTransition) => AlarmMessage;
}

const keyOf = (assetId: string, type: string): string => `${assetId}\u0000${type}`;

function round(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

export class MlAlarms {
  private readonly conds = new Map<string, Condition>();

  constructor(private readonly d: MlAlarmsDeps) {}

  load(active: readonly AlarmMessage[]): void {
    this.conds.clear();
    for (const a of active) if ((ML_ALARM_TYPES as readonly string[]).includes(a.type)) this.conds.set(keyOf(a.assetId, a.type), { count: 0, raised: a });
  }

  active(): AlarmMessage[] {
    return [...this.conds.values()].flatMap((c) => (c.raised ? [c.raised] : []));
  }

  /**
   * One inference's score. `high` says which side is bad: predicted_fault raises above `raise`,
   * anomaly below it.
   */
  judge(assetId: string, type: MlAlarmType, score: number, h: Hysteresis, details: Record<string, unknown>): void {
    const k = keyOf(assetId, type);
    const high = type === 'predicted_fault';
    const bad = high ? score >= h.raise : score <= h.raise;
    const good = high ? score <= h.clear : score >= h.clear;
    let c = this.conds.get(k);
    if (!c) {
      if (!bad) return;
      c = { count: 0 };
      this.conds.set(k, c);
    }
    if (c.raised) {
      if (good) {
        this.clear(c, `${type} score ${round(score)} back past ${h.clear}`, score);
        this.conds.delete(k);
      }
      return;
    }
    if (!bad) {
      this.conds.delete(k);
      return;
    }
    c.count++;
    if (c.count < h.forCount) return;
    c.raised = this.d.emit({
      schemaVersion: CONTRACT_VERSION,
      siteId: this.d.siteId(),
      assetId,
      alarmId: randomUUID(),
      type,
      severity: ML_ALARM_SEVERITY[type],
      state: 'raised',
      ts: this.d.now(),
      source: this.d.source,
      value: round(score),
      threshold: h.raise,
      message: high
        ? `fault probability ${round(score)} >= ${h.raise} in ${h.forCount} inferences in a row${typeof details['label'] === 'string' ? ` (most likely ${details['label']})` : ''}`
        : `anomaly score ${round(score)} <= ${h.raise} in ${h.forCount} inferences in a row`,
      details,
    });
  }

  /** Alarms of inverters no longer configured, or of a model switched off: cleared, nothing judges them any more. */
  clearUnless(keep: (assetId: string, type: MlAlarmType) => boolean, why: string): void {
    for (const [k, c] of [...this.conds]) {
      const a = c.raised;
      if (a && keep(a.assetId, a.type as MlAlarmType)) continue;
      if (a) this.clear(c, why, undefined);
      this.conds.delete(k);
    }
  }

  private clear(c: Condition, message: string, value: number | undefined): void {
    const prev = c.raised;
    if (!prev) return;
    c.raised = undefined;
    const { journalId: _j, sourceSeq: _s, transitionSeq: _t, replayed: _r, transition: _tr, ...rest } = prev;
    this.d.emit({ ...rest, state: 'cleared', ts: this.d.now(), message, ...(value !== undefined ? { value: round(value) } : {}) });
  }
}

/**
 * Analytics's alarms (docs/analytics-component.md "Alarms"; dCMMS edge specification §4.2,
 * docs/specification.md): `low_pr`, `string_underperformance`, `tracker_misalignment`,
 * `soiling_loss`, `low_health`. Each is a condition per (asset, type, subject) judged at every
 * evaluation:
 *
 *   - `true` (the figure is past its threshold): the condition is pending from that evaluation on,
 *     and raised once it has been pending `forMs` (0: at once);
 *   - `false` (the figure is back inside the clear limit, which is the threshold plus a hysteresis
 *     where the type has one): pending ends, a raised alarm clears;
 *   - `null` (no figure: night, missing data, the asset in stow): pending ends, but a raised alarm
 *     stays raised, since "no number" is not "healthy" (a low PR at dusk must not clear and re-raise
 *     every evening).
 *
 * Every transition goes through the alarm journal in Analytics's own SQLite file (the same lifecycle
 * as the Processor's: journaled, then published; snapshots and replay on the sync topic), and the
 * raised alarms are taken back from the journal at start, so a restart neither repeats a raise nor
 * forgets to clear.
 */
import { randomUUID } from 'node:crypto';
import type { NewTransition } from '../lib/alarm-journal';
import { CONTRACT_VERSION, type AlarmMessage, type Severity } from '../lib/contract';

export const ANALYTICS_ALARM_TYPES = ['low_pr', 'string_underperformance', 'tracker_misalignment', 'soiling_loss', 'low_health'] as const;
export type AnalyticsAlarmType = (typeof ANALYTICS_ALARM_TYPES)[number];

/** Severity per type: production losses are medium, a health score low enough to alarm on is high. */
export const ALARM_SEVERITY: Readonly<Record<AnalyticsAlarmType, Severity>> = {
  low_pr: 'medium',
  string_underperformance: 'medium',
  tracker_misalignment: 'medium',
  soiling_loss: 'low',
  low_health: 'high',
};

/** What one evaluation says about one condition. */
export interface Judgement {
  assetId: string;
  type: AnalyticsAlarmType;
  /** What within the asset (a string number, ''), part of the alarm's identity. */
  subject: string;
  active: boolean | null;
  forMs: number;
  value?: number | null;
  threshold?: number;
  point?: string;
  message?: string;
  details?: Record<string, unknown>;
}

interface Condition {
  pendingSince?: number | undefined;
  raised?: AlarmMessage | undefined;
  /** Evaluation that last judged it (conditions nobody judges any more are cleared). */
  seenAt: number;
}

export interface AlarmConditionsDeps {
  now: () => number;
  siteId: () => string;
  source: string;
  /** Journal and publish a transition; returns the journaled message. */
  emit: (t: NewTransition) => AlarmMessage;
}

const keyOf = (assetId: string, type: string, subject: string): string => `${assetId}\u0000${type}\u0000${subject}`;

export class AlarmConditions {
  private readonly conds = new Map<string, Condition>();

  constructor(private readonly d: AlarmConditionsDeps) {}

  /** The journal's active alarms of ours: known raised, not raised again. */
  load(active: readonly AlarmMessage[]): void {
    this.conds.clear();
    for (const a of active) {
      if (!(ANALYTICS_ALARM_TYPES as readonly string[]).includes(a.type)) continue;
      const subject = typeof a.details?.['subject'] === 'string' ? (a.details['subject'] as string) : '';
      this.conds.set(keyOf(a.assetId, a.type, subject), { raised: a, seenAt: this.d.now() });
    }
  }

  /** Raised alarms, newest first. */
  active(): AlarmMessage[] {
    return [...this.conds.values()].flatMap((c) => (c.raised ? [c.raised] : [])).sort((a, b) => b.ts - a.ts);
  }

  get size(): number {
    let n = 0;
    for (const c of this.conds.values()) if (c.raised) n++;
    return n;
  }

  judge(j: Judgement): void {
    const now = this.d.now();
    const k = keyOf(j.assetId, j.type, j.subject);
    let c = this.conds.get(k);
    if (!c) {
      if (j.active !== true) return;
      c = { seenAt: now };
      this.conds.set(k, c);
    }
    c.seenAt = now;
    if (j.active === null) {
      c.pendingSince = undefined;
      if (!c.raised) this.conds.delete(k);
      return;
    }
    if (j.active === false) {
      c.pendingSince = undefined;
      if (c.raised) this.clear(c, j.message ?? `${j.type} back within its limit`, j.value);
      this.conds.delete(k);
      return;
    }
    if (c.raised) return;
    c.pendingSince ??= now;
    if (now - c.pendingSince < j.forMs) return;
    c.raised = this.d.emit({
      schemaVersion: CONTRACT_VERSION,
      siteId: this.d.siteId(),
      assetId: j.assetId,
      alarmId: randomUUID(),
      type: j.type,
      severity: ALARM_SEVERITY[j.type],
      state: 'raised',
      ts: now,
      source: this.d.source,
      ...(j.point !== undefined ? { point: j.point } : {}),
      ...(j.value !== undefined ? { value: j.value === null ? null : round(j.value) } : {}),
      ...(j.threshold !== undefined ? { threshold: j.threshold } : {}),
      ...(j.message !== undefined ? { message: j.message } : {}),
      details: { subject: j.subject, pendingSince: c.pendingSince, ...(j.details ?? {}) },
    });
    c.pendingSince = undefined;
  }

  /**
   * Alarms of assets or types no longer configured (a reconfiguration removed the inverter or the
   * tracker): cleared, since nothing will judge them again.
   */
  clearUnless(keep: (assetId: string, type: AnalyticsAlarmType) => boolean, why: string): void {
    for (const [k, c] of [...this.conds]) {
      const a = c.raised;
      if (!a || keep(a.assetId, a.type as AnalyticsAlarmType)) continue;
      this.clear(c, why, undefined);
      this.conds.delete(k);
    }
  }

  private clear(c: Condition, message: string, value: number | null | undefined): void {
    const prev = c.raised;
    if (!prev) return;
    c.raised = undefined;
    this.d.emit({
      ...stripJournal(prev),
      state: 'cleared',
      ts: this.d.now(),
      message,
      ...(value !== undefined ? { value: value === null ? null : round(value) } : {}),
    });
  }
}

function stripJournal(a: AlarmMessage): NewTransition {
  const { journalId: _j, sourceSeq: _s, transitionSeq: _t, replayed: _r, transition: _tr, ...rest } = a;
  return rest;
}

function round(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

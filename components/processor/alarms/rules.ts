/**
 * Alarm rules from configuration, checked beyond the JSON schema (each kind needs its own fields)
 * and compiled once: globs to matchers, defaults filled in. A rule that cannot work is a
 * ConfigError naming `alarmRules.<i>.<key>` (bad configuration exits 1, docs/conventions.md
 * "Errors").
 *
 * Kinds (docs/processor.md "Alarms"): threshold (deadband, on/off delays), all (several conditions
 * on one asset: the soiling rule of specification §3.2), rate (rate of change), stale and frozen
 * values, state (SunSpec St FAULT), bits (SunSpec Evt1 bits to named alarms), comm_loss (the
 * adapter's device status).
 */
import { ConfigError } from '../../lib/errors';
import type { Severity } from '../../lib/contract';
import type { AlarmCondition, AlarmKind, AlarmRuleConfig, BitAlarm, Comparison } from '../config';
import { compileGlobs, type NameMatcher } from '../pipeline/match';

export interface CompiledRule {
  readonly index: number;
  readonly id: string;
  readonly kind: AlarmKind;
  readonly type: string;
  readonly severity: Severity;
  readonly assets: NameMatcher;
  readonly points: NameMatcher;
  readonly op: Comparison;
  readonly limit: number;
  readonly deadband: number;
  readonly onDelayMs: number;
  readonly offDelayMs: number;
  readonly conditions: readonly AlarmCondition[];
  readonly maxPerS: number;
  readonly maxAgeMs: number;
  readonly maxUnchangedMs: number;
  readonly tolerance: number;
  readonly minAbs: number;
  readonly values: ReadonlySet<string>;
  readonly bits: ReadonlyMap<string, BitAlarm>;
  readonly states: ReadonlySet<string>;
  readonly updateDelta: number | undefined;
}

const NEEDS: Record<AlarmKind, Array<keyof AlarmRuleConfig>> = {
  threshold: ['points', 'op', 'limit'],
  all: ['conditions'],
  rate: ['points', 'maxPerS'],
  stale: ['points', 'maxAgeMs'],
  frozen: ['points', 'maxUnchangedMs'],
  state: ['points', 'values'],
  bits: ['points', 'bits'],
  comm_loss: ['states'],
};

export function compileRules(rules: readonly AlarmRuleConfig[]): CompiledRule[] {
  const ids = new Set<string>();
  return rules.map((r, i) => {
    const key = (k: string): string => `alarmRules.${i}.${k}`;
    if (ids.has(r.id)) throw new ConfigError(key('id'), `alarm rule id '${r.id}' is used twice`);
    ids.add(r.id);
    for (const k of NEEDS[r.kind]) {
      if (r[k] === undefined) throw new ConfigError(key(k), `alarm rule '${r.id}' (kind ${r.kind}) needs '${k}'`);
    }
    return {
      index: i,
      id: r.id,
      kind: r.kind,
      type: r.type,
      severity: r.severity,
      assets: compileGlobs(r.assets),
      points: compileGlobs(r.points),
      op: r.op ?? 'above',
      limit: r.limit ?? 0,
      deadband: r.deadband ?? 0,
      onDelayMs: r.onDelayMs ?? 0,
      offDelayMs: r.offDelayMs ?? 0,
      conditions: r.conditions ?? [],
      maxPerS: r.maxPerS ?? Infinity,
      maxAgeMs: r.maxAgeMs ?? Infinity,
      maxUnchangedMs: r.maxUnchangedMs ?? Infinity,
      tolerance: r.tolerance ?? 0,
      minAbs: r.minAbs ?? 0,
      values: new Set(r.values ?? []),
      bits: new Map(Object.entries(r.bits ?? {})),
      states: new Set(r.states ?? []),
      updateDelta: r.updateDelta,
    };
  });
}

/** Is `v` past the limit (raise side)? */
export function beyond(op: Comparison, v: number, limit: number): boolean {
  return op === 'above' ? v > limit : v < limit;
}

/** Is `v` back inside by at least the deadband (clear side)? */
export function backInside(op: Comparison, v: number, limit: number, deadband: number): boolean {
  return op === 'above' ? v <= limit - deadband : v >= limit + deadband;
}

/**
 * LocalControl's rules, checked and compiled once (at start, when a deployment proposes a
 * configuration, and on every reconfigure). The schema (config.ts) fixes the keys and types; here
 * the semantics: which fields each condition source and each action needs or refuses. A bad rule is
 * a ConfigError naming the key (`rules[2].params.percent`) and what is allowed, so a deployment with
 * it fails instead of a rule that silently never fires (docs/local-control.md "Rules").
 */
import { SEVERITIES, type PointValue, type Severity } from '../lib/contract';
import { ConfigError } from '../lib/errors';
import type { ConditionConfig, RuleAction, RuleConfig, ValueOp, ValueTest } from './config';
import { compileGlobs, type NameMatcher } from './glob';

/** A compiled value test: which asset/point it looks at and whether a value passes. */
export interface CompiledTest {
  readonly assets: NameMatcher;
  readonly points: NameMatcher;
  readonly pass: (v: PointValue) => boolean;
  /** For logs and decision reasons: `poa above 300`. */
  readonly text: string;
}

export interface CompiledRule {
  readonly id: string;
  readonly index: number;
  readonly config: RuleConfig;
  readonly source: ConditionConfig['source'];
  readonly action: RuleAction;
  /** Condition asset globs. */
  readonly assets: NameMatcher;
  /** value: the point test. analytics/ml: `points` matches everything and `pass` tests the value or score. */
  readonly test: CompiledTest | undefined;
  readonly alarmType: NameMatcher | undefined;
  /** alarm: least severe rank that counts (0 critical .. 3 low). */
  readonly maxSeverityRank: number;
  readonly kind: string | undefined;
  readonly model: string | undefined;
  readonly forMs: number;
  readonly guards: readonly CompiledTest[];
  /** undefined: the asset the condition matched. */
  readonly targets: NameMatcher | undefined;
  /** curtail: restore after the condition has been false this long. */
  readonly holdOffMs: number;
  /** shutdown, trip, isolate_string and restore stay as they are when the condition goes away. */
  readonly latched: boolean;
  readonly emergency: boolean;
  readonly percent: number;
  readonly revertSeconds: number;
  /** trip: the relay point and the value written. */
  readonly point: string | undefined;
  readonly value: boolean;
}

export const DEFAULT_CURTAIL_HOLD_OFF_MS = 300000;
/** Automation never sets a limit without a revert timer shorter than this floor allows to refresh (docs/local-control.md). */
export const MIN_REVERT_SECONDS = 10;

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

function fail(key: string, what: string): never {
  throw new ConfigError(key, `configuration key '${key}' ${what}`);
}

function refuse(rec: object, base: string, keys: readonly string[], why: string): void {
  for (const k of keys) if ((rec as Record<string, unknown>)[k] !== undefined) fail(`${base}.${k}`, `is not allowed ${why}`);
}

/** `a|b|c` -> does it contain `bit`. Bitfields travel as their set bit names joined by `|` (docs/modbus-adapter.md). */
export function hasBit(v: PointValue, bit: string): boolean {
  return typeof v === 'string' && v.split('|').includes(bit);
}

function compileTest(t: ValueTest, key: string, allowed: readonly ValueOp[]): CompiledTest {
  const op = t.op;
  if (op === undefined) fail(`${key}.op`, `is required (one of ${allowed.join(', ')})`);
  if (!allowed.includes(op)) fail(`${key}.op`, `must be one of ${allowed.join(', ')} (got "${op}")`);
  const only = (need: 'limit' | 'bit' | 'value'): void => {
    for (const k of ['limit', 'bit', 'value'] as const) {
      if (k === need && t[k] === undefined) fail(`${key}.${k}`, `is required for op "${op}"`);
      if (k !== need && t[k] !== undefined) fail(`${key}.${k}`, `is not allowed for op "${op}" (it takes ${need})`);
    }
  };
  const assets = compileGlobs(t.assets);
  const points = compileGlobs(t.points);
  switch (op) {
    case 'above':
    case 'below': {
      only('limit');
      const limit = t.limit as number;
      return { assets, points, pass: op === 'above' ? (v) => typeof v === 'number' && v > limit : (v) => typeof v === 'number' && v < limit, text: `${op} ${limit}` };
    }
    case 'hasBit': {
      only('bit');
      const bit = t.bit as string;
      return { assets, points, pass: (v) => hasBit(v, bit), text: `has bit ${bit}` };
    }
    case 'equals': {
      only('value');
      const want = t.value as PointValue;
      return { assets, points, pass: (v) => v === want, text: `equals ${JSON.stringify(want)}` };
    }
  }
}

function compileRule(r: RuleConfig, i: number): CompiledRule {
  const base = `rules[${i}]`;
  const c = r.condition;
  const ck = `${base}.condition`;
  let test: CompiledTest | undefined;
  let alarmType: NameMatcher | undefined;
  let maxSeverityRank = SEVERITIES.length - 1;
  switch (c.source) {
    case 'alarm':
      if (c.alarmType === undefined) fail(`${ck}.alarmType`, 'is required for source "alarm" (an alarm type or glob, e.g. "over_temperature")');
      refuse(c, ck, ['points', 'op', 'limit', 'bit', 'value', 'kind', 'model'], 'for source "alarm" (it takes alarmType, minSeverity, assets)');
      alarmType = compileGlobs([c.alarmType]);
      maxSeverityRank = severityRank(c.minSeverity ?? 'low');
      break;
    case 'value':
      if (c.points === undefined) fail(`${ck}.points`, 'is required for source "value" (point name globs, e.g. ["string*.status"])');
      refuse(c, ck, ['alarmType', 'minSeverity', 'kind', 'model'], 'for source "value" (it takes assets, points, op and limit, bit or value)');
      test = compileTest(c, ck, ['above', 'below', 'hasBit', 'equals']);
      break;
    case 'analytics':
    case 'ml': {
      const need = c.source === 'analytics' ? 'kind' : 'model';
      if (c[need] === undefined) fail(`${ck}.${need}`, `is required for source "${c.source}"`);
      test = compileTest(c, ck, ['above', 'below']);
      refuse(c, ck, ['alarmType', 'minSeverity', 'points', c.source === 'analytics' ? 'model' : 'kind'], `for source "${c.source}" (it takes ${need}, assets, op above|below and limit)`);
      break;
    }
  }
  const guards = (c.while ?? []).map((g, j) => compileTest(g, `${ck}.while[${j}]`, ['above', 'below', 'hasBit', 'equals']));
  const p = r.params ?? {};
  const pk = `${base}.params`;
  let percent = 0;
  let revertSeconds = 0;
  let point: string | undefined;
  let latched = true;
  let holdOffMs = 0;
  if (r.action !== 'curtail' && r.release !== undefined) {
    fail(`${base}.release`, r.action === 'shutdown' || r.action === 'trip' ? `is not allowed: ${r.action} is never released automatically (an operator starts again)` : `is not allowed: ${r.action} is never released automatically (only curtail has a release)`);
  }
  switch (r.action) {
    case 'curtail':
      refuse(p, pk, ['point', 'value'], 'for action "curtail" (it takes percent and revertSeconds)');
      if (typeof p.percent !== 'number' || p.percent < 0 || p.percent > 100) fail(`${pk}.percent`, 'must be a number from 0 to 100 (the output limit, % of WMax)');
      if (p.revertSeconds === undefined || !Number.isInteger(p.revertSeconds) || p.revertSeconds < MIN_REVERT_SECONDS || p.revertSeconds > 65535) {
        fail(`${pk}.revertSeconds`, `must be an integer from ${MIN_REVERT_SECONDS} to 65535 (the inverter's own revert timer: automation never sets a limit that outlives the gateway)`);
      }
      percent = p.percent;
      revertSeconds = p.revertSeconds;
      latched = false;
      holdOffMs = r.release?.holdOffMs ?? DEFAULT_CURTAIL_HOLD_OFF_MS;
      break;
    case 'trip':
      refuse(p, pk, ['percent', 'revertSeconds'], 'for action "trip" (it takes point and value)');
      if (p.point === undefined) fail(`${pk}.point`, 'is required for action "trip" (the relay point of the target I/O asset, e.g. "relay.breakerTrip")');
      point = p.point;
      break;
    default:
      refuse(p, pk, ['percent', 'revertSeconds', 'point', 'value'], `for action "${r.action}" (it takes no parameters)`);
  }
  if (r.action === 'isolate_string' && c.source !== 'value' && c.source !== 'alarm') {
    fail(`${ck}.source`, 'must be "value" or "alarm" for action "isolate_string" (the string number comes from the matched point, e.g. string3.status)');
  }
  return {
    id: r.id,
    index: i,
    config: r,
    source: c.source,
    action: r.action,
    assets: compileGlobs(c.assets),
    test,
    alarmType,
    maxSeverityRank,
    kind: c.kind,
    model: c.model,
    forMs: c.forMs ?? 0,
    guards,
    targets: r.targets ? compileGlobs(r.targets) : undefined,
    holdOffMs,
    latched,
    emergency: r.emergency === true,
    percent,
    revertSeconds,
    point,
    value: p.value ?? true,
  };
}

/** Throws ConfigError naming the first bad key. */
export function compileRules(rules: readonly RuleConfig[]): CompiledRule[] {
  const ids = new Map<string, number>();
  return rules.map((r, i) => {
    const prev = ids.get(r.id);
    if (prev !== undefined) fail(`rules[${i}].id`, `must be unique ("${r.id}" is also rules[${prev}].id)`);
    ids.set(r.id, i);
    return compileRule(r, i);
  });
}

/** The string number of a combiner box point (`string3.status` -> 3), or undefined. */
export function stringNumber(point: string | undefined): number | undefined {
  const m = point === undefined ? null : /^string(\d{1,3})\./.exec(point);
  return m ? Number(m[1]) : undefined;
}

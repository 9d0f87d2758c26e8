/**
 * Evaluating a rule's condition against the latest inputs, in three values (docs/local-control.md
 * "Interlocks"): `true` and `false` only on fresh, good inputs; `unknown` when an input the answer
 * depends on is older than maxInputAgeMs (gateway time), not of quality `good`, missing, or comes
 * from an alarm source that has gone silent. Automation acts only on `true`, releases only on
 * `false`, and does neither on `unknown` (a condition that would be true on a stale or bad input
 * becomes a `blocked` decision naming why).
 *
 * One match per thing the condition can be true of: per asset for alarm conditions (several alarms
 * of one asset are one match), per asset and point for values (each string of a combiner box is
 * its own match, so each can be isolated), per asset for analytics and ML.
 */
import type { AlarmMessage, DecisionInput, PointValue } from '../lib/contract';
import type { AlarmState } from './alarm-state';
import type { Inputs, Sample } from './inputs';
import { severityRank, type CompiledRule, type CompiledTest } from './rules';

export type Truth = 'true' | 'false' | 'unknown';
export type InputProblem = 'stale_input' | 'bad_quality';

export interface Match {
  key: string;
  asset: string;
  point?: string | undefined;
  truth: Truth;
  /** Why the truth is unknown. */
  problem?: InputProblem | undefined;
  detail?: string | undefined;
  /** The condition's tests pass on the values as they are, fresh or not (a `blocked` decision if not usable). */
  wouldBeTrue: boolean;
  inputs: DecisionInput[];
  /** The oldest input's time: decision latencies count from it. */
  firstInputTs: number;
  /** Alarm sources the match rests on. */
  sources: string[];
}

export interface EvalContext {
  now: number;
  maxInputAgeMs: number;
  maxAlarmSourceSilenceMs: number;
  inputs: Inputs;
  alarms: AlarmState;
}

/** What the engine remembers of a rule's held matches, to tell when they are over. */
export interface HeldRef {
  key: string;
  asset: string;
  point?: string | undefined;
  sources: readonly string[];
}

export function holdKey(ruleId: string, asset: string, point?: string): string {
  return point === undefined ? `${ruleId}|${asset}` : `${ruleId}|${asset}|${point}`;
}

interface Judged {
  truth: Truth;
  problem?: InputProblem | undefined;
  detail?: string | undefined;
  would: boolean;
  input: DecisionInput;
}

function valueInput(ref: string, s: { v: PointValue; ts: number; q?: Sample['q'] }): DecisionInput {
  return s.q === undefined ? { source: 'value', ref, value: s.v, ts: s.ts } : { source: 'value', ref, value: s.v, ts: s.ts, quality: s.q };
}

/** One sample against a test: fresh and good, or why not. */
function judge(ref: string, s: Sample, pass: (v: PointValue) => boolean, ctx: EvalContext, source: DecisionInput['source'] = 'value'): Judged {
  const input: DecisionInput = { ...valueInput(ref, s), source };
  if (s.v === null || s.q === 'bad' || s.q === 'not_implemented') return { truth: 'unknown', problem: 'bad_quality', detail: `${ref} has no usable value (quality ${s.q})`, would: false, input };
  const would = pass(s.v);
  const age = ctx.now - s.ts;
  if (age > ctx.maxInputAgeMs) return { truth: 'unknown', problem: 'stale_input', detail: `${ref} is ${Math.round(age)} ms old (maxInputAgeMs ${ctx.maxInputAgeMs})`, would, input };
  if (s.q !== 'good') return { truth: 'unknown', problem: 'bad_quality', detail: `${ref} has quality ${s.q}`, would, input };
  return { truth: would ? 'true' : 'false', would, input };
}

/** A `while` guard: true when any asset/point it names has a fresh good value that passes. */
function judgeGuard(g: CompiledTest, ctx: EvalContext): Judged {
  let fallback: Judged | undefined;
  let falseOne: Judged | undefined;
  for (const asset of ctx.inputs.assetsWithValues()) {
    if (!g.assets(asset)) continue;
    for (const [point, s] of ctx.inputs.points(asset) ?? []) {
      if (!g.points(point)) continue;
      const j = judge(`${asset}/${point}`, s, g.pass, ctx);
      if (j.truth === 'true') return j;
      if (j.truth === 'false') falseOne ??= j;
      else fallback ??= j;
    }
  }
  if (falseOne) return falseOne;
  if (fallback) return fallback;
  return { truth: 'unknown', problem: 'stale_input', detail: `no value for the guard (${g.text})`, would: false, input: { source: 'value', ref: `guard ${g.text}`, value: null, ts: ctx.now } };
}

/** Three-valued AND of the main test and the guards. */
function combine(key: string, asset: string, point: string | undefined, main: Judged, guards: readonly Judged[], sources: string[]): Match {
  const all = [main, ...guards];
  const inputs = all.map((j) => j.input);
  const firstInputTs = Math.min(...inputs.map((i) => i.ts));
  const wouldBeTrue = main.would && !guards.some((g) => g.truth === 'false');
  const f = all.find((j) => j.truth === 'false');
  if (f) return { key, asset, point, truth: 'false', wouldBeTrue, inputs, firstInputTs, sources };
  const u = all.find((j) => j.truth === 'unknown');
  if (u) return { key, asset, point, truth: 'unknown', problem: u.problem, detail: u.detail, wouldBeTrue, inputs, firstInputTs, sources };
  return { key, asset, point, truth: 'true', wouldBeTrue, inputs, firstInputTs, sources };
}

/**
 * The rule's matches now. `held`: the rule's current holds, so that a hold whose alarm cleared
 * gets a `false` match. `onlyAsset`: evaluate that asset's matches only (the fast path for one
 * telemetry message; guards are still judged in full).
 */
export function evaluateRule(rule: CompiledRule, ctx: EvalContext, held: readonly HeldRef[], onlyAsset?: string): Match[] {
  const guards = rule.guards.map((g) => judgeGuard(g, ctx));
  const out: Match[] = [];
  switch (rule.source) {
    case 'alarm': {
      const perPoint = rule.action === 'isolate_string';
      const groups = new Map<string, { asset: string; point: string | undefined; list: Array<{ a: AlarmMessage }> }>();
      for (const a of ctx.alarms.active()) {
        if (!rule.assets(a.assetId) || !rule.alarmType?.(a.type) || severityRank(a.severity) > rule.maxSeverityRank) continue;
        if (onlyAsset !== undefined && a.assetId !== onlyAsset) continue;
        const point = perPoint ? a.point : undefined;
        const key = holdKey(rule.id, a.assetId, point);
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { asset: a.assetId, point, list: [] }));
        g.list.push({ a });
      }
      for (const [key, g] of groups) {
        const sources = [...new Set(g.list.map((x) => x.a.source))];
        const silent = sources.find((s) => !alive(s, ctx));
        const inputs: DecisionInput[] = g.list.map(({ a }) => ({ source: 'alarm', ref: `${a.assetId}/${a.type}/${a.alarmId}`, value: a.value ?? a.severity, ts: a.ts }));
        const main: Judged = silent
          ? { truth: 'unknown', problem: 'stale_input', detail: silentText(silent, ctx), would: true, input: inputs[0] as DecisionInput }
          : { truth: 'true', would: true, input: inputs[0] as DecisionInput };
        const m = combine(key, g.asset, g.point, main, guards, sources);
        m.inputs = [...inputs, ...m.inputs.slice(1)];
        m.firstInputTs = Math.min(...m.inputs.map((i) => i.ts));
        out.push(m);
      }
      for (const h of held) {
        if (groups.has(h.key) || (onlyAsset !== undefined && h.asset !== onlyAsset)) continue;
        const silent = h.sources.find((s) => !alive(s, ctx));
        const input: DecisionInput = { source: 'alarm', ref: `${h.asset}/${rule.config.condition.alarmType ?? ''}`, value: 'cleared', ts: ctx.now };
        const main: Judged = silent ? { truth: 'unknown', problem: 'stale_input', detail: silentText(silent, ctx), would: false, input } : { truth: 'false', would: false, input };
        out.push(combine(h.key, h.asset, h.point, main, guards, [...h.sources]));
      }
      break;
    }
    case 'value': {
      const test = rule.test as CompiledTest;
      const assets = onlyAsset !== undefined ? [onlyAsset] : [...ctx.inputs.assetsWithValues()];
      for (const asset of assets) {
        if (!rule.assets(asset)) continue;
        for (const [point, s] of ctx.inputs.points(asset) ?? []) {
          if (!test.points(point)) continue;
          out.push(combine(holdKey(rule.id, asset, point), asset, point, judge(`${asset}/${point}`, s, test.pass, ctx), guards, []));
        }
      }
      break;
    }
    case 'analytics':
    case 'ml': {
      const test = rule.test as CompiledTest;
      const isMl = rule.source === 'ml';
      const assets = onlyAsset !== undefined ? [onlyAsset] : [...(isMl ? ctx.inputs.mlAssets() : ctx.inputs.analyticsAssets())];
      for (const asset of assets) {
        if (!rule.assets(asset)) continue;
        const what = (isMl ? rule.model : rule.kind) as string;
        const e = isMl ? ctx.inputs.ml(asset, what) : ctx.inputs.analytics(asset, what);
        if (!e) continue;
        const v = isMl ? ((e as { score: number | undefined }).score ?? null) : (e as { value: number | null }).value;
        const s: Sample = { v, q: v === null ? 'bad' : 'good', ts: e.ts };
        const j = judge(`${asset}/${what}`, s, test.pass, ctx, isMl ? 'ml' : 'analytics');
        delete j.input.quality;
        out.push(combine(holdKey(rule.id, asset), asset, undefined, j, guards, []));
      }
      break;
    }
  }
  return out;
}

function alive(source: string, ctx: EvalContext): boolean {
  const at = ctx.alarms.heardAt(source);
  return at !== undefined && ctx.now - at <= ctx.maxAlarmSourceSilenceMs;
}

function silentText(source: string, ctx: EvalContext): string {
  const at = ctx.alarms.heardAt(source);
  return at === undefined ? `nothing heard from alarm source ${source} yet` : `alarm source ${source} silent for ${Math.round((ctx.now - at) / 1000)} s (maxAlarmSourceSilenceMs ${ctx.maxAlarmSourceSilenceMs})`;
}

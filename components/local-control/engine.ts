/**
 * The rule engine (docs/local-control.md "Rules"): turns condition matches into holds.
 *
 * A hold is a rule firing on one match (an asset, or an asset's point): it exists from the moment
 * the condition has been true on fresh, good inputs for `forMs` until the rule lets go, and while
 * it exists the rule demands its action on its targets (actuator.ts turns demands into commands).
 * A curtailment's hold lets go once the condition has been false (on fresh, good inputs) for the
 * rule's holdOffMs; latched actions (shutdown, trip, isolate_string, restore) let go as soon as
 * the condition is false, and what they did stays until an operator undoes it. An unknown
 * condition (stale or bad inputs, a silent alarm source) neither starts nor ends a hold.
 *
 * Holds are persisted, so a restart keeps demanding what it demanded; the hold-off clock is not
 * (a restart starts it again: the condition may have come back while nobody watched).
 */
import type { DecisionInput } from '../lib/contract';
import type { LocalControlDb } from './db';
import { evaluateRule, type EvalContext, type HeldRef, type Match } from './evaluate';
import type { CompiledRule } from './rules';

export interface Hold {
  readonly key: string;
  readonly ruleId: string;
  readonly asset: string;
  readonly point: string | undefined;
  readonly since: number;
  /** The inputs that made it fire. */
  readonly inputs: DecisionInput[];
  readonly firstInputTs: number;
  readonly sources: string[];
  /** The latest evaluation of its match (undefined until one after a restart). */
  truth: Match | undefined;
  falseSince: number | undefined;
  /** Target assets an operator acted on directly: the hold demands nothing of them any more. */
  readonly overridden: Set<string>;
  /** Targets a one-shot action (restore) was done on. */
  readonly done: Set<string>;
}

interface PersistedHold {
  ruleId: string;
  asset: string;
  point?: string;
  since: number;
  inputs: DecisionInput[];
  firstInputTs: number;
  sources: string[];
}

export interface RuleEngineHooks {
  fired(rule: CompiledRule, hold: Hold): void;
  released(rule: CompiledRule | undefined, hold: Hold, reason: string, evidence: Match | undefined): void;
  /** The condition would be true, but an input is stale or bad (called once per match and problem). */
  inputBlocked(rule: CompiledRule, m: Match): void;
}

export type Trigger = { kind: 'all' } | { kind: 'alarm' } | { kind: 'value' | 'analytics' | 'ml'; asset: string };

interface PendingMatch {
  trueSince: number | undefined;
  blocked: string | undefined;
}

export class RuleEngine {
  private rules: CompiledRule[] = [];
  private byId = new Map<string, CompiledRule>();
  readonly holds = new Map<string, Hold>();
  private readonly pending = new Map<string, PendingMatch>();

  constructor(
    private readonly hooks: RuleEngineHooks,
    private readonly db: () => LocalControlDb | undefined,
  ) {}

  rule(id: string): CompiledRule | undefined {
    return this.byId.get(id);
  }

  allRules(): readonly CompiledRule[] {
    return this.rules;
  }

  /** New rules: holds of rules that no longer exist are released (their curtailments restored). */
  setRules(rules: CompiledRule[]): void {
    this.rules = rules;
    this.byId = new Map(rules.map((r) => [r.id, r]));
    for (const h of [...this.holds.values()]) {
      const r = this.byId.get(h.ruleId);
      if (!r) this.release(undefined, h, 'the rule was removed from the configuration', undefined);
    }
    for (const k of [...this.pending.keys()]) if (!this.byId.has(k.split('|')[0] ?? '')) this.pending.delete(k);
  }

  /** Holds persisted by the previous run (replacing any held now). */
  load(rows: ReadonlyArray<{ k: string; state: string }>): void {
    this.holds.clear();
    this.pending.clear();
    for (const row of rows) {
      const p = JSON.parse(row.state) as PersistedHold;
      this.holds.set(row.k, { key: row.k, ruleId: p.ruleId, asset: p.asset, point: p.point, since: p.since, inputs: p.inputs, firstInputTs: p.firstInputTs, sources: p.sources, truth: undefined, falseSince: undefined, overridden: new Set(), done: new Set() });
    }
  }

  holdsOf(ruleId: string): Hold[] {
    return [...this.holds.values()].filter((h) => h.ruleId === ruleId);
  }

  /** Evaluates the rules a trigger concerns; returns true when a hold started, ended, or its condition changed. */
  evaluate(trigger: Trigger, ctx: EvalContext): boolean {
    let changed = false;
    for (const rule of this.rules) {
      const scope = this.scope(rule, trigger);
      if (scope === false) continue;
      const held: HeldRef[] = this.holdsOf(rule.id);
      const matches = evaluateRule(rule, ctx, held, scope === true ? undefined : scope);
      const seen = new Set<string>();
      for (const m of matches) {
        seen.add(m.key);
        changed = this.process(rule, m, ctx.now) || changed;
      }
      if (scope === true) for (const k of [...this.pending.keys()]) if (k.startsWith(`${rule.id}|`) && !seen.has(k)) this.pending.delete(k);
    }
    return changed;
  }

  /**
   * The gateway clock jumped: time measured across the jump means nothing, so every hold-off and
   * every `forMs` starts again from now (a forward jump must not release a curtailment early).
   */
  clockJumped(): void {
    for (const h of this.holds.values()) h.falseSince = undefined;
    for (const p of this.pending.values()) p.trueSince = undefined;
  }

  /** Operator override: holds targeting `asset` stop demanding anything of it until they end. */
  override(asset: string, targetsOf: (h: Hold) => readonly string[]): string[] {
    const ids: string[] = [];
    for (const h of this.holds.values()) {
      if (!targetsOf(h).includes(asset)) continue;
      h.overridden.add(asset);
      ids.push(h.ruleId);
    }
    return ids;
  }

  /** true: every match; an asset: that asset's; false: the trigger does not concern the rule. */
  private scope(rule: CompiledRule, t: Trigger): boolean | string {
    if (t.kind === 'all') return true;
    const guarded = t.kind === 'value' && rule.guards.some((g) => g.assets(t.asset));
    if (t.kind === 'alarm') return rule.source === 'alarm';
    if (guarded) return true;
    if (rule.source !== t.kind || !rule.assets(t.asset)) return false;
    return t.asset;
  }

  private process(rule: CompiledRule, m: Match, now: number): boolean {
    const hold = this.holds.get(m.key);
    if (hold) {
      // A hold whose condition became true again on fresh inputs may now do what it waited for.
      const moved = hold.truth?.truth !== m.truth || hold.truth?.problem !== m.problem;
      hold.truth = m;
      if (m.truth !== 'false') {
        // Unknown restarts the hold-off: the condition may have been true meanwhile.
        hold.falseSince = undefined;
        return moved;
      }
      if (rule.latched) {
        this.release(rule, hold, `the condition no longer holds; ${rule.action} stays until an operator undoes it`, m);
        return true;
      }
      hold.falseSince ??= now;
      if (now - hold.falseSince < rule.holdOffMs) return moved;
      this.release(rule, hold, `the condition has been false for ${Math.round((now - hold.falseSince) / 1000)} s (holdOffMs ${rule.holdOffMs})`, m);
      return true;
    }
    let p = this.pending.get(m.key);
    if (m.truth === 'true') {
      if (!p) this.pending.set(m.key, (p = { trueSince: undefined, blocked: undefined }));
      p.blocked = undefined;
      p.trueSince ??= now;
      if (now - p.trueSince < rule.forMs) return false;
      this.pending.delete(m.key);
      this.fire(rule, m, now);
      return true;
    }
    if (m.truth === 'unknown' && m.wouldBeTrue) {
      if (!p) this.pending.set(m.key, (p = { trueSince: undefined, blocked: undefined }));
      p.trueSince = undefined;
      const why = m.problem ?? 'stale_input';
      if (p.blocked !== why) {
        p.blocked = why;
        this.hooks.inputBlocked(rule, m);
      }
      return false;
    }
    if (p) this.pending.delete(m.key);
    return false;
  }

  private fire(rule: CompiledRule, m: Match, now: number): void {
    const hold: Hold = { key: m.key, ruleId: rule.id, asset: m.asset, point: m.point, since: now, inputs: m.inputs, firstInputTs: m.firstInputTs, sources: m.sources, truth: m, falseSince: undefined, overridden: new Set(), done: new Set() };
    this.holds.set(m.key, hold);
    const persisted: PersistedHold = { ruleId: rule.id, asset: m.asset, ...(m.point !== undefined ? { point: m.point } : {}), since: now, inputs: m.inputs, firstInputTs: m.firstInputTs, sources: m.sources };
    this.db()?.putHold(m.key, persisted);
    this.hooks.fired(rule, hold);
  }

  private release(rule: CompiledRule | undefined, hold: Hold, reason: string, evidence: Match | undefined): void {
    this.holds.delete(hold.key);
    this.db()?.removeHold(hold.key);
    this.hooks.released(rule, hold, reason, evidence);
  }
}

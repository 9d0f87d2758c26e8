/**
 * From holds to commands, through the interlocks (docs/local-control.md "Interlocks").
 *
 * Each target (an asset and a slot: `power` for curtail/restore/shutdown/start, `string<k>` for a
 * combiner box disconnect, `relay:<point>` for a relay) has a desired state, the strongest demand
 * of the holds targeting it (shutdown over curtail, the lowest percent among curtailments), and an
 * applied state: what automation last did there successfully (persisted). Reconciling compares the
 * two and plans at most one step per target:
 *
 *  - `act`: a new action; `resend`: the same again after a restart or the device coming back
 *    (automation cannot know the device kept it); `refresh`: a curtailment sent again every
 *    revertSeconds/2 so the inverter's own revert timer never ends it while the rule holds;
 *    `release`: restore once no hold demands the curtailment; `oneshot`: a restore rule;
 *    `relay`: the alarm horn and beacon.
 *  - Shutdown, trip and isolation are latched: no demand does not mean undo; an operator does.
 *
 * Before a step goes out the interlocks run, in this order, and the first that stops it becomes a
 * `blocked` decision naming it (once per target, want and reason): `manual_mode`, `stale_input` /
 * `bad_quality` (the hold's condition is not true on fresh good inputs now), `device_offline`,
 * `in_flight` (another action on the asset is under way), `rate_limit`, `capacity_cap` /
 * `capacity_unknown`. Emergency rules skip the rate limit and the capacity cap and say so.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../lib/clock';
import type { DecisionInput, OperatorRequest } from '../lib/contract';
import type { Logger } from '../lib/logger';
import type { AlarmState } from './alarm-state';
import { clip, type Commander, type DecisionCtx, type Recorder } from './commands';
import type { LocalControlConfig } from './config';
import type { LocalControlDb } from './db';
import type { Hold, RuleEngine } from './engine';
import type { Match } from './evaluate';
import type { Fleet, Inputs } from './inputs';
import { capacityBlock, RateLimiter } from './interlocks';
import { OperatorState } from './operator-state';
import { causeInputs, relayWants } from './relays';
import { stringNumber, type CompiledRule } from './rules';
import { describe, describeCtx, strongest, targetKey, text, wantKey, type Target, type Want } from './wants';

/** What automation last did successfully on a target. */
interface Applied {
  asset: string;
  slot: string;
  want: Want;
  ruleId: string;
  decisionId: string;
  at: number;
  lastSentAt: number;
  /** False after a restart or the device coming back: the device may no longer be in this state. */
  confirmed: boolean;
}

type PlanKind = 'act' | 'resend' | 'refresh' | 'release' | 'oneshot' | 'relay';

interface Plan {
  target: Target;
  want: Want;
  kind: PlanKind;
  ruleId: string;
  decisionId: string;
  hold?: Hold | undefined;
  inputs: DecisionInput[];
  firstInputTs: number;
  emergency: boolean;
}

export interface ActuatorDeps {
  clock: Clock;
  logger: Logger;
  recorder: Recorder;
  commander: Commander;
  engine: RuleEngine;
  inputs: Inputs;
  fleet: Fleet;
  alarms: AlarmState;
  db: () => LocalControlDb | undefined;
  config: () => Readonly<LocalControlConfig>;
}

export class Actuator {
  private readonly applied = new Map<string, Applied>();
  private readonly rate = new RateLimiter();
  private readonly blockedShown = new Map<string, string>();
  private readonly failed = new Map<string, { want: string; at: number }>();
  private readonly releaseInfo = new Map<string, { ruleId: string; decisionId: string; inputs: DecisionInput[]; firstInputTs: number }>();
  private readonly decisionIds = new Map<string, string>();
  private readonly relayWritten = new Map<string, boolean>();
  readonly operators: OperatorState;
  private relaysLive = false;
  private running = false;
  private again = false;

  constructor(private readonly d: ActuatorDeps) {
    this.operators = new OperatorState(d.db, d.config);
  }

  /** State kept by the previous run. Applied states are unconfirmed until sent again. */
  load(db: LocalControlDb, now: number): void {
    this.rate.clear();
    for (const m of [this.applied, this.blockedShown, this.failed, this.releaseInfo, this.decisionIds, this.relayWritten]) m.clear();
    this.operators.load(db);
    for (const r of db.applied()) {
      const a = JSON.parse(r.state) as Applied;
      this.applied.set(r.k, { ...a, confirmed: false });
    }
    const window = this.d.config().rateLimit.windowMs;
    for (const r of db.countedSince(now - window)) this.rate.add(r.assetId, r.ts);
  }

  /** Relays are written from now on (after the start-up settle time). */
  startRelays(): void {
    this.relaysLive = true;
    this.reconcile();
  }

  appliedStates(): Array<{ key: string; want: Want; ruleId: string; confirmed: boolean }> {
    return [...this.applied.entries()].map(([key, a]) => ({ key, want: a.want, ruleId: a.ruleId, confirmed: a.confirmed }));
  }

  /** The assets a hold's rule acts on, with the slot. */
  targetsOf(rule: CompiledRule, hold: { asset: string; point?: string | undefined }): Target[] {
    const assets = rule.targets ? this.knownAssets().filter((a) => rule.targets?.(a)) : [hold.asset];
    switch (rule.action) {
      case 'isolate_string': {
        const k = stringNumber(hold.point);
        if (k === undefined) return [];
        return assets.map((asset) => ({ key: targetKey(asset, `string${k}`), asset, slot: `string${k}`, point: `string${k}.closed` }));
      }
      case 'trip':
        return assets.map((asset) => ({ key: targetKey(asset, `relay:${rule.point ?? ''}`), asset, slot: `relay:${rule.point ?? ''}`, point: rule.point }));
      default:
        return assets.map((asset) => ({ key: targetKey(asset, 'power'), asset, slot: 'power' }));
    }
  }

  private knownAssets(): string[] {
    const s = new Set<string>([...this.d.inputs.known(), ...this.d.fleet.all()]);
    for (const a of this.applied.values()) s.add(a.asset);
    return [...s].sort();
  }

  private wantOf(rule: CompiledRule, t: Target): Want {
    switch (rule.action) {
      case 'curtail':
        return { kind: 'curtail', percent: rule.percent, revertSeconds: rule.revertSeconds };
      case 'isolate_string':
        return { kind: 'write', point: t.point ?? '', value: false, as: 'isolate_string' };
      case 'trip':
        return { kind: 'write', point: t.point ?? '', value: rule.value, as: 'write' };
      default:
        return { kind: rule.action };
    }
  }

  private decisionIdFor(hold: Hold, key: string): string {
    const k = `${hold.key}#${key}`;
    let id = this.decisionIds.get(k);
    if (!id) this.decisionIds.set(k, (id = randomUUID()));
    return id;
  }

  // --- engine hooks -------------------------------------------------------------------------

  /** A condition that would be true on a stale or bad input: one blocked decision per target. */
  inputBlocked(rule: CompiledRule, m: Match): void {
    for (const t of this.targetsOf(rule, m)) {
      const ctx: DecisionCtx = { decisionId: randomUUID(), ruleId: rule.id, assetId: t.asset, ...describeCtx(this.wantOf(rule, t)), inputs: m.inputs, firstInputTs: m.firstInputTs };
      this.d.recorder.step(ctx, 'blocked', { reason: `${m.problem ?? 'stale_input'}: ${m.detail ?? 'an input is not usable'}` });
    }
  }

  released(rule: CompiledRule | undefined, hold: Hold, reason: string, evidence: Match | undefined): void {
    if (!rule) {
      // The rule is gone: its curtailments are restored like any release.
      for (const [key, a] of this.applied) if (a.ruleId === hold.ruleId && a.want.kind === 'curtail') this.releaseInfo.set(key, { ruleId: hold.ruleId, decisionId: a.decisionId, inputs: hold.inputs, firstInputTs: this.d.clock.now() });
      this.forgetDecisionIds(hold);
      this.d.logger.info('hold released', { ruleId: hold.ruleId, asset: hold.asset, reason });
      return;
    }
    const inputs = evidence?.inputs ?? hold.inputs;
    const firstInputTs = evidence ? Math.max(...evidence.inputs.map((i) => i.ts)) : this.d.clock.now();
    for (const t of this.targetsOf(rule, hold)) {
      if (hold.overridden.has(t.asset)) continue;
      const decisionId = this.decisionIdFor(hold, t.key);
      const want = this.wantOf(rule, t);
      this.d.recorder.step({ decisionId, ruleId: rule.id, assetId: t.asset, ...describeCtx(want), inputs, firstInputTs }, 'released', { reason });
      if (want.kind === 'curtail') this.releaseInfo.set(t.key, { ruleId: rule.id, decisionId, inputs, firstInputTs });
    }
    this.forgetDecisionIds(hold);
  }

  private forgetDecisionIds(hold: Hold): void {
    for (const k of [...this.decisionIds.keys()]) if (k.startsWith(`${hold.key}#`)) this.decisionIds.delete(k);
  }

  // --- reconcile ----------------------------------------------------------------------------

  /** Plans and executes a step for every target that needs one. Re-entrant calls run once more at the end. */
  reconcile(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        this.pass();
      } while (this.again);
    } finally {
      this.running = false;
    }
  }

  private pass(): void {
    const now = this.d.clock.now();
    const demands = new Map<string, { target: Target; list: Array<{ rule: CompiledRule; hold: Hold; want: Want }> }>();
    for (const hold of this.d.engine.holds.values()) {
      const rule = this.d.engine.rule(hold.ruleId);
      if (!rule) continue;
      for (const t of this.targetsOf(rule, hold)) {
        if (hold.overridden.has(t.asset)) continue;
        let e = demands.get(t.key);
        if (!e) demands.set(t.key, (e = { target: t, list: [] }));
        e.list.push({ rule, hold, want: this.wantOf(rule, t) });
      }
    }
    const keys = [...new Set([...demands.keys(), ...this.applied.keys()])].sort();
    const plans: Plan[] = [];
    for (const key of keys) {
      const plan = this.plan(key, demands.get(key), now);
      if (plan) plans.push(plan);
      else this.idle(key, 'no longer wanted');
    }
    plans.push(...this.relayPlans(now));
    for (const p of plans) this.execute(p, now);
  }

  /** Nothing to do on a target: forget its blocked state and end a chain still waiting to retry. */
  private idle(key: string, why: string): void {
    this.blockedShown.delete(key);
    const c = this.d.commander.get(key);
    if (c && c.state === 'backoff' && c.spec.ruleId !== 'operator') this.d.commander.abandon(c, why);
  }

  private plan(key: string, d: { target: Target; list: Array<{ rule: CompiledRule; hold: Hold; want: Want }> } | undefined, now: number): Plan | undefined {
    const applied = this.applied.get(key);
    const target: Target = d?.target ?? { key, asset: applied?.asset ?? '', slot: applied?.slot ?? 'power', point: applied && applied.want.kind === 'write' ? applied.want.point : undefined };
    const win = d ? strongest(d.list) : undefined;
    const from = (kind: PlanKind, w: { rule: CompiledRule; hold: Hold; want: Want }): Plan => {
      const t = w.hold.truth?.truth === 'true' ? w.hold.truth : undefined;
      return { target, want: w.want, kind, ruleId: w.rule.id, decisionId: this.decisionIdFor(w.hold, key), hold: w.hold, inputs: t?.inputs ?? w.hold.inputs, firstInputTs: kind === 'refresh' ? now : (t?.firstInputTs ?? w.hold.firstInputTs), emergency: w.rule.emergency };
    };
    const same = applied && win && wantKey(applied.want) === wantKey(win.want);
    if (win && same) {
      if (!applied.confirmed) return from('resend', win);
      if (win.want.kind === 'curtail' && now - applied.lastSentAt >= (win.want.revertSeconds * 1000) / 2) return from('refresh', win);
      return undefined;
    }
    if (target.slot === 'power') {
      if (win?.want.kind === 'shutdown') return from('act', win);
      if (win?.want.kind === 'curtail') return applied?.want.kind === 'shutdown' ? undefined : from('act', win);
      if (win?.want.kind === 'restore') {
        if (applied?.want.kind === 'curtail' || (!applied && !win.hold.done.has(target.asset))) return from('oneshot', win);
        return undefined;
      }
      if (applied?.want.kind === 'curtail') {
        const r = this.releaseInfo.get(key) ?? { ruleId: applied.ruleId, decisionId: applied.decisionId, inputs: [], firstInputTs: now };
        return { target, want: { kind: 'restore' }, kind: 'release', ruleId: r.ruleId, decisionId: r.decisionId, inputs: r.inputs, firstInputTs: r.firstInputTs, emergency: false };
      }
      return undefined;
    }
    return win ? from('act', win) : undefined;
  }

  private relayPlans(now: number): Plan[] {
    if (!this.relaysLive) return [];
    const wants = relayWants(this.d.config().outputs, this.d.alarms.active(), (id) => this.operators.isAcked(id));
    // A relay no longer configured that we switched on is switched off once.
    for (const [key, v] of this.relayWritten) {
      if (!v || wants.has(key)) continue;
      const [asset = '', slot = ''] = key.split('|');
      wants.set(key, { key, assetId: asset, point: slot.slice('relay:'.length), value: false, ruleId: 'relay-removed', causes: [] });
    }
    const plans: Plan[] = [];
    const known = this.d.inputs.known();
    for (const w of wants.values()) {
      // An I/O asset no adapter has announced (a site without one, or before its first poll) is
      // not written: the command would go unanswered and end in control_failed.
      if (!known.has(w.assetId)) continue;
      if (this.relayWritten.get(w.key) === w.value) {
        this.blockedShown.delete(w.key);
        continue;
      }
      const last = this.operators.lastAck;
      const ack = !w.value && last ? [{ source: 'operator' as const, ref: `acknowledge ${last.alarmId} by ${last.by}`, value: 'acknowledge', ts: last.at }] : [];
      const inputs = w.causes.length ? causeInputs(w.causes) : ack;
      plans.push({
        target: { key: w.key, asset: w.assetId, slot: `relay:${w.point}`, point: w.point },
        want: { kind: 'write', point: w.point, value: w.value, as: 'write' },
        kind: 'relay',
        ruleId: w.ruleId,
        decisionId: randomUUID(),
        inputs,
        firstInputTs: inputs.length ? Math.max(...inputs.map((i) => i.ts)) : now,
        emergency: false,
      });
    }
    return plans;
  }

  private execute(p: Plan, now: number): void {
    const key = p.target.key;
    const wk = wantKey(p.want);
    const chain = this.d.commander.get(key);
    if (chain) {
      if (chain.spec.wantKey === wk) return;
      // An operator's command is never cut short by automation.
      if (chain.state !== 'backoff' || chain.spec.ruleId === 'operator') return this.block(p, `in_flight: ${chain.spec.action} (${chain.spec.ruleId}) on ${p.target.asset} is under way`);
      this.d.commander.abandon(chain, `superseded: ${p.ruleId} wants ${text(p.want)}`);
    }
    const f = this.failed.get(key);
    if (f && f.want === wk && now - f.at < this.d.config().failedRetryAfterMs) return;
    if (p.hold && (p.kind === 'act' || p.kind === 'resend' || p.kind === 'oneshot') && p.hold.truth?.truth === 'false') return;
    // Sending again what the previous run did waits quietly for its condition to be seen true
    // (right after a start the alarm sources have not answered yet; a blocked decision would be noise).
    if (p.kind === 'resend' && p.hold?.truth?.truth !== 'true') return;
    const why = this.interlock(p, now);
    if (why) return this.block(p, why);
    this.blockedShown.delete(key);
    this.send(p, now);
  }

  private block(p: Plan, reason: string): void {
    const shown = `${wantKey(p.want)}|${reason.split(':')[0] ?? ''}`;
    if (this.blockedShown.get(p.target.key) === shown) return;
    this.blockedShown.set(p.target.key, shown);
    this.d.recorder.step({ decisionId: p.decisionId, ruleId: p.ruleId, assetId: p.target.asset, ...describeCtx(p.want), inputs: p.inputs, firstInputTs: p.firstInputTs }, 'blocked', { reason });
  }

  private interlock(p: Plan, now: number): string | undefined {
    const cfg = this.d.config();
    const asset = p.target.asset;
    if (this.operators.isManual(asset)) return `manual_mode: ${this.operators.manualText(asset)}`;
    if (p.hold && (p.kind === 'act' || p.kind === 'resend' || p.kind === 'oneshot')) {
      const t = p.hold.truth;
      if (!t || t.truth !== 'true') return `${t?.problem ?? 'stale_input'}: ${t?.detail ?? 'the condition has not been seen true on fresh inputs since the start'}`;
    }
    const st = this.d.inputs.status(asset);
    if (st?.state === 'offline') return `device_offline: ${asset} is offline${st.message ? ` (${st.message})` : ''}`;
    if (p.kind !== 'relay') {
      const busy = this.d.commander.busy(asset, p.target.key);
      if (busy) return `in_flight: ${busy.spec.action} (${busy.spec.ruleId}) on ${asset} is under way`;
    }
    if (!p.emergency && (p.kind === 'act' || p.kind === 'release' || p.kind === 'oneshot')) {
      const n = this.rate.count(asset, now - cfg.rateLimit.windowMs);
      if (n >= cfg.rateLimit.maxActions) return `rate_limit: ${n} actions on ${asset} in the last ${Math.round(cfg.rateLimit.windowMs / 1000)} s (rateLimit.maxActions ${cfg.rateLimit.maxActions})`;
    }
    if (!p.emergency && p.kind === 'act' && (p.want.kind === 'curtail' || p.want.kind === 'shutdown')) {
      const cur = this.applied.get(p.target.key)?.want.kind;
      if (cur !== 'curtail' && cur !== 'shutdown') {
        return capacityBlock(asset, this.d.fleet, cfg, (inv) => {
          const k = targetKey(inv, 'power');
          const a = this.applied.get(k)?.want.kind;
          const c = this.d.commander.get(k);
          return a === 'curtail' || a === 'shutdown' || (c !== undefined && c.spec.ruleId !== 'operator' && (c.spec.command.action === 'curtail' || c.spec.command.action === 'shutdown'));
        });
      }
    }
    return undefined;
  }

  private send(p: Plan, now: number): void {
    const desc = describe(p.want);
    const counted = p.kind === 'act' || p.kind === 'release' || p.kind === 'oneshot';
    if (counted) this.rate.add(p.target.asset, now);
    const reason =
      p.kind === 'refresh' ? `refresh of the revert timer (revertSeconds ${p.want.kind === 'curtail' ? p.want.revertSeconds : 0})`
      : p.kind === 'resend' ? 'sent again: the device may have lost it (restart or reconnection)'
      : p.kind === 'release' ? 'release: no rule demands the curtailment any more'
      : p.emergency && p.kind === 'act' ? (p.want.kind === 'curtail' || p.want.kind === 'shutdown' ? 'emergency: exempt from the capacity cap and the rate limit' : 'emergency: exempt from the rate limit')
      : undefined;
    const hold = p.hold;
    this.d.commander.start({
      decisionId: p.decisionId,
      ruleId: p.ruleId,
      assetId: p.target.asset,
      action: desc.action,
      params: desc.params,
      inputs: p.inputs,
      firstInputTs: p.firstInputTs,
      targetKey: p.target.key,
      wantKey: wantKey(p.want),
      command: desc.command,
      reason,
      counted,
      exclusive: p.kind !== 'relay',
      onDone: (outcome) => {
        const at = this.d.clock.now();
        if (outcome === 'succeeded') {
          this.failed.delete(p.target.key);
          if (p.kind === 'relay') this.relayWritten.set(p.target.key, p.want.kind === 'write' && p.want.value);
          else if (p.want.kind === 'restore') {
            this.setApplied(p.target.key, undefined);
            this.releaseInfo.delete(p.target.key);
            if (p.kind === 'oneshot') hold?.done.add(p.target.asset);
          } else this.setApplied(p.target.key, { asset: p.target.asset, slot: p.target.slot, want: p.want, ruleId: p.ruleId, decisionId: p.decisionId, at, lastSentAt: now, confirmed: true });
        } else if (outcome === 'failed') {
          this.failed.set(p.target.key, { want: wantKey(p.want), at });
          if (p.kind === 'relay') this.relayWritten.delete(p.target.key);
        }
        this.reconcile();
      },
    });
  }

  private setApplied(key: string, a: Applied | undefined): void {
    const db = this.d.db();
    if (a) {
      this.applied.set(key, a);
      db?.putApplied(key, a);
    } else {
      this.applied.delete(key);
      db?.removeApplied(key);
    }
  }

  // --- device status, operators, acknowledgements ------------------------------------------

  /** The device answers again (first poll after an adapter or device restart): what we set may be gone. */
  deviceOnline(asset: string): void {
    for (const a of this.applied.values()) if (a.asset === asset) a.confirmed = false;
    for (const key of [...this.relayWritten.keys()]) if (key.startsWith(`${asset}|`)) this.relayWritten.delete(key);
    for (const key of [...this.failed.keys()]) if (key.startsWith(`${asset}|`)) this.failed.delete(key);
  }

  /**
   * The gateway clock jumped: curtailments are refreshed now (a backward jump would otherwise
   * postpone the refresh past the inverter's revert timer), and rate-limit entries from the
   * "future" are dropped.
   */
  clockJumped(now: number): void {
    for (const a of this.applied.values()) a.lastSentAt = Number.NEGATIVE_INFINITY;
    this.rate.dropAfter(now);
  }

  /** An asset taken out of automation: a chain waiting to retry there is ended. */
  setManual(asset: string, by: string, at: number): boolean {
    if (!this.operators.setManual(asset, by, at)) return false;
    for (const c of [...this.d.commander.chains()]) if (c.spec.assetId === asset && c.state === 'backoff' && c.spec.ruleId !== 'operator') this.d.commander.abandon(c, `manual_mode: ${asset} set to manual by ${by}`);
    return true;
  }

  /**
   * An operator acts on an asset directly (shutdown, start, curtail, restore): automation's holds on
   * it stop demanding anything of it until they end, and `start` undoes automation's latched
   * actions there (shutdown: start; trip: the relay off; isolation: the string reconnected).
   */
  operator(req: OperatorRequest, params: { percent?: number; revertSeconds?: number }): string[] {
    const asset = req.assetId ?? '';
    const overridden = this.d.engine.override(asset, (h) => {
      const rule = this.d.engine.rule(h.ruleId);
      return rule ? this.targetsOf(rule, h).map((t) => t.asset) : [];
    });
    const steps: Array<{ target: Target; want: Want }> = [];
    const power: Target = { key: targetKey(asset, 'power'), asset, slot: 'power' };
    if (req.action === 'start') {
      for (const [key, a] of this.applied) {
        if (a.asset !== asset) continue;
        if (a.want.kind === 'write') steps.push({ target: { key, asset, slot: a.slot, point: a.want.point }, want: { kind: 'write', point: a.want.point, value: !a.want.value, as: a.want.as === 'isolate_string' ? 'reconnect_string' : 'write' } });
      }
      if (!steps.length || this.applied.get(power.key)?.want.kind === 'shutdown') steps.push({ target: power, want: { kind: 'start' } });
    } else if (req.action === 'curtail') steps.push({ target: power, want: { kind: 'curtail', percent: params.percent ?? 100, revertSeconds: params.revertSeconds ?? 0 } });
    else if (req.action === 'shutdown' || req.action === 'restore') steps.push({ target: power, want: { kind: req.action } });
    const ids: string[] = [];
    for (const s of steps) {
      // The operator owns these targets now: automation will not restore, refresh or undo them.
      this.setApplied(s.target.key, undefined);
      this.releaseInfo.delete(s.target.key);
      this.blockedShown.delete(s.target.key);
      const existing = this.d.commander.get(s.target.key);
      if (existing) this.d.commander.abandon(existing, `superseded: operator ${req.operator} requested ${req.action}`);
      const desc = describe(s.want);
      const decisionId = randomUUID();
      ids.push(decisionId);
      this.d.commander.start({
        decisionId,
        ruleId: 'operator',
        assetId: asset,
        action: desc.action,
        params: desc.params,
        inputs: [{ source: 'operator', ref: clip(`${req.operator}/${req.requestId}`, 256), value: req.action, ts: req.ts }],
        firstInputTs: req.ts,
        targetKey: s.target.key,
        wantKey: `operator:${wantKey(s.want)}`,
        command: desc.command,
        reason: clip(`operator ${req.operator}${req.reason ? `: ${req.reason}` : ''}${overridden.length ? `; overrides ${[...new Set(overridden)].join(', ')}` : ''}`),
        counted: false,
        exclusive: true,
        onDone: () => this.reconcile(),
      });
    }
    return ids;
  }
}

/**
 * The alarm rule engine (docs/processor.md "Alarms"; dCMMS edge specification §3.2 alarm checks,
 * docs/specification.md). Rules come from configuration (rules.ts). Each alarm instance (rule,
 * asset, point, bit) has a lifecycle:
 *
 *   idle --condition held onDelayMs--> raised (published once, with a fresh alarmId)
 *   raised --value moved updateDelta--> updated (same alarmId, details.event "updated")
 *   raised --clear condition held offDelayMs--> cleared (same alarmId), idle again
 *
 * Not on every sample: a raised alarm is published again only as an update or a clear. Active
 * alarms are persisted (persist.ts) and restored at start, so a restart neither forgets an active
 * alarm nor raises it twice. Data rules run on sample time (replays evaluate alike); stale values
 * and communication-loss delays run on the injected clock (`tick`).
 */
import { CONTRACT_VERSION, type AlarmMessage, type AlarmTransition, type DeviceStatus } from '../../lib/contract';
import type { AssetState, SeriesState } from '../pipeline/series';
import type { SeriesUpdate } from '../pipeline/pipeline';
import type { ActiveAlarm, AlarmPersistence } from './persist';
import { backInside, beyond, type CompiledRule } from './rules';

/** The persisted state change that goes with a transition: one transaction with its journal entry. */
export interface StateChange {
  save?: ActiveAlarm;
  remove?: string;
}

export interface AlarmEngineDeps {
  siteId: string;
  /** Restores the active alarms at construction; changes go through `transition`. */
  persistence: Pick<AlarmPersistence, 'load'>;
  /**
   * One transition and the state change that goes with it. The Processor journals both in one
   * transaction and publishes (components/lib/alarm-journal.ts): a crash keeps both or neither.
   */
  transition(alarm: AlarmMessage, change: StateChange): void;
  newId(): string;
  /** Component short name, the alarm's `source`. */
  source: string;
}

/** Condition state of one alarm instance. */
interface Instance {
  readonly key: string;
  readonly rule: CompiledRule;
  readonly assetId: string;
  readonly point: string | undefined;
  readonly type: string;
  readonly severity: AlarmMessage['severity'];
  since: number | undefined;
  clearSince: number | undefined;
  active: ActiveAlarm | undefined;
  /** rate: previous sample; frozen: reference value and since when it holds; stale: last arrival. */
  prevNum: number | undefined;
  prevTs: number;
}

interface Binding {
  rule: CompiledRule;
  inst: Instance;
  /** bits: one instance per bit name. */
  bits: Map<string, Instance> | undefined;
}

const NO_BINDINGS: Binding[] = [];

export class AlarmEngine {
  private readonly instances = new Map<string, Instance>();
  private readonly restored = new Map<string, ActiveAlarm>();
  private readonly stale: Instance[] = [];
  private readonly seriesRules: CompiledRule[];
  private readonly assetRules: CompiledRule[];
  private readonly commRules: CompiledRule[];
  private readonly assetBindings = new Map<string, Instance[]>();

  constructor(
    rules: readonly CompiledRule[],
    private readonly deps: AlarmEngineDeps,
  ) {
    this.seriesRules = rules.filter((r) => r.kind !== 'all' && r.kind !== 'comm_loss');
    this.assetRules = rules.filter((r) => r.kind === 'all');
    this.commRules = rules.filter((r) => r.kind === 'comm_loss');
    for (const a of deps.persistence.load()) this.restored.set(a.key, a);
  }

  /**
   * Restored alarms whose rule no longer exists (the configuration changed while stopped) are
   * cleared now, so nothing stays active that no rule can ever clear.
   */
  reconcile(now: number, ruleIds: ReadonlySet<string>): void {
    for (const [key, a] of this.restored) {
      if (ruleIds.has(a.ruleId)) continue;
      this.restored.delete(key);
      this.deps.transition({
        schemaVersion: CONTRACT_VERSION,
        siteId: this.deps.siteId,
        assetId: a.assetId,
        alarmId: a.alarmId,
        type: a.type,
        severity: a.severity,
        state: 'cleared',
        ts: Math.round(now),
        source: this.deps.source,
        ...(a.point !== undefined ? { point: a.point } : {}),
        message: `${a.type.replace(/_/g, ' ')} cleared: its rule ${a.ruleId} was removed`.slice(0, 512),
        details: { ruleId: a.ruleId, event: 'cleared', reason: 'rule_removed', raisedAt: a.raisedAt },
        transition: 'cleared',
      }, { remove: key });
    }
  }

  /** Active alarms (restored ones included until their rule sees data). */
  active(): ActiveAlarm[] {
    const out = new Map<string, ActiveAlarm>(this.restored);
    for (const i of this.instances.values()) if (i.active) out.set(i.key, i.active);
    return [...out.values()];
  }

  private instance(rule: CompiledRule, assetId: string, point: string | undefined, sub: string | undefined, type: string, severity: AlarmMessage['severity']): Instance {
    const key = `${rule.id}|${assetId}|${point ?? ''}|${sub ?? ''}`;
    let inst = this.instances.get(key);
    if (!inst) {
      const active = this.restored.get(key);
      this.restored.delete(key);
      inst = { key, rule, assetId, point, type, severity, since: undefined, clearSince: undefined, active, prevNum: undefined, prevTs: 0 };
      this.instances.set(key, inst);
      if (rule.kind === 'stale') this.stale.push(inst);
    }
    return inst;
  }

  private bindings(assetId: string, s: SeriesState): Binding[] {
    if (s.alarm !== undefined) return s.alarm as Binding[];
    const list: Binding[] = [];
    for (const rule of this.seriesRules) {
      if (!rule.assets(assetId) || !rule.points(s.point)) continue;
      list.push({ rule, inst: this.instance(rule, assetId, s.point, undefined, rule.type, rule.severity), bits: rule.kind === 'bits' ? new Map() : undefined });
    }
    const out = list.length ? list : NO_BINDINGS;
    s.alarm = out;
    return out;
  }

  /** In-order samples of one message of one asset; `now` is gateway time (stale rules). */
  onSamples(asset: AssetState, ts: number, updates: readonly SeriesUpdate[], now: number): void {
    for (const u of updates) {
      const list = this.bindings(asset.id, u.series);
      for (let i = 0; i < list.length; i++) this.evalSeries(list[i] as Binding, u, ts, now);
    }
    if (this.assetRules.length) this.evalAsset(asset, ts);
  }

  private evalSeries(b: Binding, u: SeriesUpdate, ts: number, now: number): void {
    const { rule, inst } = b;
    const num = u.num;
    switch (rule.kind) {
      case 'threshold':
        if (num !== null) this.level(inst, beyond(rule.op, num, rule.limit), backInside(rule.op, num, rule.limit, rule.deadband), ts, num, rule.limit);
        return;
      case 'rate': {
        if (num === null) return;
        const prev = inst.prevNum;
        const dt = (ts - inst.prevTs) / 1000;
        inst.prevNum = num;
        inst.prevTs = ts;
        if (prev === undefined || dt <= 0) return;
        const rate = Math.abs(num - prev) / dt;
        this.level(inst, rate > rule.maxPerS, rate <= rule.maxPerS, ts, rate, rule.maxPerS);
        return;
      }
      case 'frozen': {
        if (num === null) return;
        const changed = inst.prevNum === undefined || Math.abs(num - inst.prevNum) > rule.tolerance || Math.abs(num) < rule.minAbs;
        if (changed) {
          inst.prevNum = num;
          inst.prevTs = ts;
        }
        this.level(inst, !changed && ts - inst.prevTs >= rule.maxUnchangedMs, changed, ts, num, undefined);
        return;
      }
      case 'stale':
        inst.prevTs = now;
        if (inst.active) this.clear(inst, now, num);
        return;
      case 'state':
        if (typeof u.value === 'string') this.level(inst, rule.values.has(u.value), !rule.values.has(u.value), ts, num, undefined, { symbol: u.value });
        return;
      case 'bits': {
        if (typeof u.value !== 'string' || !b.bits) return;
        const set = new Set(u.value === '' ? [] : u.value.split('|'));
        for (const [bit, alarm] of rule.bits) {
          let bi = b.bits.get(bit);
          if (!bi) {
            if (!set.has(bit) && !this.restored.has(`${rule.id}|${inst.assetId}|${inst.point ?? ''}|${bit}`)) continue; // never seen set: nothing to track yet
            bi = this.instance(rule, inst.assetId, inst.point, bit, alarm.type, alarm.severity);
            b.bits.set(bit, bi);
          }
          this.level(bi, set.has(bit), !set.has(bit), ts, num, undefined, { bit });
        }
        return;
      }
      default:
        return;
    }
  }

  private evalAsset(asset: AssetState, ts: number): void {
    let list = this.assetBindings.get(asset.id);
    if (!list) {
      list = this.assetRules.filter((r) => r.assets(asset.id)).map((r) => this.instance(r, asset.id, undefined, undefined, r.type, r.severity));
      this.assetBindings.set(asset.id, list);
    }
    for (const inst of list) {
      const rule = inst.rule;
      let all = true;
      let anyClear = false;
      const values: Record<string, number> = {};
      for (const c of rule.conditions) {
        const s = asset.getSeries(c.point);
        // Only current, valued samples count: a condition on a point this message lacks waits.
        if (!s || s.lastNum === null || s.lastTs !== ts) return;
        values[c.point] = s.lastNum;
        if (!beyond(c.op, s.lastNum, c.limit)) all = false;
        if (backInside(c.op, s.lastNum, c.limit, rule.deadband)) anyClear = true;
      }
      this.level(inst, all, anyClear, ts, null, undefined, { values });
    }
  }

  /** The adapter's device status: communication loss (`comm_loss` rules). */
  onDeviceStatus(st: DeviceStatus, now: number): void {
    for (const rule of this.commRules) {
      if (!rule.assets(st.assetId)) continue;
      const inst = this.instance(rule, st.assetId, undefined, undefined, rule.type, rule.severity);
      const down = rule.states.has(st.state);
      const details = { deviceState: st.state, consecutiveFailures: st.consecutiveFailures, lastSeen: st.lastSeen, ...(st.message ? { deviceMessage: st.message } : {}) };
      this.level(inst, down, !down, now, null, undefined, details);
    }
  }

  /** Stale values and pending comm-loss delays, on gateway time. */
  tick(now: number): void {
    for (const inst of this.stale) {
      if (!inst.active && inst.prevTs > 0 && now - inst.prevTs > inst.rule.maxAgeMs) this.raise(inst, now, null, inst.rule.maxAgeMs, { lastSampleAt: inst.prevTs, ageMs: now - inst.prevTs });
    }
    for (const inst of this.instances.values()) {
      if (inst.rule.kind !== 'comm_loss') continue;
      if (!inst.active && inst.since !== undefined && now - inst.since >= inst.rule.onDelayMs) this.raise(inst, now, null, undefined, {});
      if (inst.active && inst.clearSince !== undefined && now - inst.clearSince >= inst.rule.offDelayMs) this.clear(inst, now, null);
    }
  }

  private level(inst: Instance, raiseCond: boolean, clearCond: boolean, t: number, value: number | null, threshold: number | undefined, details: Record<string, unknown> = {}): void {
    const rule = inst.rule;
    if (!inst.active) {
      inst.clearSince = undefined;
      if (!raiseCond) {
        inst.since = undefined;
        return;
      }
      inst.since ??= t;
      if (t - inst.since >= rule.onDelayMs) this.raise(inst, t, value, threshold, details);
      return;
    }
    inst.since = undefined;
    if (clearCond) {
      inst.clearSince ??= t;
      if (t - inst.clearSince >= rule.offDelayMs) this.clear(inst, t, value, details);
      return;
    }
    inst.clearSince = undefined;
    const last = inst.active.value;
    if (raiseCond && rule.updateDelta !== undefined && value !== null && last !== null && Math.abs(value - last) >= rule.updateDelta) {
      inst.active.value = value;
      this.emit(inst, 'updated', t, value, threshold, { ...details, event: 'updated' }, { save: inst.active });
    }
  }

  private raise(inst: Instance, t: number, value: number | null, threshold: number | undefined, details: Record<string, unknown>): void {
    inst.since = undefined;
    inst.active = {
      key: inst.key,
      alarmId: this.deps.newId(),
      ruleId: inst.rule.id,
      assetId: inst.assetId,
      type: inst.type,
      severity: inst.severity,
      ...(inst.point !== undefined ? { point: inst.point } : {}),
      raisedAt: t,
      value,
      ...(threshold !== undefined ? { threshold } : {}),
    };
    this.emit(inst, 'raised', t, value, threshold, { ...details, event: 'raised' }, { save: inst.active });
  }

  private clear(inst: Instance, t: number, value: number | null, details: Record<string, unknown> = {}): void {
    if (!inst.active) return;
    this.emit(inst, 'cleared', t, value, inst.active.threshold, { ...details, event: 'cleared', raisedAt: inst.active.raisedAt }, { remove: inst.key });
    inst.active = undefined;
    inst.clearSince = undefined;
  }

  private emit(inst: Instance, transition: AlarmTransition, t: number, value: number | null, threshold: number | undefined, details: Record<string, unknown>, change: StateChange): void {
    const a = inst.active;
    if (!a) return;
    const state = transition === 'cleared' ? 'cleared' : 'raised';
    const what = inst.point ? `${inst.assetId} ${inst.point}` : inst.assetId;
    this.deps.transition({
      schemaVersion: CONTRACT_VERSION,
      siteId: this.deps.siteId,
      assetId: inst.assetId,
      alarmId: a.alarmId,
      type: inst.type,
      severity: inst.severity,
      state,
      ts: Math.round(t),
      source: this.deps.source,
      ...(inst.point !== undefined ? { point: inst.point } : {}),
      ...(value !== null && Number.isFinite(value) ? { value } : {}),
      ...(threshold !== undefined && Number.isFinite(threshold) ? { threshold } : {}),
      message: `${inst.type.replace(/_/g, ' ')} ${transition} on ${what}`.slice(0, 512),
      details: { ruleId: inst.rule.id, ...details },
      transition,
    }, change);
  }
}

/**
 * com.dcmms.edge.LocalControl (docs/local-control.md; dCMMS edge specification §4.2 control
 * actions and local alarming, §3.2 local control, docs/specification.md): automated responses on
 * the gateway, with no cloud, through interlocks, with every step audited; local alarm outputs.
 *
 *   inputs (alarms, processed telemetry, analytics, ML, device status, operator requests)
 *     -> rule engine (engine.ts: conditions -> holds)
 *     -> actuator (actuator.ts: holds -> desired state per target -> interlocks -> commands)
 *     -> commander (commands.ts: ControlCommand, ControlResult, retries; decisions + audit log)
 *
 * Decisions are taken in the bus handler of the input that changes something (the fast path; a
 * tick every tickMs handles what time alone changes: forMs, hold-offs, refreshes, stale inputs).
 * LocalControl is an alarm source itself (`control_failed`), with its journal in its own SQLite
 * file (db.ts), like the Processor.
 *
 * The factory validates only (rules compiled); `start` opens the database, restores what the
 * previous run held, subscribes and asks every alarm source for its state; `reconfigure` applies
 * rules, interlocks and outputs in place; `close` is idempotent.
 */
import path from 'node:path';
import { AlarmJournal } from '../lib/alarm-journal';
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { deepEqual } from '../lib/config';
import {
  filters,
  parseTopic,
  type AlarmMessage,
  type AlarmSnapshot,
  type AnalyticsMessage,
  type ControlResult,
  type DeviceStatus,
  type MlResult,
  type OperatorRequest,
  type TelemetryMessage,
} from '../lib/contract';
import { createLogLimiter } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { Actuator } from './actuator';
import { AlarmState } from './alarm-state';
import { Commander, Recorder } from './commands';
import type { LocalControlConfig } from './config';
import { LocalControlDb } from './db';
import { RuleEngine, type Trigger } from './engine';
import type { EvalContext } from './evaluate';
import { compileGlobs } from './glob';
import { FailureAlarms } from './failure-alarms';
import { Fleet, Inputs } from './inputs';
import { acknowledge, handleOperatorRequest, type OperatorContext } from './operator-requests';
import { createNotifier, NotifierHost, type NotifierDeps } from './notifications';
import { notifyKey } from './notify-options';
import { compileRules, type CompiledRule } from './rules';

/**
 * The alarm notification outputs (e-mail, SMS, webhook: components/local-control/outputs): every
 * alarm transition LocalControl learns of and every acknowledgement goes to it.
 */
export interface AlarmNotifier {
  start(): void;
  offer(alarm: AlarmMessage): unknown;
  acknowledge(alarmId: string, by: string, at: number): unknown;
  /** Queue depth and channel states, for the component's health. */
  status?(): NotifierStatus;
  close(): Promise<void>;
}

/** What the component's health takes from the outputs (the library's `status()` fits it). */
export interface NotifierStatus {
  queued: number;
  channels: Array<{ name: string; state: string; queued?: number; lastError?: string | null; secret?: { state: string; error: string | null } }>;
}

export interface LocalControlDeps {
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Component short name (`local-control`): the alarms' source, the commands' issuedBy. */
  component: string;
  fail(err: unknown): void;
  /** Folder a relative `dbPath` is resolved against (main.ts: the work folder, its cwd). */
  workDir?: string;
  /** better-sqlite3's addon file (main.ts: DCMMS_BETTER_SQLITE3_BINDING). */
  nativeBinding?: string;
  /** Backoff jitter in [0, 1) (tests make it fixed). */
  random?: () => number;
  /**
   * Builds the notification outputs from the configuration (default: the alarm outputs library,
   * notifications.ts `createNotifier`, with secrets read over the bus; none when no channel is
   * configured). Tests pass their own.
   */
  createOutputs?: (config: Readonly<LocalControlConfig>) => AlarmNotifier | undefined;
  /** Tests: the alarm outputs library's channel and serial hooks for the default createOutputs. */
  outputsHooks?: NotifierDeps['outputs'];
}

export interface LocalControl extends ComponentInstance<LocalControlConfig> {
  /** Active holds (rule fired on a match). */
  holds(): Array<{ key: string; ruleId: string; asset: string; point?: string | undefined; since: number }>;
  /** What automation has applied, per target. */
  applied(): ReturnType<Actuator['appliedStates']>;
  manualAssets(): string[];
  activeAlarms(): AlarmMessage[];
  /** The notification outputs' queue and channels; undefined when none are configured. */
  outputsStatus(): ReturnType<NotifierHost['status']>;
  /** Evaluate and act now (tests; the tick does it every tickMs). */
  tick(): void;
  readonly db: LocalControlDb | undefined;
  readonly journal: AlarmJournal | undefined;
}

export { CONTROL_FAILED } from './failure-alarms';
const AUDIT_PRUNE_MS = 3600_000;

function interestOf(rules: readonly CompiledRule[], c: Readonly<LocalControlConfig>): (asset: string, point: string) => boolean {
  const rating = compileGlobs(c.ratingPoints.length ? c.ratingPoints : ['\u0000']);
  const ack = c.outputs.ackInput;
  return (asset, point) =>
    rating(point) ||
    (ack !== undefined && ack.assetId === asset && ack.point === point) ||
    rules.some((r) => (r.source === 'value' && r.assets(asset) && r.test?.points(point)) || r.guards.some((g) => g.assets(asset) && g.points(point)));
}

export function createLocalControl(deps: LocalControlDeps, initial: Readonly<LocalControlConfig>): LocalControl {
  const log = deps.logger.child({ module: 'local-control' });
  const limited = createLogLimiter(deps.clock);
  let config = initial;
  let rules = compileRules(config.rules); // provision: a bad rule is a ConfigError now
  let db: LocalControlDb | undefined;
  let journal: AlarmJournal | undefined;
  let subs: Subscription[] = [];
  let tickTimer: TimerHandle | undefined;
  let settleTimer: TimerHandle | undefined;
  let lastTickAt = 0;
  let lastPruneAt = 0;
  let closed = false;
  let started = false;
  let firstSentAt: number | undefined;
  let ackInputWas: boolean | undefined;
  let unregisterQueue: (() => void) | undefined;

  const inputs = new Inputs(interestOf(rules, config));
  const fleet = new Fleet(config.capacityW);
  const alarms = new AlarmState({ bus: deps.bus, clock: deps.clock, logger: log, metrics: deps.metrics, siteId: () => config.siteId, self: deps.component });
  const recorder = new Recorder({ bus: deps.bus, clock: deps.clock, logger: log, metrics: deps.metrics, limited, siteId: () => config.siteId, db: () => db });

  const evalCtx = (): EvalContext => ({ now: deps.clock.now(), maxInputAgeMs: config.maxInputAgeMs, maxAlarmSourceSilenceMs: config.maxAlarmSourceSilenceMs, inputs, alarms });

  /** An alarm transition of our own (control_failed): journaled, published, and known here at once. */
  const emitOwn = (t: Parameters<AlarmJournal['emit']>[0]): void => {
    if (!journal) return;
    const msg = journal.emit(t);
    onAlarm(msg);
  };

  const failures = new FailureAlarms({ clock: deps.clock, siteId: () => config.siteId, source: deps.component, emit: (t) => emitOwn(t) });

  const commander = new Commander({
    bus: deps.bus,
    clock: deps.clock,
    logger: log,
    metrics: deps.metrics,
    limited,
    recorder,
    siteId: () => config.siteId,
    issuedBy: deps.component,
    settings: () => config,
    ...(deps.random ? { random: deps.random } : {}),
    onFailed: (s, m) => guarded(() => failures.failed(s, m), 'control_failed alarm'),
    onSucceeded: (s) => guarded(() => failures.succeeded(s), 'control_failed clear'),
    onSent: () => void (firstSentAt ??= deps.clock.now()),
  });

  // The engine's hooks reach the actuator, which needs the engine: wired through this late binding.
  let actuator: Actuator | undefined;
  const engine = new RuleEngine(
    {
      fired: (rule, hold) => log.info('rule fired', { ruleId: rule.id, assetId: hold.asset, point: hold.point, action: rule.action }),
      released: (rule, hold, reason, evidence) => actuator?.released(rule, hold, reason, evidence),
      inputBlocked: (rule, m) => actuator?.inputBlocked(rule, m),
    },
    () => db,
  );
  engine.setRules(rules);
  actuator = new Actuator({ clock: deps.clock, logger: log, recorder, commander, engine, inputs, fleet, alarms, db: () => db, config: () => config });
  const act = actuator;

  const guarded = (fn: () => void, what: string): void => {
    try {
      fn();
    } catch (err) {
      // A defect here must not stop automation for every later message.
      deps.metrics.recordError(err);
      limited(`error:${what}`, (suppressed) => log.error(`${what} failed`, { err, suppressed }));
    }
  };

  const reject = (reason: string, detail: string): void => {
    deps.metrics.reject(reason);
    limited(`reject:${reason}`, (suppressed) => log.warn('input rejected', { reason, detail, suppressed }));
  };

  /**
   * Evaluate what a trigger concerns and act. The audit rows of every step it causes are written
   * in one transaction at the end. The latency metric is the gateway time from the input's arrival
   * to its first command handed to the bus.
   */
  const decide = (trigger: Trigger, arrivedAt: number, force = false): void => {
    if (!db) return;
    firstSentAt = undefined;
    recorder.batch(() => {
      const changed = engine.evaluate(trigger, evalCtx());
      // A telemetry message that changed no hold changes nothing to do (the tick reconciles anyway).
      if (changed || force || trigger.kind === 'all' || trigger.kind === 'alarm') act.reconcile();
    });
    if (firstSentAt !== undefined) deps.metrics.observeLatency(Math.max(0, firstSentAt - arrivedAt));
  };

  const sameSite = (siteId: string, what: string): boolean => {
    if (siteId === config.siteId) return true;
    reject('site_mismatch', `${what} of site ${siteId}`);
    return false;
  };

  const where = { workDir: deps.workDir, nativeBinding: deps.nativeBinding };
  const buildOutputs =
    deps.createOutputs ??
    ((c: Readonly<LocalControlConfig>) =>
      createNotifier({ bus: deps.bus, clock: deps.clock, logger: deps.logger, metrics: deps.metrics, ...where, ...(deps.random ? { random: deps.random } : {}), ...(deps.outputsHooks ? { outputs: deps.outputsHooks } : {}) }, c));
  // Every transition and acknowledgement goes through the host: it never throws, and holds what
  // arrives while the outputs are rebuilt.
  const outputs = new NotifierHost({ build: buildOutputs, key: (c) => notifyKey(c, where), logger: log, metrics: deps.metrics, limited });
  const offer = (a: AlarmMessage): void => outputs.offer(a);

  function onAlarm(a: AlarmMessage): void {
    const at = deps.clock.now();
    if (!alarms.onTransition(a)) return;
    if (a.state === 'cleared') act.operators.forgetCleared((id) => alarms.get(id) !== undefined);
    // Act first: queuing the notification is a synchronous commit that must not delay the relays.
    decide({ kind: 'alarm' }, at);
    offer(a);
  }

  const onSnapshot = (s: AlarmSnapshot): void => {
    const at = deps.clock.now();
    const r = alarms.onSnapshot(s);
    if (r.changed) {
      act.operators.forgetCleared((id) => alarms.get(id) !== undefined);
      decide({ kind: 'alarm' }, at);
    }
    for (const a of r.fresh) offer(a);
  };

  const opContext = (): OperatorContext => ({ now: deps.clock.now(), db, act, alarm: (id) => alarms.get(id), outputs, log, guarded, reject });

  const onTelemetry = (msg: TelemetryMessage, topic: string): void => {
    const at = deps.clock.now();
    if (!sameSite(msg.siteId, 'telemetry')) return;
    const t = parseTopic(topic);
    if (t && t.vars['assetId'] !== msg.assetId) return reject('topic_mismatch', `${msg.assetId} on ${topic}`);
    const kept = inputs.onTelemetry(msg);
    if (kept.length === 0) return;
    const rating = compileGlobs(config.ratingPoints);
    let force = false;
    for (const p of kept) {
      const s = inputs.sample(msg.assetId, p);
      if (!s || !rating(p) || s.q !== 'good' || typeof s.v !== 'number' || s.v <= 0) continue;
      if (fleet.noteRating(msg.assetId, s.v)) {
        db?.putCapacity(msg.assetId, s.v, p, at);
        force = true;
      }
    }
    const ack = config.outputs.ackInput;
    if (ack && ack.assetId === msg.assetId) {
      const s = inputs.sample(ack.assetId, ack.point);
      if (s && s.ts === msg.ts && s.q === 'good' && at - s.ts <= config.maxInputAgeMs) {
        const on = s.v === true;
        if (on && ackInputWas === false) {
          for (const a of [...alarms.active()]) {
            if (a.severity !== 'critical' || act.operators.isAcked(a.alarmId)) continue;
            acknowledge(opContext(), a.alarmId, `io:${ack.assetId}/${ack.point}`, s.ts);
            force = true;
          }
        }
        ackInputWas = on;
      }
    }
    // A new rating may lift a capacity_unknown block; an acknowledgement silences the horn.
    decide({ kind: 'value', asset: msg.assetId }, at, force);
  };

  const onStatus = (st: DeviceStatus): void => {
    const at = deps.clock.now();
    if (!sameSite(st.siteId, 'device status')) return;
    const prev = inputs.onStatus(st);
    if (fleet.noteStatus(st)) log.info('inverter learned from device status', { assetId: st.assetId, models: st.models });
    // A change of state (not a heartbeat) to online: the adapter or the device started again, and
    // what we wrote may be gone (relays after a power cycle, a curtailment after a reboot).
    if (st.state === 'online' && st.heartbeat !== true) act.deviceOnline(st.assetId);
    if (prev?.state !== st.state || (st.state === 'online' && st.heartbeat !== true)) decide({ kind: 'all' }, at);
  };

  const onOperator = (req: OperatorRequest): void => {
    if (!sameSite(req.siteId, 'operator request')) return;
    const now = deps.clock.now();
    handleOperatorRequest(opContext(), req);
    decide({ kind: 'all' }, now);
  };

  const tick = (): void => {
    if (!db) return;
    const now = deps.clock.now();
    const drift = now - (lastTickAt + config.tickMs);
    if (lastTickAt > 0 && Math.abs(drift) > Math.max(5 * config.tickMs, 5000)) {
      log.warn('gateway clock jumped; hold-offs and forMs start again, curtailments are refreshed', { driftMs: drift });
      deps.metrics.drop('clock_jump');
      engine.clockJumped();
      act.clockJumped(now);
    }
    lastTickAt = now;
    decide({ kind: 'all' }, now);
    if (now - lastPruneAt >= AUDIT_PRUNE_MS || now < lastPruneAt) {
      lastPruneAt = now;
      const n = db.pruneAudit(now - config.auditRetentionMs);
      if (n > 0) log.info('audit log pruned', { rows: n, retentionMs: config.auditRetentionMs });
    }
  };

  const startTick = (): void => {
    deps.clock.clearInterval(tickTimer);
    lastTickAt = deps.clock.now();
    tickTimer = deps.clock.setInterval(() => guarded(() => recorder.batch(tick), 'tick'), config.tickMs);
  };

  const openWork = async (): Promise<void> => {
    const file = path.resolve(deps.workDir ?? '.', config.dbPath);
    const d = new LocalControlDb(file, deps.nativeBinding);
    db = d;
    fleet.load(d.capacities());
    act.load(d, deps.clock.now());
    engine.load(d.holds());
    // Holds of rules the configuration no longer has are released (their curtailments restored).
    engine.setRules(rules);
    await openJournal();
    lastPruneAt = deps.clock.now();
    d.pruneAudit(lastPruneAt - config.auditRetentionMs);
    log.info('database open', { file, holds: engine.holds.size, applied: act.appliedStates().length, manualAssets: act.operators.manualAssets(), alarmJournal: journal?.position() });
  };

  const openJournal = async (): Promise<void> => {
    const d = db;
    if (!d) return;
    journal = new AlarmJournal({
      db: d.db,
      bus: deps.bus,
      clock: deps.clock,
      logger: deps.logger,
      metrics: deps.metrics,
      siteId: config.siteId,
      source: deps.component,
      retentionMs: config.alarmJournalRetentionMs,
      snapshotIntervalMs: config.alarmSnapshotIntervalMs,
    });
    const own = journal.active();
    failures.load(own);
    for (const a of own) alarms.onTransition(a);
    await journal.start();
  };

  const closeJournal = async (): Promise<void> => {
    await journal?.close();
    journal = undefined;
  };

  const closeWork = async (): Promise<void> => {
    await closeJournal();
    try {
      db?.close();
    } catch (err) {
      log.error('database close failed', { err });
    }
    db = undefined;
  };

  // Every step one message causes is audited in one transaction (Recorder.batch).
  const handler = <P>(what: string, fn: (p: P, topic: string) => void) => (p: P, topic: string): void => {
    deps.metrics.incIn();
    guarded(() => recorder.batch(() => fn(p, topic)), what);
  };

  const subscribe = async (siteId: string): Promise<Subscription[]> => [
    await deps.bus.subscribe(filters.controlResult(siteId), handler<ControlResult>('control result', (r) => {
      if (!commander.onResult(r)) deps.metrics.drop('result_not_ours');
    })),
    await deps.bus.subscribe(filters.alarms(siteId), handler<AlarmMessage>('alarm', (a) => sameSite(a.siteId, 'alarm') && onAlarm(a))),
    await deps.bus.subscribe(filters.alarmSnapshot(siteId), handler<AlarmSnapshot>('alarm snapshot', (s) => sameSite(s.siteId, 'alarm snapshot') && onSnapshot(s))),
    await deps.bus.subscribe(filters.deviceStatus(siteId), handler<DeviceStatus>('device status', onStatus)),
    await deps.bus.subscribe(filters.processedTelemetry(siteId), handler<TelemetryMessage>('telemetry', onTelemetry)),
    await deps.bus.subscribe(filters.analytics(siteId), handler<AnalyticsMessage>('analytics', (a) => {
      if (!sameSite(a.siteId, 'analytics')) return;
      inputs.onAnalytics(a);
      decide({ kind: 'analytics', asset: a.assetId }, deps.clock.now());
    })),
    await deps.bus.subscribe(filters.mlResult(siteId), handler<MlResult>('ml result', (r) => {
      if (!sameSite(r.siteId, 'ml result')) return;
      inputs.onMl(r);
      decide({ kind: 'ml', asset: r.assetId }, deps.clock.now());
    })),
    await deps.bus.subscribe(filters.operatorRequest(siteId), handler<OperatorRequest>('operator request', onOperator)),
  ];

  const startRelaysLater = (): void => {
    deps.clock.clearTimeout(settleTimer);
    settleTimer = deps.clock.setTimeout(() => guarded(() => act.startRelays(), 'relays'), config.startupSettleMs);
  };

  return {
    holds: () => [...engine.holds.values()].map((h) => ({ key: h.key, ruleId: h.ruleId, asset: h.asset, point: h.point, since: h.since })),
    applied: () => act.appliedStates(),
    manualAssets: () => act.operators.manualAssets(),
    activeAlarms: () => [...alarms.active()],
    outputsStatus: () => outputs.status(),
    tick: () => guarded(tick, 'tick'),
    get db() {
      return db;
    },
    get journal() {
      return journal;
    },

    async start() {
      if (started || closed) return;
      started = true;
      await openWork();
      await outputs.apply(config, () => alarms.active());
      subs = await subscribe(config.siteId);
      // What the site's alarm sources hold active now: automation acts on it as on a live raise.
      alarms.requestSync('start');
      startTick();
      startRelaysLater();
      unregisterQueue = deps.metrics.registerQueue('commands', () => commander.size);
    },

    async reconfigure(next, prev) {
      const changed = (k: keyof LocalControlConfig): boolean => !deepEqual(next[k], prev[k]);
      const nextRules = compileRules(next.rules);
      config = next;
      rules = nextRules;
      engine.setRules(rules);
      inputs.setInterest(interestOf(rules, config));
      fleet.setConfigured(config.capacityW);
      if (changed('dbPath') || changed('siteId')) {
        // Another database or site: start the work again from what that file holds (subscriptions
        // stay; commands under way finish and are audited in the new file).
        await closeWork();
        alarms.reset();
        await openWork();
      } else if (changed('alarmJournalRetentionMs') || changed('alarmSnapshotIntervalMs')) {
        await closeJournal();
        await openJournal();
      }
      if (changed('siteId')) {
        const old = subs;
        subs = await subscribe(next.siteId);
        await Promise.all(old.map((s) => s.close().catch(() => undefined)));
        alarms.requestSync('site changed');
      }
      if (changed('tickMs')) startTick();
      if (changed('outputs')) ackInputWas = undefined;
      // The notification outputs again if what they depend on changed (same queue file: nothing queued is lost).
      await outputs.apply(next, () => alarms.active());
      decide({ kind: 'all' }, deps.clock.now());
    },

    async close() {
      if (closed) return;
      closed = true;
      deps.clock.clearInterval(tickTimer);
      deps.clock.clearTimeout(settleTimer);
      await Promise.all(subs.splice(0).map((s) => s.close().catch(() => undefined)));
      unregisterQueue?.();
      commander.close();
      alarms.close();
      await outputs.close();
      await closeWork();
    },

    // Degraded while a control_failed alarm is active, or while notifications are not getting out
    // (a channel retrying, its secret not readable, outputs that could not start).
    healthState: () => (failures.size > 0 || outputs.degraded() ? 'degraded' : 'running'),
  };
}

/**
 * The lifecycle every component shares (docs/conventions.md "Lifecycle"), for a component's thin
 * main.ts to call:
 *
 *   connect (IPC) -> provision (read + validate configuration, build the component: no I/O)
 *   -> run (start, UpdateState RUNNING, health metrics every metricsIntervalMs) -> close.
 *
 * IPC comes first because Greengrass hands configuration over IPC (GetConfiguration); provisioning
 * itself does no I/O. Exit codes drive Greengrass (docs/local-runtime.md "Components and their
 * lifecycle"; nucleus lifecyclemanager/Lifecycle.java): SIGTERM/SIGINT
 * -> close everything within the nucleus's 5 s grace, exit 0; a fatal error (invalid
 * configuration, an accessControl mismatch, an uncaught exception) -> log a clear message, report
 * ERRORED, exit 1, so three in an hour make the component BROKEN and roll a bad deployment back.
 *
 * This module never touches the global `process`: main.ts passes it in (`host.process`), which is
 * also how tests drive signals and observe the exit code.
 */
import { createBus } from './bus';
import type { Bus, ComponentUpdateEvent, Subscription, ValidationEvent } from './bus-types';
import { systemClock, type Clock, type TimerHandle } from './clock';
import { componentDecl, topics, type ComponentName, type ComponentState, type ModelVersion } from './contract';
import { deepEqual, loadConfig, validateConfig, watchConfig, type BaseConfig, type ConfigSpec, type ConfigWatch } from './config';
import { backoffDelay } from './backoff';
import { ConfigError, TransientError, errorCode, errorMessage } from './errors';
import type { IpcClientFactory } from './ipc';
import { createLogger, type LevelRef, type Logger } from './logger';
import { createMetrics, healthReport, type Metrics } from './metrics';

/** What runComponent needs from Node's `process` (the real one is assignable). */
export interface ProcessLike {
  on(event: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  on(event: 'uncaughtException', listener: (err: Error) => void): unknown;
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  exit(code: number): void;
}

/** What a component factory receives. */
export interface ComponentDeps {
  readonly bus: Bus;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly componentName: ComponentName;
  /** Short name, as in topics (`health`). */
  readonly component: string;
  readonly version: string;
  /** Report a fatal error found while running: the component is closed and the process exits 1. */
  fail(err: unknown): void;
}

export interface ComponentInstance<C> {
  /** Subscribe, open devices, start timers. Rejecting is fatal. */
  start(): Promise<void>;
  /** Idempotent; releases every handle the component opened. */
  close(): Promise<void>;
  /**
   * Apply a validated live configuration change in place. Without it, a change is applied by an
   * internal restart: the component instance is closed and a new one is created and started with
   * the new configuration, in the same process (IPC connection, metrics and health go on).
   */
  reconfigure?(next: Readonly<C>, prev: Readonly<C>): void | Promise<void>;
  /**
   * Asked when a deployment wants to update this component (SubscribeToComponentUpdates
   * preUpdateEvent): 0 lets it proceed, n > 0 asks the nucleus to check again in n ms
   * (DeferComponentUpdate recheckAfterMs; Greengrass Developer Guide, "Interact with component
   * lifecycle").
   */
  shouldDeferUpdate?(): number;
  /** `running` or `degraded`, reported in the health payload while running. */
  healthState?(): ComponentState;
  /** The models in service, reported in the health payload (components with models only). */
  healthModels?(): ModelVersion[];
}

export interface ComponentSpec<C extends BaseConfig> {
  readonly name: ComponentName;
  readonly version: string;
  readonly config: ConfigSpec<C>;
  create(deps: ComponentDeps, config: Readonly<C>): ComponentInstance<C>;
}

export interface Host {
  process: ProcessLike;
  /** Makes a fresh real IPC client; main.ts passes `() => greengrasscoreipc.createClient()`. */
  createIpcClient: IpcClientFactory;
  clock?: Clock;
  /** Log sink (default: synchronous stdout). */
  write?: (line: string) => void;
  /** Budget for a graceful close before exiting anyway; below the nucleus's 5 s SIGTERM grace. */
  shutdownGraceMs?: number;
  random?: () => number;
}

export interface RunningComponent {
  /** Resolves true once RUNNING was reported, false if the component stopped before that. */
  readonly running: Promise<boolean>;
  /** Resolves with the exit code passed to `process.exit`. */
  readonly done: Promise<number>;
}

/** Tries for the first IPC connection (about 3 s in all) before the start counts as failed. */
const INITIAL_CONNECT_ATTEMPTS = 5;

/** Bound a best-effort step during shutdown. */
function bounded(clock: Clock, p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = clock.setTimeout(resolve, ms);
    p.then(
      () => {
        clock.clearTimeout(t);
        resolve();
      },
      () => {
        clock.clearTimeout(t);
        resolve();
      },
    );
  });
}

export function runComponent<C extends BaseConfig>(spec: ComponentSpec<C>, host: Host): RunningComponent {
  const decl = componentDecl(spec.name);
  const clock = host.clock ?? systemClock;
  const levelRef: LevelRef = { level: 'info' };
  const logger = createLogger({ component: decl.short, version: spec.version }, { levelRef, now: () => clock.now(), ...(host.write ? { write: host.write } : {}) });
  const metrics = createMetrics({ clock });
  const startedAt = clock.now();

  let phase: ComponentState = 'starting';
  let stopping = false;
  let exitCode = 0;
  let instance: ComponentInstance<C> | undefined;
  let config: Readonly<C> | undefined;
  let siteId: string | undefined;
  let healthTimer: TimerHandle | undefined;
  let watch: ConfigWatch<C> | undefined;
  let updates: Subscription | undefined;
  let validation: Subscription | undefined;
  let resolveRunning: (v: boolean) => void = () => undefined;
  let resolveDone: (code: number) => void = () => undefined;
  const running = new Promise<boolean>((r) => (resolveRunning = r));
  const done = new Promise<number>((r) => (resolveDone = r));

  const bus = createBus({ createClient: host.createIpcClient, logger, metrics, clock, onFatal: (e) => fail(e), ...(host.random ? { random: host.random } : {}) });

  const publishHealth = (): Promise<void> => {
    if (!config || !siteId) return Promise.resolve();
    const state = phase === 'running' ? (instance?.healthState?.() ?? 'running') : phase;
    let models: ModelVersion[] | undefined;
    try {
      models = phase === 'running' ? instance?.healthModels?.() : undefined;
    } catch (err) {
      logger.warn('model versions not readable for the health report', { err: errorMessage(err) });
    }
    const report = healthReport({ siteId, component: decl.short, componentName: decl.name, version: spec.version, state, startedAt, intervalMs: config.metricsIntervalMs, now: clock.now(), metrics, ...(models ? { models } : {}) });
    return bus.publish(topics.componentHealth(siteId, decl.short), report).then(
      (outcome) => logger.debug('health report', { state, outcome }),
      (err: unknown) => {
        metrics.recordError(err);
        logger.warn('health report not published', { err: errorMessage(err) });
      },
    );
  };

  const startHealthTimer = (intervalMs: number): void => {
    clock.clearInterval(healthTimer);
    healthTimer = clock.setInterval(() => void publishHealth(), intervalMs);
  };

  const onComponentUpdate = (e: ComponentUpdateEvent): void => {
    if (e.kind === 'post') {
      logger.info('deployment finished', { deploymentId: e.deploymentId });
      return;
    }
    let wait = 0;
    try {
      wait = Math.max(0, Math.floor(instance?.shouldDeferUpdate?.() ?? 0));
    } catch (err) {
      logger.error('shouldDeferUpdate failed; letting the update proceed', { err });
    }
    logger.info(wait > 0 ? 'deferring component update' : 'acknowledging component update', { deploymentId: e.deploymentId, recheckAfterMs: wait });
    // recheckAfterMs 0 acknowledges at once, so the nucleus need not wait out its timeout.
    bus.deferComponentUpdate(e.deploymentId, wait, wait > 0 ? `${decl.short} is busy` : `${decl.short} is ready`).catch((err: unknown) => {
      metrics.recordError(err);
      logger.warn('DeferComponentUpdate failed', { err: errorMessage(err) });
    });
  };

  /** Keys whose value differs (top level), for the log. */
  const changedKeys = (next: Readonly<C>, prev: Readonly<C>): string[] => Object.keys(next).filter((k) => !deepEqual(next[k as keyof C], prev[k as keyof C]));

  /** What only the lifecycle uses: changing these alone needs nothing from the component. */
  const LIFECYCLE_KEYS = new Set(['logLevel', 'metricsIntervalMs']);

  const applyConfig = async (next: Readonly<C>, prev: Readonly<C>): Promise<void> => {
    levelRef.level = next.logLevel;
    if (next.metricsIntervalMs !== prev.metricsIntervalMs && healthTimer !== undefined) startHealthTimer(next.metricsIntervalMs);
    const changed = changedKeys(next, prev);
    if (stopping || !instance || changed.every((k) => LIFECYCLE_KEYS.has(k))) {
      config = next;
      return;
    }
    if (instance.reconfigure) {
      await instance.reconfigure(next, prev);
      config = next;
      siteId = next.siteId;
      logger.info('configuration applied in place', { changed });
      return;
    }
    // An internal restart of the component's work: close the instance, build and start a new one.
    const old = instance;
    instance = undefined;
    try {
      await old.close();
    } catch (err) {
      logger.error('component close during reconfiguration failed', { err });
    }
    if (stopping) return;
    config = next;
    siteId = next.siteId;
    const fresh = spec.create(deps, next);
    instance = fresh;
    await fresh.start();
    logger.info('configuration applied by an internal restart', { changed });
  };

  /**
   * A deployment proposes a configuration: check it as a start would (schema, defaults, the
   * component's own checks) and answer, so a bad configuration fails the deployment, which then
   * rolls back, instead of being found later as a crash loop.
   */
  const onValidate = (e: ValidationEvent): void => {
    let message: string | undefined;
    try {
      validateConfig(spec.config, e.configuration);
    } catch (err) {
      // The key goes first unless the message already names it (the schema's messages do).
      message = err instanceof ConfigError ? (err.message.includes(err.key) ? err.message : `${err.key}: ${err.message}`) : `configuration check failed: ${errorMessage(err)}`;
    }
    if (message === undefined) logger.info('proposed configuration accepted', { deploymentId: e.deploymentId });
    else logger.error('proposed configuration rejected', { deploymentId: e.deploymentId, reason: message });
    bus.sendConfigurationValidityReport(e.deploymentId, message === undefined, message ?? 'valid').catch((err: unknown) => {
      // The deployment may have stopped waiting (another component already rejected it): not our error.
      logger.warn('SendConfigurationValidityReport failed', { deploymentId: e.deploymentId, err: errorMessage(err) });
    });
  };

  async function shutdown(code: number, why: string): Promise<void> {
    exitCode = Math.max(exitCode, code);
    if (stopping) return;
    stopping = true;
    const wasRunning = phase === 'running';
    phase = 'stopping';
    logger.info('stopping', { reason: why, exitCode });
    resolveRunning(false);
    const grace = host.shutdownGraceMs ?? 4000;
    const deadline = clock.setTimeout(() => {
      logger.error('graceful close took too long; exiting anyway', { graceMs: grace });
      finish();
    }, grace);
    let finished = false;
    function finish(): void {
      if (finished) return;
      finished = true;
      clock.clearTimeout(deadline);
      logger.info('exit', { code: exitCode });
      resolveDone(exitCode);
      host.process.exit(exitCode);
    }
    clock.clearInterval(healthTimer);
    healthTimer = undefined;
    if (exitCode !== 0 && bus.state === 'connected') await bounded(clock, bus.updateState('ERRORED'), 1000);
    // A last report says "stopping" rather than leaving Health to find the component stale.
    if (wasRunning && bus.state === 'connected') await bounded(clock, publishHealth(), 1000);
    await bounded(clock, watch?.close() ?? Promise.resolve(), 1000);
    await bounded(clock, updates?.close() ?? Promise.resolve(), 1000);
    await bounded(clock, validation?.close() ?? Promise.resolve(), 1000);
    if (instance) {
      try {
        await instance.close();
      } catch (err) {
        logger.error('component close failed', { err });
      }
    }
    await bus.close();
    finish();
  }

  function fail(err: unknown, context = 'fatal error'): void {
    metrics.recordError(err);
    if (err instanceof ConfigError) {
      logger.error(`invalid configuration: ${err.message}`, { code: err.code, key: err.key });
    } else {
      logger.error(`${context}: ${errorMessage(err)}`, { code: errorCode(err), err });
    }
    void shutdown(1, context);
  }

  host.process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
  host.process.on('SIGINT', () => void shutdown(0, 'SIGINT'));
  host.process.on('uncaughtException', (err) => fail(err, 'uncaught exception'));
  host.process.on('unhandledRejection', (reason) => fail(reason, 'unhandled rejection'));

  const deps: ComponentDeps = {
    bus,
    logger,
    metrics,
    clock,
    componentName: decl.name,
    component: decl.short,
    version: spec.version,
    fail: (err) => fail(err),
  };

  /**
   * The first connection: a transient failure (the nucleus still opening its socket) is retried a
   * few times with backoff before it counts as a failed start; a fatal one is not retried.
   */
  const connectFirst = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await bus.connect();
      } catch (err) {
        if (!(err instanceof TransientError) || attempt >= INITIAL_CONNECT_ATTEMPTS || stopping) throw err;
        metrics.recordError(err);
        const delay = backoffDelay(attempt, { initialMs: 200, maxMs: 2000, ...(host.random ? { random: host.random } : {}) });
        logger.warn('IPC connect failed; retrying', { attempt, delayMs: delay, err: err.message });
        await new Promise<void>((resolve) => clock.setTimeout(resolve, delay));
      }
    }
  };

  const start = async (): Promise<void> => {
    logger.info('starting', { componentName: decl.name });
    await connectFirst();
    if (stopping) return;
    const cfg = await loadConfig(bus, spec.config, logger);
    config = cfg;
    siteId = cfg.siteId;
    levelRef.level = cfg.logLevel;
    instance = spec.create(deps, cfg);
    await instance.start();
    if (stopping) return;
    watch = await watchConfig({ bus, spec: spec.config, initial: cfg, onChange: applyConfig, log: logger, metrics });
    validation = await bus.subscribeToValidateConfigurationUpdates(onValidate);
    updates = await bus.subscribeToComponentUpdates(onComponentUpdate);
    await bus.updateState('RUNNING');
    if (stopping) return;
    phase = 'running';
    void publishHealth();
    startHealthTimer(cfg.metricsIntervalMs);
    logger.info('running', { siteId: cfg.siteId, metricsIntervalMs: cfg.metricsIntervalMs });
    resolveRunning(true);
  };
  start().catch((err: unknown) => fail(err, 'startup failed'));

  return { running, done };
}

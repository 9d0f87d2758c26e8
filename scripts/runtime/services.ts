/**
 * The service manager of the local Greengrass runtime: the set of components, their dependencies,
 * starting, stopping and waiting (docs/local-runtime.md "Components and their lifecycle"). Each
 * component's own state machine is in component-lifecycle.ts; its processes in
 * service-processes.ts.
 *
 * - HARD dependencies: a component starts only when every HARD dependency is ready (RUNNING,
 *   FINISHED, or STOPPING after a startup that did not error), and a STARTING or RUNNING component
 *   restarts when one stops being ready (GreengrassService.createDependencyListener). SOFT
 *   dependencies never block.
 * - A missing HARD dependency or a dependency cycle (the nucleus fails such a deployment) leaves
 *   the component in NEW; waitFor fails at once and says why.
 * - close() stops dependents before their dependencies (GreengrassService.waitForDependersToExit).
 *
 * RequiresPrivilege is not honoured: every step runs as the runtime's own user, without sudo (the
 * nucleus would run the step as root). A dev/test runtime must not need root.
 */
import { EventEmitter } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../../components/lib/logger';
import { ComponentLifecycle, LifecycleHost, LifecycleOptions, ServiceDefinition, ServiceState } from './component-lifecycle';
import { blockedReason, dependencyOrder } from './service-graph';

export type { ServiceDefinition, ServiceState } from './component-lifecycle';

export interface ServiceManagerOptions {
  rootDir: string;
  logger: Logger;
  now?: () => number;
  /** lifecycle.errorResetTime: ERRORED counts older than this are forgotten; default 3600000 (1 h). */
  errorResetTimeMs?: number;
  /** SIGTERM-to-SIGKILL grace when stopping a process tree; default 5000. */
  stopGraceMs?: number;
  defaultTimeoutsSec?: Partial<Record<'install' | 'startup' | 'shutdown' | 'recover', number>>;
}

interface Waiter {
  names: string[];
  states: ServiceState[];
  resolve: () => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** Emits 'state' (name: string, state: ServiceState, previous: ServiceState). */
export class ServiceManager extends EventEmitter implements LifecycleHost {
  private readonly log: Logger;
  private readonly options: LifecycleOptions;
  private readonly components = new Map<string, ComponentLifecycle>();
  private readonly removing = new Map<string, Promise<void>>();
  private readonly waiters = new Set<Waiter>();
  private isStarted = false;
  private closed = false;
  private closing?: Promise<void>;

  constructor(opts: ServiceManagerOptions) {
    super();
    const overrides = Object.fromEntries(Object.entries(opts.defaultTimeoutsSec ?? {}).filter(([, v]) => typeof v === 'number' && v > 0));
    this.log = opts.logger;
    this.options = {
      rootDir: opts.rootDir,
      logger: opts.logger,
      now: opts.now ?? Date.now,
      errorResetTimeMs: opts.errorResetTimeMs ?? 3_600_000,
      graceMs: opts.stopGraceMs ?? 5000,
      // Lifecycle.java defaults: install 120 s, startup 120 s, shutdown 15 s, recover 60 s; bootstrap 120 s.
      timeouts: { bootstrap: 120, install: 120, startup: 120, shutdown: 15, recover: 60, ...overrides },
    };
  }

  /** Add or replace a component. A changed version, lifecycle or env stops and reinstalls it (state NEW). */
  upsert(def: ServiceDefinition): void {
    if (this.closed) throw new Error(`cannot add ${def.name}: the service manager is closed`);
    if (!def.name || def.name.includes('/') || def.name.startsWith('.')) throw new Error(`invalid component name ${JSON.stringify(def.name)}`);
    if (this.removing.has(def.name)) throw new Error(`${def.name} is being removed; wait for remove() before adding it again`);
    const copy = structuredClone(def);
    this.warnAbout(copy);
    const existing = this.components.get(def.name);
    if (!existing) {
      const c = new ComponentLifecycle(copy, this, this.options);
      this.components.set(def.name, c);
      this.log.info('component added', { component: def.name, version: def.version });
      if (this.isStarted) c.requestStart();
    } else {
      const old = existing.def;
      const versionChanged = old.version !== copy.version;
      const changed = {
        code: versionChanged || !isDeepStrictEqual(old.lifecycle, copy.lifecycle) || !isDeepStrictEqual(old.env, copy.env),
        bootstrap: versionChanged || !isDeepStrictEqual(old.lifecycle.bootstrap, copy.lifecycle.bootstrap),
        dependencies: !isDeepStrictEqual(old.dependencies, copy.dependencies),
      };
      if (changed.code) this.log.info('component definition changed: reinstalling', { component: def.name, version: copy.version, previousVersion: old.version });
      existing.update(copy, changed);
    }
    this.graphChanged();
  }

  /** Stop (Shutdown step, SIGTERM tree, grace, SIGKILL) and forget a component. */
  remove(name: string): Promise<void> {
    const c = this.components.get(name);
    if (!c) return Promise.resolve();
    let p = this.removing.get(name);
    if (!p) {
      p = (async () => {
        await c.shutdown();
        this.components.delete(name);
        this.removing.delete(name);
        await c.proc.close();
        this.log.info('component removed', { component: name });
        this.notifyDependents(name, false);
        this.graphChanged();
      })();
      this.removing.set(name, p);
    }
    return p;
  }

  /** Install (at every start, as the nucleus does) and start every component in dependency order. Idempotent. */
  start(): void {
    if (this.isStarted || this.closed) return;
    this.isStarted = true;
    for (const def of dependencyOrder(this.defs())) this.components.get(def.name)?.requestStart();
  }

  state(name: string): ServiceState | undefined {
    return this.components.get(name)?.state;
  }

  list(): { name: string; version: string; state: ServiceState }[] {
    return [...this.components.values()].map((c) => ({ name: c.name, version: c.def.version, state: c.state }));
  }

  /** UpdateState from IPC: honoured only for NEW->ERRORED, STARTING->RUNNING|ERRORED|FINISHED, RUNNING->ERRORED|FINISHED, STOPPING->ERRORED|FINISHED. */
  reportState(name: string, state: 'RUNNING' | 'ERRORED' | 'FINISHED', reason = 'reported over IPC'): boolean {
    const c = this.components.get(name);
    const ok = c?.report(state, reason) ?? false;
    if (!ok) this.log.debug('UpdateState ignored', { component: name, state, current: c?.state ?? 'unknown component' });
    return ok;
  }

  /** Asynchronous restart; false if unknown or never started. Restarting a BROKEN component reinstalls it with a clean error count, like a new deployment. */
  restart(name: string): boolean {
    const c = this.components.get(name);
    if (!c || c.closing) return false;
    if (c.state === 'BROKEN') {
      c.requestReinstall();
      return true;
    }
    // A component never asked to start has nothing to restart (Lifecycle.requestRestart).
    if (c.state === 'NEW' && c.idle) return false;
    c.requestRestart();
    return true;
  }

  /** Asynchronous stop (FINISHED once stopped); false if unknown. */
  stopService(name: string): boolean {
    const c = this.components.get(name);
    if (!c) return false;
    c.requestStop();
    return true;
  }

  /** Resolve when every named component is in one of `states`; reject on timeout, or at once for a component that is BROKEN (with no reinstall pending) or cannot start. */
  waitFor(names: string[], states: ServiceState[], timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const w: Waiter = { names: [...names], states: [...states], resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${names.join(', ')} to be ${states.join('|')}: ${this.describe(names)}`));
      }, timeoutMs);
      this.waiters.add(w);
      this.checkWaiter(w);
    });
  }

  /** Stop everything, dependents before their dependencies. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.closeAll();
    return this.closing;
  }

  // ---------------------------------------------------------------- LifecycleHost

  get started(): boolean {
    return this.isStarted;
  }

  unreadyDependencies(def: ServiceDefinition): string[] {
    return def.dependencies.filter((d) => d.type === 'HARD' && !this.components.get(d.name)?.ready).map((d) => d.name);
  }

  blockedReason(def: ServiceDefinition): string | undefined {
    return blockedReason(this.defs(), def);
  }

  stateChanged(c: ComponentLifecycle, state: ServiceState, previous: ServiceState, reason?: string): void {
    this.log.info('component state', { component: c.name, state, previous, ...(reason ? { reason } : {}) });
    try {
      this.emit('state', c.name, state, previous);
    } catch (err) {
      this.log.error('state listener threw', { component: c.name, err });
    }
    this.notifyDependents(c.name, c.ready);
    this.checkWaiters();
  }

  blockedChanged(): void {
    this.checkWaiters();
  }

  // ---------------------------------------------------------------- internals

  private warnAbout(def: ServiceDefinition): void {
    const l = def.lifecycle;
    if (l.startup && l.run) this.log.warn('Run is ignored because Startup is defined (it runs only if Startup is skipped)', { component: def.name });
    const privileged = (['bootstrap', 'install', 'startup', 'run', 'shutdown', 'recover'] as const).filter((k) => l[k]?.requiresPrivilege);
    if (privileged.length > 0) this.log.info('RequiresPrivilege is not honoured: steps run as the runtime user', { component: def.name, steps: privileged });
  }

  private defs(): Map<string, ServiceDefinition> {
    return new Map([...this.components].map(([k, c]) => [k, c.def]));
  }

  /** Components were added, changed or removed: re-check who is blocked and let everyone re-evaluate. */
  private graphChanged(): void {
    const defs = this.defs();
    for (const c of this.components.values()) {
      if (c.blocked) c.blocked = blockedReason(defs, c.def);
      c.kick();
    }
    this.checkWaiters();
  }

  /** A dependency changed state or went away: restart HARD dependents it no longer supports, re-check waiting ones. */
  private notifyDependents(name: string, ready: boolean): void {
    for (const d of this.components.values()) {
      const edge = d.def.dependencies.find((x) => x.name === name);
      if (!edge) continue;
      if (edge.type === 'HARD' && !ready && (d.state === 'STARTING' || d.state === 'RUNNING') && !d.closing) {
        this.log.info('restarting component: a HARD dependency is no longer ready', { component: d.name, dependency: name, dependencyState: this.components.get(name)?.state ?? 'removed' });
        d.requestRestart();
      }
      d.kick();
    }
  }

  private describe(names: string[]): string {
    return names
      .map((n) => {
        const c = this.components.get(n);
        if (!c) return `${n}: not defined`;
        const waiting = c.state === 'INSTALLED' ? this.unreadyDependencies(c.def) : [];
        if (c.blocked) return `${n}: ${c.state} (cannot start: ${c.blocked})`;
        if (waiting.length > 0) return `${n}: ${c.state} (waiting for ${waiting.join(', ')})`;
        return `${n}: ${c.state}`;
      })
      .join('; ');
  }

  private checkWaiter(w: Waiter): void {
    const hopeless: string[] = [];
    let satisfied = true;
    for (const n of w.names) {
      const c = this.components.get(n);
      if (c && w.states.includes(c.state)) continue;
      satisfied = false;
      // Fail fast where waiting cannot help: blocked for good, or BROKEN.
      if (c?.hopeless) hopeless.push(n);
    }
    if (!satisfied && hopeless.length === 0) return;
    this.waiters.delete(w);
    clearTimeout(w.timer);
    if (satisfied) w.resolve();
    else w.reject(new Error(`${w.names.join(', ')} cannot reach ${w.states.join('|')}: ${this.describe(hopeless)}`));
  }

  private checkWaiters(): void {
    for (const w of [...this.waiters]) this.checkWaiter(w);
  }

  private async stopOne(c: ComponentLifecycle): Promise<void> {
    try {
      await (this.removing.get(c.name) ?? c.shutdown());
    } catch (err) {
      this.log.error('stopping component failed', { component: c.name, err });
    }
  }

  private async closeAll(): Promise<void> {
    this.closed = true;
    const order = dependencyOrder(this.defs());
    const index = new Map(order.map((d, i) => [d.name, i]));
    const done = new Map<string, Promise<void>>();
    // Dependents first: each component stops once everything later in the order that depends on it has stopped.
    for (let i = order.length - 1; i >= 0; i--) {
      const name = order[i].name;
      const dependers = order
        .filter((d) => (index.get(d.name) ?? -1) > i && d.dependencies.some((x) => x.name === name))
        .map((d) => done.get(d.name) ?? Promise.resolve());
      done.set(name, Promise.all(dependers).then(() => {
        const c = this.components.get(name);
        return c ? this.stopOne(c) : undefined;
      }));
    }
    await Promise.all(done.values());
    await Promise.all([...this.components.values()].map((c) => c.proc.close()));
    for (const w of [...this.waiters]) {
      this.waiters.delete(w);
      clearTimeout(w.timer);
      w.reject(new Error(`service manager closed while waiting for ${w.names.join(', ')}: ${this.describe(w.names)}`));
    }
    this.log.info('service manager closed', { components: this.components.size });
  }
}

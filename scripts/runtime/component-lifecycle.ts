/**
 * The lifecycle state machine of one component (docs/local-runtime.md "Components and their
 * lifecycle"; Greengrass component recipe reference, Lifecycle).
 *
 * Semantics are the nucleus's (lifecyclemanager/Lifecycle.java, GenericExternalService.java,
 * GreengrassService.java); the design is ours, event-driven instead of a thread per component:
 *
 * - States NEW -> INSTALLED -> STARTING -> RUNNING -> STOPPING -> FINISHED, plus ERRORED and BROKEN.
 * - A list of desired states says where the component is heading: start = [RUNNING], restart =
 *   [INSTALLED, RUNNING], reinstall = [NEW, RUNNING], stop = [FINISHED]. The handler of the
 *   current state moves towards its head; `kick()` schedules the handler after any change.
 * - Install runs every time the component leaves NEW (at every start, as the nucleus does).
 *   Startup keeps STARTING until it exits 0 (RUNNING) or the component reports; Run is RUNNING as
 *   soon as launched, exit 0 -> stop -> FINISHED, non-zero -> ERRORED. Neither -> FINISHED.
 * - ERRORED runs Recover, then retries: from STARTING/RUNNING by stopping and starting again, from
 *   NEW by reinstalling. Three ERRORED from the same state (NEW, STARTING or RUNNING) within
 *   errorResetTimeMs give BROKEN instead; any other transition out of that state resets its count.
 *   BROKEN stops the component until it is reinstalled (a new definition, or restart()).
 * - While Bootstrap/Install, Shutdown, Recover or a BROKEN stop runs, UpdateState reports are held
 *   and applied when it ends (the nucleus handles them after its blocking handler returns).
 *
 * Differences from the nucleus, on purpose: a Startup or Run skipped by Skipif counts as absent
 * (the nucleus would leave the component STARTING until the startup timeout, or RUNNING forever);
 * every process group the component started is killed when it stops; Bootstrap runs before Install
 * when the component is new or its version or Bootstrap step changed, and its exit codes 100/101
 * (restart the nucleus / reboot) are only logged.
 */
import path from 'node:path';
import type { Logger } from '../../components/lib/logger';
import { Desired, DesiredStates } from './desired-states';
import { describeExit } from './process';
import type { Lifecycle } from './recipe';
import { ComponentProcesses } from './service-processes';

export type ServiceState = 'NEW' | 'INSTALLED' | 'STARTING' | 'RUNNING' | 'STOPPING' | 'ERRORED' | 'BROKEN' | 'FINISHED';

export interface ServiceDefinition {
  name: string;
  version: string;
  /** Already interpolated by the caller. */
  lifecycle: Lifecycle;
  dependencies: { name: string; type: 'HARD' | 'SOFT' }[];
  /** Nucleus-provided environment (SVCUID, socket path, AWS_REGION...). Precedence, lowest first: process.env, env, Lifecycle.Setenv, step Setenv. */
  env: Record<string, string>;
  /**
   * Run by the runtime itself (the Stream Manager), not by a process: it stays STARTING until the
   * runtime reports RUNNING or ERRORED for it (reportState), and stopping it has no process to end.
   */
  inProcess?: boolean;
}

export type TimeoutsSec = Record<'bootstrap' | 'install' | 'startup' | 'shutdown' | 'recover', number>;

/** What a component needs from the manager: the other components and where to announce changes. */
export interface LifecycleHost {
  readonly started: boolean;
  /** HARD dependencies that are not ready (missing ones included). */
  unreadyDependencies(def: ServiceDefinition): string[];
  /** Why the component can never start as things are (missing HARD dependency, cycle), if so. */
  blockedReason(def: ServiceDefinition): string | undefined;
  stateChanged(c: ComponentLifecycle, state: ServiceState, previous: ServiceState, reason?: string): void;
  /** The component found it cannot start (see `blocked`). */
  blockedChanged(c: ComponentLifecycle): void;
}

export interface LifecycleOptions {
  rootDir: string;
  logger: Logger;
  now: () => number;
  errorResetTimeMs: number;
  graceMs: number;
  timeouts: TimeoutsSec;
}

// UpdateState transitions the nucleus honours (Lifecycle.ALLOWED_STATE_TRANSITION_FOR_REPORTING).
const REPORTABLE: Partial<Record<ServiceState, readonly ServiceState[]>> = {
  NEW: ['ERRORED'],
  STARTING: ['RUNNING', 'ERRORED', 'FINISHED'],
  RUNNING: ['ERRORED', 'FINISHED'],
  STOPPING: ['ERRORED', 'FINISHED'],
};
const COUNTED = new Set<ServiceState>(['NEW', 'STARTING', 'RUNNING']);
const MAX_ERRORS = 3;
const AT_REST = new Set<ServiceState>(['NEW', 'INSTALLED', 'FINISHED', 'BROKEN']);

function reportable(from: ServiceState, to: ServiceState): boolean {
  return REPORTABLE[from]?.includes(to) ?? false;
}

export class ComponentLifecycle {
  def: ServiceDefinition;
  state: ServiceState = 'NEW';
  /** Why it cannot start (missing HARD dependency, cycle); set while it waits in NEW. */
  blocked?: string;
  /** Being removed or the manager is closing: no new work, any stop ends in FINISHED. */
  closing = false;
  readonly proc: ComponentProcesses;

  private prev: ServiceState = 'NEW';
  private readonly desired = new DesiredStates();
  /** ERRORED timestamps, per state they came from. */
  private errors: Partial<Record<ServiceState, number[]>> = {};
  /** Counts entries into STARTING; process callbacks from an older start are ignored. */
  private startGen = 0;
  private launchedGen = -1;
  private busy = false;
  private held: { state: ServiceState; reason: string }[] = [];
  private startupTimer?: NodeJS.Timeout;
  private runTimer?: NodeJS.Timeout;
  private bootstrapPending = true;
  private waitingLogged = false;
  private brokenHandled = false;
  private kickPending = false;
  private restWaiters: (() => void)[] = [];
  private readonly log: Logger;

  constructor(def: ServiceDefinition, private readonly host: LifecycleHost, private readonly o: LifecycleOptions) {
    this.def = def;
    this.log = o.logger;
    this.proc = new ComponentProcesses({
      component: def.name,
      // The cwd of every step, as the nucleus sets it: <root>/work/<name>; the component log: <root>/logs/<name>.log.
      workDir: path.join(o.rootDir, 'work', def.name),
      logFile: path.join(o.rootDir, 'logs', `${def.name}.log`),
      now: o.now,
      logger: o.logger,
      graceMs: o.graceMs,
      baseEnv: () => ({ ...this.def.env, ...this.def.lifecycle.setenv }),
    });
  }

  get name(): string {
    return this.def.name;
  }

  /** Has it never been asked to start? */
  get idle(): boolean {
    return this.desired.empty;
  }

  /** BROKEN with no reinstall asked for, or unable to start at all: waiting cannot help. */
  get hopeless(): boolean {
    return (this.state === 'BROKEN' && this.desired.head !== 'NEW') || (this.state === 'NEW' && this.blocked !== undefined);
  }

  /** Ready as a HARD dependency: RUNNING, FINISHED, or STOPPING after a startup that did not error (GreengrassService.dependencyFinishedStarting). */
  get ready(): boolean {
    const startupErrored = (this.errors.STARTING?.length ?? 0) > 0;
    return this.state === 'RUNNING' || this.state === 'FINISHED' || (this.state === 'STOPPING' && !startupErrored);
  }

  /** Replace the definition; a changed version, lifecycle or env reinstalls, changed dependencies restart. */
  update(def: ServiceDefinition, changed: { code: boolean; bootstrap: boolean; dependencies: boolean }): void {
    this.def = def;
    if (changed.bootstrap) this.bootstrapPending = true;
    if (changed.code) this.requestReinstall();
    else if (changed.dependencies && this.state !== 'NEW') this.requestRestart();
  }

  // ---------------------------------------------------------------- desired states

  requestStart(): void {
    if (this.closing) return;
    this.desired.start();
    this.kick();
  }

  requestRestart(): void {
    if (this.closing) return;
    this.desired.restart();
    this.kick();
  }

  /** Reinstall; for a BROKEN component this is the way out, with a clean error count. */
  requestReinstall(): void {
    if (this.closing) return;
    this.desired.reinstall();
    this.kick();
  }

  requestStop(): void {
    this.desired.stop(this.closing);
    this.kick();
  }

  /** UpdateState over IPC: false when the transition is not one the nucleus honours. */
  report(state: ServiceState, reason: string): boolean {
    if (!reportable(this.state, state)) return false;
    if (this.busy) this.held.push({ state, reason });
    else this.applyReport(state, reason);
    return true;
  }

  /** Stop for good (Shutdown, SIGTERM the trees, grace, SIGKILL); nothing restarts it afterwards. */
  async shutdown(): Promise<void> {
    this.closing = true;
    this.desired.stop(true);
    this.proc.abortBlocking();
    await new Promise<void>((resolve) => {
      this.restWaiters.push(resolve);
      this.kick();
    });
    await this.proc.killAll();
  }

  kick(): void {
    if (this.kickPending) return;
    this.kickPending = true;
    setImmediate(() => {
      this.kickPending = false;
      this.drive();
    });
  }

  /** With the processes gone, go where the desired list points (serviceTerminatedMoveToDesiredState). */
  private moveTo(d: Desired): void {
    if (this.closing || d === 'FINISHED') this.transition('FINISHED');
    else if (d === 'NEW') this.transition('NEW');
    else this.transition('INSTALLED');
  }

  // ---------------------------------------------------------------- state machine

  private drive(): void {
    if (!this.busy && (this.host.started || this.closing)) {
      switch (this.state) {
        case 'NEW': this.onNew(); break;
        case 'INSTALLED': this.onInstalled(); break;
        case 'STARTING': this.onStarting(); break;
        case 'RUNNING': this.onRunning(); break;
        case 'STOPPING': this.onStopping(); break;
        case 'ERRORED': this.onErrored(); break;
        case 'BROKEN': this.onBroken(); break;
        case 'FINISHED': this.onFinished(); break;
      }
    }
    this.checkAtRest();
  }

  private transition(requested: ServiceState, reason?: string): void {
    const previous = this.state;
    if (requested === previous) return;
    let next = requested;
    if (next === 'ERRORED' && COUNTED.has(previous)) {
      const now = this.o.now();
      const list = this.errors[previous] ?? [];
      if (list.length > 0 && now - list[list.length - 1] >= this.o.errorResetTimeMs) list.length = 0;
      list.push(now);
      this.errors[previous] = list;
      if (list.length >= MAX_ERRORS) next = 'BROKEN';
    } else if (next !== 'ERRORED') {
      delete this.errors[previous];
    }
    if (previous === 'STARTING') this.startupTimer = clear(this.startupTimer);
    if (previous === 'RUNNING') this.runTimer = clear(this.runTimer);
    this.prev = previous;
    this.state = next;
    if (next === 'STARTING') this.startGen += 1;
    if (next === 'BROKEN') this.brokenHandled = false;
    if (next !== 'INSTALLED') this.waitingLogged = false;
    this.proc.note(`state ${previous} -> ${next}${reason ? ` (${reason})` : ''}`);
    this.kick();
    this.host.stateChanged(this, next, previous, reason);
    this.checkAtRest();
  }

  private applyReport(state: ServiceState, reason: string): void {
    if (!reportable(this.state, state)) return;
    // A component that reports FINISHED while starting has nothing left to run: stop it.
    if (this.state === 'STARTING' && state === 'FINISHED') this.requestStop();
    this.transition(state, reason);
  }

  /** Run a blocking handler; reports that arrive meanwhile are applied when it ends, then `next` if the state is unchanged. */
  private runBusy(work: () => Promise<(() => void) | undefined>): void {
    const at = this.state;
    this.busy = true;
    work()
      .catch((err: unknown) => {
        this.log.error('lifecycle handler failed', { component: this.name, state: at, err });
        return undefined;
      })
      .then((next) => {
        this.busy = false;
        const held = this.held;
        this.held = [];
        for (const r of held) this.applyReport(r.state, r.reason);
        if (this.state === at && next) next();
        this.kick();
        this.checkAtRest();
      })
      .catch((err: unknown) => this.log.error('lifecycle transition failed', { component: this.name, err }));
  }

  private onNew(): void {
    if (this.closing) return;
    this.desired.dropLeading('NEW');
    if (this.desired.empty) return;
    const why = this.host.blockedReason(this.def);
    if (why) {
      if (this.blocked !== why) {
        this.blocked = why;
        this.log.error('component cannot start', { component: this.name, reason: why });
        this.proc.note(`cannot start: ${why}`);
        this.host.blockedChanged(this);
      }
      return;
    }
    this.blocked = undefined;
    this.runBusy(async () => {
      const { bootstrap, install } = this.def.lifecycle;
      if (bootstrap && this.bootstrapPending) {
        const r = await this.proc.runBlocking('bootstrap', bootstrap, this.o.timeouts.bootstrap);
        if (r.code === 100 || r.code === 101) {
          this.log.warn('Bootstrap asked for a nucleus restart or a reboot; the local runtime does neither', { component: this.name, exitCode: r.code });
        } else if (!r.ok) {
          return this.closing ? undefined : () => this.transition('ERRORED', r.reason);
        }
        this.bootstrapPending = false;
      }
      const r = install ? await this.proc.runBlocking('install', install, this.o.timeouts.install) : { ok: true };
      if (this.closing) return undefined;
      return () => this.transition(r.ok ? 'INSTALLED' : 'ERRORED', r.reason);
    });
  }

  private onInstalled(): void {
    this.desired.dropLeading('INSTALLED');
    const head = this.desired.head;
    if (head === undefined) return;
    if (head !== 'RUNNING') return this.moveTo(head);
    const waiting = this.host.unreadyDependencies(this.def);
    if (waiting.length === 0) return this.transition('STARTING');
    if (!this.waitingLogged) {
      this.waitingLogged = true;
      this.log.info('component waiting for dependencies', { component: this.name, waitingFor: waiting });
    }
  }

  private onStarting(): void {
    const head = this.desired.head;
    if (head === undefined) return;
    if (head !== 'RUNNING') return this.transition('STOPPING');
    if (this.launchedGen === this.startGen) return;
    if (this.host.unreadyDependencies(this.def).length > 0) return this.transition('INSTALLED');
    this.launchedGen = this.startGen;
    this.launchMain();
  }

  private onRunning(): void {
    this.desired.dropLeading('RUNNING');
    if (!this.desired.empty) this.transition('STOPPING');
  }

  private onStopping(): void {
    this.runBusy(async () => {
      const step = this.def.lifecycle.shutdown;
      // Shutdown's exit code is not looked at by the nucleus; only its timeout is an error.
      const r = step ? await this.proc.runBlocking('shutdown', step, this.o.timeouts.shutdown) : { ok: true };
      await this.proc.killAll();
      return () => {
        if (r.timedOut && !this.closing) this.transition('ERRORED', r.reason);
        else this.moveTo(this.desired.takeIf('FINISHED') ?? 'FINISHED');
      };
    });
  }

  private onErrored(): void {
    this.runBusy(async () => {
      const step = this.def.lifecycle.recover;
      if (step && !this.closing) {
        const r = await this.proc.runBlocking('recover', step, this.o.timeouts.recover);
        if (!r.ok) this.log.warn('Recover step failed', { component: this.name, reason: r.reason });
      }
      return () => {
        if (this.desired.empty) this.requestStart();
        if (this.prev === 'STARTING' || this.prev === 'RUNNING') this.transition('STOPPING');
        else if (this.prev === 'NEW') this.transition('NEW');
        else if (this.prev === 'STOPPING') this.moveTo(this.desired.takeIf('FINISHED') ?? 'FINISHED');
        else this.transition('FINISHED');
      };
    });
  }

  private onBroken(): void {
    if (!this.brokenHandled) {
      this.brokenHandled = true;
      this.log.error('component is BROKEN: it stays stopped until it is redeployed or restarted', { component: this.name });
      const hadStarted = this.prev === 'STARTING' || this.prev === 'RUNNING' || this.prev === 'ERRORED';
      this.runBusy(async () => {
        const step = this.def.lifecycle.shutdown;
        if (hadStarted && step && !this.closing) await this.proc.runBlocking('shutdown', step, this.o.timeouts.shutdown);
        await this.proc.killAll();
        return undefined;
      });
      return;
    }
    if (this.desired.head === 'NEW') {
      this.errors = {};
      this.transition('NEW', 'redeployed');
    }
  }

  private onFinished(): void {
    this.desired.dropLeading('FINISHED');
    const head = this.desired.head;
    if (head !== undefined) this.moveTo(head);
  }

  /** Launch Startup, or Run when Startup is absent or skipped (GenericExternalService.startup / handleRunScript). */
  private launchMain(): void {
    if (this.def.inProcess) return;
    const gen = this.startGen;
    const current = (): boolean => this.startGen === gen;
    const { startup, run } = this.def.lifecycle;
    if (startup) {
      const skip = this.proc.skipCheck('startup', startup);
      if (skip instanceof Error) return this.transition('ERRORED', `startup: ${skip.message}`);
      if (skip === 'run') {
        const p = this.proc.launch('startup', startup);
        if (p instanceof Error) return this.transition('ERRORED', `startup could not start: ${p.message}`);
        const sec = startup.timeoutSec ?? this.o.timeouts.startup;
        this.startupTimer = setTimeout(() => {
          if (current() && this.state === 'STARTING') this.transition('ERRORED', `startup timed out after ${sec} s`);
        }, sec * 1000).unref();
        void p.exited.then((e) => {
          if (!current()) return;
          if (e.code === 0 && this.state === 'STARTING') this.transition('RUNNING', 'startup exited 0');
          else if (e.code !== 0 && (this.state === 'STARTING' || this.state === 'RUNNING')) this.transition('ERRORED', `startup ${describeExit(e)}`);
        });
        return;
      }
    }
    if (run) {
      const skip = this.proc.skipCheck('run', run);
      if (skip instanceof Error) return this.transition('ERRORED', `run: ${skip.message}`);
      if (skip === 'run') {
        const p = this.proc.launch('run', run);
        if (p instanceof Error) return this.transition('ERRORED', `run could not start: ${p.message}`);
        this.transition('RUNNING', 'run launched');
        if (run.timeoutSec !== undefined) {
          const sec = run.timeoutSec;
          this.runTimer = setTimeout(() => {
            if (current() && this.state === 'RUNNING' && p.running) this.transition('ERRORED', `run timed out after ${sec} s`);
          }, sec * 1000).unref();
        }
        void p.exited.then((e) => {
          if (!current() || this.state !== 'RUNNING') return;
          if (e.code === 0) this.requestStop();
          else this.transition('ERRORED', `run ${describeExit(e)}`);
        });
        return;
      }
    }
    this.requestStop();
    this.transition('FINISHED', 'nothing to run');
  }

  /** Resolve shutdown() once nothing is running and nothing is about to happen. */
  private checkAtRest(): void {
    if (this.restWaiters.length === 0 || this.busy || this.kickPending || !AT_REST.has(this.state)) return;
    const waiters = this.restWaiters;
    this.restWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function clear(t: NodeJS.Timeout | undefined): undefined {
  if (t) clearTimeout(t);
  return undefined;
}

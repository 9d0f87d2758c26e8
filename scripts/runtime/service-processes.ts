/**
 * The processes of one component: its log file, the environment and cwd of its steps, Skipif, step
 * timeouts and stopping its process trees (Greengrass component recipe reference, Lifecycle;
 * Greengrass Developer Guide, "Component environment variable reference"). The state machine in
 * services.ts decides what to run; this runs it.
 *
 * Environment, lowest precedence first: the runtime's own environment (PATH, HOME...), the
 * nucleus-provided variables, Lifecycle.Setenv, the step's Setenv (GenericExternalService.addEnv).
 * Every step runs as the runtime's own user: RequiresPrivilege is not honoured (no sudo).
 */
import fs from 'node:fs';
import type { Logger } from '../../components/lib/logger';
import type { LifecycleStep } from './recipe';
import { ComponentLog, StepProcess, describeExit, shouldSkip, waitExit } from './process';

export type StepName = 'bootstrap' | 'install' | 'startup' | 'run' | 'shutdown' | 'recover';

export interface StepResult {
  ok: boolean;
  reason?: string;
  timedOut?: boolean;
  code?: number | null;
}

export interface ComponentProcessesOptions {
  component: string;
  workDir: string;
  logFile: string;
  now: () => number;
  logger: Logger;
  graceMs: number;
  /** Nucleus env with Lifecycle.Setenv on top; read at each launch since the definition may change. */
  baseEnv: () => Record<string, string>;
}

export class ComponentProcesses {
  readonly log: ComponentLog;
  /** Every process group started for this component and not yet known to be gone. */
  private readonly groups = new Set<StepProcess>();
  /** Bootstrap/Install/Recover/Shutdown steps in progress. */
  private readonly blocking = new Set<StepProcess>();

  constructor(private readonly o: ComponentProcessesOptions) {
    this.log = new ComponentLog(o.logFile, o.now, o.logger);
  }

  /** A line of our own in the component log, tagged [lifecycle]. */
  note(text: string): void {
    this.log.write('lifecycle', [text]);
  }

  private env(step: LifecycleStep): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    return Object.assign(env, this.o.baseEnv(), step.setenv);
  }

  /** 'run', 'skip', or why the Skipif is invalid (an invalid Skipif is a step error in the nucleus). */
  skipCheck(name: StepName, step: LifecycleStep): 'run' | 'skip' | Error {
    if (!step.skipif) return 'run';
    try {
      if (!shouldSkip(step.skipif, this.env(step), this.o.workDir)) return 'run';
    } catch (e) {
      return e as Error;
    }
    this.note(`${name} skipped (Skipif ${step.skipif})`);
    return 'skip';
  }

  /** Start a step as `sh -c` in the work dir, in its own process group; an Error if it cannot start. */
  launch(name: StepName, step: LifecycleStep): StepProcess | Error {
    try {
      fs.mkdirSync(this.o.workDir, { recursive: true });
      const p = new StepProcess({ step: name, script: step.script, cwd: this.o.workDir, env: this.env(step) }, this.log);
      this.groups.add(p);
      this.note(`${name} started (pid ${p.pid ?? 'none'})`);
      void p.exited.then((e) => this.note(`${name} ${describeExit(e)}`));
      return p;
    } catch (e) {
      return e as Error;
    }
  }

  /** Run a step to completion within its timeout (the step's Timeout, else `defaultSec`). */
  async runBlocking(name: StepName, step: LifecycleStep, defaultSec: number): Promise<StepResult> {
    const skip = this.skipCheck(name, step);
    if (skip instanceof Error) return { ok: false, reason: `${name}: ${skip.message}` };
    if (skip === 'skip') return { ok: true };
    const p = this.launch(name, step);
    if (p instanceof Error) return { ok: false, reason: `${name} could not start: ${p.message}` };
    this.blocking.add(p);
    const sec = step.timeoutSec ?? defaultSec;
    const exit = await waitExit(p, sec * 1000);
    this.blocking.delete(p);
    if (exit === 'timeout') {
      this.note(`${name} timed out after ${sec} s`);
      await this.kill(p);
      return { ok: false, timedOut: true, reason: `${name} timed out after ${sec} s` };
    }
    if (!p.alive()) this.groups.delete(p);
    return { ok: exit.code === 0, code: exit.code, reason: `${name} ${describeExit(exit)}` };
  }

  /** Kill running Bootstrap/Install/Recover steps (not Shutdown, which is part of stopping). */
  abortBlocking(): void {
    for (const p of this.blocking) if (p.step !== 'shutdown') void this.kill(p);
  }

  private async kill(p: StepProcess): Promise<void> {
    const outcome = await p.kill(this.o.graceMs);
    const fields = { component: this.o.component, step: p.step, pid: p.pid, graceMs: this.o.graceMs };
    if (outcome === 'killed') {
      this.o.logger.warn('process tree ignored SIGTERM and was killed', fields);
      this.note(`${p.step} (pid ${p.pid}) ignored SIGTERM for ${this.o.graceMs} ms: SIGKILL`);
    }
    if (outcome === 'stuck') this.o.logger.error('process tree survived SIGKILL', fields);
    else this.groups.delete(p);
  }

  /** SIGTERM every process tree of the component, wait the grace, SIGKILL what is left. */
  async killAll(): Promise<void> {
    await Promise.all([...this.groups].map((p) => this.kill(p)));
  }

  close(): Promise<void> {
    return this.log.close();
  }
}

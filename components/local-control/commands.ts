/**
 * Sending control commands and following them to their result (docs/local-control.md "Commands"),
 * and recording every step of every decision.
 *
 * An action is a chain of attempts: each attempt is a ControlCommand with a fresh commandId and an
 * `expiresAt` a few seconds ahead (the adapter refuses it after that: a command that waited in a
 * queue while IPC was down is never executed late), then a wait for its ControlResult. A `failed`
 * or `expired` result, or none within resultTimeoutMs, is retried with backoff, at most maxRetries
 * times; `rejected` is not retried (the adapter refused it: retrying changes nothing). After the
 * last failure the chain ends `failed` and the component raises `control_failed`.
 *
 * Every step (commanded, retrying, succeeded, failed, and blocked/released from the engine) is a
 * ControlDecision on `site/{siteId}/control/{assetId}/decision` and a row in the audit log.
 */
import { randomUUID } from 'node:crypto';
import { backoffDelay } from '../lib/backoff';
import type { Bus } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import {
  CONTRACT_VERSION,
  topics,
  type ControlAction,
  type ControlCommand,
  type ControlDecision,
  type ControlResult,
  type DecisionInput,
  type DecisionOutcome,
} from '../lib/contract';
import { errorMessage } from '../lib/errors';
import type { LimitedLog } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { clip as clipText } from '../lib/text';
import type { LocalControlDb } from './db';

export type Params = Record<string, number | string | boolean>;

/** What a decision is about; its steps repeat it. */
export interface DecisionCtx {
  decisionId: string;
  ruleId: string;
  assetId: string;
  action: ControlAction;
  params: Params;
  inputs: DecisionInput[];
  /** The input that made the rule fire: latencies count from it. */
  firstInputTs: number;
}

export interface StepExtra {
  reason?: string | undefined;
  commandId?: string | undefined;
  attempt?: number | undefined;
  /** Counts towards the asset's rate limit. */
  counted?: boolean | undefined;
}

/** Bounds of the contract's decision fields. */
const MAX_INPUTS = 64;
const MAX_REASON = 512;

/** A reason or message cut to the contract's bound (components/lib/text.ts). */
export function clip(s: string, n = MAX_REASON): string {
  return clipText(s, n);
}

export interface RecorderOptions {
  bus: Bus;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  limited: LimitedLog;
  siteId: () => string;
  db: () => LocalControlDb | undefined;
}

/**
 * Publishes a decision step and writes it to the audit log. Inside `batch` the rows wait and are
 * written together in one transaction when the batch ends (one fsync for every step an input
 * caused: with synchronous FULL each transaction is a disk flush, and the commands of an
 * emergency shutdown of many inverters must not wait for one flush each).
 */
export class Recorder {
  private queued: Array<{ d: ControlDecision; counted: boolean }> | undefined;

  constructor(private readonly o: RecorderOptions) {}

  batch<T>(fn: () => T): T {
    if (this.queued) return fn();
    this.queued = [];
    try {
      return fn();
    } finally {
      const rows = this.queued;
      this.queued = undefined;
      if (rows.length) this.write(rows);
    }
  }

  step(d: DecisionCtx, outcome: DecisionOutcome, extra: StepExtra = {}): ControlDecision {
    const now = this.o.clock.now();
    const msg: ControlDecision = {
      schemaVersion: CONTRACT_VERSION,
      siteId: this.o.siteId(),
      assetId: d.assetId,
      ts: now,
      decisionId: d.decisionId,
      ruleId: d.ruleId,
      action: d.action,
      params: d.params,
      inputs: d.inputs.slice(0, MAX_INPUTS),
      outcome,
      latencyMs: Math.max(0, now - d.firstInputTs),
      ...(extra.reason !== undefined ? { reason: clip(extra.reason) } : {}),
      ...(extra.commandId !== undefined ? { commandId: extra.commandId } : {}),
      ...(extra.attempt !== undefined ? { attempt: extra.attempt } : {}),
    };
    this.o.bus.publish(topics.controlDecision(msg.siteId, msg.assetId), msg).catch((err: unknown) => {
      this.o.metrics.recordError(err);
      this.o.limited('publish:decision', (suppressed) => this.o.logger.warn('control decision not published (it is in the audit log)', { err: errorMessage(err), suppressed }));
    });
    this.audit(msg, extra.counted === true);
    const level = outcome === 'failed' ? 'error' : outcome === 'blocked' || outcome === 'retrying' ? 'warn' : 'info';
    this.o.logger[level](`control ${outcome}`, { assetId: d.assetId, ruleId: d.ruleId, action: d.action, decisionId: d.decisionId, reason: msg.reason, commandId: extra.commandId, attempt: extra.attempt, latencyMs: msg.latencyMs });
    return msg;
  }

  private audit(d: ControlDecision, counted: boolean): void {
    if (this.queued) this.queued.push({ d, counted });
    else this.write([{ d, counted }]);
  }

  private write(rows: ReadonlyArray<{ d: ControlDecision; counted: boolean }>): void {
    const db = this.o.db();
    if (!db) return;
    try {
      db.tx(() => {
        for (const { d, counted } of rows) {
          db.audit({
            ts: d.ts,
            kind: 'decision',
            assetId: d.assetId,
            ruleId: d.ruleId,
            decisionId: d.decisionId,
            action: d.action,
            outcome: d.outcome,
            reason: d.reason,
            commandId: d.commandId,
            attempt: d.attempt,
            latencyMs: d.latencyMs,
            counted,
            entry: d,
          });
        }
      });
    } catch (err) {
      this.o.metrics.recordError(err);
      this.o.limited('audit', (suppressed) => this.o.logger.error('audit log write failed', { err: errorMessage(err), suppressed }));
    }
  }
}

export type ChainOutcome = 'succeeded' | 'failed' | 'abandoned';

export interface ChainSpec extends DecisionCtx {
  /** The target (asset and slot) the chain acts on; one chain per target at a time. */
  targetKey: string;
  /** Identifies what the chain wants on its target (the actuator compares it with what is wanted now). */
  wantKey: string;
  /** What the adapter is asked to do (an isolate_string decision is a `write` command). */
  command: { action: ControlAction; params: Params };
  /** Reason on the `commanded` step. */
  reason?: string | undefined;
  /** The first command counts towards the asset's rate limit. */
  counted: boolean;
  /** Holds the asset's one-action-in-flight slot (alarm relay writes do not). */
  exclusive: boolean;
  onDone(outcome: ChainOutcome, message?: string): void;
}

export interface Chain {
  readonly spec: ChainSpec;
  readonly attempt: number;
  /** `awaiting`: a command is out; `backoff`: waiting to retry. */
  readonly state: 'awaiting' | 'backoff' | 'done';
}

interface ChainImpl extends Chain {
  spec: ChainSpec;
  attempt: number;
  state: 'awaiting' | 'backoff' | 'done';
  commandId: string | undefined;
  timer: TimerHandle | undefined;
}

export interface CommanderOptions {
  bus: Bus;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  limited: LimitedLog;
  recorder: Recorder;
  siteId: () => string;
  /** Our short name: the commands' issuedBy. */
  issuedBy: string;
  settings: () => { commandTtlMs: number; resultTimeoutMs: number; maxRetries: number; retryInitialMs: number; retryMaxMs: number };
  random?: () => number;
  /** The last attempt failed: raise control_failed. */
  onFailed(spec: ChainSpec, message: string): void;
  /** An action on the asset succeeded: clear control_failed. */
  onSucceeded(spec: ChainSpec): void;
  /** A command was handed to the bus (the latency metric). */
  onSent?(): void;
}

export class Commander {
  private readonly byTarget = new Map<string, ChainImpl>();
  private readonly byCommand = new Map<string, ChainImpl>();
  private closed = false;

  constructor(private readonly o: CommanderOptions) {}

  get(targetKey: string): Chain | undefined {
    return this.byTarget.get(targetKey);
  }

  /** An exclusive chain is under way on the asset (other than on `exceptTarget`). */
  busy(assetId: string, exceptTarget?: string): Chain | undefined {
    for (const c of this.byTarget.values()) if (c.spec.exclusive && c.spec.assetId === assetId && c.spec.targetKey !== exceptTarget) return c;
    return undefined;
  }

  chains(): IterableIterator<Chain> {
    return this.byTarget.values();
  }

  get size(): number {
    return this.byTarget.size;
  }

  /** Starts the chain: its first command goes out now. */
  start(spec: ChainSpec): Chain {
    const c: ChainImpl = { spec, attempt: 0, state: 'awaiting', commandId: undefined, timer: undefined };
    this.byTarget.set(spec.targetKey, c);
    this.send(c);
    return c;
  }

  /** Ends a chain waiting to retry (its target wants something else now). */
  abandon(chain: Chain, reason: string): void {
    const c = chain as ChainImpl;
    if (c.state === 'done') return;
    this.o.clock.clearTimeout(c.timer);
    if (c.commandId !== undefined) this.byCommand.delete(c.commandId);
    this.finish(c);
    this.o.recorder.step(c.spec, 'released', { reason, commandId: c.commandId, attempt: c.attempt });
    c.spec.onDone('abandoned', reason);
  }

  /** A ControlResult from the bus; false when it answers none of our commands (another issuer's, or late). */
  onResult(r: ControlResult): boolean {
    const c = this.byCommand.get(r.commandId);
    if (!c || c.spec.assetId !== r.assetId || c.state !== 'awaiting') return false;
    this.byCommand.delete(r.commandId);
    this.o.clock.clearTimeout(c.timer);
    if (r.status === 'succeeded') {
      this.finish(c);
      this.o.recorder.step(c.spec, 'succeeded', { commandId: r.commandId, attempt: c.attempt, reason: r.message });
      c.spec.onDone('succeeded', r.message);
      this.o.onSucceeded(c.spec);
      return true;
    }
    const text = `${r.status}${r.message ? `: ${r.message}` : ''}`;
    // The adapter refused the command itself (not writable, out of range): the same command again changes nothing.
    this.failure(c, text, r.status === 'rejected');
    return true;
  }

  close(): void {
    this.closed = true;
    for (const c of this.byTarget.values()) this.o.clock.clearTimeout(c.timer);
    this.byTarget.clear();
    this.byCommand.clear();
  }

  private send(c: ChainImpl): void {
    if (this.closed) return;
    const s = this.o.settings();
    const now = this.o.clock.now();
    c.attempt++;
    c.state = 'awaiting';
    const commandId = randomUUID();
    c.commandId = commandId;
    this.byCommand.set(commandId, c);
    const cmd: ControlCommand = {
      schemaVersion: CONTRACT_VERSION,
      siteId: this.o.siteId(),
      assetId: c.spec.assetId,
      commandId,
      ts: now,
      action: c.spec.command.action,
      params: c.spec.command.params,
      issuedBy: this.o.issuedBy,
      reason: clip(`${c.spec.ruleId}: ${c.spec.action}${c.spec.reason ? ` (${c.spec.reason})` : ''}`),
      expiresAt: now + s.commandTtlMs,
    };
    // The command first, then its audit row: the audit write (an fsync) is not in the action's path.
    this.o.bus.publish(topics.controlCommand(cmd.siteId, cmd.assetId), cmd).catch((err: unknown) => {
      this.o.metrics.recordError(err);
      this.o.limited('publish:command', (suppressed) => this.o.logger.error('control command not published', { assetId: cmd.assetId, commandId, err: errorMessage(err), suppressed }));
    });
    this.o.onSent?.();
    this.o.recorder.step(c.spec, 'commanded', { commandId, attempt: c.attempt, reason: c.spec.reason, counted: c.spec.counted && c.attempt === 1 });
    c.timer = this.o.clock.setTimeout(() => {
      if (c.commandId !== commandId || c.state !== 'awaiting') return;
      this.byCommand.delete(commandId);
      this.o.metrics.drop('result_timeout');
      this.failure(c, `no result within resultTimeoutMs ${s.resultTimeoutMs} ms`, false);
    }, s.resultTimeoutMs);
  }

  private failure(c: ChainImpl, message: string, final: boolean): void {
    const s = this.o.settings();
    if (!final && c.attempt <= s.maxRetries && !this.closed) {
      const delay = backoffDelay(c.attempt, { initialMs: s.retryInitialMs, maxMs: s.retryMaxMs, ...(this.o.random ? { random: this.o.random } : {}) });
      c.state = 'backoff';
      this.o.recorder.step(c.spec, 'retrying', { commandId: c.commandId, attempt: c.attempt, reason: `${message}; attempt ${c.attempt + 1} of ${s.maxRetries + 1} in ${delay} ms` });
      c.timer = this.o.clock.setTimeout(() => {
        if (c.state === 'backoff') this.send(c);
      }, delay);
      return;
    }
    this.finish(c);
    const reason = `${message}${final ? '' : ` (after ${c.attempt} attempts)`}`;
    this.o.recorder.step(c.spec, 'failed', { commandId: c.commandId, attempt: c.attempt, reason });
    c.spec.onDone('failed', reason);
    this.o.onFailed(c.spec, reason);
  }

  private finish(c: ChainImpl): void {
    c.state = 'done';
    c.timer = undefined;
    if (this.byTarget.get(c.spec.targetKey) === c) this.byTarget.delete(c.spec.targetKey);
  }
}

/**
 * Control commands are executed at most once.
 *
 * Issuers repeat a command when they miss its result (a retry after a timeout, a redelivery on the
 * way from the cloud). The adapter remembers each command id (per asset) with its result and
 * answers a repeat from memory: the stored result is published again and the device is not
 * touched. A repeat that arrives while the first is still executing waits for that execution's
 * result. Memory is bounded by count (`rememberCommandIds`) and age (`rememberCommandsMs`), in the
 * order commands arrived, and the bounds never let a command run twice:
 *
 * - a command may start until its deadline: `expiresAt` when given, else `ts + maxCommandAgeMs`;
 *   a command whose deadline is further ahead than ids are remembered is refused, so an id is only
 *   forgotten once its command can no longer run (a repeat arriving later is expired);
 * - when the count is reached, the oldest id whose command cannot run any more (deadline passed, or
 *   refused without touching the device) is forgotten; if every remembered command could still run,
 *   the new command is refused (`rejected`) rather than forgetting one.
 *
 * Memory is in the process only: a restart forgets it (docs/modbus-adapter.md says why that is
 * acceptable).
 */
import type { Clock } from '../lib/clock';
import { CONTRACT_VERSION, type ControlCommand, type ControlResult } from '../lib/contract';
import { InputError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import type { Device } from './device';

export interface CommandMemoryOptions {
  /** Most ids remembered. */
  maxIds: number;
  /** How long an id is remembered after its command arrived. */
  maxAgeMs: number;
  /** Age (from `ts`) after which a command without `expiresAt` is expired. */
  maxCommandAgeMs: number;
}

interface Entry {
  receivedAt: number;
  deadline: number;
  /** action + params, to notice an id reused for another command. */
  fingerprint: string;
  result: Promise<ControlResult>;
  /** Set once the result is known. */
  settled?: ControlResult;
  /** The device was (or may have been) written. */
  ran: boolean;
}

export type Admission = { ok: true; settle(result: ControlResult, ran: boolean): void } | { ok: false; reason: string };

const fingerprint = (cmd: ControlCommand): string => JSON.stringify([cmd.action, cmd.params]);

export class CommandMemory {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Clock,
    private opts: CommandMemoryOptions,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** New bounds (live configuration); applied from the next command on. */
  setOptions(opts: CommandMemoryOptions): void {
    this.opts = opts;
  }

  /** The last moment the command may start executing. */
  deadline(cmd: ControlCommand): number {
    return cmd.expiresAt ?? cmd.ts + this.opts.maxCommandAgeMs;
  }

  /** Why the command must not run now (`expired` or `rejected`), or undefined. */
  judge(cmd: ControlCommand): { status: 'expired' | 'rejected'; message: string } | undefined {
    const now = this.clock.now();
    if (cmd.expiresAt !== undefined && cmd.expiresAt < now) return { status: 'expired', message: `expired at ${new Date(cmd.expiresAt).toISOString()}` };
    if (cmd.expiresAt === undefined && cmd.ts + this.opts.maxCommandAgeMs < now) {
      return { status: 'expired', message: `issued at ${new Date(cmd.ts).toISOString()}, older than maxCommandAgeMs ${this.opts.maxCommandAgeMs} and without expiresAt` };
    }
    const deadline = this.deadline(cmd);
    if (deadline > now + this.opts.maxAgeMs) {
      return { status: 'rejected', message: `valid until ${new Date(deadline).toISOString()}, longer than command ids are remembered (rememberCommandsMs ${this.opts.maxAgeMs}): it could run twice` };
    }
    return undefined;
  }

  /** The remembered result of this command id, if any (a promise while it still executes). */
  recall(cmd: ControlCommand): { result: Promise<ControlResult>; sameCommand: boolean } | undefined {
    this.forgetOld();
    const e = this.entries.get(key(cmd));
    return e ? { result: e.result, sameCommand: e.fingerprint === fingerprint(cmd) } : undefined;
  }

  /** Remember a new command; settle() records its result. Refused when memory is full of commands that could still run. */
  admit(cmd: ControlCommand): Admission {
    this.forgetOld();
    if (this.entries.size >= this.opts.maxIds && !this.forgetOneDone()) {
      return { ok: false, reason: `${this.entries.size} commands that could still run are remembered (rememberCommandIds ${this.opts.maxIds}); try again when some have expired` };
    }
    let resolve: (r: ControlResult) => void = () => undefined;
    const entry: Entry = { receivedAt: this.clock.now(), deadline: this.deadline(cmd), fingerprint: fingerprint(cmd), result: new Promise((r) => (resolve = r)), ran: false };
    this.entries.set(key(cmd), entry);
    return {
      ok: true,
      settle: (result, ran) => {
        entry.settled = result;
        entry.ran = ran;
        resolve(result);
      },
    };
  }

  private forgetOld(): void {
    const horizon = this.clock.now() - this.opts.maxAgeMs;
    for (const [k, e] of this.entries) {
      if (e.receivedAt > horizon) break;
      // One still executing stays: its repeats must wait for it.
      if (e.settled) this.entries.delete(k);
    }
  }

  /** Forget the oldest command that can no longer run; false if there is none. */
  private forgetOneDone(): boolean {
    const now = this.clock.now();
    for (const [k, e] of this.entries) {
      if (e.settled && (!e.ran || e.deadline < now)) {
        this.entries.delete(k);
        return true;
      }
    }
    return false;
  }
}

function key(cmd: ControlCommand): string {
  return `${cmd.assetId}\u0000${cmd.commandId}`;
}

/** What executing a command needs from the adapter. */
export interface CommandContext {
  memory: CommandMemory;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  siteId(): string;
  /** The device of an asset this adapter polls; undefined: not ours. */
  device(assetId: string): Pick<Device, 'write'> | undefined;
  publish(result: ControlResult, repeat: boolean): void;
}

/**
 * One command from the control topic: ignored when the asset is not ours; a repeat is answered
 * from memory; otherwise judged (expiry, age), executed by the device (which checks the deadline
 * again when the write's turn comes), remembered, and answered.
 */
export async function handleCommand(ctx: CommandContext, cmd: ControlCommand): Promise<void> {
  const device = ctx.device(cmd.assetId);
  // Commands for assets another adapter owns are not ours: ignore them quietly.
  if (!device) return;
  if (cmd.siteId !== ctx.siteId()) throw new InputError('site_mismatch', `command ${cmd.commandId} for site ${cmd.siteId}`);
  const seen = ctx.memory.recall(cmd);
  if (seen) {
    // A repeat: answer with the first one's result (when it has one), never execute again.
    if (!seen.sameCommand) ctx.log.warn("command id repeated with another action or params; answering with the first one's result", { assetId: cmd.assetId, commandId: cmd.commandId });
    ctx.publish(await seen.result, true);
    return;
  }
  const started = ctx.clock.now();
  const result = (o: { status: ControlResult['status']; message: string; data?: ControlResult['data'] }): ControlResult => ({
    schemaVersion: CONTRACT_VERSION,
    siteId: cmd.siteId,
    assetId: cmd.assetId,
    commandId: cmd.commandId,
    ts: ctx.clock.now(),
    status: o.status,
    message: o.message.slice(0, 500),
    durationMs: ctx.clock.now() - started,
    ...(o.status === 'succeeded' && o.data ? { data: o.data } : {}),
  });
  const ticket = ctx.memory.admit(cmd);
  if (!ticket.ok) {
    ctx.metrics.reject('command_memory_full');
    ctx.publish(result({ status: 'rejected', message: ticket.reason }), false);
    return;
  }
  const refusal = ctx.memory.judge(cmd);
  const outcome = refusal ? { ...refusal, ran: false } : await device.write(cmd.action, cmd.params, ctx.memory.deadline(cmd));
  const r = result(outcome);
  ticket.settle(r, outcome.ran);
  ctx.publish(r, false);
}

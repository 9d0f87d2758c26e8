/**
 * LocalControl's notification outputs, wired (docs/local-control.md "Notifications"):
 *
 * - `createNotifier`: the alarm outputs library (components/local-control/outputs) built from the
 *   configuration (notify-options.ts), its secrets read with GetSecretValue over the component's
 *   bus; none when no channel is configured;
 * - `NotifierHost`: what the component talks to. It starts the outputs, rebuilds them when their
 *   configuration changes (close, then build and start again on the same queue file: what was
 *   queued stays queued), holds the transitions and acknowledgements that arrive meanwhile and hands
 *   them over, and offers every active alarm to outputs it (re)built, so a channel added by a
 *   deployment hears of what is active (the queue's de-duplication keeps the others from hearing
 *   twice). Its status goes into the component's health.
 *
 * Automation never waits for any of this: a notification that cannot be queued is counted and
 * logged, and a secret that cannot be read only keeps its channel's notifications queued.
 */
import type { Bus } from '../lib/bus-types';
import type { Clock } from '../lib/clock';
import type { AlarmMessage } from '../lib/contract';
import { errorCode, errorMessage } from '../lib/errors';
import type { LimitedLog } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import type { LocalControlConfig } from './config';
import type { AlarmNotifier, NotifierStatus } from './local-control';
import { notifyKey, notifyOptions, type NotifyWhere } from './notify-options';
import { createAlarmOutputs, type AlarmOutputsDeps } from './outputs';

export interface NotifierDeps extends NotifyWhere {
  bus: Pick<Bus, 'getSecretValue'>;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  random?: () => number;
  /** Tests: the library's channel and serial hooks. */
  outputs?: Pick<AlarmOutputsDeps, 'makeChannel' | 'openSerial' | 'onDelivered'>;
}

/** The alarm outputs for this configuration, or undefined when it configures no channel. Checks only; `start` opens the queue. */
export function createNotifier(deps: NotifierDeps, config: Readonly<LocalControlConfig>): AlarmNotifier | undefined {
  const options = notifyOptions(config, deps);
  if (!options) return undefined;
  const log = deps.logger.child({ module: 'notifications' });
  if (config.outputs.email?.password !== undefined) log.warn('outputs.email.password is set inline: for the local runtime and tests only; use passwordSecret (a secret of the secret manager component)', {});
  if (config.outputs.webhook?.bearerToken !== undefined) log.warn('outputs.webhook.bearerToken is set inline: for the local runtime and tests only; use bearerTokenSecret', {});
  return createAlarmOutputs(
    {
      clock: deps.clock,
      logger: deps.logger,
      metrics: deps.metrics,
      ...(deps.random ? { random: deps.random } : {}),
      ...(deps.outputs ?? {}),
      getSecret: async (secretId, opts) => {
        const v = await deps.bus.getSecretValue(secretId, opts?.refresh === true ? { refresh: true } : {});
        if (typeof v.secretString !== 'string') throw new Error(`secret ${secretId} holds no string (a binary secret cannot be a password or token)`);
        return v.secretString;
      },
    },
    options,
  );
}

type Held = { kind: 'offer'; alarm: AlarmMessage } | { kind: 'ack'; alarmId: string; by: string; at: number };

/** What is held while the outputs are rebuilt (a reconfiguration takes at most a few seconds). */
const MAX_HELD = 10_000;

export interface NotifierHostOptions {
  build: (config: Readonly<LocalControlConfig>) => AlarmNotifier | undefined;
  /** What the outputs depend on; a change rebuilds them. */
  key: (config: Readonly<LocalControlConfig>) => string;
  logger: Logger;
  metrics: Metrics;
  limited: LimitedLog;
}

export class NotifierHost {
  private current: AlarmNotifier | undefined;
  private builtKey: string | undefined;
  private held: Held[] | undefined;
  private failed: string | undefined;
  private closed = false;

  constructor(private readonly o: NotifierHostOptions) {}

  /** Builds and starts the outputs for this configuration (at start), or rebuilds them if what they depend on changed. */
  async apply(config: Readonly<LocalControlConfig>, active: () => Iterable<AlarmMessage>): Promise<void> {
    if (this.closed) return;
    const key = this.o.key(config);
    if (key === this.builtKey) return;
    const first = this.builtKey === undefined;
    this.builtKey = key;
    const old = this.current;
    this.current = undefined;
    this.held = [];
    if (old) {
      this.o.logger.info('notification outputs: configuration changed; rebuilding them on the same queue', {});
      await old.close().catch((err: unknown) => this.o.logger.error('notification outputs close failed', { err: errorMessage(err) }));
    }
    let next: AlarmNotifier | undefined;
    this.failed = undefined;
    try {
      next = this.closed ? undefined : this.o.build(config);
      next?.start();
    } catch (err) {
      // The configuration was checked; what fails here is the queue file (permissions, a full disk).
      this.failed = `${errorCode(err)}: ${errorMessage(err)}`;
      this.o.metrics.recordError(err);
      this.o.logger.error('notification outputs could not start; alarms are not notified until the next start or a change of the notification configuration', { err: errorMessage(err) });
      await next?.close().catch(() => undefined);
      next = undefined;
    }
    const held = this.held;
    this.held = undefined;
    if (this.closed) {
      await next?.close().catch(() => undefined);
      return;
    }
    this.current = next;
    if (!next) return;
    if (!first || held.length > 0) this.o.logger.info('notification outputs ready', { handedOver: held.length });
    for (const a of active()) this.offer(a);
    for (const h of held) {
      if (h.kind === 'offer') this.offer(h.alarm);
      else this.acknowledge(h.alarmId, h.by, h.at);
    }
  }

  private hold(h: Held): boolean {
    if (!this.held) return false;
    if (this.held.length >= MAX_HELD) {
      this.o.metrics.drop('notify_rebuild_overflow');
      this.o.limited('notify:held', (suppressed) => this.o.logger.error('alarm transition not notified: too many arrived while the outputs were rebuilt', { held: MAX_HELD, suppressed }));
      return true;
    }
    this.held.push(h);
    return true;
  }

  /** Queues the transition (durable when it returns); a failure is counted and logged, never thrown. */
  offer(alarm: AlarmMessage): void {
    if (this.hold({ kind: 'offer', alarm })) return;
    const n = this.current;
    if (!n) return;
    try {
      n.offer(alarm);
    } catch (err) {
      this.o.metrics.recordError(err);
      this.o.limited('notify:offer', (suppressed) => this.o.logger.error('alarm notification not queued', { alarmId: alarm.alarmId, code: errorCode(err), err: errorMessage(err), suppressed }));
    }
  }

  acknowledge(alarmId: string, by: string, at: number): void {
    if (this.hold({ kind: 'ack', alarmId, by, at })) return;
    const n = this.current;
    if (!n) return;
    try {
      n.acknowledge(alarmId, by, at);
    } catch (err) {
      this.o.metrics.recordError(err);
      this.o.limited('notify:ack', (suppressed) => this.o.logger.error('acknowledgement not passed to the notification outputs', { alarmId, err: errorMessage(err), suppressed }));
    }
  }

  /** Channels, queue depth and whether anything is wrong; undefined when no outputs are configured. */
  status(): (NotifierStatus & { failed?: string }) | undefined {
    if (this.failed) return { queued: 0, channels: [], failed: this.failed };
    const n = this.current;
    if (!n?.status) return undefined;
    try {
      return n.status();
    } catch {
      return undefined;
    }
  }

  /** True while notifications are not getting out: outputs that could not start, a channel retrying, a secret not readable. */
  degraded(): boolean {
    const s = this.status();
    if (!s) return false;
    return s.failed !== undefined || s.channels.some((c) => c.state === 'retrying' || c.secret?.state === 'unavailable');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const n = this.current;
    this.current = undefined;
    if (n) await n.close().catch((err: unknown) => this.o.logger.error('notification outputs close failed', { err: errorMessage(err) }));
  }
}

export { notifyKey };

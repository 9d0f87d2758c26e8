/**
 * LocalControl's alarm notifications (docs/local-control-outputs.md): e-mail, SMS and webhooks that
 * work with no cloud. The component offers every alarm transition it receives; each channel whose
 * routing selects it gets one durable notification, delivered with retries until the channel
 * accepts it; critical alarms not acknowledged in time are escalated.
 *
 *   const outputs = createAlarmOutputs({ clock, logger, metrics }, options); // checks options, no I/O
 *   outputs.start();                       // opens the queue, resumes deliveries and escalations
 *   outputs.offer(alarm);                  // durable when it returns; a replay is not notified twice
 *   outputs.acknowledge(alarmId, by, at);  // stops that alarm's escalation
 *   await outputs.close();
 */
import type { Clock, TimerHandle } from '../../lib/clock';
import { validateAlarm, type AlarmMessage } from '../../lib/contract';
import { ConfigError, FatalError, InputError, TransientError } from '../../lib/errors';
import { createLogLimiter } from '../../lib/log-limit';
import type { Logger } from '../../lib/logger';
import type { Metrics } from '../../lib/metrics';
import { EmailChannel, emailBatching } from './email';
import { AtModem, openSerialPort, type OpenSerial } from './modem';
import { checkOutputsOptions, OUTPUTS_DEFAULTS, type AlarmOutputsOptions, type ChannelOptions } from './options';
import { NotificationQueue, type EnqueueResult } from './queue';
import { escalationKey, routes, severityRank, transitionKey, transitionOf, type Route } from './routing';
import { SecretChannel, type SecretStatus } from './secret-channel';
import { SmsChannel } from './sms';
import { messageOf, type NotificationChannel, type SendContext } from './types';
import { WebhookChannel } from './webhook';
import { ChannelWorker, type ChannelStatus, type DeliveredEvent } from './worker';

export interface AlarmOutputsDeps {
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Backoff jitter, [0, 1) (tests make it fixed). */
  random?: () => number;
  /** Opens a modem's serial device (default: the serialport package). */
  openSerial?: OpenSerial;
  /**
   * Builds a channel instead of the built-in one for these options (tests; later output kinds).
   * Return undefined to get the built-in channel.
   */
  makeChannel?: (options: ChannelOptions) => NotificationChannel | undefined;
  /** Called when a channel accepted a batch (tests and benchmarks watch deliveries). */
  onDelivered?: (e: DeliveredEvent) => void;
  /**
   * Reads a secret's string by id (LocalControl: GetSecretValue over IPC). Needed when a channel
   * names `passwordSecret` or `bearerTokenSecret`; the value never leaves the channel.
   */
  getSecret?: (secretId: string, opts?: { refresh?: boolean }) => Promise<string>;
}

export interface OfferResult {
  /** Channels that got a new notification. */
  queued: string[];
  /** Channels that had this transition already (a replay). */
  duplicates: string[];
  /** Channels whose notification the count bound dropped at once. */
  dropped: string[];
  /** The alarm is critical and its escalation is now waiting for an acknowledgement. */
  escalationPending: boolean;
}

export interface AckOutcome {
  /** A pending escalation was stopped. */
  escalationCancelled: boolean;
  /** Escalation notifications queued but not yet delivered that were withdrawn. */
  withdrawn: number;
  /** Was known here: `pending`, `escalated`, `cleared`, `acked` or `unknown`. */
  previous: string;
}

export interface AlarmOutputsStatus {
  queued: number;
  pendingEscalations: number;
  /** Drop counts per reason since the queue file was made (`expired`, `queue_full`, `email_refused`...). */
  dropped: Record<string, number>;
  /** Per channel; `secret` for a channel whose credential is a secret. */
  channels: Array<ChannelStatus & { secret?: SecretStatus }>;
}

export interface AlarmOutputs {
  start(): void;
  /** Queues the transition for every channel that routes it. Throws InputError for an invalid alarm. */
  offer(alarm: AlarmMessage): OfferResult;
  /** Records an operator's acknowledgement (from the HMI, the cloud...). Throws InputError for bad arguments. */
  acknowledge(alarmId: string, by: string, at: number): AckOutcome;
  status(): AlarmOutputsStatus;
  /** Idempotent; what was not delivered stays queued for the next start. */
  close(): Promise<void>;
}

const MAX_ESCALATIONS_PER_TICK = 500;

/** A copy without one key (the secret's id once its value is in). */
function without<T extends object, K extends keyof T>(o: T, key: K): Omit<T, K> {
  const copy = { ...o };
  delete copy[key];
  return copy;
}

export function createAlarmOutputs(deps: AlarmOutputsDeps, options: AlarmOutputsOptions): AlarmOutputs {
  checkOutputsOptions(options);
  if (!deps.getSecret) {
    const i = options.channels.findIndex((c) => (c.type === 'email' && c.passwordSecret !== undefined) || (c.type === 'webhook' && c.bearerTokenSecret !== undefined));
    if (i >= 0) {
      const k = `${options.configKey ? `${options.configKey}.` : ''}channels[${i}]`;
      throw new ConfigError(k, `${k} names a secret, but this gateway has no secret source (getSecret) to read it from`);
    }
  }
  const o = {
    maxQueued: options.maxQueued ?? OUTPUTS_DEFAULTS.maxQueued,
    maxAgeMs: options.maxAgeMs ?? OUTPUTS_DEFAULTS.maxAgeMs,
    dedupeRetentionMs: options.dedupeRetentionMs ?? OUTPUTS_DEFAULTS.dedupeRetentionMs,
    backoffInitialMs: options.backoffInitialMs ?? OUTPUTS_DEFAULTS.backoffInitialMs,
    backoffMaxMs: options.backoffMaxMs ?? OUTPUTS_DEFAULTS.backoffMaxMs,
    housekeepingIntervalMs: options.housekeepingIntervalMs ?? OUTPUTS_DEFAULTS.housekeepingIntervalMs,
  };
  const { clock, metrics } = deps;
  const logger = deps.logger.child({ module: 'alarm-outputs' });
  const limited = createLogLimiter(clock);
  const siteName = options.siteName ?? options.siteId;
  const escalation = options.escalation;
  const routing = new Map<string, Route>(
    options.channels.map((c) => [c.name, { minSeverity: c.minSeverity ?? OUTPUTS_DEFAULTS.route.minSeverity, transitions: c.transitions ?? OUTPUTS_DEFAULTS.route.transitions }]),
  );

  let queue: NotificationQueue | undefined;
  const workers = new Map<string, ChannelWorker>();
  const modems = new Map<string, AtModem>();
  let escalationTimer: TimerHandle | undefined;
  let housekeepingTimer: TimerHandle | undefined;
  const unregisterGauges: Array<() => void> = [];
  const secretChannels = new Map<string, SecretChannel>();
  let started = false;
  let closed = false;

  const ctx: SendContext = {
    siteId: options.siteId,
    siteName,
    escalateAfterMs: escalation?.escalateAfterMs ?? 0,
    saveProgress: (id, progress) => queue?.saveProgress(id, progress),
    refusedPart: (reason, detail) => {
      metrics.drop(`notify_${reason}`);
      queue?.countDropped(reason);
      limited(`part:${reason}:${String(detail['channel'])}`, (suppressed) => logger.error('part of a notification refused by the destination; not retried', { reason, ...detail, suppressed }));
    },
  };

  /** The channel for these options; one whose credential is a secret waits for it (secret-channel.ts). */
  const buildChannel = (c: ChannelOptions): NotificationChannel => {
    const secret =
      c.type === 'email' && c.passwordSecret !== undefined
        ? { key: 'passwordSecret', id: c.passwordSecret, resolved: (v: string): ChannelOptions => ({ ...without(c, 'passwordSecret'), password: v }), renew: (code: string) => code === 'SMTP_AUTH', ...emailBatching(c) }
        : c.type === 'webhook' && c.bearerTokenSecret !== undefined
          ? { key: 'bearerTokenSecret', id: c.bearerTokenSecret, resolved: (v: string): ChannelOptions => ({ ...without(c, 'bearerTokenSecret'), bearerToken: v }), renew: (code: string) => code === 'HTTP_401' || code === 'HTTP_403', batchIntervalMs: 0, maxBatch: 1 }
          : undefined;
    if (!secret) return plainChannel(c);
    const getSecret = deps.getSecret;
    if (!getSecret) throw new FatalError('INVARIANT', `channel ${c.name} names a ${secret.key} but the outputs were given no getSecret`);
    const ch = new SecretChannel({
      name: c.name,
      type: c.type,
      maxBatch: secret.maxBatch,
      batchIntervalMs: secret.batchIntervalMs,
      secretId: secret.id,
      key: secret.key,
      getSecret,
      build: (v) => plainChannel(secret.resolved(v)),
      renewOn: (err) => secret.renew(err.code),
      clock,
      logger,
      limited,
      retryInitialMs: o.backoffInitialMs,
      retryMaxMs: o.backoffMaxMs,
      ...(deps.random ? { random: deps.random } : {}),
    });
    secretChannels.set(c.name, ch);
    return ch;
  };

  const plainChannel = (c: ChannelOptions): NotificationChannel => {
    const custom = deps.makeChannel?.(c);
    if (custom) return custom;
    switch (c.type) {
      case 'email':
        return new EmailChannel(c, { clock, logger });
      case 'webhook':
        return new WebhookChannel(c, { clock });
      case 'sms': {
        let modem = modems.get(c.device);
        if (!modem) {
          modem = new AtModem({
            device: c.device,
            baudRate: c.baudRate ?? OUTPUTS_DEFAULTS.sms.baudRate,
            open: deps.openSerial ?? openSerialPort,
            clock,
            logger: logger.child({ device: c.device }),
            commandTimeoutMs: c.commandTimeoutMs ?? OUTPUTS_DEFAULTS.sms.commandTimeoutMs,
            sendTimeoutMs: c.sendTimeoutMs ?? OUTPUTS_DEFAULTS.sms.sendTimeoutMs,
          });
          modems.set(c.device, modem);
        }
        return new SmsChannel(c, modem);
      }
    }
  };

  const need = (): NotificationQueue => {
    if (closed) throw new FatalError('INVARIANT', 'alarm outputs are closed');
    if (!queue) throw new FatalError('INVARIANT', 'alarm outputs not started');
    return queue;
  };

  const noteEvictions = (res: EnqueueResult, alarm: AlarmMessage): void => {
    const n = res.evicted.length + res.rejected.length;
    if (n === 0) return;
    metrics.drop('notify_queue_full', n);
    limited('queue_full', (suppressed) =>
      logger.error('notification queue full; least important, oldest notifications dropped', { maxQueued: o.maxQueued, dropped: n, alarmId: alarm.alarmId, suppressed }),
    );
  };

  const expire = (): void => {
    const q = need();
    const now = clock.now();
    for (const [channel, n] of q.expire(now - o.maxAgeMs)) {
      metrics.drop('notify_expired', n);
      logger.error('notifications not delivered within maxAgeMs; dropped', { channel, dropped: n, maxAgeMs: o.maxAgeMs });
    }
    q.prune(now - o.dedupeRetentionMs);
  };

  const scheduleEscalations = (): void => {
    if (closed || !queue || !escalation) return;
    clock.clearTimeout(escalationTimer);
    escalationTimer = undefined;
    const next = queue.nextEscalationDue();
    if (next === null) return;
    escalationTimer = clock.setTimeout(runEscalations, Math.max(0, next - clock.now()));
  };

  function runEscalations(): void {
    escalationTimer = undefined;
    if (closed || !queue || !escalation) return;
    const now = clock.now();
    try {
      for (const d of queue.dueEscalations(now, MAX_ESCALATIONS_PER_TICK)) {
        const targets = escalation.channels.map((channel) => ({ channel, key: escalationKey(d.alarmId, channel) }));
        const res = queue.escalate(d, targets, now, o.maxQueued);
        noteEvictions(res, d.alarm);
        logger.warn('critical alarm not acknowledged; escalating', { alarmId: d.alarmId, assetId: d.alarm.assetId, type: d.alarm.type, afterMs: escalation.escalateAfterMs, channels: res.queued });
        for (const ch of res.queued) workers.get(ch)?.kick();
      }
    } catch (err) {
      metrics.recordError(err);
      logger.error('escalation failed; retrying', { err: messageOf(err) });
      escalationTimer = clock.setTimeout(runEscalations, o.backoffInitialMs);
      return;
    }
    scheduleEscalations();
  }

  return {
    start() {
      if (started || closed) return;
      started = true;
      queue = new NotificationQueue({ path: options.dbPath, ...(options.nativeBinding ? { nativeBinding: options.nativeBinding } : {}) });
      const q = queue;
      for (const [channel, n] of q.dropUnknownChannels(new Set(routing.keys()))) {
        metrics.drop('notify_channel_removed', n);
        logger.warn('notifications of a channel no longer configured; dropped', { channel, dropped: n });
      }
      for (const c of options.channels) {
        workers.set(
          c.name,
          new ChannelWorker({
            channel: buildChannel(c),
            queue: q,
            clock,
            logger,
            metrics,
            limited,
            ctx,
            backoffInitialMs: o.backoffInitialMs,
            backoffMaxMs: o.backoffMaxMs,
            maxAgeMs: o.maxAgeMs,
            ...(deps.random ? { random: deps.random } : {}),
            ...(deps.onDelivered ? { onDelivered: deps.onDelivered } : {}),
          }),
        );
      }
      // One gauge per channel (their sum is the queue's depth): health shows which one is backed up.
      for (const c of options.channels) unregisterGauges.push(metrics.registerQueue(`notifications.${c.name}`, () => q.depthOf(c.name)));
      for (const sc of secretChannels.values()) sc.start();
      expire();
      housekeepingTimer = clock.setInterval(() => {
        try {
          expire();
        } catch (err) {
          metrics.recordError(err);
          logger.error('notification housekeeping failed', { err: messageOf(err) });
        }
      }, o.housekeepingIntervalMs);
      const backlog = q.depth;
      if (backlog > 0) logger.info('resuming queued notifications', { queued: backlog, byChannel: q.depthByChannel() });
      for (const w of workers.values()) w.kick();
      scheduleEscalations();
    },

    offer(alarm) {
      const q = need();
      const v = validateAlarm(alarm);
      if (!v.ok) throw new InputError('invalid_alarm', `alarm not notified: ${v.reason}`, { code: v.code });
      const a = v.value;
      const now = clock.now();
      const result: OfferResult = { queued: [], duplicates: [], dropped: [], escalationPending: false };
      const rank = severityRank(a.severity);
      // A transition older than the age bound would be dropped unsent anyway (an old replay).
      const fresh = now - a.ts <= o.maxAgeMs;
      const routed = options.channels.filter((c) => routes(routing.get(c.name)!, a));
      const targets = fresh ? routed.map((c) => ({ channel: c.name, key: transitionKey(a, c.name) })) : [];
      const t = transitionOf(a);
      // Escalation: tracked from the transition's own time; a clear always stops it. A transition
      // older than the age bound (an old alarm replayed to a new install) is not escalated either.
      const esc =
        escalation && a.severity === 'critical'
          ? t === 'cleared'
            ? ({ op: 'clear' } as const)
            : fresh
              ? ({ op: 'track', dueAt: a.ts + escalation.escalateAfterMs } as const)
              : undefined
          : undefined;
      if (!fresh && routed.length > 0) {
        metrics.drop('notify_stale', routed.length);
        limited('stale', (suppressed) => logger.warn('alarm transition older than maxAgeMs; not notified', { alarmId: a.alarmId, ts: a.ts, maxAgeMs: o.maxAgeMs, suppressed }));
      }
      if (targets.length === 0 && !esc) return result;
      let res: EnqueueResult;
      try {
        res = q.enqueue({ kind: 'transition', alarm: a, severityRank: rank, targets, now, maxQueued: o.maxQueued, ...(esc ? { escalation: esc } : {}) });
      } catch (err) {
        metrics.recordError(err);
        logger.error('notification queue write failed', { alarmId: a.alarmId, err: messageOf(err) });
        throw new TransientError('NOTIFY_QUEUE_WRITE', `notification queue write failed: ${messageOf(err)}`, { cause: err });
      }
      noteEvictions(res, a);
      result.queued = res.queued;
      result.duplicates = res.duplicates;
      result.dropped = res.rejected;
      if (res.duplicates.length) metrics.reject('notify_duplicate', res.duplicates.length);
      for (const ch of res.queued) workers.get(ch)?.kick();
      if (esc) {
        result.escalationPending = q.escalationState(a.alarmId) === 'pending';
        scheduleEscalations();
      }
      return result;
    },

    acknowledge(alarmId, by, at) {
      const q = need();
      if (typeof alarmId !== 'string' || alarmId.length === 0 || alarmId.length > 128) throw new InputError('invalid_ack', 'acknowledge: alarmId must be a string of 1 to 128 characters');
      if (typeof by !== 'string' || by.length === 0 || by.length > 128) throw new InputError('invalid_ack', 'acknowledge: by must be a string of 1 to 128 characters');
      if (typeof at !== 'number' || !Number.isFinite(at)) throw new InputError('invalid_ack', 'acknowledge: at must be a time in ms since the epoch');
      const res = q.acknowledge(alarmId, by, at, clock.now());
      const outcome: AckOutcome = { escalationCancelled: res.previous === 'pending', withdrawn: res.withdrawn, previous: res.previous };
      if (outcome.escalationCancelled || res.withdrawn > 0) logger.info('alarm acknowledged; escalation stopped', { alarmId, by, at, withdrawn: res.withdrawn });
      scheduleEscalations();
      return outcome;
    },

    status() {
      const q = need();
      return {
        queued: q.depth,
        pendingEscalations: q.pendingEscalations(),
        dropped: q.droppedTotals(),
        channels: [...workers.values()].map((w) => {
          const sc = secretChannels.get(w.name);
          return sc ? { ...w.status(), secret: sc.secretStatus() } : w.status();
        }),
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      clock.clearTimeout(escalationTimer);
      clock.clearInterval(housekeepingTimer);
      for (const u of unregisterGauges.splice(0)) u();
      await Promise.all([...workers.values()].map((w) => w.close()));
      await Promise.all([...modems.values()].map((m) => m.close()));
      queue?.close();
    },
  };
}

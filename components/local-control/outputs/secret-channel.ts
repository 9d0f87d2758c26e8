/**
 * A channel whose credential is a secret (docs/local-control-outputs.md "Secrets"): the SMTP
 * password of `passwordSecret`, the webhook token of `bearerTokenSecret`. The secret is read with
 * the caller's `getSecret` (LocalControl: GetSecretValue of the secret manager component over
 * IPC), and the real channel is built with it:
 *
 * - at `start` (so a missing secret or policy shows at once, in the log and the status, not at the
 *   first alarm), retried with backoff while it fails;
 * - before a send if it is not there yet: the send fails with `SECRET_UNAVAILABLE` (retried by the
 *   worker with its backoff, never refused: the notifications stay queued until the secret comes);
 * - again after a failure that says the credential is no longer good (a failed SMTP login, an HTTP
 *   401/403), with `refresh` (the secret manager component fetches the latest value from AWS
 *   Secrets Manager, instead of serving the copy of its last deployment): a rotated secret is
 *   picked up on the next attempt without a restart or a deployment.
 *
 * The value is kept in memory only, inside the real channel; it is never logged or put into an
 * error. The secret id is logged (it is a name, not a secret).
 */
import { backoffDelay } from '../../lib/backoff';
import type { Clock, TimerHandle } from '../../lib/clock';
import type { LimitedLog } from '../../lib/log-limit';
import type { Logger } from '../../lib/logger';
import { ChannelError, messageOf, type Notification, type NotificationChannel, type SendContext } from './types';

export type SecretState = 'pending' | 'available' | 'unavailable';

export interface SecretStatus {
  state: SecretState;
  /** Why it is unavailable (`CODE: message`, never the value); null otherwise. */
  error: string | null;
}

export interface SecretChannelOptions {
  name: string;
  type: string;
  maxBatch: number;
  batchIntervalMs: number;
  secretId: string;
  /** The option that names the secret, for messages (`passwordSecret`). */
  key: string;
  /** `refresh`: the read follows a refused credential; ask for the cloud's latest value, not the gateway's copy. */
  getSecret(secretId: string, opts?: { refresh?: boolean }): Promise<string>;
  /** The real channel with the secret's value. */
  build(secret: string): NotificationChannel;
  /** A failure after which the secret is read again before the next attempt. */
  renewOn(err: ChannelError): boolean;
  clock: Clock;
  logger: Logger;
  limited: LimitedLog;
  retryInitialMs: number;
  retryMaxMs: number;
  random?: () => number;
}

function codeOf(err: unknown): string {
  const c = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof c === 'string' ? c : 'ERROR';
}

export class SecretChannel implements NotificationChannel {
  readonly name: string;
  readonly type: string;
  readonly maxBatch: number;
  readonly batchIntervalMs: number;
  private inner: NotificationChannel | undefined;
  private fetching: Promise<NotificationChannel> | undefined;
  private state: SecretState = 'pending';
  private error: string | null = null;
  private failures = 0;
  private timer: TimerHandle | undefined;
  private closed = false;
  /** The next read follows a refused credential: ask for a refresh. */
  private renew = false;

  constructor(private readonly o: SecretChannelOptions) {
    this.name = o.name;
    this.type = o.type;
    this.maxBatch = o.maxBatch;
    this.batchIntervalMs = o.batchIntervalMs;
  }

  /** Reads the secret now (in the background), and again with backoff while that fails. */
  start(): void {
    void this.channel().catch(() => this.retryLater());
  }

  secretStatus(): SecretStatus {
    return { state: this.state, error: this.error };
  }

  private retryLater(): void {
    if (this.closed || this.timer !== undefined || this.inner) return;
    const delay = backoffDelay(this.failures, { initialMs: this.o.retryInitialMs, maxMs: this.o.retryMaxMs, ...(this.o.random ? { random: this.o.random } : {}) });
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      void this.channel().catch(() => this.retryLater());
    }, delay);
  }

  /** The real channel, reading the secret first if needed (one read at a time). */
  private channel(): Promise<NotificationChannel> {
    if (this.inner) return Promise.resolve(this.inner);
    this.fetching ??= this.fetch().finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  private async fetch(): Promise<NotificationChannel> {
    let value: string;
    try {
      value = await this.o.getSecret(this.o.secretId, this.renew ? { refresh: true } : undefined);
      if (typeof value !== 'string' || value.length === 0) throw new ChannelError('SECRET_EMPTY', 'the secret holds no string value');
    } catch (err) {
      this.failures += 1;
      this.state = 'unavailable';
      // The message of an IPC error names the secret id and the denial, never a value.
      this.error = `${codeOf(err)}: ${messageOf(err)}`.slice(0, 512);
      const fields = { channel: this.name, secretId: this.o.secretId, key: this.o.key, code: codeOf(err), err: messageOf(err) };
      if (this.failures === 1) this.o.logger.error('secret of a notification channel not available; notifications stay queued', fields);
      else this.o.limited(`secret:${this.name}`, (suppressed) => this.o.logger.warn('secret of a notification channel still not available', { ...fields, failures: this.failures, suppressed }));
      throw new ChannelError('SECRET_UNAVAILABLE', `${this.o.key} of channel ${this.name}: ${messageOf(err)}`, { cause: err });
    }
    if (this.closed) throw new ChannelError('CLOSED', 'channel closed');
    if (this.failures > 0) this.o.logger.info('secret of a notification channel available again', { channel: this.name, secretId: this.o.secretId, failures: this.failures });
    this.failures = 0;
    this.renew = false;
    this.state = 'available';
    this.error = null;
    this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.inner = this.o.build(value);
    return this.inner;
  }

  async send(batch: readonly Notification[], ctx: SendContext): Promise<void> {
    if (this.closed) throw new ChannelError('CLOSED', 'channel closed');
    const inner = await this.channel();
    try {
      await inner.send(batch, ctx);
    } catch (err) {
      if (err instanceof ChannelError && this.o.renewOn(err) && this.inner === inner) {
        // The credential may have been rotated: read it again before the next attempt.
        this.inner = undefined;
        this.renew = true;
        this.state = 'pending';
        this.o.logger.warn('credential refused; the secret is read again before the next attempt', { channel: this.name, secretId: this.o.secretId, code: err.code });
        await inner.close().catch(() => undefined);
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const inner = this.inner;
    this.inner = undefined;
    await inner?.close();
  }
}

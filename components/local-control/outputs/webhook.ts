/**
 * A generic HTTPS webhook, for SMS providers and anything else with an HTTP API: one POST of JSON
 * per notification (docs/local-control-outputs.md "Webhook").
 *
 * Body: { schemaVersion, siteId, siteName, channel, kind, idempotencyKey, text, alarm }, where
 * `text` is the SMS text (at most 160 GSM-7 characters, format.ts) and `alarm` the contract's
 * AlarmMessage. The `Idempotency-Key` header repeats the notification's identity, so a provider
 * can drop a retry of a request whose answer we lost.
 *
 * Answers (RFC 9110 §15): 2xx accepted; 408 and 429 (and every 5xx) retried with backoff, at
 * least as long as a Retry-After asks (capped at backoffMaxMs); any other 4xx, and 3xx (redirects
 * are not followed: the URL is wrong), refuse the notification for good: dropped, counted, logged
 * with the status only. A connection error or no complete answer within `timeoutMs` retries.
 *
 * The URL, the token and extra headers are never logged or put in an error: only the host is.
 */
import https from 'node:https';
import type { Clock } from '../../lib/clock';
import { CONTRACT_VERSION } from '../../lib/contract';
import { smsText, splitSms } from './format';
import { OUTPUTS_DEFAULTS, type WebhookChannelOptions } from './options';
import { transitionKey } from './routing';
import { ChannelError, type Notification, type NotificationChannel, type SendContext } from './types';

/** Bytes of an answer read at most (the rest is discarded; only the status matters). */
const MAX_ANSWER_BYTES = 16 * 1024;

/** Retry-After as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(v: string | undefined, now: number): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

export class WebhookChannel implements NotificationChannel {
  readonly type = 'webhook';
  readonly name: string;
  readonly maxBatch = 1;
  readonly batchIntervalMs = 0;
  private readonly url: URL;
  private readonly host: string;
  private readonly timeoutMs: number;
  private readonly agent: https.Agent;
  private readonly aborts = new Set<AbortController>();
  private closed = false;

  constructor(
    private readonly o: WebhookChannelOptions,
    private readonly deps: { clock: Clock },
  ) {
    this.name = o.name;
    this.url = new URL(o.url);
    this.host = this.url.host;
    this.timeoutMs = o.timeoutMs ?? OUTPUTS_DEFAULTS.webhook.timeoutMs;
    // Our own agent: keep-alive between notifications of a burst, closed with the channel.
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...(o.ca !== undefined ? { ca: o.ca } : {}), rejectUnauthorized: o.rejectUnauthorized ?? true });
  }

  /** Where it posts, as logs may show it. */
  get target(): string {
    return this.host;
  }

  async send(batch: readonly Notification[], ctx: SendContext): Promise<void> {
    for (const n of batch) await this.post(n, ctx);
  }

  private post(n: Notification, ctx: SendContext): Promise<void> {
    if (this.closed) return Promise.reject(new ChannelError('CLOSED', 'channel closed'));
    const key = n.kind === 'escalation' ? JSON.stringify([n.alarm.alarmId, 'escalation', this.name]) : transitionKey(n.alarm, this.name);
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: CONTRACT_VERSION,
        siteId: ctx.siteId,
        siteName: ctx.siteName,
        channel: this.name,
        kind: n.kind,
        idempotencyKey: key,
        text: splitSms(smsText(n, ctx), 1)[0],
        alarm: n.alarm,
      }),
    );
    const headers: Record<string, string> = {
      ...(this.o.headers ?? {}),
      'content-type': 'application/json',
      'content-length': String(body.length),
      'idempotency-key': key,
      'user-agent': 'dcmms-edge-local-control',
    };
    if (this.o.bearerToken !== undefined) headers['authorization'] = `Bearer ${this.o.bearerToken}`;
    const abort = new AbortController();
    this.aborts.add(abort);
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: ChannelError): void => {
        if (done) return;
        done = true;
        this.deps.clock.clearTimeout(timer);
        this.aborts.delete(abort);
        if (err) reject(err);
        else resolve();
      };
      const timer = this.deps.clock.setTimeout(() => {
        finish(new ChannelError('HTTP_TIMEOUT', `${this.host}: no complete answer within ${this.timeoutMs} ms`));
        abort.abort();
      }, this.timeoutMs);
      const req = https.request(this.url, { method: 'POST', headers, agent: this.agent, signal: abort.signal }, (res) => {
        let read = 0;
        res.on('data', (c: Buffer) => {
          read += c.length;
          if (read > MAX_ANSWER_BYTES) res.destroy();
        });
        res.on('error', () => undefined);
        // Wait for the whole answer (or the cap) so the connection can be reused.
        const status = res.statusCode ?? 0;
        const settle = (): void => {
          if (status >= 200 && status < 300) return finish();
          const retryAfterMs = parseRetryAfter(res.headers['retry-after'], this.deps.clock.now());
          const opts = retryAfterMs === undefined ? {} : { retryAfterMs };
          if (status === 408 || status === 429 || status >= 500) return finish(new ChannelError(`HTTP_${status}`, `${this.host} answered ${status}`, opts));
          finish(new ChannelError(`HTTP_${status}`, `${this.host} refused the notification with ${status}`, { refused: true }));
        };
        res.on('end', settle);
        res.on('close', settle);
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (this.closed) return finish(new ChannelError('CLOSED', 'channel closed during the request'));
        // Node's messages name the host and port at most, never the path or query.
        finish(new ChannelError(`HTTP_${(err.code ?? 'ERROR').replace(/^E/, '')}`, `${this.host}: ${err.code ?? ''} ${err.message}`.slice(0, 300)));
      });
      req.end(body);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.aborts) a.abort();
    this.agent.destroy();
  }
}

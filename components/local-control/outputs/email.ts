/**
 * E-mail over SMTP with nodemailer: one mail per batch, plain text (docs/local-control-outputs.md
 * "E-mail").
 *
 * - A new connection per mail (no pool): alarms are rare, and a site relay or a provider may drop
 *   idle connections; a fresh connection also notices at once that a server is back.
 * - `tls`: `implicit` = nodemailer `secure` (TLS from the first byte); `starttls` = `requireTLS`
 *   (the mail is not sent if the server does not upgrade); `none` = `ignoreTLS` (never upgrade).
 *   Certificates are verified unless `rejectUnauthorized: false`; `ca` adds a site's own CA.
 * - The message id is made from the queue ids of the batch, so a mail sent again after a lost
 *   answer carries the same Message-ID and a mail client can show it once.
 * - Accepted = the server answered 250 after DATA. Classification of failures (RFC 5321 §4.2.1:
 *   4yz transient, 5yz permanent): a 5yz answer to MAIL, RCPT or DATA refuses this mail for good
 *   (dropped, counted); every other failure (no connection, timeout, TLS, 4yz, authentication)
 *   retries, since it is about the server or our settings, not this mail. A failed login
 *   therefore keeps the notifications queued (logged with SMTP_AUTH) until the password is fixed
 *   or the age bound drops them. Recipients refused while others accepted are counted and logged.
 * - nodemailer's own logger stays off: its debug output would show the AUTH exchange.
 */
import { createTransport, type SendMailOptions, type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import type { Clock } from '../../lib/clock';
import type { Logger } from '../../lib/logger';
import { mailBody, mailSubject } from './format';
import { OUTPUTS_DEFAULTS, type EmailChannelOptions } from './options';
import { ChannelError, messageOf, type Notification, type NotificationChannel, type SendContext } from './types';

interface SmtpFailure {
  message?: unknown;
  code?: string;
  responseCode?: number;
  command?: string;
  response?: string;
}

/** The error nodemailer gave, as a ChannelError; never includes credentials (nodemailer's messages do not). */
export function classifySmtpError(err: unknown): ChannelError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SmtpFailure;
  const rc = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const code = e.code ?? 'UNKNOWN';
  const msg = messageOf(err).slice(0, 300);
  if (code === 'EAUTH') return new ChannelError('SMTP_AUTH', `SMTP authentication failed: ${msg}`, { cause: err });
  if (rc !== undefined && rc >= 500 && rc < 600 && (code === 'EENVELOPE' || code === 'EMESSAGE')) {
    return new ChannelError(`SMTP_${rc}`, `SMTP server refused the mail: ${msg}`, { cause: err, refused: true });
  }
  if (rc !== undefined) return new ChannelError(`SMTP_${rc}`, `SMTP server answered ${rc}: ${msg}`, { cause: err });
  return new ChannelError(`SMTP_${code.replace(/^E/, '')}`, `SMTP: ${msg}`, { cause: err });
}

/** How a mail channel batches (also what a channel waiting for its password secret reports). */
export function emailBatching(o: Pick<EmailChannelOptions, 'batchIntervalMs' | 'maxPerMail'>): { batchIntervalMs: number; maxBatch: number } {
  const batchIntervalMs = o.batchIntervalMs ?? OUTPUTS_DEFAULTS.email.batchIntervalMs;
  // No batching: one mail per transition, also for a backlog (after an outage).
  return { batchIntervalMs, maxBatch: batchIntervalMs === 0 ? 1 : (o.maxPerMail ?? OUTPUTS_DEFAULTS.email.maxPerMail) };
}

export interface EmailChannelDeps {
  clock: Clock;
  logger: Logger;
}

export class EmailChannel implements NotificationChannel {
  readonly type = 'email';
  readonly name: string;
  readonly maxBatch: number;
  readonly batchIntervalMs: number;
  private readonly transport: Transporter<SMTPTransport.SentMessageInfo>;
  private readonly timeoutMs: number;
  private readonly fromDomain: string;
  private readonly aborts = new Set<AbortController>();
  private closed = false;

  constructor(
    private readonly o: EmailChannelOptions,
    private readonly deps: EmailChannelDeps,
  ) {
    this.name = o.name;
    ({ batchIntervalMs: this.batchIntervalMs, maxBatch: this.maxBatch } = emailBatching(o));
    this.timeoutMs = o.timeoutMs ?? OUTPUTS_DEFAULTS.email.timeoutMs;
    this.fromDomain = o.from.slice(o.from.lastIndexOf('@') + 1);
    const tls: Record<string, unknown> = { rejectUnauthorized: o.rejectUnauthorized ?? true };
    if (o.ca !== undefined) tls['ca'] = o.ca;
    this.transport = createTransport({
      host: o.host,
      port: o.port,
      secure: o.tls === 'implicit',
      requireTLS: o.tls === 'starttls',
      ignoreTLS: o.tls === 'none',
      ...(o.user !== undefined && o.password !== undefined ? { auth: { user: o.user, pass: o.password } } : {}),
      tls,
      connectionTimeout: this.timeoutMs,
      greetingTimeout: this.timeoutMs,
      socketTimeout: this.timeoutMs,
      logger: false,
      debug: false,
    } as SMTPTransport.Options);
  }

  async send(batch: readonly Notification[], ctx: SendContext): Promise<void> {
    if (this.closed) throw new ChannelError('CLOSED', 'channel closed');
    const abort = new AbortController();
    this.aborts.add(abort);
    // One bound for the whole send: nodemailer's timeouts are per phase (connect, greeting, idle socket).
    const timer = this.deps.clock.setTimeout(() => abort.abort(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    const fctx = { siteId: ctx.siteId, siteName: ctx.siteName, escalateAfterMs: ctx.escalateAfterMs };
    const first = batch[0]!.id;
    const last = batch[batch.length - 1]!.id;
    let info: SMTPTransport.SentMessageInfo;
    try {
      info = await this.transport.sendMail({
        from: this.o.from,
        to: this.o.to,
        subject: mailSubject(batch, fctx),
        text: mailBody(batch, fctx),
        messageId: `<dcmms-notify.${ctx.siteId}.${this.name}.${first}-${last}@${this.fromDomain}>`,
        headers: { 'X-Dcmms-Site': ctx.siteId, 'X-Dcmms-Alarm-Ids': [...new Set(batch.map((n) => n.alarm.alarmId))].slice(0, 50).join(' ') },
        signal: abort.signal,
      } as SendMailOptions);
    } catch (err) {
      if (abort.signal.aborted) throw new ChannelError(this.closed ? 'CLOSED' : 'SMTP_TIMEOUT', this.closed ? 'channel closed during the send' : `SMTP: ${messageOf(abort.signal.reason)}`, { cause: err });
      throw classifySmtpError(err);
    } finally {
      this.deps.clock.clearTimeout(timer);
      this.aborts.delete(abort);
    }
    const rejected = ((info.rejected ?? []) as Array<string | { address: string }>).map((r) => (typeof r === 'string' ? r : r.address));
    if (rejected.length > 0) {
      // The others have it: sending again would double it for them. Counted by the caller's log only.
      for (const r of rejected) ctx.refusedPart('email_recipient_refused', { channel: this.name, recipient: r });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.aborts) a.abort(new Error('closed'));
    this.transport.close();
  }
}

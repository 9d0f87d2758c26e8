/**
 * Options of the alarm outputs, their defaults and their checks. The component's configuration
 * schema is its own; these checks run again when the library is built, so a bad option is a
 * ConfigError naming the key (prefixed with `configKey`) and what is allowed, before any I/O.
 *
 * Secrets (the SMTP password, the webhook token, extra webhook headers, the webhook URL itself,
 * which some SMS providers put a key into) are values the caller resolved; they are held in
 * memory only and never logged or quoted in an error (components/lib/README.md "Secrets").
 */
import { SEVERITIES, type Severity } from '../../lib/contract';
import { ConfigError } from '../../lib/errors';
import { TRANSITION_ROUTES, type TransitionRoute } from './routing';

interface ChannelCommon {
  /** Unique; part of every notification's identity, so renaming a channel re-notifies replays. */
  name: string;
  /** Least severe alarm this channel is told about (default `low`: all). */
  minSeverity?: Severity;
  /** `raised` or `raisedAndCleared` (default). */
  transitions?: TransitionRoute;
}

export type SmtpTls = 'implicit' | 'starttls' | 'none';

export interface EmailChannelOptions extends ChannelCommon {
  type: 'email';
  host: string;
  port: number;
  /**
   * `implicit`: TLS from the first byte (SMTPS, usually port 465; nodemailer `secure`);
   * `starttls`: plain connect, then STARTTLS, refused if the server does not offer it (nodemailer
   * `requireTLS`); `none`: never TLS (a relay on the gateway itself), and then no `user`/`password`.
   */
  tls: SmtpTls;
  /** PEM certificate(s) to trust for this server (a site relay with its own CA or a self-signed certificate). */
  ca?: string;
  /** Verify the server certificate (default true). */
  rejectUnauthorized?: boolean;
  user?: string;
  /** The password itself (resolved by the caller), or `passwordSecret`; with `user`, exactly one of them. */
  password?: string;
  /**
   * Id (ARN or name) of a secret whose string is the password, read with `deps.getSecret` when the
   * outputs start and again after a failed login (secret-channel.ts).
   */
  passwordSecret?: string;
  from: string;
  to: string[];
  /** At most one mail per interval with every transition since the last one; 0 = one mail per transition (default 60 000). */
  batchIntervalMs?: number;
  /** Transitions per mail at most (default 100); more go in the next mail at once. */
  maxPerMail?: number;
  /** Connection, greeting and socket timeout, and the bound of one whole send (default 30 000). */
  timeoutMs?: number;
}

export interface SmsChannelOptions extends ChannelCommon {
  type: 'sms';
  /** Serial device of the GSM/LTE modem, e.g. /dev/ttyUSB2. Channels naming the same device share the modem. */
  device: string;
  /** Default 115 200. */
  baudRate?: number;
  /** International format, digits with an optional leading +. */
  numbers: string[];
  /** 1 (default): one SMS of at most 160 GSM-7 characters, cut; 2 to 4: split into that many SMS at most, numbered (1/2). */
  maxParts?: number;
  /** Answer to a plain AT command, and the `> ` prompt after AT+CMGS (default 5 000). */
  commandTimeoutMs?: number;
  /** Final answer to a message sent (+CMGS / +CMS ERROR); networks can take long (default 60 000). */
  sendTimeoutMs?: number;
}

export interface WebhookChannelOptions extends ChannelCommon {
  type: 'webhook';
  /** https:// only. Treated as secret: only its host is ever logged. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`; resolved by the caller from a secret. */
  bearerToken?: string;
  /** Id (ARN or name) of a secret whose string is the bearer token (instead of `bearerToken`), read with `deps.getSecret`. */
  bearerTokenSecret?: string;
  /** Extra request headers (a provider's key header); values are never logged. */
  headers?: Record<string, string>;
  /** Whole request, connect to last byte of the answer (default 10 000). */
  timeoutMs?: number;
  ca?: string;
  rejectUnauthorized?: boolean;
}

export type ChannelOptions = EmailChannelOptions | SmsChannelOptions | WebhookChannelOptions;

export interface EscalationOptions {
  /** A critical alarm not acknowledged within this long is notified again on `channels`. */
  escalateAfterMs: number;
  channels: string[];
}

export interface AlarmOutputsOptions {
  /** The queue's SQLite file (created if missing; WAL, synchronous FULL). */
  dbPath: string;
  siteId: string;
  /** Readable site label for subjects and texts (default siteId). */
  siteName?: string;
  channels: ChannelOptions[];
  escalation?: EscalationOptions;
  /** Queued notifications at most, all channels (default 10 000). */
  maxQueued?: number;
  /** A notification not delivered this long after it was queued is dropped, counted (default 24 h). */
  maxAgeMs?: number;
  /** Notification identities are kept this long after they were queued (default 8 days: longer than an alarm journal keeps a transition). */
  dedupeRetentionMs?: number;
  /** Retry backoff of a channel that is down (default 1 s doubling to 60 s, with jitter). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** How often expired notifications and old identities are removed (default 60 s). */
  housekeepingIntervalMs?: number;
  /** better-sqlite3's addon beside a bundled main.js (docs/build.md). */
  nativeBinding?: string;
  /** Prefix for ConfigError keys, e.g. `notifications` (default none). */
  configKey?: string;
}

export const OUTPUTS_DEFAULTS = {
  maxQueued: 10_000,
  maxAgeMs: 24 * 3600_000,
  dedupeRetentionMs: 8 * 24 * 3600_000,
  backoffInitialMs: 1000,
  backoffMaxMs: 60_000,
  housekeepingIntervalMs: 60_000,
  email: { batchIntervalMs: 60_000, maxPerMail: 100, timeoutMs: 30_000 },
  sms: { baudRate: 115_200, maxParts: 1, commandTimeoutMs: 5000, sendTimeoutMs: 60_000 },
  webhook: { timeoutMs: 10_000 },
  route: { minSeverity: 'low' as Severity, transitions: 'raisedAndCleared' as TransitionRoute },
} as const;

/** Longest SMS split (a text-mode SMS cannot be concatenated, so each part is its own message). */
export const MAX_SMS_PARTS = 4;

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const PHONE = /^\+?[0-9]{3,20}$/;
/** An address as the checks here accept it: no display name, no spaces, one @. */
const EMAIL = /^[^\s@<>()",;:]+@[^\s@<>()",;:]+$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
/** A Secrets Manager secret ARN or name (letters, digits and /_+=.@- ; an ARN adds colons). */
export const SECRET_ID = /^[A-Za-z0-9/_+=.@:-]{1,2048}$/;
const SECRET_ID_ALLOWED = 'a secret id: a Secrets Manager ARN or secret name (letters, digits and / _ + = . @ - :)';

type Rec = Record<string, unknown>;

class Checker {
  constructor(private readonly prefix: string) {}
  key(k: string): string {
    return this.prefix ? `${this.prefix}.${k}` : k;
  }
  fail(k: string, what: string): never {
    throw new ConfigError(this.key(k), `${this.key(k)} ${what}`);
  }
  int(rec: Rec, k: string, path: string, min: number, max: number, required = false): void {
    const v = rec[k];
    if (v === undefined && !required) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(path, `must be an integer from ${min} to ${max}`);
  }
  str(rec: Rec, k: string, path: string, opts: { pattern?: RegExp; allowed?: string; required?: boolean; max?: number } = {}): void {
    const v = rec[k];
    if (v === undefined && !opts.required) return;
    if (typeof v !== 'string' || v.length === 0 || v.length > (opts.max ?? 1024) || (opts.pattern && !opts.pattern.test(v))) {
      this.fail(path, `must be ${opts.allowed ?? `a non-empty string of at most ${opts.max ?? 1024} characters`}`);
    }
  }
  /** Like str, for a secret: the message never quotes the value. */
  secret(rec: Rec, k: string, path: string): void {
    const v = rec[k];
    if (v === undefined) return;
    if (typeof v !== 'string' || v.length === 0 || v.length > 4096) this.fail(path, 'must be a non-empty string of at most 4096 characters');
  }
  bool(rec: Rec, k: string, path: string): void {
    if (rec[k] !== undefined && typeof rec[k] !== 'boolean') this.fail(path, 'must be true or false');
  }
  oneOf(rec: Rec, k: string, path: string, allowed: readonly string[], required = false): void {
    const v = rec[k];
    if (v === undefined && !required) return;
    if (typeof v !== 'string' || !allowed.includes(v)) this.fail(path, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
  }
  list(rec: Rec, k: string, path: string, each: (v: unknown, i: number) => void, maxItems: number): void {
    const v = rec[k];
    if (!Array.isArray(v) || v.length === 0 || v.length > maxItems) this.fail(path, `must be a list of 1 to ${maxItems} entries`);
    v.forEach(each);
  }
}

function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Throws ConfigError naming the first bad key. No I/O. */
export function checkOutputsOptions(o: AlarmOutputsOptions): void {
  const c = new Checker(o.configKey ?? '');
  const rec = o as unknown as Rec;
  c.str(rec, 'dbPath', 'dbPath', { required: true, max: 4096 });
  c.str(rec, 'siteId', 'siteId', { required: true, max: 64 });
  c.str(rec, 'siteName', 'siteName', { max: 64 });
  c.int(rec, 'maxQueued', 'maxQueued', 10, 1_000_000);
  c.int(rec, 'maxAgeMs', 'maxAgeMs', 60_000, 30 * 24 * 3600_000);
  c.int(rec, 'dedupeRetentionMs', 'dedupeRetentionMs', 3600_000, 365 * 24 * 3600_000);
  c.int(rec, 'backoffInitialMs', 'backoffInitialMs', 10, 3600_000);
  c.int(rec, 'backoffMaxMs', 'backoffMaxMs', 10, 24 * 3600_000);
  if ((o.backoffMaxMs ?? OUTPUTS_DEFAULTS.backoffMaxMs) < (o.backoffInitialMs ?? OUTPUTS_DEFAULTS.backoffInitialMs)) c.fail('backoffMaxMs', 'must be at least backoffInitialMs');
  c.int(rec, 'housekeepingIntervalMs', 'housekeepingIntervalMs', 1000, 3600_000);
  if (!Array.isArray(o.channels) || o.channels.length > 32) c.fail('channels', 'must be a list of at most 32 channels');
  const names = new Set<string>();
  const devices = new Map<string, number>();
  o.channels.forEach((ch, i) => {
    const p = `channels[${i}]`;
    if (!isRec(ch)) c.fail(p, 'must be an object');
    const r = ch as unknown as Rec;
    c.str(r, 'name', `${p}.name`, { required: true, pattern: NAME, allowed: 'letters, digits, _ . - (1 to 64)' });
    if (names.has(ch.name)) c.fail(`${p}.name`, `must be unique (${JSON.stringify(ch.name)} is used twice)`);
    names.add(ch.name);
    c.oneOf(r, 'type', `${p}.type`, ['email', 'sms', 'webhook'], true);
    c.oneOf(r, 'minSeverity', `${p}.minSeverity`, SEVERITIES);
    c.oneOf(r, 'transitions', `${p}.transitions`, TRANSITION_ROUTES);
    if (ch.type === 'email') checkEmail(c, ch, p);
    else if (ch.type === 'sms') {
      checkSms(c, ch, p);
      const baud = ch.baudRate ?? OUTPUTS_DEFAULTS.sms.baudRate;
      const seen = devices.get(ch.device);
      if (seen !== undefined && seen !== baud) c.fail(`${p}.baudRate`, `must be the same for every channel on ${ch.device} (one modem)`);
      devices.set(ch.device, baud);
    } else checkWebhook(c, ch, p);
  });
  if (o.escalation !== undefined) {
    const e = o.escalation as unknown as Rec;
    if (!isRec(e)) c.fail('escalation', 'must be an object');
    c.int(e, 'escalateAfterMs', 'escalation.escalateAfterMs', 1000, 7 * 24 * 3600_000, true);
    c.list(e, 'channels', 'escalation.channels', (v, i) => {
      if (typeof v !== 'string' || !names.has(v)) c.fail(`escalation.channels[${i}]`, `must name a channel (one of ${[...names].map((n) => JSON.stringify(n)).join(', ') || 'none configured'})`);
    }, 32);
  }
}

function checkEmail(c: Checker, ch: EmailChannelOptions, p: string): void {
  const r = ch as unknown as Rec;
  c.str(r, 'host', `${p}.host`, { required: true, max: 253 });
  c.int(r, 'port', `${p}.port`, 1, 65535, true);
  c.oneOf(r, 'tls', `${p}.tls`, ['implicit', 'starttls', 'none'], true);
  c.str(r, 'ca', `${p}.ca`, { max: 65536, pattern: /-----BEGIN CERTIFICATE-----/, allowed: 'PEM certificate text' });
  c.bool(r, 'rejectUnauthorized', `${p}.rejectUnauthorized`);
  c.str(r, 'user', `${p}.user`, { max: 256 });
  c.secret(r, 'password', `${p}.password`);
  c.str(r, 'passwordSecret', `${p}.passwordSecret`, { max: 2048, pattern: SECRET_ID, allowed: SECRET_ID_ALLOWED });
  if (ch.password !== undefined && ch.passwordSecret !== undefined) c.fail(`${p}.passwordSecret`, 'and password must not both be given (the password comes from the secret)');
  const hasPassword = ch.password !== undefined || ch.passwordSecret !== undefined;
  if ((ch.user === undefined) === hasPassword) c.fail(`${p}.password`, '(or passwordSecret) and user must be given together (or neither)');
  // A password in clear text over the site LAN: refuse rather than leak it.
  if (ch.user !== undefined && ch.tls === 'none') c.fail(`${p}.tls`, 'must be "implicit" or "starttls" when user and password are set');
  c.str(r, 'from', `${p}.from`, { required: true, pattern: EMAIL, allowed: 'an e-mail address (name@domain)', max: 254 });
  c.list(r, 'to', `${p}.to`, (v, i) => c.str({ v }, 'v', `${p}.to[${i}]`, { required: true, pattern: EMAIL, allowed: 'an e-mail address (name@domain)', max: 254 }), 50);
  c.int(r, 'batchIntervalMs', `${p}.batchIntervalMs`, 0, 24 * 3600_000);
  c.int(r, 'maxPerMail', `${p}.maxPerMail`, 1, 1000);
  c.int(r, 'timeoutMs', `${p}.timeoutMs`, 100, 600_000);
}

function checkSms(c: Checker, ch: SmsChannelOptions, p: string): void {
  const r = ch as unknown as Rec;
  c.str(r, 'device', `${p}.device`, { required: true, max: 4096 });
  c.int(r, 'baudRate', `${p}.baudRate`, 300, 4_000_000);
  c.list(r, 'numbers', `${p}.numbers`, (v, i) => c.str({ v }, 'v', `${p}.numbers[${i}]`, { required: true, pattern: PHONE, allowed: 'a phone number: digits with an optional leading + (3 to 20 digits)' }), 20);
  c.int(r, 'maxParts', `${p}.maxParts`, 1, MAX_SMS_PARTS);
  c.int(r, 'commandTimeoutMs', `${p}.commandTimeoutMs`, 50, 120_000);
  c.int(r, 'sendTimeoutMs', `${p}.sendTimeoutMs`, 50, 600_000);
}

function checkWebhook(c: Checker, ch: WebhookChannelOptions, p: string): void {
  const r = ch as unknown as Rec;
  let url: URL | undefined;
  try {
    url = typeof ch.url === 'string' ? new URL(ch.url) : undefined;
  } catch {
    url = undefined;
  }
  // The URL is not quoted: it may carry a provider's key.
  if (!url || url.protocol !== 'https:') c.fail(`${p}.url`, 'must be an https:// URL');
  c.secret(r, 'bearerToken', `${p}.bearerToken`);
  c.str(r, 'bearerTokenSecret', `${p}.bearerTokenSecret`, { max: 2048, pattern: SECRET_ID, allowed: SECRET_ID_ALLOWED });
  if (ch.bearerToken !== undefined && ch.bearerTokenSecret !== undefined) c.fail(`${p}.bearerTokenSecret`, 'and bearerToken must not both be given (the token comes from the secret)');
  if (ch.headers !== undefined) {
    if (!isRec(ch.headers) || Object.keys(ch.headers).length > 20) c.fail(`${p}.headers`, 'must be an object of at most 20 header names to string values');
    for (const [k, v] of Object.entries(ch.headers)) {
      if (!HEADER_NAME.test(k)) c.fail(`${p}.headers`, `has an invalid header name ${JSON.stringify(k.slice(0, 64))}`);
      if (typeof v !== 'string' || v.length > 4096 || /[\r\n]/.test(v)) c.fail(`${p}.headers.${k}`, 'must be a string of at most 4096 characters without line breaks');
    }
  }
  c.int(r, 'timeoutMs', `${p}.timeoutMs`, 100, 600_000);
  c.str(r, 'ca', `${p}.ca`, { max: 65536, pattern: /-----BEGIN CERTIFICATE-----/, allowed: 'PEM certificate text' });
  c.bool(r, 'rejectUnauthorized', `${p}.rejectUnauthorized`);
}

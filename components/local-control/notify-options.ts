/**
 * LocalControl's notification configuration (`outputs.email`, `outputs.sms`, `outputs.webhook`,
 * `outputs.escalation`; docs/local-control.md "Notifications") mapped onto the alarm outputs
 * library's options (components/local-control/outputs, docs/local-control-outputs.md), its checks
 * with our key names, and the secret manager policy a site's deployment merges for the secrets it
 * names (docs/local-control.md "Secrets").
 *
 * Pure: no I/O, and nothing that loads nodemailer, SQLite or serialport, since the configuration
 * spec (config.ts) reaches the CDK app through components/registry.ts.
 */
import path from 'node:path';
import type { AccessControl, Severity } from '../lib/contract';
import { ConfigError } from '../lib/errors';
import type { LocalControlConfig, NotifyChannel } from './config';
import { checkOutputsOptions, type AlarmOutputsOptions, type ChannelOptions } from './outputs/options';

/** Least severe alarm a channel is told about when its `minSeverity` is not set. */
export const NOTIFY_MIN_SEVERITY: Readonly<Record<NotifyChannel, Severity>> = { email: 'low', sms: 'critical', webhook: 'high' };
/** First retry of a channel that is down (doubling to `outputs.retryMaxMs`). */
export const NOTIFY_RETRY_INITIAL_MS = 1000;

export const SECRET_MANAGER_SERVICE = 'aws.greengrass.SecretManager';
export const GET_SECRET_VALUE = 'aws.greengrass#GetSecretValue';

type Outputs = LocalControlConfig['outputs'];

export interface NotifyWhere {
  /** Folder a relative `outputs.queuePath` is resolved against (the component's work folder). */
  workDir?: string | undefined;
  nativeBinding?: string | undefined;
}

/** The channels configured, in a fixed order (their names are part of every notification's identity). */
export function channelsOf(o: Outputs): ChannelOptions[] {
  const out: ChannelOptions[] = [];
  if (o.email) {
    const e = o.email;
    out.push({
      type: 'email',
      name: 'email',
      host: e.host,
      port: e.port,
      tls: e.secure === true ? 'implicit' : e.starttls === false ? 'none' : 'starttls',
      ...(e.ca !== undefined ? { ca: e.ca } : {}),
      ...(e.user !== undefined ? { user: e.user } : {}),
      ...(e.passwordSecret !== undefined ? { passwordSecret: e.passwordSecret } : {}),
      ...(e.password !== undefined ? { password: e.password } : {}),
      from: e.from,
      to: [...e.to],
      minSeverity: e.minSeverity ?? NOTIFY_MIN_SEVERITY.email,
      ...(e.transitions !== undefined ? { transitions: e.transitions } : {}),
      ...(e.batchIntervalMs !== undefined ? { batchIntervalMs: e.batchIntervalMs } : {}),
    });
  }
  if (o.sms) {
    const m = o.sms;
    out.push({
      type: 'sms',
      name: 'sms',
      device: m.device,
      ...(m.baudRate !== undefined ? { baudRate: m.baudRate } : {}),
      numbers: [...m.to],
      minSeverity: m.minSeverity ?? NOTIFY_MIN_SEVERITY.sms,
      ...(m.transitions !== undefined ? { transitions: m.transitions } : {}),
      ...(m.maxParts !== undefined ? { maxParts: m.maxParts } : {}),
    });
  }
  if (o.webhook) {
    const w = o.webhook;
    out.push({
      type: 'webhook',
      name: 'webhook',
      url: w.url,
      ...(w.bearerTokenSecret !== undefined ? { bearerTokenSecret: w.bearerTokenSecret } : {}),
      ...(w.bearerToken !== undefined ? { bearerToken: w.bearerToken } : {}),
      ...(w.ca !== undefined ? { ca: w.ca } : {}),
      minSeverity: w.minSeverity ?? NOTIFY_MIN_SEVERITY.webhook,
      ...(w.transitions !== undefined ? { transitions: w.transitions } : {}),
    });
  }
  return out;
}

/** The library's options for this configuration; undefined when no channel is configured (no queue file then). */
export function notifyOptions(c: Readonly<LocalControlConfig>, where: NotifyWhere = {}): AlarmOutputsOptions | undefined {
  const channels = channelsOf(c.outputs);
  if (channels.length === 0) return undefined;
  return {
    dbPath: path.resolve(where.workDir ?? '.', c.outputs.queuePath),
    siteId: c.siteId,
    ...(c.outputs.siteName !== undefined ? { siteName: c.outputs.siteName } : {}),
    channels,
    ...(c.outputs.escalation ? { escalation: { escalateAfterMs: c.outputs.escalation.afterMs, channels: [...c.outputs.escalation.channels] } } : {}),
    backoffInitialMs: Math.min(NOTIFY_RETRY_INITIAL_MS, c.outputs.retryMaxMs),
    backoffMaxMs: c.outputs.retryMaxMs,
    ...(where.nativeBinding ? { nativeBinding: where.nativeBinding } : {}),
    configKey: 'outputs',
  };
}

/**
 * What the outputs are built from: when it changes, reconfigure closes them and builds them
 * again on the same queue file (nothing queued is lost). Relays and the acknowledge input are not
 * part of it.
 */
export function notifyKey(c: Readonly<LocalControlConfig>, where: NotifyWhere = {}): string {
  return JSON.stringify(notifyOptions(c, where) ?? null);
}

const fail = (key: string, what: string): never => {
  throw new ConfigError(key, `configuration key '${key}' ${what}`);
};

/** Our key for a key of the library's options (`outputs.channels[1].numbers[0]` -> `outputs.sms.to[0]`). */
function ourKey(key: string, channels: readonly ChannelOptions[]): string {
  return key
    .replace(/^outputs\.channels\[(\d+)\]/, (_m, i: string) => `outputs.${channels[Number(i)]?.name ?? 'channels'}`)
    .replace(/^outputs\.sms\.numbers/, 'outputs.sms.to')
    .replace(/^outputs\.email\.tls$/, 'outputs.email.starttls')
    .replace(/^outputs\.escalation\.escalateAfterMs$/, 'outputs.escalation.afterMs')
    .replace(/^outputs\.(backoffMaxMs|backoffInitialMs)$/, 'outputs.retryMaxMs')
    .replace(/^outputs\.dbPath$/, 'outputs.queuePath');
}

/**
 * Cross-field checks of the notification keys (the schema has checked each key alone); throws a
 * ConfigError naming our key. A message never quotes a password, a token or a URL.
 */
export function checkNotifyConfig(c: Readonly<LocalControlConfig>): void {
  const o = c.outputs;
  const e = o.email;
  if (e) {
    if (e.secure === true && e.starttls === true) fail('outputs.email.starttls', 'must not be true with secure (implicit TLS is encrypted from the first byte; STARTTLS is for a plain connection)');
    if (e.password !== undefined && e.passwordSecret !== undefined) fail('outputs.email.password', 'must not be given with passwordSecret (the password comes from the secret)');
    const hasPassword = e.password !== undefined || e.passwordSecret !== undefined;
    if (e.user !== undefined && !hasPassword) fail('outputs.email.passwordSecret', 'is required with user (or password, for the local runtime and tests only)');
    if (e.user === undefined && hasPassword) fail('outputs.email.user', 'is required with passwordSecret or password');
    if (e.user !== undefined && e.secure !== true && e.starttls === false) fail('outputs.email.starttls', 'must not be false when user and a password are set (the password would cross the site LAN in clear text); use secure or starttls');
  }
  const w = o.webhook;
  if (w && w.bearerToken !== undefined && w.bearerTokenSecret !== undefined) fail('outputs.webhook.bearerToken', 'must not be given with bearerTokenSecret (the token comes from the secret)');
  if (o.escalation) {
    o.escalation.channels.forEach((ch, i) => {
      if (!o[ch]) fail(`outputs.escalation.channels[${i}]`, `names ${JSON.stringify(ch)}, which is not configured (configure outputs.${ch}, or escalate on one of: ${channelsOf(o).map((x) => x.name).join(', ') || 'none configured'})`);
    });
  }
  // The library's own checks, as a backstop, with its keys turned into ours.
  const options = notifyOptions(c);
  if (!options) return;
  try {
    checkOutputsOptions(options);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const key = ourKey(err.key, options.channels);
    throw new ConfigError(key, `configuration key '${key}'${err.message.slice(err.key.length)}`);
  }
}

/** The part of a LocalControl configuration (or of a site's merge for it) that names secrets. */
export interface SecretNaming {
  outputs?: { email?: { passwordSecret?: string | undefined }; webhook?: { bearerTokenSecret?: string | undefined } };
}

/**
 * The secret ids the configuration names (passwordSecret, bearerTokenSecret), in a stable order.
 */
export function secretIds(c: Readonly<SecretNaming>): string[] {
  const ids = [c.outputs?.email?.passwordSecret, c.outputs?.webhook?.bearerTokenSecret].filter((x): x is string => x !== undefined);
  return [...new Set(ids)];
}

/**
 * The `accessControl` a site's deployment merges into LocalControl's configuration so that it may
 * read exactly the secrets this configuration names (GetSecretValue of aws.greengrass.SecretManager
 * on those ids; no wildcard). Undefined when it names none. A deployment's MERGE merges objects key
 * by key, so this adds the secret manager service beside the recipe's pub/sub policies, which stay.
 */
export function secretAccessControl(c: Readonly<SecretNaming>, componentName = 'com.dcmms.edge.LocalControl'): AccessControl | undefined {
  const ids = secretIds(c);
  if (ids.length === 0) return undefined;
  return {
    [SECRET_MANAGER_SERVICE]: {
      [`${componentName}:secrets:1`]: {
        policyDescription: `${componentName} reads the secrets its notification outputs name (SMTP password, webhook token)`,
        operations: [GET_SECRET_VALUE],
        resources: ids,
      },
    },
  };
}

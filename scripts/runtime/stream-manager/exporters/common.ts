/**
 * What the Stream Manager's exporters share: reading an export config's own fields (ConfigError
 * naming the key), the AWS credentials and endpoint an AWS client gets, telling a transient AWS
 * failure from a refusal, a rate-limited log, and the per-batch record of what already reached
 * the destination (so a batch the server retries does not deliver a message twice).
 */
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ConfigError, errorMessage } from '../../../../components/lib/errors';
import { createLogLimiter, type LimitedLog } from '../../../../components/lib/log-limit';
import type { ExportConfig, ExportEnvironment, StoredMessage } from '../types';

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An optional integer field of an export config within [min, max]; ConfigError naming the key otherwise. */
export function intField(config: ExportConfig, key: string, min: number, max: number, fallback: number): number {
  const v = config[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(key, `export '${config.identifier}': ${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function stringField(config: ExportConfig, key: string, pattern: RegExp, what: string): string {
  const v = config[key];
  if (typeof v !== 'string' || !pattern.test(v)) {
    throw new ConfigError(key, `export '${config.identifier}': ${key} must be ${what}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** How long credentials from the environment are used before it is asked again (the TES caches them itself). */
const REASK_AFTER_MS = 30_000;

/** Placeholder keys for a loopback test peer (s3rver's defaults; kinesalite takes any). */
const LOOPBACK_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

type AwsIdentity = { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date };

export interface CredentialSource {
  /** For the AWS client's `credentials`. */
  provider: () => Promise<AwsIdentity>;
  /** After a credentials error (ExpiredToken ...): the next request asks the environment again. */
  invalidate(): void;
}

/**
 * The credentials an AWS client signs with: the environment's (the runtime's Token Exchange Service)
 * if it has them. Without them, placeholder keys only when the destination is an endpoint override
 * (a test peer); towards AWS itself the request fails with a message saying why, rather than the
 * SDK's default chain signing with whatever keys the developer's shell holds.
 *
 * The SDK would keep credentials without an expiration for the client's lifetime, but the TES
 * rotates them (hourly by default): they are handed to the SDK as already due (so it asks on every
 * request) and cached here for 30 s, or until a credentials error drops them.
 */
export function awsCredentials(env: ExportEnvironment, endpoint: string | undefined, service: string): CredentialSource {
  const from = env.credentials;
  if (!from) {
    const fixed = endpoint
      ? () => Promise.resolve<AwsIdentity>(LOOPBACK_CREDENTIALS)
      : () => Promise.reject<AwsIdentity>(new Error(`no AWS credentials for ${service}: the Stream Manager has no Token Exchange Service credentials and no ${service} endpoint override`));
    return { provider: fixed, invalidate: () => undefined };
  }
  let cached: { at: number; c: Promise<AwsIdentity> } | undefined;
  return {
    provider: async () => {
      if (!cached || Date.now() - cached.at > REASK_AFTER_MS) {
        const c = from().then((x) => ({ accessKeyId: x.accessKeyId, secretAccessKey: x.secretAccessKey, ...(x.sessionToken ? { sessionToken: x.sessionToken } : {}) }));
        cached = { at: Date.now(), c };
        // A failed lookup is not kept.
        c.catch(() => {
          if (cached?.c === c) cached = undefined;
        });
      }
      return { ...(await cached.c), expiration: new Date() };
    },
    invalidate: () => void (cached = undefined),
  };
}

/** True for an error that says the credentials are expired or not accepted. */
export function isCredentialError(err: unknown): boolean {
  return CREDENTIAL_ERRORS.has(awsErrorName(err)) || awsHttpStatus(err) === 403;
}

/** HTTP/1.1 (Kinesis's client would otherwise try HTTP/2, which kinesalite does not speak) with bounded waits. */
export function httpHandler(requestTimeoutMs: number): NodeHttpHandler {
  return new NodeHttpHandler({ connectionTimeout: Math.min(requestTimeoutMs, 10000), requestTimeout: requestTimeoutMs });
}

export function awsErrorName(err: unknown): string {
  if (isObject(err)) {
    if (typeof err['name'] === 'string' && err['name'] !== 'Error') return err['name'];
    if (typeof err['Code'] === 'string') return err['Code'];
    if (typeof err['code'] === 'string') return err['code'];
  }
  return 'Error';
}

export function awsHttpStatus(err: unknown): number | undefined {
  if (!isObject(err) || !isObject(err['$metadata'])) return undefined;
  const s = err['$metadata']['httpStatusCode'];
  return typeof s === 'number' ? s : undefined;
}

const CREDENTIAL_ERRORS = new Set(['ExpiredToken', 'ExpiredTokenException', 'InvalidToken', 'InvalidAccessKeyId', 'TokenRefreshRequired', 'CredentialsProviderError', 'UnrecognizedClientException', 'InvalidSignatureException', 'SignatureDoesNotMatch']);

/**
 * True when the destination refused this request for good (a 4xx that is not a timeout, throttling
 * or a credentials problem); false when trying again later may work: no answer at all (connection
 * refused, reset, timeout), a 5xx, 408, 429, or credentials that expired or are not there yet.
 */
export function isRefusal(err: unknown): boolean {
  const status = awsHttpStatus(err);
  if (status === undefined) return false;
  if (CREDENTIAL_ERRORS.has(awsErrorName(err))) return false;
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

export function describeAwsError(err: unknown): string {
  const status = awsHttpStatus(err);
  return `${awsErrorName(err)}${status !== undefined ? ` (HTTP ${status})` : ''}: ${errorMessage(err)}`;
}

/** A log with one line per key per 10 s (and the count it held back): bad messages can arrive at line rate. */
export function limitedLog(): LimitedLog {
  return createLogLimiter({ now: () => Date.now() });
}

/**
 * Messages of the batch in flight that already reached the destination. The server retries a
 * rejected batch from its first message; the exporter skips what it marked here, so a partial
 * failure costs a retry of the rest, not a second copy of what arrived. In memory only: after a
 * restart of the runtime a retried batch is sent whole (at-least-once, as the real Stream Manager).
 * Entries at or below a resolved batch's last sequence number are forgotten.
 */
export class DeliveredSet {
  private readonly done = new Set<number>();
  has(m: StoredMessage): boolean {
    return this.done.has(m.sequenceNumber);
  }
  add(m: StoredMessage): void {
    this.done.add(m.sequenceNumber);
  }
  /** The batch resolved: nothing at or below its last message will be sent again. */
  settle(batch: readonly StoredMessage[]): void {
    const last = batch[batch.length - 1]?.sequenceNumber;
    if (last === undefined) return;
    for (const s of this.done) if (s <= last) this.done.delete(s);
  }
  get size(): number {
    return this.done.size;
  }
}

/** Counters an exporter keeps for what it could never export (bad messages), by reason. */
export class Rejections {
  readonly byReason: Record<string, number> = {};
  total = 0;
  count(reason: string): void {
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
    this.total++;
  }
}

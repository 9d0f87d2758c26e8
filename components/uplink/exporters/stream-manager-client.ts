/**
 * A guarded connection to Greengrass Stream Manager through AWS's own client
 * (`aws-greengrass-core-sdk/stream-manager`, the StreamManagerClient of the Greengrass Core SDK for
 * JavaScript). That client speaks the protocol correctly but is not safe to use as it is:
 *
 *  - its constructor starts connecting and drops the promise: a refused connection (Stream Manager
 *    not started yet, restarting with the nucleus) is an unhandled rejection, which ends a Node 20
 *    process (aws/aws-greengrass-core-sdk-js#12, "ECONNREFUSED 127.0.0.1:8088");
 *  - no request has a timeout: a request written to a socket that died, or one whose answer the
 *    read loop failed on, waits forever;
 *  - an answer it cannot match (an unknown requestId) throws inside its read loop, which then stops
 *    reading for good: every later request hangs.
 *
 * So: every request has our deadline; a deadline, a socket error or a read-loop error discards that
 * client (its pending requests fail at once) and the next request connects a new one, after an
 * exponential backoff while connecting fails. Answers from the server (a status code: InvalidRequest,
 * ResourceNotFound, NotEnoughMessages...) keep the connection. Nothing here can throw outside a
 * returned promise.
 *
 * The port is resolved at every connect (Stream Manager may come back on another one when it is
 * configured with port 0); the token is AWS_CONTAINER_AUTHORIZATION_TOKEN, which the SDK reads from
 * the environment itself (Greengrass developer guide, "Use stream manager in custom components").
 */
import { backoffDelay } from '../../lib/backoff';
import type { Clock, TimerHandle } from '../../lib/clock';
import { errorMessage } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { ExportError } from './types';

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-require-imports */
/** The SDK module (plain JavaScript, no type declarations). */
export const sm: any = require('aws-greengrass-core-sdk/stream-manager');
/* eslint-enable @typescript-eslint/no-explicit-any, @typescript-eslint/no-require-imports */

/** The methods of the SDK client used here. */
export interface SdkClient {
  appendMessage(stream: string, data: Buffer): Promise<number>;
  createMessageStream(definition: unknown): Promise<void>;
  updateMessageStream(definition: unknown): Promise<void>;
  readMessages(stream: string, options?: unknown): Promise<Array<{ sequenceNumber: number; ingestTime: number; payload: Buffer }>>;
  listStreams(): Promise<string[]>;
  describeMessageStream(stream: string): Promise<SdkStreamInfo>;
  onConnected(f: () => void): void;
  onError(f: (e: unknown) => void): void;
  close(): void;
}

export interface SdkStreamInfo {
  storageStatus: { oldestSequenceNumber: number | null; newestSequenceNumber: number | null; totalBytes: number | null } | null;
  exportStatuses: Array<{ exportConfigIdentifier: string | null; lastExportedSequenceNumber: number | null; lastExportTime: number | null; errorMessage: string | null }> | null;
}

type SdkClientClass = new (opts: Record<string, unknown>) => SdkClient & { __connect(): Promise<void> };

/**
 * The SDK's constructor calls `this.__connect()` and drops the promise; this override gives that
 * promise a handler (the failure still reaches onError, which is how we see it), so a refused
 * connection cannot become an unhandled rejection.
 */
const GuardedClient: SdkClientClass = class extends (sm.StreamManagerClient as SdkClientClass) {
  override __connect(): Promise<void> {
    const p = super.__connect();
    p.catch(() => undefined);
    return p;
  }
};

export const SM_DEFAULT_PORT = 8088;

export interface SmConnectionOptions {
  clock: Clock;
  logger: Logger;
  host?: string;
  /** Called at every connect: the port to use now. */
  resolvePort: () => Promise<number>;
  /** The component's token (AWS_CONTAINER_AUTHORIZATION_TOKEN); undefined: whatever the environment holds. */
  authToken?: string | undefined;
  requestTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  random?: () => number;
  /** After every successful (re)connect, before requests run on the new client (streams are ensured there). */
  onConnect?: (client: SdkClient) => Promise<void>;
}

/** Stream Manager could not be asked (not running, no answer in time, connection lost). */
export class SmUnavailableError extends ExportError {
  constructor(message: string, cause?: unknown) {
    super('SM_UNAVAILABLE', message, cause === undefined ? undefined : { cause });
    this.name = 'SmUnavailableError';
  }
}

/** True for an answer of the server (a status code), as opposed to a failure to get one. */
export function isServerAnswer(err: unknown): boolean {
  return err instanceof sm.StreamManagerException && !(err instanceof sm.ClientException);
}

/** The SDK reads its token from the environment in its constructor (synchronously): set it for that call only. */
function withToken<T>(token: string | undefined, f: () => T): T {
  if (token === undefined) return f();
  const KEY = 'AWS_CONTAINER_AUTHORIZATION_TOKEN';
  const had = Object.prototype.hasOwnProperty.call(process.env, KEY);
  const old = process.env[KEY];
  process.env[KEY] = token;
  try {
    return f();
  } finally {
    if (had) process.env[KEY] = old;
    else delete process.env[KEY];
  }
}

interface Live {
  client: SdkClient;
  /** Rejects every request still waiting on this client. */
  pending: Set<(e: Error) => void>;
}

export class SmConnection {
  private live: Live | undefined;
  private connecting: Promise<Live> | undefined;
  private failures = 0;
  private nextConnectAt = 0;
  private lastError = '';
  private closed = false;
  readonly stats = { connects: 0, connectFailures: 0, timeouts: 0, drops: 0 };

  constructor(private readonly o: SmConnectionOptions) {}

  get connected(): boolean {
    return this.live !== undefined;
  }

  /** Why the last connect or request failed ('' if none). */
  get lastFailure(): string {
    return this.lastError;
  }

  /**
   * Runs one SDK request with a deadline (`timeoutMs`, default requestTimeoutMs). Rejects with the
   * server's exception when the server answered with an error status, SmUnavailableError otherwise.
   */
  async call<T>(what: string, fn: (c: SdkClient) => Promise<T>, timeoutMs = this.o.requestTimeoutMs): Promise<T> {
    const live = await this.ready();
    let timer: TimerHandle | undefined;
    let reject: (e: Error) => void = () => undefined;
    const guard = new Promise<never>((_res, rej) => {
      reject = rej;
      timer = this.o.clock.setTimeout(() => rej(new SmUnavailableError(`Stream Manager did not answer ${what} within ${timeoutMs} ms`)), timeoutMs);
    });
    live.pending.add(reject);
    try {
      return await Promise.race([Promise.resolve().then(() => fn(live.client)), guard]);
    } catch (err) {
      if (isServerAnswer(err) || err instanceof sm.ValidationException) throw err;
      if (err instanceof SmUnavailableError && /did not answer/.test(err.message)) this.stats.timeouts++;
      this.drop(live, err);
      throw err instanceof SmUnavailableError ? err : new SmUnavailableError(`${what}: ${errorMessage(err)}`, err);
    } finally {
      this.o.clock.clearTimeout(timer);
      live.pending.delete(reject);
    }
  }

  close(): void {
    this.closed = true;
    if (this.live) this.drop(this.live, new SmUnavailableError('closed'));
  }

  private async ready(): Promise<Live> {
    if (this.closed) throw new SmUnavailableError('the Stream Manager connection is closed');
    if (this.live) return this.live;
    if (!this.connecting) {
      const now = this.o.clock.now();
      if (now < this.nextConnectAt) throw new SmUnavailableError(`Stream Manager unavailable (${this.lastError}); next connect in ${this.nextConnectAt - now} ms`);
      this.connecting = this.open().finally(() => (this.connecting = undefined));
    }
    return this.connecting;
  }

  private async open(): Promise<Live> {
    let client: SdkClient | undefined;
    try {
      const port = await this.o.resolvePort();
      const host = this.o.host ?? '127.0.0.1';
      // The SDK logs every socket error with console.error by default; ours go through the sender's rate-limited warnings.
      const sdkLog = (...a: unknown[]): void => this.o.logger.debug('stream manager client', { detail: a.map((x) => (x instanceof Error ? x.message : typeof x === 'string' ? x : JSON.stringify(x))).join(' ').slice(0, 300) });
      const c = withToken(this.o.authToken, () => new GuardedClient({ port, host, logger: { error: sdkLog, warn: sdkLog, info: sdkLog, debug: sdkLog } }));
      client = c;
      await new Promise<void>((resolve, reject) => {
        const timer = this.o.clock.setTimeout(() => reject(new SmUnavailableError(`no connection to Stream Manager at ${host}:${port} within ${this.o.requestTimeoutMs} ms`)), this.o.requestTimeoutMs);
        c.onConnected(() => (this.o.clock.clearTimeout(timer), resolve()));
        c.onError((e) => (this.o.clock.clearTimeout(timer), reject(new SmUnavailableError(`Stream Manager at ${host}:${port}: ${errorMessage(e)}`, e))));
      });
      const live: Live = { client: c, pending: new Set() };
      // From now on any error the client reports (socket, read loop) makes it unusable: drop it.
      c.onError((e) => this.drop(live, e));
      // Requests wait for this (they share `connecting`) until the streams are there.
      if (this.o.onConnect) {
        try {
          await this.o.onConnect(c);
        } catch (err) {
          this.drop(live, err);
          throw err;
        }
      }
      this.live = live;
      if (this.closed) {
        this.drop(live, new SmUnavailableError('closed'));
        throw new SmUnavailableError('the Stream Manager connection is closed');
      }
      this.failures = 0;
      this.lastError = '';
      this.stats.connects++;
      this.o.logger.info('connected to Stream Manager', { host, port });
      return live;
    } catch (err) {
      this.stats.connectFailures++;
      this.failures++;
      this.lastError = errorMessage(err);
      this.nextConnectAt = this.o.clock.now() + backoffDelay(this.failures, { initialMs: this.o.backoffInitialMs, maxMs: this.o.backoffMaxMs, ...(this.o.random ? { random: this.o.random } : {}) });
      if (client && this.live?.client !== client) {
        try {
          client.close();
        } catch {
          // already closed
        }
      }
      throw err instanceof SmUnavailableError || isServerAnswer(err) ? err : new SmUnavailableError(`connect: ${errorMessage(err)}`, err);
    }
  }

  private drop(live: Live, why: unknown): void {
    if (this.live === live || this.live === undefined) {
      this.live = undefined;
      this.stats.drops++;
      this.lastError = errorMessage(why);
      this.o.logger.debug('Stream Manager connection dropped', { err: this.lastError });
    }
    const err = why instanceof SmUnavailableError ? why : new SmUnavailableError(`connection lost: ${errorMessage(why)}`, why);
    for (const r of live.pending) r(err);
    live.pending.clear();
    try {
      live.client.close();
    } catch {
      // already closed
    }
  }
}

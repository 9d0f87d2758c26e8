/**
 * The local runtime's Token Exchange Service (aws.greengrass.TokenExchangeService): an HTTP server on
 * 127.0.0.1 that answers the AWS SDKs' container credential provider, as the nucleus's
 * `tes/CredentialRequestHandler.java` does (Greengrass Developer Guide, "Token exchange service";
 * docs/local-runtime.md "Token Exchange Service"):
 *
 *   GET /2016-11-01/credentialprovider/   Authorization: <the component's SVCUID token>
 *   200 {AccessKeyId, SecretAccessKey, Token, Expiration (ISO 8601)}   403 for a missing or unknown token
 *
 * On a gateway the credentials come from AWS IoT's credentials provider for the core device's role
 * alias; here they are fixed ones for the local S3-compatible server (s3rver: S3RVER/S3RVER), with a
 * lifetime tests can shorten to exercise expiry. Every issue gets a fresh session token that names
 * its expiry (`local-<expiresAtMs>-<n>`), so a fault-injecting S3 front can reject expired ones.
 * The AWS SDK JS v3 accepts plain http for this provider only on loopback (credential-provider-http
 * checkUrl), hence 127.0.0.1.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../components/lib/logger';

export const TES_COMPONENT_NAME = 'aws.greengrass.TokenExchangeService';
export const TES_PATH = '/2016-11-01/credentialprovider/';

export interface TesOptions {
  accessKeyId: string;
  secretAccessKey: string;
  /** Fixed session token; default: a fresh `local-<expiresAtMs>-<n>` per issue. */
  sessionToken?: string;
  /** How long issued credentials are valid (the nucleus's default is 1 h). */
  lifetimeMs: number;
}

export interface TesStats {
  issued: number;
  refused: number;
}

export interface TokenExchangeService {
  /** `http://127.0.0.1:<port>/2016-11-01/credentialprovider/`; empty before listen. */
  readonly url: string;
  listen(): Promise<void>;
  close(): Promise<void>;
  /** Change the lifetime of credentials issued from now on (tests). */
  setLifetimeMs(ms: number): void;
  /** While false, requests get 503 (a TES outage). */
  setAvailable(available: boolean): void;
  stats(): TesStats;
}

export function createTes(opts: TesOptions, authorize: (token: string) => string | undefined, logger: Logger): TokenExchangeService {
  let lifetimeMs = opts.lifetimeMs;
  let available = true;
  let url = '';
  let n = 0;
  const stats: TesStats = { issued: 0, refused: 0 };
  const log = logger.child({ part: 'tes' });
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== TES_PATH) return reply(404, { message: 'not found' });
    if (!available) return reply(503, { message: 'TES unavailable (simulated)' });
    const header = req.headers['authorization'];
    const principal = typeof header === 'string' && header.length > 0 ? authorize(header) : undefined;
    if (!principal) {
      stats.refused++;
      log.warn('TES request refused: unknown authorization token');
      return reply(403, { message: 'Unauthorized' });
    }
    const expiresAt = Date.now() + lifetimeMs;
    stats.issued++;
    log.debug('credentials issued', { component: principal, expiresAt });
    return reply(200, {
      AccessKeyId: opts.accessKeyId,
      SecretAccessKey: opts.secretAccessKey,
      Token: opts.sessionToken ?? `local-${expiresAt}-${++n}`,
      Expiration: new Date(expiresAt).toISOString(),
    });
  });
  return {
    get url() {
      return url;
    },
    listen: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const port = (server.address() as AddressInfo).port;
          url = `http://127.0.0.1:${port}${TES_PATH}`;
          log.info('token exchange service listening', { url, lifetimeMs });
          resolve();
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    setLifetimeMs: (ms) => void (lifetimeMs = ms),
    setAvailable: (a) => void (available = a),
    stats: () => ({ ...stats }),
  };
}

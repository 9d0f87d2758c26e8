/**
 * The HTTPS API and the web app (docs/local-hmi.md "API"): Fastify over TLS, session cookie +
 * CSRF header, roles, security headers on every response. The routes only translate HTTP; what
 * they do is the `HmiBackend`'s (local-hmi.ts).
 *
 * Security model (docs/local-hmi.md "Security"):
 *  - the session id is 32 random bytes in an HttpOnly, Secure, SameSite=Strict cookie; the
 *    database holds only its SHA-256; sessions end after sessionTtlMs, or idleTimeoutMs without a
 *    request;
 *  - every non-GET request carries `x-csrf-token` equal to the session's token (compared in
 *    constant time), else 403 `csrf`; login itself needs a JSON body, which a cross-site form
 *    cannot send without a CORS preflight this server never grants;
 *  - every /api route but login answers 401 without a valid session, and checks the role before
 *    doing anything;
 *  - failed logins are limited per client address and per user name (429 with retry-after).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:https';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Clock } from '../lib/clock';
import { createLogLimiter } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import { hashSessionId, roleAtLeast, type Role, type SessionRow } from './db';
import type { WebAssets } from './web-assets';

export const COOKIE = 'dcmms_hmi';

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** An error the routes answer with: `{ error, message }` and its status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface Session {
  idHash: string;
  username: string;
  role: Role;
  csrf: string;
}

/** What the routes call; local-hmi.ts implements it. Every method may throw ApiError. */
export interface HmiBackend {
  login(username: string, password: string, address: string): Promise<SessionRow & { id: string }>;
  session(idHash: string): Session | undefined;
  logout(s: Session, address: string): void;
  users(s: Session): unknown;
  putUser(s: Session, body: Record<string, unknown>, address: string): Promise<unknown>;
  changePassword(s: Session, body: Record<string, unknown>, address: string): Promise<void>;
  overview(): unknown;
  alarms(view: string, limit: number): unknown;
  devices(): unknown;
  series(): unknown;
  trend(assetId: string, point: string, range: string): unknown;
  health(): Promise<unknown>;
  audit(limit: number): unknown;
  acknowledge(s: Session, alarmId: string, body: Record<string, unknown>): Promise<{ requestId: string }>;
  shelve(s: Session, alarmId: string, body: Record<string, unknown>): unknown;
  unshelve(s: Session, alarmId: string, body: Record<string, unknown>): unknown;
  control(s: Session, body: Record<string, unknown>): Promise<{ requestId: string }>;
  controlState(requestId: string): unknown;
  /** Opens an SSE stream on the raw response; false when too many are open. */
  openEvents(s: Session, res: FastifyReply['raw']): boolean;
}

export interface ServerOptions {
  cert: string;
  key: string;
  sessionTtlMs: number;
  logger: Logger;
  web: WebAssets;
  backend: HmiBackend;
  /** Counts a rejected request (metrics.reject). */
  reject: (reason: string) => void;
  clock: Pick<Clock, 'now'>;
}

declare module 'fastify' {
  interface FastifyRequest {
    hmiSession?: Session;
  }
}

function body(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw new ApiError(400, 'bad_request', 'the body must be a JSON object');
  return b as Record<string, unknown>;
}

function limitOf(q: unknown, dflt: number, max: number): number {
  const v = (q as Record<string, unknown> | undefined)?.['limit'];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new ApiError(400, 'bad_request', `limit must be an integer from 1 to ${max}`);
  return n;
}

function str(q: unknown, key: string): string {
  const v = (q as Record<string, unknown> | undefined)?.[key];
  return typeof v === 'string' ? v : '';
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Our one cookie from a Cookie header (RFC 6265 §5.4: `name=value` pairs separated by `; `). Parsed
 * here rather than with @fastify/cookie, which loads its parser with a dynamic import() of an ESM
 * module (Jest's VM cannot run it without an experimental flag) for a job this small.
 */
export function cookieOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === COOKIE) {
      const v = part.slice(i + 1).trim();
      // Session ids are base64url: anything else is not ours.
      return /^[A-Za-z0-9_-]{1,128}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

export async function createServer(o: ServerOptions): Promise<FastifyInstance<Server>> {
  const app = Fastify({
    https: { key: o.key, cert: o.cert, minVersion: 'TLSv1.2' },
    logger: false,
    bodyLimit: 64 * 1024,
    // A slow or half-open client must not hold a socket for ever (SSE streams are hijacked).
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    keepAliveTimeout: 10_000,
    return503OnClosing: true,
  }) as unknown as FastifyInstance<Server>;
  const limited = createLogLimiter(o.clock, 10_000);

  app.addHook('onRequest', async (req, reply) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    const url = req.url.split('?')[0] ?? '';
    if (!url.startsWith('/api/') && url !== '/api') return;
    reply.header('cache-control', 'no-store');
    if (url === '/api/login' && req.method === 'POST') return;
    const id = cookieOf(req.headers.cookie);
    const s = id ? o.backend.session(hashSessionId(id)) : undefined;
    if (!s) {
      o.reject('unauthenticated');
      throw new ApiError(401, 'unauthenticated', 'log in first');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const token = req.headers['x-csrf-token'];
      if (typeof token !== 'string' || !sameToken(token, s.csrf)) {
        o.reject('csrf');
        throw new ApiError(403, 'csrf', 'missing or wrong x-csrf-token header');
      }
    }
    req.hmiSession = s;
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof ApiError) {
      // Bad input is counted and logged (at most once per 10 s per kind); 401/403/429 are counted where raised.
      if (err.status === 400 || err.status === 404 || err.status === 409) {
        o.reject(err.code);
        limited(`api-${err.code}`, (suppressed) => o.logger.info('request refused', { method: req.method, url: req.url.split('?')[0], status: err.status, error: err.code, message: err.message, suppressed }));
      }
      void reply.code(err.status).headers(err.headers).send({ error: err.code, message: err.message });
      return;
    }
    const e = err as { statusCode?: number; code?: string; message?: string };
    const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status === 500) o.logger.error('request failed', { method: req.method, url: req.url.split('?')[0], err });
    else {
      o.reject('bad_request');
      limited('api-bad_request', (suppressed) => o.logger.info('request refused', { method: req.method, url: req.url.split('?')[0], status, message: e.message, suppressed }));
    }
    void reply.code(status).send({ error: status === 500 ? 'internal' : status === 415 ? 'unsupported_media_type' : status === 413 ? 'too_large' : 'bad_request', message: status === 500 ? 'internal error (logged)' : (e.message ?? 'bad request') });
  });

  const need = (req: FastifyRequest, role: Role): Session => {
    const s = req.hmiSession;
    if (!s) throw new ApiError(401, 'unauthenticated', 'log in first');
    if (!roleAtLeast(s.role, role)) throw new ApiError(403, 'forbidden', `this needs the ${role} role; you are ${s.role}`);
    return s;
  };

  // --- auth ------------------------------------------------------------------------------------
  app.post('/api/login', async (req, reply) => {
    const b = body(req);
    const username = typeof b['username'] === 'string' ? b['username'] : '';
    const password = typeof b['password'] === 'string' ? b['password'] : '';
    if (!username || !password) throw new ApiError(400, 'bad_request', 'username and password are required');
    const s = await o.backend.login(username, password, req.ip);
    reply.header('set-cookie', `${COOKIE}=${s.id}; Max-Age=${Math.floor(o.sessionTtlMs / 1000)}; Path=/; HttpOnly; Secure; SameSite=Strict`);
    return { user: s.username, role: s.role, csrfToken: s.csrf };
  });
  app.post('/api/logout', async (req, reply) => {
    o.backend.logout(need(req, 'viewer'), req.ip);
    reply.header('set-cookie', `${COOKIE}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict`);
    return reply.code(204).send();
  });
  app.get('/api/session', async (req) => {
    const s = need(req, 'viewer');
    return { user: s.username, role: s.role, csrfToken: s.csrf };
  });
  app.get('/api/users', async (req) => o.backend.users(need(req, 'admin')));
  app.post('/api/users', async (req, reply) => reply.code(201).send(await o.backend.putUser(need(req, 'admin'), body(req), req.ip)));
  app.post('/api/password', async (req, reply) => {
    await o.backend.changePassword(need(req, 'viewer'), body(req), req.ip);
    return reply.code(204).send();
  });

  // --- read ------------------------------------------------------------------------------------
  app.get('/api/overview', async (req) => (need(req, 'viewer'), o.backend.overview()));
  app.get('/api/alarms', async (req) => {
    need(req, 'viewer');
    const view = str(req.query, 'view') || 'active';
    if (view !== 'active' && view !== 'history') throw new ApiError(400, 'bad_request', 'view must be active or history');
    return o.backend.alarms(view, limitOf(req.query, 500, 5000));
  });
  app.get('/api/devices', async (req) => (need(req, 'viewer'), o.backend.devices()));
  app.get('/api/series', async (req) => (need(req, 'viewer'), o.backend.series()));
  app.get('/api/trend', async (req) => {
    need(req, 'viewer');
    return o.backend.trend(str(req.query, 'assetId'), str(req.query, 'point'), str(req.query, 'range') || '1h');
  });
  app.get('/api/health', async (req) => (need(req, 'viewer'), o.backend.health()));
  app.get('/api/audit', async (req) => (need(req, 'admin'), o.backend.audit(limitOf(req.query, 200, 5000))));

  // --- act -------------------------------------------------------------------------------------
  const alarmIdOf = (req: FastifyRequest): string => {
    const id = (req.params as Record<string, string>)['alarmId'] ?? '';
    if (id.length === 0 || id.length > 256) throw new ApiError(400, 'bad_request', 'alarmId is 1 to 256 characters');
    return id;
  };
  app.post('/api/alarms/:alarmId/acknowledge', async (req, reply) => reply.code(202).send(await o.backend.acknowledge(need(req, 'operator'), alarmIdOf(req), body(req))));
  app.post('/api/alarms/:alarmId/shelve', async (req) => o.backend.shelve(need(req, 'operator'), alarmIdOf(req), body(req)));
  app.post('/api/alarms/:alarmId/unshelve', async (req) => o.backend.unshelve(need(req, 'operator'), alarmIdOf(req), body(req)));
  app.post('/api/control', async (req, reply) => reply.code(202).send(await o.backend.control(need(req, 'operator'), body(req))));
  app.get('/api/control/:requestId', async (req) => {
    need(req, 'viewer');
    return o.backend.controlState((req.params as Record<string, string>)['requestId'] ?? '');
  });

  // --- live ------------------------------------------------------------------------------------
  app.get('/api/events', async (req, reply) => {
    const s = need(req, 'viewer');
    // Fastify's headers (set in onRequest) are not sent for a hijacked reply: put them on the raw response.
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.raw.setHeader(k, v);
    reply.hijack();
    if (!o.backend.openEvents(s, reply.raw)) {
      reply.raw.writeHead(429, { 'content-type': 'application/json; charset=utf-8' });
      reply.raw.end(JSON.stringify({ error: 'too_many_streams', message: 'too many live streams are open; close another screen' }));
    }
  });

  // --- the web app -----------------------------------------------------------------------------
  const serveFile = (rel: string, reply: FastifyReply): FastifyReply | undefined => {
    const f = o.web.get(rel);
    if (!f) return undefined;
    // index.html always revalidates (it names the app's files); the rest may be cached briefly.
    reply.header('cache-control', rel === 'index.html' ? 'no-cache' : 'public, max-age=300');
    return reply.type(f.type).send(f.body);
  };
  app.setNotFoundHandler(async (req, reply) => {
    const url = req.url.split('?')[0] ?? '/';
    if (url.startsWith('/api/') || url === '/api' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      return reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${url}` });
    }
    let rel: string;
    try {
      rel = decodeURIComponent(url).replace(/^\/+/, '');
    } catch {
      return reply.code(400).send({ error: 'bad_request', message: 'bad URL encoding' });
    }
    if (rel === '') rel = 'index.html';
    const sent = serveFile(rel, reply);
    if (sent) return sent;
    // A client-side route (no file extension): the app's page; a missing file: 404.
    if (!/\.[A-Za-z0-9]+$/.test(rel)) return serveFile('index.html', reply) ?? reply.code(404).send({ error: 'not_found', message: 'no web app' });
    return reply.code(404).send({ error: 'not_found', message: `no file ${url}` });
  });

  return app;
}

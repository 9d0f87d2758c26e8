/**
 * Test peer: an HTTPS server (node:https) on 127.0.0.1, port 0, with a self-signed certificate
 * (tls.ts), standing in for an SMS provider's API. It answers each request with the next scripted
 * behaviour (a status, optionally with Retry-After, or `hang`: read the request and never answer)
 * and records every request it read completely.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';

export type WebhookBehaviour = number | 'hang' | { status: number; retryAfter?: string };

export interface WebhookRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  /** What was answered. */
  answered: number | 'hang';
  /** When the request was read completely (Date.now()). */
  at: number;
}

export interface WebhookServer {
  readonly url: string;
  readonly requests: WebhookRequest[];
  /** Answers to the next requests, in order; then `fallback`. */
  next: WebhookBehaviour[];
  fallback: WebhookBehaviour;
  waitForRequests(n: number, timeoutMs?: number): Promise<WebhookRequest[]>;
  close(): Promise<void>;
}

export async function startWebhookServer(cert: { cert: string; key: string }, pathname = '/v1/sms'): Promise<WebhookServer> {
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  const srv: WebhookServer = {
    url: '',
    requests: [],
    next: [],
    fallback: 200,
    waitForRequests(n, timeoutMs = 20_000) {
      if (srv.requests.length >= n) return Promise.resolve(srv.requests.slice());
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (srv.requests.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(srv.requests.slice());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`webhook server: ${srv.requests.length} of ${n} requests after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const b = srv.next.shift() ?? srv.fallback;
      const status = b === 'hang' ? 'hang' : typeof b === 'number' ? b : b.status;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = Buffer.concat(chunks).toString('utf8');
      }
      srv.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, answered: status, at: Date.now() });
      for (const w of [...waiters]) w();
      if (status === 'hang') return; // read, never answered
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (typeof b === 'object' && b.retryAfter !== undefined) headers['retry-after'] = b.retryAfter;
      res.writeHead(status, headers);
      res.end(JSON.stringify({ status }));
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (srv as { url: string }).url = `https://127.0.0.1:${(server.address() as AddressInfo).port}${pathname}`;
  return srv;
}

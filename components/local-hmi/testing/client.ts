/**
 * A small HTTPS client for LocalHmi's tests: Node's https with the server's own certificate as the
 * only trusted CA (so the test also checks the certificate names localhost), a cookie jar of one
 * cookie, the CSRF header when given, and an SSE reader.
 */
import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

export interface HmiResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

export class HmiClient {
  cookie: string | undefined;
  csrf: string | undefined;

  constructor(
    readonly port: number,
    readonly ca: string,
    readonly host = 'localhost',
  ) {}

  request(method: string, path: string, body?: unknown, opts: { csrf?: string | null; headers?: Record<string, string> } = {}): Promise<HmiResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (payload) headers['content-type'] = 'application/json';
    if (this.cookie) headers['cookie'] = this.cookie;
    const csrf = opts.csrf === undefined ? this.csrf : opts.csrf;
    if (csrf && method !== 'GET') headers['x-csrf-token'] = csrf;
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', servername: this.host, port: this.port, method, path, headers, ca: this.ca }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          const set = res.headers['set-cookie'];
          const ours = set?.find((c) => c.startsWith('dcmms_hmi='));
          if (ours) this.cookie = ours.split(';')[0];
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  async login(username: string, password: string): Promise<HmiResponse> {
    const r = await this.request('POST', '/api/login', { username, password });
    if (r.status === 200) this.csrf = (r.json as { csrfToken: string }).csrfToken;
    return r;
  }

  /** Opens /api/events; `events` collects parsed events; `close` ends it. */
  events(): Promise<SseReader> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (this.cookie) headers['cookie'] = this.cookie;
      const req = https.request({ host: '127.0.0.1', servername: this.host, port: this.port, method: 'GET', path: '/api/events', headers, ca: this.ca }, (res) => resolve(new SseReader(res, req)));
      req.on('error', reject);
      req.end();
    });
  }
}

export class SseReader {
  readonly events: Array<{ event: string; data: unknown }> = [];
  comments = 0;
  private buf = '';
  constructor(
    readonly res: IncomingMessage,
    private readonly req: import('node:http').ClientRequest,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      this.buf += chunk;
      let i: number;
      while ((i = this.buf.indexOf('\n\n')) >= 0) {
        const block = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        let event = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) this.comments++;
          else if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data) this.events.push({ event, data: JSON.parse(data) as unknown });
      }
    });
    res.on('error', () => undefined);
  }
  get status(): number {
    return this.res.statusCode ?? 0;
  }
  close(): void {
    this.req.destroy();
  }
}

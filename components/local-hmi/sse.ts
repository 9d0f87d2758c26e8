/**
 * Server-Sent Events fan-out (WHATWG HTML Living Standard, "Server-sent events"). Each event is
 * serialised once and written to every client. A client whose socket does not take it (write()
 * returned false) gets a queue of at most `maxQueue` events, flushed on 'drain'; past that the
 * client is dropped (its stream ended, counted as `sse_slow_client`) so one slow browser never
 * holds memory without bound or delays the others. A comment line every 15 s keeps proxies and the
 * browser's reconnect logic from calling the stream dead.
 */
import type { ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from '../lib/clock';
import type { Metrics } from '../lib/metrics';
import type { LiveEvent } from './live';

export const PING_MS = 15_000;

interface Client {
  id: number;
  res: ServerResponse;
  queue: string[];
  blocked: boolean;
  /** The session the stream belongs to: ended when the session is. */
  sessionHash: string;
}

export class SseHub {
  private readonly clients = new Map<number, Client>();
  private nextId = 1;
  private ping: TimerHandle | undefined;
  /** Clients dropped for being too slow since start (also in metrics.dropped). */
  slowDropped = 0;

  constructor(private readonly opts: { clock: Clock; metrics: Metrics; maxClients: number; maxQueue: number }) {
    this.ping = opts.clock.setInterval(() => this.broadcastRaw(': ping\n\n'), PING_MS);
  }

  get size(): number {
    return this.clients.size;
  }

  /** false when the client limit is reached (the route answers 429). */
  add(res: ServerResponse, sessionHash: string, initial: string[]): boolean {
    if (this.clients.size >= this.opts.maxClients) return false;
    const c: Client = { id: this.nextId++, res, queue: [], blocked: false, sessionHash };
    this.clients.set(c.id, c);
    res.on('close', () => this.clients.delete(c.id));
    res.on('drain', () => this.flush(c));
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Tells nginx-style proxies not to buffer the stream.
      'x-accel-buffering': 'no',
    });
    // retry: how long the browser waits before reconnecting (ms).
    this.write(c, 'retry: 3000\n\n');
    for (const chunk of initial) this.write(c, chunk);
    return true;
  }

  static format(e: LiveEvent): string {
    return `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
  }

  publish(e: LiveEvent): void {
    if (this.clients.size === 0) return;
    this.broadcastRaw(SseHub.format(e));
  }

  private broadcastRaw(chunk: string): void {
    for (const c of this.clients.values()) this.write(c, chunk);
  }

  private write(c: Client, chunk: string): void {
    if (c.blocked) {
      if (c.queue.length >= this.opts.maxQueue) return this.drop(c);
      c.queue.push(chunk);
      return;
    }
    if (!c.res.write(chunk)) c.blocked = true;
  }

  private flush(c: Client): void {
    c.blocked = false;
    while (c.queue.length > 0 && !c.blocked) {
      const chunk = c.queue.shift()!;
      if (!c.res.write(chunk)) c.blocked = true;
    }
  }

  private drop(c: Client): void {
    this.clients.delete(c.id);
    this.slowDropped++;
    this.opts.metrics.drop('sse_slow_client');
    c.queue.length = 0;
    // destroy, not end: end() would wait behind the bytes the client is not reading.
    c.res.destroy();
  }

  /** Ends the streams of a session (logout, expiry, password change). */
  endSession(sessionHash: string): void {
    for (const c of [...this.clients.values()]) {
      if (c.sessionHash === sessionHash) {
        this.clients.delete(c.id);
        c.res.end();
      }
    }
  }

  /** Ends every stream whose session is no longer valid (expired, idle, logged out elsewhere). */
  pruneSessions(valid: (sessionHash: string) => boolean): void {
    const verdict = new Map<string, boolean>();
    for (const c of [...this.clients.values()]) {
      let ok = verdict.get(c.sessionHash);
      if (ok === undefined) verdict.set(c.sessionHash, (ok = valid(c.sessionHash)));
      if (!ok) {
        this.clients.delete(c.id);
        c.res.end();
      }
    }
  }

  close(): void {
    this.opts.clock.clearInterval(this.ping);
    this.ping = undefined;
    for (const c of this.clients.values()) c.res.destroy();
    this.clients.clear();
  }
}

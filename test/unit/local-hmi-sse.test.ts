/**
 * LocalHmi's SSE fan-out: a client whose socket stops taking data gets a bounded queue and is
 * dropped (and counted) once it overflows; the others keep getting every event; a client that
 * drains in time loses nothing.
 */
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { systemClock } from '../../components/lib/clock';
import { createMetrics } from '../../components/lib/metrics';
import { SseHub } from '../../components/local-hmi/sse';

class FakeResponse extends EventEmitter {
  readonly chunks: string[] = [];
  /** false: write() reports a full socket buffer, as a client that stopped reading makes it. */
  accepting = true;
  destroyed = false;
  ended = false;
  writeHead(): this {
    return this;
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return this.accepting;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
  events(): number {
    return this.chunks.filter((c) => c.startsWith('event: telemetry')).length;
  }
}

const res = (r: FakeResponse): ServerResponse => r as unknown as ServerResponse;
const telemetry = (i: number) => ({ event: 'telemetry' as const, data: { assetId: 'INV-01', ts: i, values: { '103.W': i } } });

test('a client that stops reading is dropped after maxQueue events and counted; the others get everything', () => {
  const metrics = createMetrics({ clock: systemClock });
  const hub = new SseHub({ clock: systemClock, metrics, maxClients: 10, maxQueue: 50 });
  const slow = new FakeResponse();
  const fast = new FakeResponse();
  expect(hub.add(res(slow), 's1', [])).toBe(true);
  expect(hub.add(res(fast), 's2', [])).toBe(true);
  slow.accepting = false;
  for (let i = 0; i < 200; i++) hub.publish(telemetry(i));
  expect(fast.events()).toBe(200);
  expect(slow.destroyed).toBe(true);
  // What reached its socket before it stopped, plus nothing after: the queue never grew past 50.
  expect(slow.events()).toBe(1);
  expect(hub.size).toBe(1);
  expect(hub.slowDropped).toBe(1);
  expect(metrics.snapshot().dropped['sse_slow_client']).toBe(1);
  hub.close();
});

test('a client that drains in time gets every event in order', () => {
  const hub = new SseHub({ clock: systemClock, metrics: createMetrics({ clock: systemClock }), maxClients: 10, maxQueue: 50 });
  const r = new FakeResponse();
  hub.add(res(r), 's1', []);
  r.accepting = false;
  for (let i = 0; i < 30; i++) hub.publish(telemetry(i));
  r.accepting = true;
  r.emit('drain');
  for (let i = 30; i < 40; i++) hub.publish(telemetry(i));
  const ts = r.chunks.filter((c) => c.startsWith('event: telemetry')).map((c) => (JSON.parse(c.split('data: ')[1]!) as { ts: number }).ts);
  expect(ts).toEqual(Array.from({ length: 40 }, (_, i) => i));
  expect(r.destroyed).toBe(false);
  hub.close();
});

test('at most maxClients streams; a session\'s streams end with it', () => {
  const hub = new SseHub({ clock: systemClock, metrics: createMetrics({ clock: systemClock }), maxClients: 2, maxQueue: 50 });
  const a = new FakeResponse();
  const b = new FakeResponse();
  expect(hub.add(res(a), 's1', [])).toBe(true);
  expect(hub.add(res(b), 's2', [])).toBe(true);
  expect(hub.add(res(new FakeResponse()), 's3', [])).toBe(false);
  hub.endSession('s1');
  expect(a.ended).toBe(true);
  expect(hub.size).toBe(1);
  hub.close();
});

test('pruneSessions ends the streams of sessions no longer valid, asking once per session', () => {
  const hub = new SseHub({ clock: systemClock, metrics: createMetrics({ clock: systemClock }), maxClients: 10, maxQueue: 50 });
  const [a1, a2, b] = [new FakeResponse(), new FakeResponse(), new FakeResponse()];
  hub.add(res(a1), 'gone', []);
  hub.add(res(a2), 'gone', []);
  hub.add(res(b), 'kept', []);
  const asked: string[] = [];
  hub.pruneSessions((h) => (asked.push(h), h === 'kept'));
  expect(asked.sort()).toEqual(['gone', 'kept']);
  expect([a1.ended, a2.ended, b.ended]).toEqual([true, true, false]);
  expect(hub.size).toBe(1);
  hub.close();
});

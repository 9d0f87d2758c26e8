/**
 * A manual clock for tests: time moves only when the test says so, timers fire in due order.
 * `advance` runs timers synchronously; `advanceAsync` also lets promise chains settle between
 * timers, which is what code with `await` inside timer callbacks needs.
 */
import type { Clock, TimerHandle } from '../clock';

interface Timer {
  id: number;
  at: number;
  fn: () => void;
  every: number | undefined;
}

/** Let every queued microtask (promise continuation) run. Not a sleep: no time passes. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  private timers: Timer[] = [];
  private nextId = 1;

  constructor(private t = Date.UTC(2025, 0, 15, 12, 0, 0)) {}

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }

  /** Number of pending timers (a leak check for close()). */
  get pending(): number {
    return this.timers.length;
  }

  private add(fn: () => void, ms: number, every: number | undefined): number {
    const id = this.nextId++;
    this.timers.push({ id, at: this.t + Math.max(0, ms), fn, every });
    return id;
  }

  private next(until: number): Timer | undefined {
    let best: Timer | undefined;
    for (const x of this.timers) if (x.at <= until && (!best || x.at < best.at || (x.at === best.at && x.id < best.id))) best = x;
    return best;
  }

  private fire(x: Timer): void {
    this.t = Math.max(this.t, x.at);
    if (x.every !== undefined) x.at += x.every;
    else this.timers = this.timers.filter((y) => y !== x);
    x.fn();
  }

  /** Move time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const until = this.t + ms;
    for (let x = this.next(until); x; x = this.next(until)) this.fire(x);
    this.t = until;
  }

  /** Like advance, but settles promise chains after every timer. */
  async advanceAsync(ms: number): Promise<void> {
    const until = this.t + ms;
    await settle();
    for (let x = this.next(until); x; x = this.next(until)) {
      this.fire(x);
      await settle();
    }
    this.t = until;
    await settle();
  }
}

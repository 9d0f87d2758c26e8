/**
 * Injected time: every component reads the time and sets timers only through a Clock, so tests
 * drive time with `FakeClock` (components/lib/testing/fake-clock.ts) instead of sleeping
 * (docs/conventions.md "Avoid": hidden global state).
 */

/** An opaque timer handle; only the clock that made it can cancel it. */
export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
}

/** The real clock. Timers are the global ones; nothing here touches `process`. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => {
    if (h !== undefined) clearTimeout(h as ReturnType<typeof setTimeout>);
  },
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => {
    if (h !== undefined) clearInterval(h as ReturnType<typeof setInterval>);
  },
};

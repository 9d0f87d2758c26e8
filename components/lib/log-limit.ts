/**
 * Rate-limited logging for events that can repeat at line rate (a publisher sending bad payloads
 * at 10 Hz, a full queue dropping messages). The first occurrence of a key is logged, then at most
 * one line per `intervalMs` carrying how many were suppressed. Counting is done by metrics; this
 * only keeps stdout (and the Greengrass log disk) from flooding.
 */
import type { Clock } from './clock';

export type LimitedLog = (key: string, log: (suppressed: number) => void) => void;

export function createLogLimiter(clock: Pick<Clock, 'now'>, intervalMs = 10000, maxKeys = 256): LimitedLog {
  const state = new Map<string, { last: number; suppressed: number }>();
  return (key, log) => {
    const now = clock.now();
    const s = state.get(key);
    if (s && now - s.last < intervalMs) {
      s.suppressed += 1;
      return;
    }
    if (!s && state.size >= maxKeys) state.clear();
    state.set(key, { last: now, suppressed: 0 });
    log(s ? s.suppressed : 0);
  };
}

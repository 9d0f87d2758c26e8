/**
 * Exponential backoff with jitter, capped. Used for IPC reconnects here and meant for every retry
 * loop (Modbus reconnects, Uplink's cloud retries up to 24 h per dCMMS edge specification §3.1,
 * docs/specification.md).
 *
 * "Equal jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): the delay is uniform in
 * [base/2, base], where base = min(maxMs, initialMs * 2^(attempt-1)). Half the delay is kept so a
 * retry never comes immediately; the random half spreads a fleet that lost the same peer at once.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Uniform [0, 1); injected for tests. */
  random?: () => number;
}

/** Delay before retry number `attempt` (1-based). */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const n = Math.max(1, Math.floor(attempt));
  // Cap the exponent before Math.pow so a long outage cannot overflow to Infinity.
  const base = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(n - 1, 52));
  const r = (opts.random ?? Math.random)();
  return Math.round(base / 2 + (base / 2) * Math.min(Math.max(r, 0), 1));
}

/**
 * Figures the pages record about themselves, read by the benchmark and the browser test through
 * `window.__hmi` (scripts/bench/hmi.ts): nothing here is sent anywhere.
 */
export const hmiStats: {
  trend?: { range: string; source: string; points: number; fetchMs: number; drawMs: number; totalMs: number };
  events?: Record<string, number>;
  page?: string;
} = {};

/**
 * The one metrics vocabulary every component reports (docs/conventions.md "Logs and metrics"), so
 * Health reads them all alike: messages in/out, errors and the last error, latency percentiles over
 * a sliding window of samples, queue depth, IPC connection state, plus counters per named reason
 * for rejected input and dropped output.
 */
import type { Clock } from './clock';
import { errorCode, errorMessage } from './errors';
import { CONTRACT_VERSION, type ComponentHealth, type ComponentState, type ConnectionState, type LastError, type LatencySummary, type MetricsSnapshot, type ModelVersion } from './contract';

export interface Metrics {
  /** Messages received (bus deliveries, device polls...). */
  incIn(n?: number): void;
  /** Messages sent. */
  incOut(n?: number): void;
  /** Count an error and remember it as `lastError`. */
  recordError(err: unknown): void;
  /** Count a rejected input under a named reason (e.g. `invalid_payload`, `not_json`). */
  reject(reason: string, n?: number): void;
  /** Count an output dropped under a named reason (e.g. `queue_overflow`). */
  drop(reason: string, n?: number): void;
  /** One latency sample in milliseconds (what "latency" means is the component's to define and document). */
  observeLatency(ms: number): void;
  /** Register a queue whose depth is read at snapshot time; returns an unregister function. */
  registerQueue(name: string, depth: () => number): () => void;
  setConnectionState(state: ConnectionState): void;
  readonly connectionState: ConnectionState;
  snapshot(): MetricsSnapshot;
}

export interface MetricsOptions {
  clock: Pick<Clock, 'now'>;
  /** Number of latency samples kept (a ring buffer, so memory is bounded). */
  latencyWindow?: number;
}

const MAX_REASONS = 64;

/** Nearest-rank percentile over an ascending array. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? 0;
}

export function createMetrics(opts: MetricsOptions): Metrics {
  const windowSize = Math.max(1, opts.latencyWindow ?? 1024);
  const samples = new Float64Array(windowSize);
  let sampleCount = 0;
  let sampleNext = 0;
  let messagesIn = 0;
  let messagesOut = 0;
  let errors = 0;
  let lastError: LastError | null = null;
  let connectionState: ConnectionState = 'disconnected';
  const rejections = new Map<string, number>();
  const dropped = new Map<string, number>();
  const queues = new Map<string, () => number>();

  // Reason names come from code, but bound the maps anyway so a bug cannot grow them forever.
  const bump = (map: Map<string, number>, reason: string, n: number): void => {
    const key = map.has(reason) || map.size < MAX_REASONS ? reason : 'other';
    map.set(key, (map.get(key) ?? 0) + n);
  };

  return {
    incIn: (n = 1) => {
      messagesIn += n;
    },
    incOut: (n = 1) => {
      messagesOut += n;
    },
    recordError: (err) => {
      errors += 1;
      lastError = { code: errorCode(err), message: errorMessage(err).slice(0, 512), at: opts.clock.now() };
    },
    reject: (reason, n = 1) => bump(rejections, reason, n),
    drop: (reason, n = 1) => bump(dropped, reason, n),
    observeLatency: (ms) => {
      if (!Number.isFinite(ms) || ms < 0) return;
      samples[sampleNext] = ms;
      sampleNext = (sampleNext + 1) % windowSize;
      sampleCount = Math.min(sampleCount + 1, windowSize);
    },
    registerQueue: (name, depth) => {
      queues.set(name, depth);
      return () => {
        if (queues.get(name) === depth) queues.delete(name);
      };
    },
    setConnectionState: (state) => {
      connectionState = state;
    },
    get connectionState() {
      return connectionState;
    },
    snapshot: () => {
      const window = Array.from(samples.subarray(0, sampleCount)).sort((a, b) => a - b);
      const latencyMs: LatencySummary = {
        p50: percentile(window, 50),
        p99: percentile(window, 99),
        max: window.length ? (window[window.length - 1] ?? 0) : 0,
        samples: window.length,
      };
      const queueDepths: Record<string, number> = {};
      let queueDepth = 0;
      for (const [name, depth] of queues) {
        let d = 0;
        try {
          d = depth();
        } catch {
          d = 0; // a broken gauge must not break the health report
        }
        queueDepths[name] = d;
        queueDepth += d;
      }
      return {
        messagesIn,
        messagesOut,
        errors,
        lastError,
        latencyMs,
        queueDepth,
        queues: queueDepths,
        connectionState,
        rejections: Object.fromEntries(rejections),
        dropped: Object.fromEntries(dropped),
      };
    },
  };
}

export interface HealthReportInput {
  siteId: string;
  /** Short name, e.g. `health`. */
  component: string;
  componentName: string;
  version: string;
  state: ComponentState;
  startedAt: number;
  intervalMs: number;
  now: number;
  metrics: Metrics;
  /** The models in service, for a component that has them. */
  models?: ModelVersion[];
}

/** The health payload a component publishes on `topics.componentHealth(siteId, component)`. */
export function healthReport(r: HealthReportInput): ComponentHealth {
  return {
    schemaVersion: CONTRACT_VERSION,
    siteId: r.siteId,
    component: r.component,
    componentName: r.componentName,
    version: r.version,
    state: r.state,
    ts: r.now,
    uptimeMs: Math.max(0, r.now - r.startedAt),
    intervalMs: r.intervalMs,
    metrics: r.metrics.snapshot(),
    ...(r.models ? { models: r.models } : {}),
  };
}

/**
 * The site health summary, as a pure function of what Health has seen (table-testable with any
 * clock). Rules, after the health check of dCMMS edge specification §8.2 (docs/specification.md):
 *  - a component expected but never heard from: high, COMPONENT_MISSING;
 *  - no report for `staleAfterIntervals` of the component's own intervals: high, COMPONENT_STALE;
 *  - a component reporting `errored`: high; `degraded`: medium; `stopping`: low;
 *  - a component not connected to IPC: medium, IPC_DISCONNECTED;
 *  - messages dropped since the last summary: medium, DATA_DROPPED; errors since: low, COMPONENT_ERRORS;
 *  - gateway: CPU > 90 % high, memory > 85 % high, disk > 90 % critical (the specification's thresholds).
 * Status: `critical` if any critical issue, `degraded` if any high or medium, else `healthy`.
 */
import {
  CONTRACT_VERSION,
  type ComponentHealth,
  type ComponentSummary,
  type HealthIssue,
  type SiteHealthSummary,
  type SiteStatus,
  type SystemHealth,
} from '../lib/contract';

export interface SeenReport {
  report: ComponentHealth;
  /** Health's clock when the report arrived. */
  receivedAt: number;
}

/** Counters at the previous summary, to report what happened since. */
export type Baseline = ReadonlyMap<string, { errors: number; dropped: number }>;

export interface SummaryInput {
  siteId: string;
  now: number;
  reports: ReadonlyMap<string, SeenReport>;
  expected: readonly string[];
  staleAfterIntervals: number;
  system: SystemHealth | null;
  baseline: Baseline;
}

export const THRESHOLDS = { cpuPercent: 90, memoryPercent: 85, diskPercent: 90 } as const;

function sum(rec: Readonly<Record<string, number>>): number {
  return Object.values(rec).reduce((a, b) => a + b, 0);
}

export function isStale(seen: SeenReport, now: number, staleAfterIntervals: number): boolean {
  return now - seen.receivedAt > staleAfterIntervals * seen.report.intervalMs;
}

export function summarize(input: SummaryInput): { summary: SiteHealthSummary; baseline: Baseline } {
  const issues: HealthIssue[] = [];
  const components: ComponentSummary[] = [];
  const baseline = new Map<string, { errors: number; dropped: number }>();
  const names = new Set<string>([...input.expected, ...input.reports.keys()]);

  for (const component of [...names].sort()) {
    const seen = input.reports.get(component);
    if (!seen) {
      components.push({ component, componentName: null, version: null, state: 'missing', stale: true, lastReportAt: null, uptimeMs: null, metrics: null });
      issues.push({ severity: 'high', code: 'COMPONENT_MISSING', component, message: `${component} has not reported since Health started` });
      continue;
    }
    const r = seen.report;
    const stale = isStale(seen, input.now, input.staleAfterIntervals);
    components.push({ component, componentName: r.componentName, version: r.version, state: r.state, stale, lastReportAt: seen.receivedAt, uptimeMs: r.uptimeMs, metrics: r.metrics });
    if (stale) {
      const ageS = Math.round((input.now - seen.receivedAt) / 1000);
      issues.push({ severity: 'high', code: 'COMPONENT_STALE', component, message: `no report from ${component} for ${ageS} s (it reports every ${Math.round(r.intervalMs / 1000)} s)` });
    }
    if (r.state === 'errored') issues.push({ severity: 'high', code: 'COMPONENT_ERRORED', component, message: `${component} reports errored` });
    else if (r.state === 'degraded') issues.push({ severity: 'medium', code: 'COMPONENT_DEGRADED', component, message: `${component} reports degraded` });
    else if (r.state === 'stopping') issues.push({ severity: 'low', code: 'COMPONENT_STOPPING', component, message: `${component} is stopping` });
    if (!stale && r.metrics.connectionState !== 'connected' && r.state !== 'stopping') {
      issues.push({ severity: 'medium', code: 'IPC_DISCONNECTED', component, message: `${component} IPC connection is ${r.metrics.connectionState}` });
    }
    const dropped = sum(r.metrics.dropped);
    const prev = input.baseline.get(component);
    // A restart resets counters; then everything reported counts as new.
    const newDropped = prev && dropped >= prev.dropped ? dropped - prev.dropped : dropped;
    const newErrors = prev && r.metrics.errors >= prev.errors ? r.metrics.errors - prev.errors : r.metrics.errors;
    if (newDropped > 0) issues.push({ severity: 'medium', code: 'DATA_DROPPED', component, message: `${component} dropped ${newDropped} message(s) since the last summary` });
    if (newErrors > 0) {
      const last = r.metrics.lastError;
      issues.push({ severity: 'low', code: 'COMPONENT_ERRORS', component, message: `${component}: ${newErrors} error(s) since the last summary${last ? `; last ${last.code}: ${last.message}` : ''}` });
    }
    baseline.set(component, { errors: r.metrics.errors, dropped });
  }

  const sys = input.system;
  if (sys) {
    if (sys.cpuPercent !== null && sys.cpuPercent > THRESHOLDS.cpuPercent) issues.push({ severity: 'high', code: 'CPU_HIGH', message: `CPU usage ${sys.cpuPercent.toFixed(0)} % > ${THRESHOLDS.cpuPercent} %` });
    if (sys.memoryPercent > THRESHOLDS.memoryPercent) issues.push({ severity: 'high', code: 'MEMORY_HIGH', message: `memory usage ${sys.memoryPercent.toFixed(0)} % > ${THRESHOLDS.memoryPercent} %` });
    if (sys.diskPercent !== null && sys.diskPercent > THRESHOLDS.diskPercent) issues.push({ severity: 'critical', code: 'DISK_HIGH', message: `disk usage ${sys.diskPercent.toFixed(0)} % > ${THRESHOLDS.diskPercent} %` });
  }

  let status: SiteStatus = 'healthy';
  if (issues.some((i) => i.severity === 'critical')) status = 'critical';
  else if (issues.some((i) => i.severity === 'high' || i.severity === 'medium')) status = 'degraded';

  return {
    summary: { schemaVersion: CONTRACT_VERSION, siteId: input.siteId, ts: input.now, status, issues, components, system: sys },
    baseline,
  };
}

/**
 * com.dcmms.edge.Health: device and pipeline health (components/health/README.md; dCMMS edge
 * specification §8.1-§8.2, docs/specification.md).
 *
 * Subscribes to every component's health topic for its site, keeps the latest report per component,
 * and every `reportIntervalMs` (default 5 minutes, specification §8.1: reported to the cloud every
 * 5 minutes) publishes a site summary locally (`site/{siteId}/summary/health`) and to IoT Core
 * (`dcmms/{siteId}/health`, QoS 1, so the nucleus spools it while the cloud is away). One summary
 * goes out `initialReportDelayMs` after start, so a fresh deployment is visible at once. Its own
 * metrics are published by runComponent like every other component's.
 */
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { filters, iotTopics, parseTopic, topics, type ComponentHealth, type SiteHealthSummary } from '../lib/contract';
import { InputError, errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import type { HealthConfig } from './config';
import { summarize, type Baseline, type SeenReport } from './summary';
import type { SystemSampler } from './system';

export interface HealthDeps {
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Gateway figures; omit to leave `system` null (tests, or a platform without them). */
  system?: SystemSampler;
}

export interface Health extends ComponentInstance<HealthConfig> {
  /** The summary as it would be published now (no side effects on the baseline). */
  summary(): SiteHealthSummary;
  /** Build and publish a summary now (what the timers call). */
  publishSummary(): Promise<void>;
}

/** Bound on distinct components tracked, so a misbehaving publisher cannot grow the map. */
const MAX_COMPONENTS = 64;
/** A component neither expected nor heard from for this long is forgotten (it was removed). */
const FORGET_AFTER_MS = 24 * 3600 * 1000;

export function createHealth(deps: HealthDeps, initial: Readonly<HealthConfig>): Health {
  const log = deps.logger.child({ module: 'health' });
  let config = initial;
  const reports = new Map<string, SeenReport>();
  let baseline: Baseline = new Map();
  let sub: Subscription | undefined;
  let firstTimer: TimerHandle | undefined;
  let periodic: TimerHandle | undefined;
  let closed = false;

  const onReport = (report: ComponentHealth, topic: string): void => {
    // The topic names the reporter; a report about another component is not believed. (Without a
    // message context the bus passes the filter, which does not parse; the payload is then trusted.)
    const parsed = parseTopic(topic);
    if (parsed && (parsed.family !== 'componentHealth' || parsed.vars['component'] !== report.component)) {
      throw new InputError('topic_mismatch', `report for ${report.component} arrived on ${topic}`);
    }
    if (report.siteId !== config.siteId) throw new InputError('site_mismatch', `report for site ${report.siteId} on ${topic}`);
    if (!reports.has(report.component) && reports.size >= MAX_COMPONENTS) {
      throw new InputError('too_many_components', `already tracking ${MAX_COMPONENTS} components; ignoring ${report.component}`);
    }
    const now = deps.clock.now();
    // Delivery lag of health reports: a cheap view of how busy the bus and the nucleus are.
    deps.metrics.observeLatency(now - report.ts);
    reports.set(report.component, { report, receivedAt: now });
  };

  const forgetRemoved = (now: number): void => {
    for (const [name, seen] of reports) {
      if (!config.expectedComponents.includes(name) && now - seen.receivedAt > FORGET_AFTER_MS) reports.delete(name);
    }
  };

  const build = (): { summary: SiteHealthSummary; baseline: Baseline } => {
    const now = deps.clock.now();
    let system = null;
    try {
      system = deps.system?.sample(config.diskPath) ?? null;
    } catch (err) {
      deps.metrics.recordError(err);
      log.warn('system figures unavailable', { err: errorMessage(err) });
    }
    return summarize({ siteId: config.siteId, now, reports, expected: config.expectedComponents, staleAfterIntervals: config.staleAfterIntervals, system, baseline });
  };

  const publishSummary = async (): Promise<void> => {
    if (closed) return;
    forgetRemoved(deps.clock.now());
    const built = build();
    baseline = built.baseline;
    const s = built.summary;
    log.info('site health', { status: s.status, issues: s.issues.length, components: s.components.length });
    const results = await Promise.allSettled([
      deps.bus.publish(topics.healthSummary(config.siteId), s),
      deps.bus.publishToIoTCore(iotTopics.health(config.siteId), s, 1),
    ]);
    for (const r of results) {
      if (r.status === 'rejected') {
        deps.metrics.recordError(r.reason);
        log.warn('site health summary not published', { err: errorMessage(r.reason) });
      }
    }
  };

  const tick = (): void => {
    publishSummary().catch((err: unknown) => {
      deps.metrics.recordError(err);
      log.error('site health summary failed', { err });
    });
  };

  const startTimers = (): void => {
    deps.clock.clearTimeout(firstTimer);
    deps.clock.clearInterval(periodic);
    firstTimer = deps.clock.setTimeout(tick, config.initialReportDelayMs);
    periodic = deps.clock.setInterval(tick, config.reportIntervalMs);
  };

  const subscribe = async (): Promise<void> => {
    // RECEIVE_ALL_MESSAGES: a filter with a `+` level defaults to RECEIVE_MESSAGES_FROM_OTHERS
    // (Greengrass Developer Guide, "Publish/subscribe local messages", SubscribeToTopic receiveMode),
    // and Health wants its own report in the summary like everyone else's.
    sub = await deps.bus.subscribe(filters.componentHealth(config.siteId), onReport, { receiveMode: 'RECEIVE_ALL_MESSAGES' });
  };

  return {
    async start() {
      await subscribe();
      startTimers();
      log.info('watching component health', { siteId: config.siteId, reportIntervalMs: config.reportIntervalMs });
    },

    async reconfigure(next, prev) {
      config = next;
      if (next.siteId !== prev.siteId) {
        // Another site's reports are not comparable: start over on the new site's topics.
        await sub?.close();
        reports.clear();
        baseline = new Map();
        await subscribe();
      }
      if (next.reportIntervalMs !== prev.reportIntervalMs || next.siteId !== prev.siteId) startTimers();
    },

    shouldDeferUpdate: () => 0,
    healthState: () => 'running',
    summary: () => build().summary,
    publishSummary,

    async close() {
      if (closed) return;
      closed = true;
      deps.clock.clearTimeout(firstTimer);
      deps.clock.clearInterval(periodic);
      firstTimer = undefined;
      periodic = undefined;
      await sub?.close();
      sub = undefined;
    },
  };
}

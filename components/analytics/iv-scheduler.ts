/**
 * IV-curve scans (docs/analytics-component.md "IV scans"): at the configured local times, or on
 * demand, Analytics sends the `iv_scan` control command for each configured string on the
 * contract's control topic; the adapter owning the asset sweeps the string and answers with the
 * curve in its ControlResult; the curve is analysed (iv.ts) and published as an `iv_curve` figure.
 *
 * One scan at a time per asset (a scan takes the string off the inverter for a moment; two on one
 * combiner would compete for its sweep hardware), the rest queued. A command expires after
 * `ivScan.timeoutMs`; an answer that never comes is given up after twice that, and the figure is
 * published null with the reason, so a missing scan is visible too. The day and time of the last
 * scheduled run is kept in analytics.db, so a restart neither repeats nor skips the day's scan.
 */
import { randomUUID } from 'node:crypto';
import { Zone } from '../aggregator/tz';
import type { Bus } from '../lib/bus-types';
import type { Clock } from '../lib/clock';
import { CONTRACT_VERSION, topics, type ControlCommand, type ControlResult } from '../lib/contract';
import { errorMessage } from '../lib/errors';
import type { LimitedLog } from '../lib/log-limit';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import type { AnalyticsConfig } from './config';
import type { AnalyticsDb } from './db';
import { analyseCurve } from './iv-analysis';
import type { Figure } from './site-model';

export const IV_SCAN_ACTION = 'iv_scan' satisfies ControlCommand['action'];

interface Scan {
  commandId: string;
  assetId: string;
  string: number;
  why: 'scheduled' | 'on_demand';
  sentAt?: number;
}

export interface IvSchedulerDeps {
  bus: Bus;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  limited: LimitedLog;
  issuedBy: string;
  config: () => Readonly<AnalyticsConfig>;
  onCurve: (f: Figure) => void;
  /** Irradiance and cell temperature at the scanned asset now (its inverter's weather station). */
  conditions: (assetId: string) => { irradiance: number; temperature: number } | null;
}

const STATE_KEY = 'ivScan.lastRun';

export class IvScheduler {
  private readonly queue: Scan[] = [];
  private readonly inFlight = new Map<string, Scan>();
  private db: AnalyticsDb | undefined;
  private lastRun: string | undefined;
  private closed = false;

  constructor(private readonly d: IvSchedulerDeps) {}


  load(db: AnalyticsDb): void {
    this.db = db;
    this.lastRun = db.getState<string>(STATE_KEY);
  }

  get pending(): number {
    return this.queue.length + this.inFlight.size;
  }

  /** Queue a scan of one string; returns its command id. */
  request(assetId: string, string: number, why: Scan['why']): string {
    const scan: Scan = { commandId: randomUUID(), assetId, string, why };
    this.queue.push(scan);
    this.pump();
    return scan.commandId;
  }

  /** Runs every evaluation: starts the scheduled scans whose local time has come, gives up lost ones. */
  tick(): void {
    const c = this.d.config();
    const now = this.d.clock.now();
    for (const [id, s] of this.inFlight) {
      if (s.sentAt !== undefined && now - s.sentAt > 2 * c.ivScan.timeoutMs) {
        this.inFlight.delete(id);
        this.d.onCurve(this.nullFigure(s, 'no_result', `no result within ${2 * c.ivScan.timeoutMs} ms`));
      }
    }
    if (c.ivScan.times.length > 0) {
      const zone = new Zone(c.timeZone);
      const day = zone.dayOf(now);
      const minutes = Math.floor((now - day.start) / 60_000);
      const due = c.ivScan.times.filter((t) => hhmm(t) <= minutes).sort().pop();
      const run = due === undefined ? undefined : `${day.day} ${due}`;
      if (run !== undefined && run !== this.lastRun) {
        this.lastRun = run;
        this.db?.putState(STATE_KEY, run);
        for (const [asset, strings] of Object.entries(c.ivScan.strings)) for (const s of strings) this.request(asset, s, 'scheduled');
      }
    }
    this.pump();
  }

  onResult(r: ControlResult): void {
    const s = this.inFlight.get(r.commandId);
    if (!s) return;
    this.inFlight.delete(r.commandId);
    this.d.metrics.incIn();
    if (r.status !== 'succeeded') this.d.onCurve(this.nullFigure(s, `scan_${r.status}`, r.message ?? ''));
    else {
      const a = analyseCurve(r.data, this.d.config(), s.assetId, this.d.conditions(s.assetId));
      this.d.onCurve({ assetId: s.assetId, kind: 'iv_curve', ts: r.ts, value: a.value, ...(a.u ? { u: a.u } : {}), details: { string: s.string, trigger: s.why, commandId: s.commandId, ...a.details } });
    }
    this.pump();
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.inFlight.clear();
  }

  private pump(): void {
    if (this.closed) return;
    const busy = new Set([...this.inFlight.values()].map((s) => s.assetId));
    for (let i = 0; i < this.queue.length; ) {
      const s = this.queue[i]!;
      if (busy.has(s.assetId)) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      busy.add(s.assetId);
      this.send(s);
    }
  }

  private send(s: Scan): void {
    const c = this.d.config();
    const now = this.d.clock.now();
    const cmd = {
      schemaVersion: CONTRACT_VERSION,
      siteId: c.siteId,
      assetId: s.assetId,
      commandId: s.commandId,
      ts: now,
      action: IV_SCAN_ACTION,
      params: { string: s.string },
      issuedBy: this.d.issuedBy,
      reason: s.why === 'scheduled' ? 'scheduled IV-curve scan' : 'IV-curve scan on demand',
      expiresAt: now + c.ivScan.timeoutMs,
    } satisfies ControlCommand;
    s.sentAt = now;
    this.inFlight.set(s.commandId, s);
    this.d.bus.publish(topics.controlCommand(c.siteId, s.assetId), cmd).catch((err: unknown) => {
      this.inFlight.delete(s.commandId);
      this.d.metrics.drop('iv_command_failed');
      this.d.limited('iv-send', (suppressed) => this.d.logger.warn('IV scan command not sent', { assetId: s.assetId, string: s.string, err: errorMessage(err), suppressed }));
      this.d.onCurve(this.nullFigure(s, 'command_not_sent', errorMessage(err)));
    });
  }

  private nullFigure(s: Scan, reason: string, message: string): Figure {
    return { assetId: s.assetId, kind: 'iv_curve', ts: this.d.clock.now(), value: null, details: { reason, message, string: s.string, trigger: s.why, commandId: s.commandId } };
  }
}

function hhmm(t: string): number {
  const [h, m] = t.split(':').map(Number) as [number, number];
  return h * 60 + m;
}

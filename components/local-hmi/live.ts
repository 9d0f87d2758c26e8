/**
 * What the HMI knows now, in memory, from the bus: the last value of every point of every asset
 * (bounded: `maxAssets` assets, MAX_POINTS points each; more are dropped and counted), device
 * status, active alarms (live transitions plus the alarm sources' snapshots, so a restart is right
 * at once: docs/alarms.md), a bounded history of cleared alarms, component health and the site
 * health summary. Every change is told to `listener` as an API event (sse.ts fans it out).
 */
import { IMPLEMENTED_COMPONENTS, type AlarmMessage, type AlarmSnapshot, type ComponentHealth, type DeviceStatus, type SiteHealthSummary, type TelemetryMessage } from '../lib/contract';
import type { Metrics } from '../lib/metrics';
import type { AckRow, ShelveRow } from './db';

/** Points kept per asset: a SunSpec inverter has about 120, a weather station a dozen. */
export const MAX_POINTS = 512;

export interface PointValueRow {
  value: number | string | boolean | null;
  unit?: string;
  ts: number;
}

export interface AssetState {
  assetId: string;
  ts: number;
  values: Map<string, PointValueRow>;
  status?: DeviceStatus;
}

export interface AlarmRow {
  alarmId: string;
  assetId: string;
  kind: string;
  severity: string;
  state: 'active' | 'cleared';
  raisedAt: number;
  clearedAt?: number;
  message: string;
  source: string;
  acknowledged?: { by: string; at: number; reason?: string };
  shelved?: { by: string; until: number; reason: string };
}

export interface DeviceRow {
  assetId: string;
  status: string;
  lastSeen?: number;
  models?: number[];
  manufacturer?: string;
  model?: string;
  message?: string;
}

export type LiveEvent =
  | { event: 'telemetry'; data: { assetId: string; ts: number; values: Record<string, number> } }
  | { event: 'alarm'; data: AlarmRow }
  | { event: 'device'; data: DeviceRow }
  | { event: 'health'; data: { components: ComponentRow[] } }
  | { event: 'cloud'; data: CloudState };

export interface ComponentRow {
  name: string;
  state: string;
  detail?: string;
  version?: string;
}

export interface CloudState {
  state: 'online' | 'offline' | 'unknown';
  backlogBytes?: number;
  /** Records waiting in the Uplink's outbox (its health report's outbox_* queues); the outbox does not report bytes locally. */
  backlogRecords?: number;
  oldestPendingAt?: number;
}

interface SnapshotPages {
  ts: number;
  journalId: string;
  seen: Set<number>;
  active: AlarmMessage[];
}

export class LiveState {
  readonly assets = new Map<string, AssetState>();
  private readonly active = new Map<string, AlarmMessage>();
  private readonly raisedAt = new Map<string, number>();
  /** Cleared alarms, oldest first (a ring: the oldest go once it is full). */
  private readonly history: AlarmRow[] = [];
  private readonly pages = new Map<string, SnapshotPages>();
  readonly acks = new Map<string, AckRow>();
  readonly shelves = new Map<string, ShelveRow>();
  readonly componentHealth = new Map<string, { report: ComponentHealth; at: number }>();
  summary: SiteHealthSummary | undefined;
  summaryAt = 0;

  constructor(
    private readonly opts: { maxAssets: number; alarmHistory: number; metrics: Metrics; now: () => number },
    private readonly listener: (e: LiveEvent) => void,
  ) {}

  // --- assets ------------------------------------------------------------------------------------

  private asset(assetId: string): AssetState | undefined {
    let a = this.assets.get(assetId);
    if (!a) {
      if (this.assets.size >= this.opts.maxAssets) {
        this.opts.metrics.drop('asset_limit');
        return undefined;
      }
      a = { assetId, ts: 0, values: new Map() };
      this.assets.set(assetId, a);
    }
    return a;
  }

  onTelemetry(m: TelemetryMessage): void {
    const a = this.asset(m.assetId);
    if (!a) return;
    // Older than what we show (a replay, a late sample): the store has it; the screen keeps the newest.
    if (m.ts < a.ts) return;
    a.ts = m.ts;
    const numbers: Record<string, number> = {};
    for (const [point, p] of Object.entries(m.points)) {
      if (!a.values.has(point) && a.values.size >= MAX_POINTS) {
        this.opts.metrics.drop('point_limit');
        continue;
      }
      a.values.set(point, { value: p.v, ...(p.u !== undefined ? { unit: p.u } : {}), ts: m.ts });
      if (typeof p.v === 'number' && Number.isFinite(p.v)) numbers[point] = p.v;
    }
    this.listener({ event: 'telemetry', data: { assetId: m.assetId, ts: m.ts, values: numbers } });
  }

  onDeviceStatus(s: DeviceStatus): void {
    const a = this.asset(s.assetId);
    if (!a) return;
    const before = a.status;
    a.status = s;
    // A heartbeat that changes nothing is not news for the screen.
    if (before && before.state === s.state && before.lastSeen === s.lastSeen && s.heartbeat) return;
    this.listener({ event: 'device', data: this.deviceRow(a) });
  }

  deviceRow(a: AssetState): DeviceRow {
    const text = (p: string): string | undefined => {
      const v = a.values.get(p)?.value;
      return typeof v === 'string' && v !== '' ? v : undefined;
    };
    const manufacturer = text('1.Mn');
    const model = text('1.Md');
    const s = a.status;
    return {
      assetId: a.assetId,
      status: s?.state ?? (a.ts > 0 ? 'online' : 'unknown'),
      ...(s?.lastSeen != null ? { lastSeen: s.lastSeen } : a.ts > 0 ? { lastSeen: a.ts } : {}),
      ...(s?.models ? { models: s.models } : {}),
      ...(manufacturer ? { manufacturer } : {}),
      ...(model ? { model } : {}),
      ...(s?.message ? { message: s.message } : {}),
    };
  }

  // --- alarms ------------------------------------------------------------------------------------

  onAlarm(m: AlarmMessage): void {
    if (m.state === 'raised') {
      const prev = this.active.get(m.alarmId);
      if (prev && (prev.transitionSeq ?? -1) > (m.transitionSeq ?? -1)) return; // an older copy (a replay)
      if (!this.raisedAt.has(m.alarmId)) this.raisedAt.set(m.alarmId, m.transition === 'raised' || prev === undefined ? m.ts : prev.ts);
      this.active.set(m.alarmId, m);
      this.listener({ event: 'alarm', data: this.row(m) });
      return;
    }
    const prev = this.active.get(m.alarmId);
    const already = this.history.some((h) => h.alarmId === m.alarmId);
    if (!prev && (m.replayed || already)) return; // a replayed clear of an alarm we already saw go
    this.active.delete(m.alarmId);
    const row = this.row(m, prev);
    this.raisedAt.delete(m.alarmId);
    this.history.push(row);
    if (this.history.length > this.opts.alarmHistory) this.history.splice(0, this.history.length - this.opts.alarmHistory);
    this.listener({ event: 'alarm', data: row });
  }

  /**
   * A source's snapshot (possibly in pages): once every page of one snapshot is in, that source's
   * active set is replaced by it, so alarms that cleared while we were away disappear.
   */
  onSnapshot(s: AlarmSnapshot): void {
    let p = this.pages.get(s.source);
    if (!p || p.ts !== s.ts || p.journalId !== s.journalId) {
      p = { ts: s.ts, journalId: s.journalId, seen: new Set(), active: [] };
      this.pages.set(s.source, p);
    }
    if (p.seen.has(s.page)) return;
    p.seen.add(s.page);
    p.active.push(...s.active);
    if (p.seen.size < s.pages) return;
    this.pages.delete(s.source);
    const keep = new Set(p.active.map((a) => a.alarmId));
    for (const [id, a] of [...this.active]) {
      if (a.source === s.source && !keep.has(id)) {
        this.active.delete(id);
        this.raisedAt.delete(id);
        const row: AlarmRow = { ...this.row(a), state: 'cleared', clearedAt: s.ts };
        this.history.push(row);
        this.listener({ event: 'alarm', data: row });
      }
    }
    for (const a of p.active) {
      const prev = this.active.get(a.alarmId);
      if (prev && (prev.transitionSeq ?? -1) >= (a.transitionSeq ?? -1)) continue;
      if (!this.raisedAt.has(a.alarmId)) this.raisedAt.set(a.alarmId, a.ts);
      this.active.set(a.alarmId, a);
      this.listener({ event: 'alarm', data: this.row(a) });
    }
  }

  row(m: AlarmMessage, raised?: AlarmMessage): AlarmRow {
    const ack = this.acks.get(m.alarmId);
    const shelve = this.shelves.get(m.alarmId);
    const cleared = m.state === 'cleared';
    const now = this.opts.now();
    return {
      alarmId: m.alarmId,
      assetId: m.assetId,
      kind: m.type,
      severity: m.severity,
      state: cleared ? 'cleared' : 'active',
      raisedAt: this.raisedAt.get(m.alarmId) ?? raised?.ts ?? m.ts,
      ...(cleared ? { clearedAt: m.ts } : {}),
      message: m.message ?? raised?.message ?? m.type,
      source: m.source,
      ...(ack ? { acknowledged: { by: ack.by, at: ack.at, ...(ack.reason ? { reason: ack.reason } : {}) } } : {}),
      ...(shelve && shelve.until > now ? { shelved: { by: shelve.by, until: shelve.until, reason: shelve.reason } } : {}),
    };
  }

  activeAlarm(alarmId: string): AlarmMessage | undefined {
    return this.active.get(alarmId);
  }

  activeRows(): AlarmRow[] {
    return [...this.active.values()].map((a) => this.row(a)).sort((x, y) => y.raisedAt - x.raisedAt);
  }

  /** Cleared alarms, newest first, refreshed with the acknowledgements known now. */
  historyRows(limit: number): AlarmRow[] {
    const out: AlarmRow[] = [];
    for (let i = this.history.length - 1; i >= 0 && out.length < limit; i--) {
      const h = this.history[i]!;
      const ack = this.acks.get(h.alarmId);
      out.push(ack && !h.acknowledged ? { ...h, acknowledged: { by: ack.by, at: ack.at, ...(ack.reason ? { reason: ack.reason } : {}) } } : h);
    }
    return out;
  }

  /** An acknowledgement (ours, or one seen on the operator topic): told to the screens at once. */
  setAck(a: AckRow): void {
    this.acks.set(a.alarmId, a);
    const m = this.active.get(a.alarmId);
    if (m) this.listener({ event: 'alarm', data: this.row(m) });
  }

  setShelve(alarmId: string, s: ShelveRow | undefined): void {
    if (s) this.shelves.set(alarmId, s);
    else this.shelves.delete(alarmId);
    const m = this.active.get(alarmId);
    if (m) this.listener({ event: 'alarm', data: this.row(m) });
  }

  alarmCounts(): { active: number; unacknowledged: number } {
    let un = 0;
    for (const id of this.active.keys()) if (!this.acks.has(id)) un++;
    return { active: this.active.size, unacknowledged: un };
  }

  // --- health ------------------------------------------------------------------------------------

  onComponentHealth(h: ComponentHealth): void {
    this.componentHealth.set(h.component, { report: h, at: this.opts.now() });
    if (h.component === 'uplink') this.listener({ event: 'cloud', data: this.cloud() });
  }

  onSummary(s: SiteHealthSummary): void {
    this.summary = s;
    this.summaryAt = this.opts.now();
    this.listener({ event: 'health', data: { components: this.components() } });
  }

  components(): ComponentRow[] {
    const rows = new Map<string, ComponentRow>();
    // Every component of the bundle is listed from the start: `unknown` until its first report
    // (each reports every metricsIntervalMs, Health's summary comes every few minutes).
    for (const c of IMPLEMENTED_COMPONENTS) rows.set(c.short, { name: c.short, state: 'unknown', detail: 'no report since LocalHmi started' });
    for (const c of this.summary?.components ?? []) {
      rows.set(c.component, { name: c.component, state: c.stale ? 'stale' : c.state, ...(c.version ? { version: c.version } : {}), ...(c.metrics?.lastError ? { detail: c.metrics.lastError.message } : {}) });
    }
    // Reports newer than the summary (Health sends one every few minutes) win.
    for (const [name, { report, at }] of this.componentHealth) {
      if (at >= this.summaryAt || !rows.has(name)) rows.set(name, { name, state: report.state, version: report.version, ...(report.metrics.lastError ? { detail: report.metrics.lastError.message } : {}) });
    }
    return [...rows.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * The cloud link as the Uplink reports it in its component health: `running` when every exporter
   * is online, `degraded` when one is offline; no report for three of its intervals: unknown.
   */
  cloud(): CloudState {
    const u = this.componentHealth.get('uplink');
    if (!u) return { state: 'unknown' };
    const stale = this.opts.now() - u.at > 3 * u.report.intervalMs;
    const records = Object.entries(u.report.metrics.queues)
      .filter(([k]) => k.startsWith('outbox_'))
      .reduce((s, [, v]) => s + v, 0);
    const state = stale ? 'unknown' : u.report.state === 'running' ? 'online' : u.report.state === 'degraded' ? 'offline' : 'unknown';
    return { state, backlogRecords: records };
  }
}

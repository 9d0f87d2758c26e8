/**
 * The LocalHmi HTTP API as the pages read it (docs/local-hmi.md "API"). Everything from the server
 * is checked where it is used: a missing optional field renders as "–", never as an exception.
 */
export type Role = 'viewer' | 'operator' | 'admin';

export interface Session {
  user: string;
  role: Role;
  csrfToken: string;
}

export interface InverterSummary {
  assetId: string;
  acPowerW: number | null;
  dcPowerW?: number | null;
  state?: string;
  updatedAt?: number | string;
}

export interface CloudState {
  state: 'online' | 'offline' | 'unknown';
  backlogBytes?: number;
  oldestPendingAt?: number | string;
}

export interface Overview {
  siteId: string;
  now: number | string;
  inverters: InverterSummary[];
  weather: { irradianceWm2?: number | null; ambientC?: number | null; moduleC?: number | null; updatedAt?: number | string };
  meter?: { acPowerW?: number | null; energyTodayKWh?: number | null };
  energyTodayKWh: number | null;
  devices: { online: number; total: number };
  alarms: { active: number; unacknowledged: number };
  cloud: CloudState;
}

export interface Alarm {
  alarmId: string;
  assetId: string;
  kind: string;
  severity: string;
  state: 'active' | 'cleared';
  raisedAt: number | string;
  clearedAt?: number | string;
  message: string;
  acknowledged?: { by: string; at: number | string; reason?: string };
  shelved?: { by: string; until: number | string; reason: string };
}

export interface PointValue {
  value: number | string | boolean | null;
  unit?: string;
  ts?: number | string;
}

export interface Device {
  assetId: string;
  status: string;
  lastSeen?: number | string;
  models?: number[];
  manufacturer?: string;
  model?: string;
  values?: Record<string, PointValue>;
}

export interface Series {
  assetId: string;
  point: string;
  unit?: string;
}

export type TrendRange = '1h' | '24h' | '7d';

export interface Trend {
  assetId: string;
  point: string;
  unit?: string;
  source: 'raw' | '1m';
  t: number[];
  v: (number | null)[];
  min?: (number | null)[];
  max?: (number | null)[];
}

export interface HealthComponent {
  name: string;
  state: string;
  detail?: string;
  version?: string;
}

export interface Health {
  components: HealthComponent[];
  disk?: { path: string; freeBytes: number; totalBytes: number };
  outbox?: Record<string, unknown>;
  models?: { name: string; version: string }[];
  hmi?: { version: string; uptimeS: number };
}

export type ControlAction = 'curtail' | 'restore' | 'manual' | 'automatic';

export interface ControlStatus {
  requestId: string;
  state: 'pending' | 'done' | 'refused' | 'failed';
  detail?: string;
}

export interface TelemetryEvent {
  assetId: string;
  ts: number | string;
  values: Record<string, number>;
}

/** What /api/events sends, by SSE event name. */
export interface EventMap {
  telemetry: TelemetryEvent;
  alarm: Alarm;
  device: Device;
  health: Health | { components: HealthComponent[] };
  cloud: CloudState;
}

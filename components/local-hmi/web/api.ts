/// <reference lib="dom" />
/**
 * The HTTP client of the pages: JSON in and out, the session's CSRF token on every request that
 * changes something (the server refuses a non-GET without it), and one place that notices an
 * expired session (401) so the app can show the login page again.
 */
import type { Alarm, ControlAction, ControlStatus, Device, Health, Overview, Series, Session, Trend, TrendRange } from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken = '';
let onUnauthorized: () => void = () => undefined;

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Called once per 401 on anything but the login itself. */
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

async function request<T>(method: string, url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  } catch (err) {
    throw new ApiError(0, 'network', `the gateway did not answer (${err instanceof Error ? err.message : String(err)})`);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const e = (data ?? {}) as { error?: string; message?: string };
    if (res.status === 401 && url !== '/api/login' && url !== '/api/session') onUnauthorized();
    throw new ApiError(res.status, e.error ?? `http_${res.status}`, e.message ?? `${res.status} ${res.statusText}`);
  }
  return data as T;
}

const q = (params: Record<string, string | number>): string => new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();

export const api = {
  login: (username: string, password: string) => request<Session>('POST', '/api/login', { username, password }),
  logout: () => request<void>('POST', '/api/logout', {}),
  session: () => request<Session>('GET', '/api/session'),
  changePassword: (current: string, next: string) => request<void>('POST', '/api/password', { current, next }),
  overview: () => request<Overview>('GET', '/api/overview'),
  alarms: (view: 'active' | 'history', limit = 200) => request<Alarm[]>('GET', `/api/alarms?${q({ view, limit })}`),
  acknowledge: (alarmId: string, reason: string | undefined) =>
    request<{ requestId: string }>('POST', `/api/alarms/${encodeURIComponent(alarmId)}/acknowledge`, { ...(reason ? { reason } : {}), confirm: true }),
  shelve: (alarmId: string, minutes: number, reason: string) => request<unknown>('POST', `/api/alarms/${encodeURIComponent(alarmId)}/shelve`, { minutes, reason, confirm: true }),
  unshelve: (alarmId: string) => request<unknown>('POST', `/api/alarms/${encodeURIComponent(alarmId)}/unshelve`, { confirm: true }),
  devices: () => request<Device[]>('GET', '/api/devices'),
  series: () => request<Series[]>('GET', '/api/series'),
  trend: (assetId: string, point: string, range: TrendRange) => request<Trend>('GET', `/api/trend?${q({ assetId, point, range })}`),
  health: () => request<Health>('GET', '/api/health'),
  control: (assetId: string, action: ControlAction, value?: number) =>
    request<{ requestId: string }>('POST', '/api/control', { assetId, action, ...(value !== undefined ? { value } : {}), confirm: true }),
  controlStatus: (requestId: string) => request<ControlStatus>('GET', `/api/control/${encodeURIComponent(requestId)}`),
};

/**
 * com.dcmms.edge.LocalHmi: the operator's screen on the gateway, no cloud needed
 * (docs/local-hmi.md). An HTTPS server (server.ts) over what the bus says now (live.ts), the
 * Processor's store and the Aggregator's rollups read-only (trends.ts), and its own small database
 * of users, sessions, audit, shelves and acknowledgements (db.ts).
 *
 *   bus: processed telemetry, alarms + snapshots, device status, component health, health summary,
 *        LocalControl's decisions, operator requests  --> LiveState --> SSE clients
 *   HTTP: acknowledge / control --> OperatorRequest on site/{siteId}/operator/requests --> LocalControl
 *
 * It decides nothing on the plant itself: every action is a request LocalControl checks
 * (interlocks, manual mode) and audits too; the HMI audits who asked and shows what came of it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Zone } from '../aggregator/tz';
import type { Subscription } from '../lib/bus-types';
import type { TimerHandle } from '../lib/clock';
import type { ComponentDeps, ComponentInstance } from '../lib/component';
import { CONTRACT_VERSION, filters, topics, type ControlDecision, type OperatorRequest } from '../lib/contract';
import { ConfigError, errorMessage } from '../lib/errors';
import { createLogLimiter } from '../lib/log-limit';
import { showSecret } from '../lib/logger';
import type { LocalHmiConfig } from './config';
import { HmiDb, hashSessionId, isRole, type SessionRow } from './db';
import { LiveState, type AssetState } from './live';
import { dummyHash, hashPassword, parsePasswordHash, randomPassword, verifyPassword } from './passwords';
import { ApiError, createServer, newSessionId, type HmiBackend, type Session } from './server';
import { SseHub } from './sse';
import { loadOrCreateTls } from './tls';
import { RANGES, TrendReader, type TrendRange } from './trends';
import { NO_WEB_APP, type WebAssets } from './web-assets';

export interface LocalHmiDeps extends ComponentDeps {
  /** Folder for the database, the generated certificate and relative paths (main.ts: the work folder). */
  workDir: string;
  nativeBinding?: string;
  /** Store and rollup files when the configuration leaves them empty (main.ts: from the recipe). */
  defaultStorePath?: string;
  defaultRollupPath?: string;
  web?: WebAssets;
}

export interface LocalHmi extends ComponentInstance<LocalHmiConfig> {
  /** The bound address (tests: port 0). */
  address(): AddressInfo | undefined;
  readonly live: LiveState;
  readonly sse: SseHub | undefined;
}

const USERNAME = /^[A-Za-z0-9_.@-]{1,64}$/;
const MIN_PASSWORD = 10;
const MAX_PASSWORD = 256;
const SWEEP_MS = 30_000;
const CONTROL_KEEP = 1000;
const RATE_KEYS = 10_000;
/** Acknowledgements are kept this long (an alarm active longer keeps its own in memory). */
const ACK_KEEP_MS = 7 * 86_400_000;

type ControlState = 'pending' | 'done' | 'refused' | 'failed';
interface ControlTrack {
  requestId: string;
  state: ControlState;
  detail?: string;
  at: number;
  by: string;
  action: string;
  assetId: string;
  decisions: Map<string, ControlDecision>;
}

/** SunSpec Information Model, inverter models 101-103 `St` (operating state) enumeration. */
const SUNSPEC_INVERTER_STATES: Readonly<Record<number, string>> = { 1: 'OFF', 2: 'SLEEPING', 3: 'STARTING', 4: 'MPPT', 5: 'THROTTLED', 6: 'SHUTTING_DOWN', 7: 'FAULT', 8: 'STANDBY' };

/** The state as the screen shows it: the enumeration's name, or the raw value when it is not one. */
function inverterState(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return SUNSPEC_INVERTER_STATES[v] ?? String(v);
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function energyKWh(value: unknown, unit: string | undefined): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  switch (unit) {
    case 'kWh':
      return value;
    case 'MWh':
      return value * 1000;
    default:
      return value / 1000; // Wh, the Processor's canonical energy unit
  }
}

export function createLocalHmi(deps: LocalHmiDeps, config: Readonly<LocalHmiConfig>): LocalHmi {
  const log = deps.logger.child({ module: 'local-hmi' });
  const limited = createLogLimiter(deps.clock, 10_000);
  const now = (): number => deps.clock.now();
  const resolveFile = (key: 'storePath' | 'rollupPath', given: string, dflt: string | undefined, env: string): string => {
    const f = given || dflt || '';
    if (!f) throw new ConfigError(key, `${key} is empty and ${env} is not set: LocalHmi does not know where to read trends from; allowed: a file path`);
    return path.resolve(deps.workDir, f);
  };
  // Provision: bad paths are ConfigErrors now, before anything is opened.
  const storeFile = resolveFile('storePath', config.storePath, deps.defaultStorePath, 'DCMMS_PROCESSOR_STORE');
  const rollupFile = resolveFile('rollupPath', config.rollupPath, deps.defaultRollupPath, 'DCMMS_AGGREGATOR_DB');
  const zone = new Zone(config.timeZone);
  const startedAt = now();

  let sse: SseHub | undefined;
  const live = new LiveState({ maxAssets: config.maxAssets, alarmHistory: config.alarmHistory, metrics: deps.metrics, now }, (e) => sse?.publish(e));
  const trends = new TrendReader({ storeFile, rollupFile, ...(deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}) });
  let db: HmiDb | undefined;
  let app: FastifyInstance<Server> | undefined;
  const subs: Subscription[] = [];
  let sweep: TimerHandle | undefined;
  const controls = new Map<string, ControlTrack>();
  const failures = new Map<string, { count: number; resetAt: number }>();
  /** Energy counter at the local day's start, per asset and point. */
  const dayStart = new Map<string, { day: string; kWh: number }>();

  const reject = (reason: string): void => deps.metrics.reject(reason);
  const theDb = (): HmiDb => {
    if (!db) throw new ApiError(503, 'unavailable', 'LocalHmi is starting or stopping');
    return db;
  };
  const audit = (s: { username: string; role: string } | undefined, action: string, target: string, detail: unknown, outcome: string): void => {
    try {
      theDb().audit({ ts: now(), user: s?.username ?? '', role: s?.role ?? '', action, target, detail: typeof detail === 'string' ? detail : JSON.stringify(detail ?? {}), outcome });
    } catch (err) {
      deps.metrics.recordError(err);
      log.error('audit row not written', { action, target, err });
    }
  };

  // --- login rate limit --------------------------------------------------------------------------
  const limitedFor = (key: string, max: number): number | undefined => {
    const f = failures.get(key);
    if (!f) return undefined;
    if (f.resetAt <= now()) {
      failures.delete(key);
      return undefined;
    }
    return f.count >= max ? Math.ceil((f.resetAt - now()) / 1000) : undefined;
  };
  const fail = (key: string): void => {
    const f = failures.get(key);
    if (f && f.resetAt > now()) f.count++;
    else {
      failures.delete(key);
      // Bounded: the oldest key goes first (Map keeps insertion order).
      if (failures.size >= RATE_KEYS) failures.delete(failures.keys().next().value as string);
      failures.set(key, { count: 1, resetAt: now() + config.loginRateLimit.windowMs });
    }
  };

  // --- sessions ----------------------------------------------------------------------------------
  /** The valid session with this id hash; `touch`: a request, which resets the idle clock (the housekeeping's check does not). */
  const sessionOf = (idHash: string, touch = true): Session | undefined => {
    const d = db;
    if (!d) return undefined;
    const s = d.getSession(idHash);
    if (!s) return undefined;
    const t = now();
    if (s.expiresAt <= t || s.lastSeen + config.idleTimeoutMs <= t) {
      d.deleteSession(idHash);
      sse?.endSession(idHash);
      return undefined;
    }
    // A write per request would be a write per poll: refresh the idle clock at most every 5 s.
    if (touch && t - s.lastSeen > 5000) d.touchSession(idHash, t);
    if (!isRole(s.role)) return undefined;
    return { idHash, username: s.username, role: s.role, csrf: s.csrf };
  };

  const createSession = (username: string, role: SessionRow['role']): SessionRow & { id: string } => {
    const id = newSessionId();
    const t = now();
    const row: SessionRow = { idHash: hashSessionId(id), username, role, csrf: randomBytes(32).toString('base64url'), createdAt: t, lastSeen: t, expiresAt: t + config.sessionTtlMs };
    theDb().putSession(row);
    return { ...row, id };
  };

  // --- overview ----------------------------------------------------------------------------------
  const valueOf = (a: AssetState, point: string): number | undefined => {
    const v = a.values.get(point)?.value;
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  };

  /** Energy today from a lifetime counter: now minus its value at local midnight (the store's first sample of the day, else the first we saw). */
  const energyToday = (a: AssetState, point: string): number | undefined => {
    const cur = a.values.get(point);
    const kWh = energyKWh(cur?.value, cur?.unit);
    if (kWh === undefined || !cur) return undefined;
    const day = zone.dayOf(now());
    const key = `${a.assetId}\u0000${point}`;
    let start = dayStart.get(key);
    if (!start || start.day !== day.day) {
      let first: number | undefined;
      try {
        first = energyKWh(trends.firstValue(a.assetId, point, day.start, now()), cur.unit);
      } catch (err) {
        limited('energy-start', (suppressed) => log.warn('energy counter at day start not readable from the store', { err: errorMessage(err), suppressed }));
      }
      start = { day: day.day, kWh: first ?? kWh };
      dayStart.set(key, start);
      if (dayStart.size > 4 * config.maxAssets) dayStart.delete(dayStart.keys().next().value as string);
    }
    return Math.max(0, kWh - start.kWh);
  };

  const round = (v: number | undefined, digits = 3): number | undefined => (v === undefined ? undefined : Math.round(v * 10 ** digits) / 10 ** digits);

  const overview = (): unknown => {
    const p = config.points;
    const inverters: unknown[] = [];
    let energy = 0;
    let weather: Record<string, number> = {};
    let meter: Record<string, number> | undefined;
    let online = 0;
    for (const a of live.assets.values()) {
      if (a.status?.state === 'online' || (!a.status && a.ts > 0)) online++;
      const ac = valueOf(a, p.inverterPower);
      if (ac !== undefined) {
        const dc = valueOf(a, p.inverterDcPower);
        const st = inverterState(a.values.get(p.inverterState)?.value);
        inverters.push({ assetId: a.assetId, acPowerW: ac, ...(dc !== undefined ? { dcPowerW: dc } : {}), ...(st !== undefined ? { state: st } : {}), updatedAt: a.ts });
        energy += energyToday(a, p.inverterEnergy) ?? 0;
      }
      const irr = valueOf(a, p.irradiance);
      if (irr !== undefined && weather['updatedAt'] === undefined) {
        const amb = valueOf(a, p.ambient);
        const mod = valueOf(a, p.module);
        weather = { irradianceWm2: irr, ...(amb !== undefined ? { ambientC: amb } : {}), ...(mod !== undefined ? { moduleC: mod } : {}), updatedAt: a.ts };
      }
      const mw = valueOf(a, p.meterPower);
      if (mw !== undefined && !meter) {
        const e = energyToday(a, p.meterEnergy);
        meter = { acPowerW: mw, ...(e !== undefined ? { energyTodayKWh: round(e)! } : {}) };
      }
    }
    return {
      siteId: config.siteId,
      now: now(),
      inverters: inverters.sort((x, y) => String((x as { assetId: string }).assetId).localeCompare((y as { assetId: string }).assetId)),
      weather,
      ...(meter ? { meter } : {}),
      energyTodayKWh: round(energy),
      devices: { online, total: live.assets.size },
      alarms: live.alarmCounts(),
      cloud: live.cloud(),
    };
  };

  // --- operator requests ---------------------------------------------------------------------
  const publishRequest = async (req: OperatorRequest): Promise<void> => {
    try {
      await deps.bus.publish(topics.operatorRequest(config.siteId), req);
      deps.metrics.incOut();
    } catch (err) {
      deps.metrics.recordError(err);
      log.error('operator request not published', { requestId: req.requestId, action: req.action, err: errorMessage(err) });
      throw new ApiError(503, 'bus_unavailable', `the request could not be sent to LocalControl: ${errorMessage(err)}`);
    }
  };

  const track = (t: ControlTrack): void => {
    controls.set(t.requestId, t);
    if (controls.size > CONTROL_KEEP) controls.delete(controls.keys().next().value as string);
  };

  /** LocalControl's decisions for our requests carry `operator/<requestId>` as their operator input. */
  const onDecision = (d: ControlDecision): void => {
    if (d.ruleId !== 'operator') return;
    const ref = d.inputs.find((i) => i.source === 'operator')?.ref ?? '';
    const requestId = ref.slice(ref.lastIndexOf('/') + 1);
    const t = controls.get(requestId);
    if (!t) return;
    t.decisions.set(d.decisionId, d);
    const outcomes = [...t.decisions.values()].map((x) => x.outcome);
    const reasons = [...t.decisions.values()].map((x) => x.reason).filter((r): r is string => typeof r === 'string');
    let state: ControlState = 'pending';
    if (outcomes.includes('blocked')) state = 'refused';
    else if (outcomes.includes('failed')) state = 'failed';
    else if (outcomes.length > 0 && outcomes.every((o) => o === 'succeeded' || o === 'released')) state = 'done';
    t.state = state;
    if (reasons.length) t.detail = reasons.join('; ').slice(0, 512);
    if (state !== 'pending') audit({ username: t.by, role: 'operator' }, `control_${state}`, t.assetId, { requestId, action: t.action, decisions: outcomes }, state);
  };

  const onOperatorRequest = (r: OperatorRequest): void => {
    // An acknowledge from anyone (the CLI, another screen) shows on this one; our own are already recorded.
    if (r.action !== 'acknowledge' || !r.alarmId || live.acks.get(r.alarmId)?.at === r.ts) return;
    const a = { alarmId: r.alarmId, by: r.operator, at: r.ts, reason: r.reason ?? null };
    db?.putAck(a);
    live.setAck(a);
  };

  // --- the backend the routes call -------------------------------------------------------------
  const backend: HmiBackend = {
    async login(username, password, address) {
      const u = username.slice(0, 64);
      const retry = limitedFor(`a:${address}`, config.loginRateLimit.maxPerAddress) ?? limitedFor(`u:${u}`, config.loginRateLimit.maxPerUser);
      if (retry !== undefined) {
        reject('login_rate_limited');
        audit({ username: u, role: '' }, 'login', address, 'rate limited', 'rate_limited');
        throw new ApiError(429, 'rate_limited', `too many failed logins; try again in ${retry} s`, { 'retry-after': String(retry) });
      }
      const user = theDb().getUser(u);
      const ok = await verifyPassword(password.slice(0, MAX_PASSWORD), user?.hash ?? (await dummyHash()));
      if (!user || !ok) {
        fail(`a:${address}`);
        fail(`u:${u}`);
        reject('login_failed');
        audit({ username: u, role: '' }, 'login', address, user ? 'wrong password' : 'unknown user', 'failure');
        limited('login-failed', (suppressed) => log.warn('login failed', { username: u, address, suppressed }));
        throw new ApiError(401, 'bad_credentials', 'wrong user name or password');
      }
      failures.delete(`u:${u}`);
      const s = createSession(user.username, user.role);
      audit({ username: user.username, role: user.role }, 'login', address, '', 'success');
      log.info('login', { username: user.username, role: user.role, address });
      return s;
    },
    session: (idHash) => sessionOf(idHash),
    logout(s, address) {
      theDb().deleteSession(s.idHash);
      sse?.endSession(s.idHash);
      audit(s, 'logout', address, '', 'success');
    },
    users() {
      return theDb().listUsers();
    },
    async putUser(s, b, address) {
      const username = b['username'];
      const password = b['password'];
      const role = b['role'];
      if (typeof username !== 'string' || !USERNAME.test(username)) throw new ApiError(400, 'bad_request', 'username: 1 to 64 of A-Z a-z 0-9 _ . @ -');
      if (!isRole(role)) throw new ApiError(400, 'bad_request', 'role: viewer, operator or admin');
      if (typeof password !== 'string' || password.length < MIN_PASSWORD || password.length > MAX_PASSWORD) throw new ApiError(400, 'bad_request', `password: ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`);
      const d = theDb();
      const existed = d.getUser(username) !== undefined;
      if (username === s.username && role !== 'admin') throw new ApiError(409, 'conflict', 'you cannot take the admin role from yourself');
      d.putUser(username, role, await hashPassword(password), now());
      audit(s, existed ? 'user_update' : 'user_create', username, { role, from: address }, 'success');
      return { username, role };
    },
    async changePassword(s, b, address) {
      const current = b['current'];
      const next = b['next'];
      if (typeof current !== 'string' || typeof next !== 'string') throw new ApiError(400, 'bad_request', 'current and next are required');
      if (next.length < MIN_PASSWORD || next.length > MAX_PASSWORD) throw new ApiError(400, 'bad_request', `next: ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`);
      const d = theDb();
      const user = d.getUser(s.username);
      if (!user || !(await verifyPassword(current.slice(0, MAX_PASSWORD), user.hash))) {
        audit(s, 'password_change', s.username, { from: address }, 'failure');
        throw new ApiError(403, 'bad_credentials', 'the current password is wrong');
      }
      d.setHash(s.username, await hashPassword(next), now());
      // Every other session of this user ends: a stolen cookie dies with the old password.
      d.deleteOtherSessions(s.username, s.idHash);
      audit(s, 'password_change', s.username, { from: address }, 'success');
    },
    overview,
    alarms(view, limit) {
      return view === 'active' ? live.activeRows().slice(0, limit) : live.historyRows(limit);
    },
    devices() {
      return [...live.assets.values()]
        .map((a) => ({ ...live.deviceRow(a), values: Object.fromEntries([...a.values].map(([k, v]) => [k, v])) }))
        .sort((x, y) => x.assetId.localeCompare(y.assetId));
    },
    series() {
      let rows: Array<{ assetId: string; point: string; unit?: string }>;
      try {
        rows = trends.series().map((s) => ({ assetId: s.assetId, point: s.point, ...(s.unit ? { unit: s.unit } : {}) }));
      } catch (err) {
        limited('series', (suppressed) => log.warn('store series list not readable', { err: errorMessage(err), suppressed }));
        rows = [];
      }
      if (rows.length === 0) {
        // No store yet: the numeric points seen live (their 1 h trend is empty until the store has them).
        for (const a of live.assets.values()) for (const [point, v] of a.values) if (typeof v.value === 'number') rows.push({ assetId: a.assetId, point, ...(v.unit ? { unit: v.unit } : {}) });
      }
      return rows.sort((x, y) => x.assetId.localeCompare(y.assetId) || x.point.localeCompare(y.point));
    },
    trend(assetId, point, range) {
      if (!assetId || assetId.length > 64 || !point || point.length > 128) throw new ApiError(400, 'bad_request', 'assetId and point are required');
      if (!Object.hasOwn(RANGES, range)) throw new ApiError(400, 'bad_request', 'range must be 1h, 24h or 7d');
      try {
        return trends.trend(assetId, point, range as TrendRange, now());
      } catch (err) {
        deps.metrics.recordError(err);
        limited('trend', (suppressed) => log.warn('trend not readable', { assetId, point, range, err: errorMessage(err), suppressed }));
        throw new ApiError(503, 'unavailable', `trend data not readable now: ${errorMessage(err)}`);
      }
    },
    async health() {
      let disk: { path: string; freeBytes: number; totalBytes: number } | undefined;
      try {
        const st = await fs.promises.statfs(deps.workDir);
        disk = { path: deps.workDir, freeBytes: st.bavail * st.bsize, totalBytes: st.blocks * st.bsize };
      } catch (err) {
        limited('statfs', (suppressed) => log.warn('disk figures not readable', { err: errorMessage(err), suppressed }));
      }
      const uplink = live.componentHealth.get('uplink')?.report;
      const models = live.componentHealth.get('ml-inference')?.report.models;
      return {
        components: live.components(),
        disk: disk ?? { path: deps.workDir, freeBytes: 0, totalBytes: 0 },
        ...(uplink ? { outbox: { ...live.cloud(), queues: uplink.metrics.queues, dropped: uplink.metrics.dropped, reportedAt: uplink.ts } } : {}),
        ...(models ? { models } : {}),
        ...(live.summary?.system ? { system: live.summary.system, siteStatus: live.summary.status, issues: live.summary.issues } : {}),
        hmi: { version: deps.version, uptimeS: Math.round((now() - startedAt) / 1000), sseClients: sse?.size ?? 0, sseDropped: sse?.slowDropped ?? 0 },
      };
    },
    audit(limit) {
      return theDb().listAudit(limit);
    },
    async acknowledge(s, alarmId, b) {
      if (b['confirm'] !== true) throw new ApiError(400, 'confirm_required', 'send confirm: true to acknowledge');
      if (alarmId.length > 128) throw new ApiError(400, 'bad_request', 'alarmId is at most 128 characters');
      const reason = typeof b['reason'] === 'string' ? b['reason'].slice(0, 512) : undefined;
      const alarm = live.activeAlarm(alarmId);
      if (!alarm) {
        audit(s, 'acknowledge', alarmId, { reason }, 'not_active');
        throw new ApiError(404, 'not_found', `no active alarm ${alarmId}`);
      }
      const requestId = randomUUID();
      const t = now();
      const req: OperatorRequest = { schemaVersion: CONTRACT_VERSION, siteId: config.siteId, ts: t, requestId, operator: s.username, action: 'acknowledge', alarmId, assetId: alarm.assetId, ...(reason ? { reason } : {}) };
      try {
        await publishRequest(req);
      } catch (err) {
        audit(s, 'acknowledge', alarmId, { requestId, reason }, 'not_sent');
        throw err;
      }
      const ack = { alarmId, by: s.username, at: t, reason: reason ?? null };
      theDb().putAck(ack);
      live.setAck(ack);
      audit(s, 'acknowledge', alarmId, { requestId, assetId: alarm.assetId, reason }, 'sent');
      return { requestId };
    },
    shelve(s, alarmId, b) {
      if (b['confirm'] !== true) throw new ApiError(400, 'confirm_required', 'send confirm: true to shelve');
      const minutes = b['minutes'];
      const reason = b['reason'];
      if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 1 || minutes > 1440) throw new ApiError(400, 'bad_request', 'minutes: an integer from 1 to 1440');
      if (typeof reason !== 'string' || reason.trim() === '' || reason.length > 512) throw new ApiError(400, 'bad_request', 'reason: required, at most 512 characters');
      if (!live.activeAlarm(alarmId)) throw new ApiError(404, 'not_found', `no active alarm ${alarmId}`);
      const row = { alarmId, by: s.username, until: now() + minutes * 60_000, reason };
      theDb().putShelve(row);
      live.setShelve(alarmId, row);
      audit(s, 'shelve', alarmId, { minutes, reason }, 'done');
      return { alarmId, shelved: { by: row.by, until: row.until, reason } };
    },
    unshelve(s, alarmId, b) {
      if (b['confirm'] !== true) throw new ApiError(400, 'confirm_required', 'send confirm: true to unshelve');
      const had = theDb().deleteShelve(alarmId);
      live.setShelve(alarmId, undefined);
      audit(s, 'unshelve', alarmId, {}, had ? 'done' : 'not_shelved');
      if (!had) throw new ApiError(404, 'not_found', `alarm ${alarmId} is not shelved`);
      return { alarmId };
    },
    async control(s, b) {
      if (b['confirm'] !== true) throw new ApiError(400, 'confirm_required', 'send confirm: true to act on the plant');
      const assetId = b['assetId'];
      const action = b['action'];
      const value = b['value'];
      if (typeof assetId !== 'string' || !/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/.test(assetId)) throw new ApiError(400, 'bad_request', 'assetId: an asset id');
      if (action !== 'curtail' && action !== 'restore' && action !== 'manual' && action !== 'automatic') throw new ApiError(400, 'bad_request', 'action: curtail, restore, manual or automatic');
      if (action === 'curtail' && (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100)) throw new ApiError(400, 'bad_request', 'curtail needs value, a percent from 0 to 100');
      const reason = typeof b['reason'] === 'string' ? b['reason'].slice(0, 512) : undefined;
      const requestId = randomUUID();
      const req: OperatorRequest = {
        schemaVersion: CONTRACT_VERSION,
        siteId: config.siteId,
        ts: now(),
        requestId,
        operator: s.username,
        action,
        assetId,
        ...(action === 'curtail' ? { params: { percent: value as number } } : {}),
        ...(reason ? { reason } : {}),
      };
      try {
        await publishRequest(req);
      } catch (err) {
        audit(s, 'control', assetId, { requestId, action, value }, 'not_sent');
        throw err;
      }
      // LocalControl publishes no decision for a mode change (it only audits it): done once sent.
      const modeChange = action === 'manual' || action === 'automatic';
      track({ requestId, state: modeChange ? 'done' : 'pending', ...(modeChange ? { detail: 'sent to LocalControl (a mode change has no decision to wait for)' } : {}), at: now(), by: s.username, action, assetId, decisions: new Map() });
      audit(s, 'control', assetId, { requestId, action, ...(action === 'curtail' ? { percent: value } : {}), reason }, 'sent');
      return { requestId };
    },
    controlState(requestId) {
      const t = controls.get(requestId);
      if (!t) throw new ApiError(404, 'not_found', `no control request ${requestId}`);
      return { requestId, state: t.state, ...(t.detail ? { detail: t.detail } : {}) };
    },
    openEvents(s, res) {
      if (!sse) return false;
      const initial = [SseHub.format({ event: 'cloud', data: live.cloud() }), SseHub.format({ event: 'health', data: { components: live.components() } })];
      return sse.add(res, s.idHash, initial);
    },
  };

  // --- users at start ----------------------------------------------------------------------------
  /** The admin user from adminPasswordHash, or at first start with a random password logged once. */
  const ensureAdmin = async (url: string): Promise<void> => {
    const d = theDb();
    const hash = config.adminPasswordHash;
    if (hash && parsePasswordHash(hash)) {
      const admin = d.getUser('admin');
      if (!admin || admin.hash !== hash || admin.role !== 'admin') {
        d.putUser('admin', 'admin', hash, now());
        audit({ username: 'config', role: 'admin' }, admin ? 'user_update' : 'user_create', 'admin', 'from adminPasswordHash', 'success');
        log.info('admin password set from the configuration (adminPasswordHash)');
      }
      return;
    }
    if (d.userCount() > 0) return;
    const password = randomPassword();
    d.putUser('admin', 'admin', await hashPassword(password), now());
    audit({ username: 'system', role: 'admin' }, 'user_create', 'admin', 'first start: random password', 'success');
    // The one line that carries a password (docs/local-hmi.md "First start"): shown once, never again.
    log.warn('first start: admin credential created (shown once)', { username: 'admin', password: showSecret(password), url });
  };

  const sweepOnce = (): void => {
    const d = db;
    if (!d) return;
    const t = now();
    try {
      d.expireSessions(t, config.idleTimeoutMs);
      // A live stream lives only as long as its session (idle, expired, password changed).
      sse?.pruneSessions((h) => sessionOf(h, false) !== undefined);
      for (const sh of [...live.shelves.values()]) if (sh.until <= t) live.setShelve(sh.alarmId, undefined);
      d.expireShelves(t);
      for (const c of controls.values()) {
        if (c.state === 'pending' && t - c.at > config.controlTimeoutMs) {
          c.state = 'failed';
          c.detail = `no decision from LocalControl within ${Math.round(config.controlTimeoutMs / 1000)} s`;
          audit({ username: c.by, role: 'operator' }, 'control_failed', c.assetId, { requestId: c.requestId, action: c.action }, 'timeout');
        }
      }
      if (t % 3600_000 < SWEEP_MS) {
        d.pruneAudit(t);
        // Acknowledgements of alarms long gone: out of memory and the file (bounded by time).
        d.pruneAcks(t - ACK_KEEP_MS);
        for (const a of [...live.acks.values()]) if (a.at < t - ACK_KEEP_MS && !live.activeAlarm(a.alarmId)) live.acks.delete(a.alarmId);
      }
    } catch (err) {
      deps.metrics.recordError(err);
      limited('sweep', (suppressed) => log.warn('housekeeping failed', { err: errorMessage(err), suppressed }));
    }
  };

  const guardedHandler =
    <P>(what: string, fn: (p: P) => void) =>
    (p: P): void => {
      deps.metrics.incIn();
      try {
        fn(p);
      } catch (err) {
        deps.metrics.recordError(err);
        limited(`handler-${what}`, (suppressed) => log.error(`${what} handling failed`, { err, suppressed }));
      }
    };

  const siteOk = <P extends { siteId: string }>(what: string, fn: (p: P) => void) =>
    guardedHandler<P>(what, (p) => {
      if (p.siteId !== config.siteId) return reject('site_mismatch');
      fn(p);
    });

  let bound: AddressInfo | undefined;
  let unregisterQueue: (() => void) | undefined;

  return {
    live,
    get sse() {
      return sse;
    },
    address: () => bound,
    async start() {
      fs.mkdirSync(deps.workDir, { recursive: true });
      db = new HmiDb(path.resolve(deps.workDir, config.dbPath), deps.nativeBinding);
      const t = now();
      db.pruneAudit(t);
      db.expireSessions(t, config.idleTimeoutMs);
      db.expireShelves(t);
      db.pruneAcks(t - ACK_KEEP_MS);
      for (const a of db.listAcks()) live.acks.set(a.alarmId, a);
      for (const s of db.listShelves(t)) live.shelves.set(s.alarmId, s);
      const tls = await loadOrCreateTls({ certPath: config.tls.certPath, keyPath: config.tls.keyPath, workDir: deps.workDir, hostnames: config.hostnames });
      log.info(tls.generated ? 'TLS certificate generated' : 'TLS certificate loaded', { file: tls.file, fingerprint256: tls.fingerprint256, subjectAltName: tls.subjectAltName });
      sse = new SseHub({ clock: deps.clock, metrics: deps.metrics, maxClients: config.maxSseClients, maxQueue: config.sseQueueEvents });
      unregisterQueue = deps.metrics.registerQueue('sse_clients', () => sse?.size ?? 0);
      app = await createServer({ cert: tls.cert, key: tls.key, sessionTtlMs: config.sessionTtlMs, logger: log, web: deps.web ?? NO_WEB_APP, backend, reject, clock: deps.clock });
      try {
        await app.listen({ port: config.port, host: config.bindAddress });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
          throw new ConfigError(code === 'EADDRNOTAVAIL' ? 'bindAddress' : 'port', `cannot listen on ${config.bindAddress}:${config.port} (${code}); allowed: a free port this user may bind and an address of this gateway`);
        }
        throw err;
      }
      bound = app.server.address() as AddressInfo;
      const host = config.hostnames[0] ?? os.hostname() ?? 'localhost';
      const url = `https://${host}:${bound.port}/`;
      await ensureAdmin(url);
      const site = config.siteId;
      subs.push(
        await deps.bus.subscribe(filters.processedTelemetry(site), siteOk('telemetry', (m) => live.onTelemetry(m))),
        await deps.bus.subscribe(filters.alarms(site), siteOk('alarm', (m) => live.onAlarm(m))),
        await deps.bus.subscribe(filters.alarmSnapshot(site), siteOk('alarm snapshot', (m) => live.onSnapshot(m))),
        await deps.bus.subscribe(filters.deviceStatus(site), siteOk('device status', (m) => live.onDeviceStatus(m))),
        await deps.bus.subscribe(filters.componentHealth(site), siteOk('component health', (m) => live.onComponentHealth(m))),
        await deps.bus.subscribe(filters.healthSummary(site), siteOk('health summary', (m) => live.onSummary(m))),
        await deps.bus.subscribe(filters.controlDecision(site), siteOk('control decision', onDecision)),
        await deps.bus.subscribe(filters.operatorRequest(site), siteOk('operator request', onOperatorRequest)),
      );
      // Every alarm source answers with its active alarms (docs/alarms.md): right after a restart.
      await deps.bus.publish(topics.alarmSync(site), { schemaVersion: CONTRACT_VERSION, siteId: site, ts: now(), requester: deps.component }).catch((err: unknown) => {
        deps.metrics.recordError(err);
        log.warn('alarm sync request not published; active alarms fill in as they change', { err: errorMessage(err) });
      });
      sweep = deps.clock.setInterval(sweepOnce, SWEEP_MS);
      log.info('listening', { url, address: bound.address, port: bound.port, storeFile, rollupFile });
    },
    async close() {
      deps.clock.clearInterval(sweep);
      sweep = undefined;
      for (const s of subs.splice(0)) await s.close().catch(() => undefined);
      sse?.close();
      if (app) {
        const a = app;
        app = undefined;
        await a.close().catch((err: unknown) => log.warn('server close failed', { err: errorMessage(err) }));
      }
      sse = undefined;
      unregisterQueue?.();
      unregisterQueue = undefined;
      trends.close();
      db?.close();
      db = undefined;
    },
    healthState: () => (app ? 'running' : 'degraded'),
  };
}

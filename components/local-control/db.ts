/**
 * LocalControl's own SQLite file (docs/local-control.md "The audit log"): the audit log of every
 * decision step and operator request, the state automation must keep across a restart (assets in
 * manual mode, active holds, what automation has applied, acknowledged alarms, learned inverter
 * ratings) and, through AlarmJournal, its alarm journal.
 *
 * One writer (this process), WAL so the CLI can read while it writes, synchronous FULL so a step
 * the component reported is on disk when the call returns (a power cut keeps it). Statements are
 * prepared once. The audit log is bounded by age (`auditRetentionMs`), pruned at start and hourly.
 * `readAuditLog` opens its own read-only connection, for `dcmms-edge control log`.
 */
import Database from 'better-sqlite3';
import { openOwnDb } from '../lib/own-db';

export const AUDIT_KINDS = ['decision', 'operator', 'acknowledge', 'mode'] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

export interface AuditRow {
  ts: number;
  kind: AuditKind;
  assetId?: string | undefined;
  ruleId?: string | undefined;
  decisionId?: string | undefined;
  action?: string | undefined;
  outcome?: string | undefined;
  reason?: string | undefined;
  commandId?: string | undefined;
  attempt?: number | undefined;
  latencyMs?: number | undefined;
  /** Counts towards the per-asset rate limit (an automated action's first command). */
  counted?: boolean;
  /** The whole record: the ControlDecision, the OperatorRequest, or what the acknowledgement did. */
  entry: unknown;
}

export interface AuditEntry {
  id: number;
  ts: number;
  kind: AuditKind;
  assetId: string | null;
  ruleId: string | null;
  decisionId: string | null;
  action: string | null;
  outcome: string | null;
  reason: string | null;
  commandId: string | null;
  attempt: number | null;
  latencyMs: number | null;
  entry: unknown;
}

const DDL = `
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts INTEGER NOT NULL,
  kind TEXT NOT NULL,
  asset_id TEXT,
  rule_id TEXT,
  decision_id TEXT,
  action TEXT,
  outcome TEXT,
  reason TEXT,
  command_id TEXT,
  attempt INTEGER,
  latency_ms REAL,
  counted INTEGER NOT NULL DEFAULT 0,
  entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
CREATE INDEX IF NOT EXISTS audit_asset_ts ON audit (asset_id, ts);
CREATE TABLE IF NOT EXISTS manual_assets (asset_id TEXT PRIMARY KEY, since INTEGER NOT NULL, by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS holds (hold_key TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applied (target_key TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS acks (alarm_id TEXT PRIMARY KEY, at INTEGER NOT NULL, by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS capacities (asset_id TEXT PRIMARY KEY, watts REAL NOT NULL, source TEXT NOT NULL, at INTEGER NOT NULL);
`;

type Row = Record<string, unknown>;

function toEntry(r: Row): AuditEntry {
  return {
    id: r['id'] as number,
    ts: r['ts'] as number,
    kind: r['kind'] as AuditKind,
    assetId: (r['asset_id'] as string | null) ?? null,
    ruleId: (r['rule_id'] as string | null) ?? null,
    decisionId: (r['decision_id'] as string | null) ?? null,
    action: (r['action'] as string | null) ?? null,
    outcome: (r['outcome'] as string | null) ?? null,
    reason: (r['reason'] as string | null) ?? null,
    commandId: (r['command_id'] as string | null) ?? null,
    attempt: (r['attempt'] as number | null) ?? null,
    latencyMs: (r['latency_ms'] as number | null) ?? null,
    entry: JSON.parse(r['entry'] as string) as unknown,
  };
}

export class LocalControlDb {
  readonly db: Database.Database;
  private readonly st;

  constructor(file: string, nativeBinding?: string) {
    this.db = openOwnDb(file, nativeBinding);
    this.db.exec(DDL);
    const db = this.db;
    this.st = {
      audit: db.prepare(
        `INSERT INTO audit (ts, kind, asset_id, rule_id, decision_id, action, outcome, reason, command_id, attempt, latency_ms, counted, entry)
         VALUES (@ts, @kind, @assetId, @ruleId, @decisionId, @action, @outcome, @reason, @commandId, @attempt, @latencyMs, @counted, @entry)`,
      ),
      prune: db.prepare('DELETE FROM audit WHERE ts < ?'),
      counted: db.prepare('SELECT asset_id AS assetId, ts FROM audit WHERE counted = 1 AND ts >= ? ORDER BY id'),
      manualAll: db.prepare('SELECT asset_id AS assetId, since, by FROM manual_assets ORDER BY asset_id'),
      manualPut: db.prepare('INSERT INTO manual_assets (asset_id, since, by) VALUES (?, ?, ?) ON CONFLICT(asset_id) DO NOTHING'),
      manualDel: db.prepare('DELETE FROM manual_assets WHERE asset_id = ?'),
      holdAll: db.prepare('SELECT hold_key AS k, state FROM holds'),
      holdPut: db.prepare('INSERT INTO holds (hold_key, state) VALUES (?, ?) ON CONFLICT(hold_key) DO UPDATE SET state = excluded.state'),
      holdDel: db.prepare('DELETE FROM holds WHERE hold_key = ?'),
      appliedAll: db.prepare('SELECT target_key AS k, state FROM applied'),
      appliedPut: db.prepare('INSERT INTO applied (target_key, state) VALUES (?, ?) ON CONFLICT(target_key) DO UPDATE SET state = excluded.state'),
      appliedDel: db.prepare('DELETE FROM applied WHERE target_key = ?'),
      ackAll: db.prepare('SELECT alarm_id AS alarmId, at, by FROM acks'),
      ackPut: db.prepare('INSERT INTO acks (alarm_id, at, by) VALUES (?, ?, ?) ON CONFLICT(alarm_id) DO NOTHING'),
      ackDel: db.prepare('DELETE FROM acks WHERE alarm_id = ?'),
      capAll: db.prepare('SELECT asset_id AS assetId, watts, source, at FROM capacities'),
      capPut: db.prepare('INSERT INTO capacities (asset_id, watts, source, at) VALUES (?, ?, ?, ?) ON CONFLICT(asset_id) DO UPDATE SET watts = excluded.watts, source = excluded.source, at = excluded.at'),
    };
  }

  audit(r: AuditRow): void {
    this.st.audit.run({
      ts: r.ts,
      kind: r.kind,
      assetId: r.assetId ?? null,
      ruleId: r.ruleId ?? null,
      decisionId: r.decisionId ?? null,
      action: r.action ?? null,
      outcome: r.outcome ?? null,
      reason: r.reason ?? null,
      commandId: r.commandId ?? null,
      attempt: r.attempt ?? null,
      latencyMs: r.latencyMs ?? null,
      counted: r.counted ? 1 : 0,
      entry: JSON.stringify(r.entry),
    });
  }

  pruneAudit(before: number): number {
    return this.st.prune.run(before).changes;
  }

  /** Rate-limited actions since `since` (to rebuild the rate limiter's windows at start). */
  countedSince(since: number): Array<{ assetId: string; ts: number }> {
    return this.st.counted.all(since) as Array<{ assetId: string; ts: number }>;
  }

  manualAssets(): Array<{ assetId: string; since: number; by: string }> {
    return this.st.manualAll.all() as Array<{ assetId: string; since: number; by: string }>;
  }
  setManual(assetId: string, since: number, by: string): void {
    this.st.manualPut.run(assetId, since, by);
  }
  clearManual(assetId: string): boolean {
    return this.st.manualDel.run(assetId).changes > 0;
  }

  holds(): Array<{ k: string; state: string }> {
    return this.st.holdAll.all() as Array<{ k: string; state: string }>;
  }
  putHold(key: string, state: unknown): void {
    this.st.holdPut.run(key, JSON.stringify(state));
  }
  removeHold(key: string): void {
    this.st.holdDel.run(key);
  }

  applied(): Array<{ k: string; state: string }> {
    return this.st.appliedAll.all() as Array<{ k: string; state: string }>;
  }
  putApplied(key: string, state: unknown): void {
    this.st.appliedPut.run(key, JSON.stringify(state));
  }
  removeApplied(key: string): void {
    this.st.appliedDel.run(key);
  }

  acks(): Array<{ alarmId: string; at: number; by: string }> {
    return this.st.ackAll.all() as Array<{ alarmId: string; at: number; by: string }>;
  }
  putAck(alarmId: string, at: number, by: string): void {
    this.st.ackPut.run(alarmId, at, by);
  }
  removeAck(alarmId: string): void {
    this.st.ackDel.run(alarmId);
  }

  capacities(): Array<{ assetId: string; watts: number; source: string; at: number }> {
    return this.st.capAll.all() as Array<{ assetId: string; watts: number; source: string; at: number }>;
  }
  putCapacity(assetId: string, watts: number, source: string, at: number): void {
    this.st.capPut.run(assetId, watts, source, at);
  }

  /** Several writes as one transaction (one fsync). */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

export interface ReadAuditOptions {
  assetId?: string;
  /** Entries at or after this time (ms since epoch). */
  since?: number;
  /** The newest `limit` entries (default 100, at most 100 000). */
  limit?: number;
  /** better-sqlite3's addon beside a bundled main.js (docs/build.md). */
  nativeBinding?: string;
}

/**
 * The newest entries of an audit log (oldest first), from a read-only connection: the component may
 * be writing the file at the same time (WAL: readers never block the writer). Throws when the file
 * does not exist.
 */
export function readAuditLog(file: string, opts: ReadAuditOptions = {}): AuditEntry[] {
  const limit = Math.max(1, Math.min(100000, Math.floor(opts.limit ?? 100)));
  const db = new Database(file, { readonly: true, fileMustExist: true, ...(opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {}) });
  try {
    db.pragma('busy_timeout = 5000');
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.assetId !== undefined) {
      where.push('asset_id = ?');
      args.push(opts.assetId);
    }
    if (opts.since !== undefined) {
      where.push('ts >= ?');
      args.push(opts.since);
    }
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = db.prepare(sql).all(...args, limit) as Row[];
    return rows.reverse().map(toEntry);
  } finally {
    db.close();
  }
}

/**
 * LocalHmi's own SQLite file (components/lib/own-db.ts: WAL, synchronous FULL): users, sessions,
 * the audit log, shelved alarms and acknowledgements this HMI sent. One writer, this process.
 *
 * Sessions are stored by the SHA-256 of their id, never the id itself: a copy of the file (a
 * backup, a support bundle) does not hold live cookies. Audit rows are kept 365 days and at most
 * 100 000 rows (pruned at start and every hour).
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { openOwnDb } from '../lib/own-db';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}
/** viewer < operator < admin. */
export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export interface UserRow {
  username: string;
  role: Role;
  hash: string;
  createdAt: number;
  updatedAt: number;
}

export interface SessionRow {
  idHash: string;
  username: string;
  role: Role;
  csrf: string;
  createdAt: number;
  lastSeen: number;
  expiresAt: number;
}

export interface AuditRow {
  ts: number;
  user: string;
  role: string;
  action: string;
  target: string;
  detail: string;
  outcome: string;
}

export interface ShelveRow {
  alarmId: string;
  by: string;
  until: number;
  reason: string;
}

export interface AckRow {
  alarmId: string;
  by: string;
  at: number;
  reason: string | null;
}

const DDL = `
CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (id_hash TEXT PRIMARY KEY, username TEXT NOT NULL, role TEXT NOT NULL, csrf TEXT NOT NULL, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, user TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shelves (alarm_id TEXT PRIMARY KEY, by TEXT NOT NULL, until INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS acks (alarm_id TEXT PRIMARY KEY, by TEXT NOT NULL, at INTEGER NOT NULL, reason TEXT);
`;

const AUDIT_MAX_ROWS = 100_000;
const AUDIT_MAX_AGE_MS = 365 * 86_400_000;

export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

export class HmiDb {
  readonly db: Database.Database;
  private readonly st;

  constructor(file: string, nativeBinding?: string) {
    this.db = openOwnDb(file, nativeBinding);
    this.db.exec(DDL);
    this.st = {
      userCount: this.db.prepare('SELECT count(*) FROM users').pluck(),
      getUser: this.db.prepare('SELECT username, role, hash, created_at AS createdAt, updated_at AS updatedAt FROM users WHERE username = ?'),
      listUsers: this.db.prepare('SELECT username, role, created_at AS createdAt, updated_at AS updatedAt FROM users ORDER BY username'),
      putUser: this.db.prepare(
        'INSERT INTO users (username, role, hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET role = excluded.role, hash = excluded.hash, updated_at = excluded.updated_at',
      ),
      setHash: this.db.prepare('UPDATE users SET hash = ?, updated_at = ? WHERE username = ?'),
      putSession: this.db.prepare('INSERT INTO sessions (id_hash, username, role, csrf, created_at, last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      getSession: this.db.prepare('SELECT id_hash AS idHash, username, role, csrf, created_at AS createdAt, last_seen AS lastSeen, expires_at AS expiresAt FROM sessions WHERE id_hash = ?'),
      touchSession: this.db.prepare('UPDATE sessions SET last_seen = ? WHERE id_hash = ?'),
      deleteSession: this.db.prepare('DELETE FROM sessions WHERE id_hash = ?'),
      deleteUserSessions: this.db.prepare('DELETE FROM sessions WHERE username = ? AND id_hash != ?'),
      expireSessions: this.db.prepare('DELETE FROM sessions WHERE expires_at <= ? OR last_seen <= ?'),
      audit: this.db.prepare('INSERT INTO audit (ts, user, role, action, target, detail, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      listAudit: this.db.prepare('SELECT ts, user, role, action, target, detail, outcome FROM audit ORDER BY id DESC LIMIT ?'),
      pruneAuditAge: this.db.prepare('DELETE FROM audit WHERE ts < ?'),
      pruneAuditRows: this.db.prepare('DELETE FROM audit WHERE id <= (SELECT max(id) FROM audit) - ?'),
      putShelve: this.db.prepare('INSERT INTO shelves (alarm_id, by, until, reason) VALUES (?, ?, ?, ?) ON CONFLICT(alarm_id) DO UPDATE SET by = excluded.by, until = excluded.until, reason = excluded.reason'),
      deleteShelve: this.db.prepare('DELETE FROM shelves WHERE alarm_id = ?'),
      listShelves: this.db.prepare('SELECT alarm_id AS alarmId, by, until, reason FROM shelves WHERE until > ?'),
      expireShelves: this.db.prepare('DELETE FROM shelves WHERE until <= ?'),
      putAck: this.db.prepare('INSERT INTO acks (alarm_id, by, at, reason) VALUES (?, ?, ?, ?) ON CONFLICT(alarm_id) DO UPDATE SET by = excluded.by, at = excluded.at, reason = excluded.reason'),
      listAcks: this.db.prepare('SELECT alarm_id AS alarmId, by, at, reason FROM acks'),
      deleteAck: this.db.prepare('DELETE FROM acks WHERE alarm_id = ?'),
      pruneAcks: this.db.prepare('DELETE FROM acks WHERE at < ?'),
    };
  }

  userCount(): number {
    return this.st.userCount.get() as number;
  }
  getUser(username: string): UserRow | undefined {
    return this.st.getUser.get(username) as UserRow | undefined;
  }
  listUsers(): Array<Omit<UserRow, 'hash'>> {
    return this.st.listUsers.all() as Array<Omit<UserRow, 'hash'>>;
  }
  putUser(username: string, role: Role, hash: string, now: number): void {
    this.st.putUser.run(username, role, hash, now, now);
  }
  setHash(username: string, hash: string, now: number): void {
    this.st.setHash.run(hash, now, username);
  }

  putSession(s: SessionRow): void {
    this.st.putSession.run(s.idHash, s.username, s.role, s.csrf, s.createdAt, s.lastSeen, s.expiresAt);
  }
  getSession(idHash: string): SessionRow | undefined {
    return this.st.getSession.get(idHash) as SessionRow | undefined;
  }
  touchSession(idHash: string, now: number): void {
    this.st.touchSession.run(now, idHash);
  }
  deleteSession(idHash: string): void {
    this.st.deleteSession.run(idHash);
  }
  /** Every other session of a user (after a password change). */
  deleteOtherSessions(username: string, keepIdHash: string): void {
    this.st.deleteUserSessions.run(username, keepIdHash);
  }
  expireSessions(now: number, idleTimeoutMs: number): number {
    return this.st.expireSessions.run(now, now - idleTimeoutMs).changes;
  }

  audit(r: AuditRow): void {
    this.st.audit.run(r.ts, r.user, r.role, r.action, r.target, r.detail, r.outcome);
  }
  listAudit(limit: number): AuditRow[] {
    return this.st.listAudit.all(limit) as AuditRow[];
  }
  pruneAudit(now: number): void {
    this.st.pruneAuditAge.run(now - AUDIT_MAX_AGE_MS);
    this.st.pruneAuditRows.run(AUDIT_MAX_ROWS);
  }

  putShelve(s: ShelveRow): void {
    this.st.putShelve.run(s.alarmId, s.by, s.until, s.reason);
  }
  deleteShelve(alarmId: string): boolean {
    return this.st.deleteShelve.run(alarmId).changes > 0;
  }
  listShelves(now: number): ShelveRow[] {
    return this.st.listShelves.all(now) as ShelveRow[];
  }
  expireShelves(now: number): number {
    return this.st.expireShelves.run(now).changes;
  }

  putAck(a: AckRow): void {
    this.st.putAck.run(a.alarmId, a.by, a.at, a.reason);
  }
  deleteAck(alarmId: string): void {
    this.st.deleteAck.run(alarmId);
  }
  listAcks(): AckRow[] {
    return this.st.listAcks.all() as AckRow[];
  }
  pruneAcks(before: number): void {
    this.st.pruneAcks.run(before);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

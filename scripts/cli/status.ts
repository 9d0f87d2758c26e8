/**
 * `dcmms-edge status` and `dcmms-edge alarms`: a running site at a glance, for an operator at a
 * shell on the gateway.
 *
 * Sources (decided so that both work on a real gateway and with the nucleus stopped, and need no
 * new permission on the bus): component states from the nucleus over IPC (ListComponents, the CLI's
 * token); everything else from the components' own files, opened read-only (SQLite WAL readers,
 * safe while the components write):
 *   - devices: the Processor's store, DIR/work/com.dcmms.edge.Processor/raw.db, newest sample per asset;
 *   - active alarms: every alarm source's journal, the `alarm_active` table in DIR/work/<component>/*.db
 *     (components/lib/alarm-journal.ts keeps the latest transition of each active alarm there);
 *   - cloud link and backlog: the Uplink's outbox, DIR/work/com.dcmms.edge.Uplink/outbox.db.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AlarmMessage } from '../../components/lib/contract';
import { CliUsageError, parseCommand, requireRoot } from './args';
import { ALARMS, STATUS } from './commands';
import { formatDuration, table, utc } from './format';
import { describeError, withNucleus } from './session';

const SEVERITY_ORDER = ['critical', 'high', 'medium', 'low', 'info'];
/** The Uplink's priority classes (components/uplink/classes.ts), by index in its outbox. */
const OUTBOX_CLASSES = ['alarms', 'events', '1m', '15m', '1d', 'health'];
/** Its exporters (components/uplink/config.ts EXPORTER_NAMES), by index. */
const OUTBOX_EXPORTERS = ['iotcore', 's3', 'streammanager-s3', 'streammanager-sitewise', 'streammanager-kinesis'];
/** A batch waiting longer than this means the link is not delivering (the Uplink sends within seconds when online). */
const STUCK_MS = 60_000;

export const workFile = (root: string, component: string, file: string): string => path.join(root, 'work', component, file);
export const storePaths = (root: string): { store: string; rollups: string; outbox: string } => ({
  store: workFile(root, 'com.dcmms.edge.Processor', 'raw.db'),
  rollups: workFile(root, 'com.dcmms.edge.Aggregator', 'aggregates.db'),
  outbox: workFile(root, 'com.dcmms.edge.Uplink', 'outbox.db'),
});

function openRo(file: string): Database.Database | undefined {
  if (!fs.existsSync(file)) return undefined;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}

const hasTable = (db: Database.Database, name: string): boolean => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;

/** Every active alarm of every source under DIR/work, newest first. */
export function readActiveAlarms(root: string): AlarmMessage[] {
  const work = path.join(root, 'work');
  const out: AlarmMessage[] = [];
  const seen = new Set<string>();
  for (const comp of fs.existsSync(work) ? fs.readdirSync(work) : []) {
    const dir = path.join(work, comp);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.db'))) {
      let db: Database.Database | undefined;
      try {
        db = openRo(path.join(dir, f));
        if (!db || !hasTable(db, 'alarm_active')) continue;
        for (const m of db.prepare('SELECT message FROM alarm_active').pluck().all() as string[]) {
          const a = JSON.parse(m) as AlarmMessage;
          if (seen.has(a.alarmId)) continue;
          seen.add(a.alarmId);
          out.push(a);
        }
      } catch {
        // Not a SQLite file, or one being made: it has no alarms to show.
      } finally {
        db?.close();
      }
    }
  }
  return out.sort((a, b) => b.ts - a.ts);
}

export interface DeviceFreshness {
  assetId: string;
  newestTs: number | null;
}

/** Newest sample of each asset in the Processor's store (looks back `lookBackMs`). */
export async function readDevices(storeFile: string, now: number, lookBackMs = 3600_000): Promise<DeviceFreshness[] | undefined> {
  if (!fs.existsSync(storeFile)) return undefined;
  const { openStoreReader } = await import('../../components/lib/store');
  const reader = openStoreReader(storeFile);
  try {
    const newest = new Map<string, number | null>();
    for (const s of reader.listSeries()) {
      if (!newest.has(s.assetId)) newest.set(s.assetId, null);
      const got = reader.range(s, now - lookBackMs, now + 60_000);
      const last = got[got.length - 1];
      if (last && last.ts > (newest.get(s.assetId) ?? -Infinity)) newest.set(s.assetId, last.ts);
    }
    return [...newest].map(([assetId, newestTs]) => ({ assetId, newestTs })).sort((a, b) => a.assetId.localeCompare(b.assetId));
  } finally {
    reader.close();
  }
}

export interface OutboxSummary {
  records: Record<string, number>;
  batches: number;
  pending: Record<string, number>;
  oldestPendingAt: number | null;
  dropped: Record<string, number>;
  bytes: number;
}

export function readOutbox(file: string): OutboxSummary | undefined {
  let db: Database.Database | undefined;
  try {
    db = openRo(file);
    if (!db || !hasTable(db, 'records')) return undefined;
    const records: Record<string, number> = {};
    for (const r of db.prepare('SELECT class, COUNT(*) n FROM records GROUP BY class').all() as Array<{ class: number; n: number }>) records[OUTBOX_CLASSES[r.class] ?? String(r.class)] = r.n;
    const pending: Record<string, number> = {};
    for (const r of db.prepare('SELECT exporter, COUNT(*) n FROM deliveries GROUP BY exporter').all() as Array<{ exporter: number; n: number }>) pending[OUTBOX_EXPORTERS[r.exporter] ?? String(r.exporter)] = r.n;
    const oldest = db.prepare('SELECT MIN(b.created_at) FROM deliveries d JOIN batches b ON b.id = d.batch_id').pluck().get() as number | null;
    const dropped = Object.fromEntries((db.prepare('SELECT reason, n FROM dropped').all() as Array<{ reason: string; n: number }>).map((r) => [r.reason, r.n]));
    const batches = db.prepare('SELECT COUNT(*) FROM batches').pluck().get() as number;
    const bytes = (db.prepare("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM records").pluck().get() as number) + (db.prepare('SELECT COALESCE(SUM(bytes), 0) FROM batches').pluck().get() as number);
    return { records, batches, pending, oldestPendingAt: oldest, dropped, bytes };
  } finally {
    db?.close();
  }
}

export function alarmLine(a: AlarmMessage): string {
  const what = a.message ? `: ${a.message}` : a.value !== undefined && a.value !== null ? `: ${a.point ?? 'value'} ${a.value}${a.threshold !== undefined ? ` (threshold ${a.threshold})` : ''}` : '';
  return `${a.assetId} ${a.type} (${a.severity}, ${a.source}) since ${utc(a.ts)} UTC${what}`;
}

type Components = Array<{ componentName?: string; version?: string; state?: string; configuration?: Record<string, unknown> }>;

async function components(root: string): Promise<Components | string> {
  try {
    return await withNucleus(root, async (client) => {
      try {
        return ((await client.listComponents({})).components ?? []) as Components;
      } catch (e) {
        throw new Error(describeError(e));
      }
    });
  } catch (e) {
    return `not reachable (${e instanceof Error ? e.message.split('. ')[0] : String(e)})`;
  }
}

export async function runStatus(args: string[]): Promise<number> {
  const { values } = parseCommand(STATUS, args);
  const root = path.resolve(requireRoot(values));
  const staleMs = Number(values['stale-s'] ?? 60) * 1000;
  if (!Number.isFinite(staleMs) || staleMs <= 0) throw new CliUsageError('--stale-s must be a positive number of seconds');
  if (!fs.existsSync(root)) throw new Error(`no nucleus root at ${root}`);
  const now = Date.now();
  const paths = storePaths(root);
  const comps = await components(root);
  const devices = await readDevices(paths.store, now);
  const alarms = readActiveAlarms(root);
  const outbox = readOutbox(paths.outbox);

  if (values.json) {
    process.stdout.write(`${JSON.stringify({ root, components: typeof comps === 'string' ? { error: comps } : comps.map((c) => ({ name: c.componentName, version: c.version, state: c.state })), devices, activeAlarms: alarms, outbox, paths }, null, 2)}\n`);
    return 0;
  }
  const lines: string[] = [];
  const siteId = typeof comps !== 'string' ? comps.map((c) => c.configuration?.['siteId']).find((s): s is string => typeof s === 'string') : alarms[0]?.siteId;
  lines.push(`site ${siteId ?? '(unknown)'}  (nucleus root ${root})`);
  if (typeof comps === 'string') lines.push(`components: nucleus ${comps}`);
  else {
    const byState = new Map<string, string[]>();
    for (const c of comps) byState.set(c.state ?? '?', [...(byState.get(c.state ?? '?') ?? []), (c.componentName ?? '').replace(/^com\.dcmms\.edge\./, '')]);
    const bad = ['BROKEN', 'ERRORED', 'STOPPING', 'NEW', 'INSTALLED', 'STARTING'].filter((s) => byState.has(s));
    lines.push(`components: ${[...byState].map(([s, n]) => `${n.length} ${s}`).join(', ')}${bad.length ? `  (${bad.map((s) => `${s}: ${byState.get(s)!.join(', ')}`).join('; ')})` : ''}`);
  }
  if (!devices) lines.push(`devices: no store yet at ${paths.store}`);
  else {
    const fresh = devices.filter((d) => d.newestTs !== null && now - d.newestTs <= staleMs);
    const stale = devices.filter((d) => !fresh.includes(d));
    lines.push(`devices: ${devices.length}, ${fresh.length} reporting (a sample in the last ${formatDuration(staleMs)})${stale.length ? `; stale: ${stale.map((d) => `${d.assetId} (${d.newestTs === null ? 'no sample in the last hour' : `last ${formatDuration(now - d.newestTs)} ago`})`).join(', ')}` : ''}`);
  }
  const bySev = SEVERITY_ORDER.map((s) => [s, alarms.filter((a) => a.severity === s).length] as const).filter(([, n]) => n > 0);
  lines.push(`active alarms: ${alarms.length === 0 ? 'none' : `${alarms.length} (${bySev.map(([s, n]) => `${n} ${s}`).join(', ')})`}`);
  for (const a of alarms.slice(0, 5)) lines.push(`  ${alarmLine(a)}`);
  if (alarms.length > 5) lines.push(`  … ${alarms.length - 5} more: dcmms-edge alarms --root ${values.root as string}`);
  if (!outbox) lines.push(`cloud link: no Uplink outbox yet at ${paths.outbox}`);
  else {
    const waiting = Object.values(outbox.pending).reduce((a, b) => a + b, 0);
    const age = outbox.oldestPendingAt === null ? 0 : now - outbox.oldestPendingAt;
    const link = waiting === 0 ? 'nothing waiting to be sent' : age > STUCK_MS ? `NOT DELIVERING: a batch has waited ${formatDuration(age)}` : `delivering (${waiting} batch${waiting === 1 ? '' : 'es'} in flight)`;
    lines.push(`cloud link: ${link}`);
    const recs = Object.entries(outbox.records).map(([c, n]) => `${n} ${c}`).join(', ');
    const dropped = Object.entries(outbox.dropped).filter(([, n]) => n > 0);
    lines.push(`backlog: ${waiting} batch${waiting === 1 ? '' : 'es'} to send${waiting ? ` (${Object.entries(outbox.pending).map(([e, n]) => `${e} ${n}`).join(', ')})` : ''}, ${recs || '0'} record(s) not yet batched, ${(outbox.bytes / 1024).toFixed(1)} KiB${dropped.length ? `; dropped ${dropped.map(([r, n]) => `${r} ${n}`).join(', ')}` : ''}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

export async function runAlarms(args: string[]): Promise<number> {
  const { values } = parseCommand(ALARMS, args);
  const root = path.resolve(requireRoot(values));
  if (!fs.existsSync(path.join(root, 'work'))) throw new Error(`no component work folders under ${root} (is it a nucleus root? the demo's is .nucleus)`);
  const alarms = readActiveAlarms(root).filter((a) => !values.asset || a.assetId === values.asset);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(alarms, null, 2)}\n`);
    return 0;
  }
  if (alarms.length === 0) {
    process.stdout.write('no active alarms\n');
    return 0;
  }
  const rows = alarms.map((a) => [utc(a.ts), a.severity, a.assetId, a.type, a.source, a.alarmId, a.message ?? (a.value !== undefined && a.value !== null ? `${a.point ?? 'value'} ${a.value}` : '')]);
  process.stdout.write(table(['SINCE (UTC)', 'SEVERITY', 'ASSET', 'TYPE', 'SOURCE', 'ALARM ID', 'MESSAGE'], rows));
  return 0;
}

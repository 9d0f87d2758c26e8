/**
 * `dcmms-edge analytics`: what Analytics computed last, per asset and kind, and its active alarms,
 * as a table (docs/analytics-component.md "The command line").
 *
 *   analytics --db FILE | --root DIR [--asset A] [--kind K] [--json]
 *
 * Reads Analytics's own SQLite file with a read-only connection (safe while the component writes):
 * `--db` names it, `--root` finds it in a local nucleus's work folder
 * (DIR/work/com.dcmms.edge.Analytics/analytics.db, the default dbPath).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CliUsageError, parseCommand } from './args';
import { ANALYTICS } from './commands';

const DB_IN_ROOT = ['work', 'com.dcmms.edge.Analytics', 'analytics.db'];

function fmt(v: number | null, u: string | null): string {
  if (v === null) return '-';
  const digits = Math.abs(v) >= 100 ? 1 : Math.abs(v) >= 10 ? 2 : 3;
  return `${v.toFixed(digits)}${u ? ` ${u}` : ''}`;
}

/** A short note per kind: the reason for a null, or the detail an operator looks at first. */
function note(kind: string, value: number | null, d: Record<string, unknown>): string {
  const reason = d['reason'];
  if (value === null) return typeof reason === 'string' ? `(${reason})` : '';
  const parts: string[] = [];
  const day = d['day'] as { value?: number | null; reason?: string | null } | string | undefined;
  switch (kind) {
    case 'performance_ratio':
    case 'performance_ratio_temp_corrected':
      if (day && typeof day === 'object') parts.push(`day ${day.value === null || day.value === undefined ? `- (${day.reason ?? ''})` : `${day.value.toFixed(1)} %`}`);
      if (typeof d['coverage'] === 'number') parts.push(`coverage ${((d['coverage'] as number) * 100).toFixed(0)} %`);
      if (d['availability']) parts.push(`availability ${fmt((d['availability'] as { value: number | null }).value, '%')}`);
      break;
    case 'string_imbalance':
      if (Array.isArray(d['flagged']) && d['flagged'].length > 0) parts.push(`flagged ${(d['flagged'] as string[]).join(', ')}`);
      if (d['worstString'] !== undefined) parts.push(`worst string ${String(d['worstString'])}`);
      break;
    case 'tracker_deviation':
      parts.push(`actual ${String(d['actualDeg'])}°, ideal ${String(d['idealDeg'])}°${d['backtracking'] ? ' (backtracking)' : ''}`);
      break;
    case 'soiling': {
      if (d['lossKWh'] !== undefined) parts.push(`loss ${String(d['lossKWh'])} kWh / ${String(d['lossMoney'])} ${String(d['currency'] ?? '')}`);
      const c = d['cleaning'] as { recommend?: boolean } | undefined;
      if (c) parts.push(c.recommend ? 'cleaning pays' : 'no cleaning yet');
      break;
    }
    case 'health_score':
      if (Array.isArray(d['missing']) && d['missing'].length > 0) parts.push(`without ${(d['missing'] as string[]).join(', ')}`);
      break;
    case 'iv_curve':
      if (d['classification']) parts.push(`string ${String(d['string'])}: ${String(d['classification'])}`);
      break;
  }
  return parts.join('; ');
}

export async function runAnalytics(args: string[]): Promise<number> {
  const { values } = parseCommand(ANALYTICS, args);
  const db = (values['db'] as string | undefined) ?? (values['root'] ? path.join(values['root'] as string, ...DB_IN_ROOT) : undefined);
  if (!db) throw new CliUsageError('analytics needs --db FILE (Analytics\'s database) or --root DIR (a local nucleus: DIR/work/com.dcmms.edge.Analytics/analytics.db)');
  if (!fs.existsSync(db)) {
    process.stderr.write(`no Analytics database at ${db} (has com.dcmms.edge.Analytics run there?)\n`);
    return 1;
  }
  const { readAnalyticsDb } = await import('../../components/analytics/db');
  const { results, activeAlarms } = readAnalyticsDb(db);
  const rows = results.filter((r) => (!values['asset'] || r.assetId === values['asset']) && (!values['kind'] || r.kind === values['kind']));
  if (values['json']) {
    process.stdout.write(JSON.stringify({ results: rows, activeAlarms }) + '\n');
    return 0;
  }
  const table = rows.map((r) => [r.assetId, r.kind, fmt(r.value, r.u), new Date(r.ts).toISOString().slice(0, 19).replace('T', ' '), note(r.kind, r.value, r.details)]);
  const head = ['asset', 'kind', 'value', 'at (UTC)', 'notes'];
  const widths = head.map((h, k) => Math.max(h.length, ...table.map((row) => row[k]!.length)));
  const line = (cells: string[]): string => cells.map((c, k) => (k === cells.length - 1 ? c : c.padEnd(widths[k]!))).join('  ').trimEnd();
  process.stdout.write(`${line(head)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const row of table) process.stdout.write(`${line(row)}\n`);
  const alarms = activeAlarms.filter((a) => !values['asset'] || a['assetId'] === values['asset']);
  process.stdout.write(`\nactive alarms: ${alarms.length === 0 ? 'none' : ''}\n`);
  for (const a of alarms) process.stdout.write(`  ${String(a['assetId'])}  ${String(a['type'])} (${String(a['severity'])}) since ${new Date(a['ts'] as number).toISOString().slice(0, 19).replace('T', ' ')}: ${String(a['message'] ?? '')}\n`);
  return 0;
}

/**
 * `dcmms-edge query`: read one series from the raw store on a gateway, for troubleshooting.
 * Opens the database read-only, so it is safe while the Processor writes (WAL).
 *
 *   dcmms-edge query --db FILE --asset A --point P --from ISO --to ISO [--downsample 1m:avg] [--json|--csv]
 *   dcmms-edge query --db FILE --list
 */
import fs from 'node:fs';
import { openStoreReader, type DownsampleAgg, type Sample, type StoreReader } from '../../components/lib/store';
import { CliUsageError, parseCommand } from './args';
import { QUERY } from './commands';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };
const AGGS: readonly DownsampleAgg[] = ['avg', 'min', 'max', 'last'];

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!m) throw new CliUsageError(`bad duration '${text}' (e.g. 500ms, 10s, 1m, 1h, 1d)`);
  const ms = Number(m[1]) * (UNITS[m[2] as string] as number);
  if (ms <= 0) throw new CliUsageError(`duration '${text}' must be positive`);
  return ms;
}

export function parseTime(text: string, flag: string, now = Date.now()): number {
  // ISO 8601, plain epoch milliseconds (what the logs and payloads carry), or now / now-10m (a person at a shell).
  const rel = /^now(?:-(\d+(?:ms|s|m|h|d)))?$/.exec(text);
  if (rel) return now - (rel[1] ? parseDuration(rel[1]) : 0);
  const t = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(t)) throw new CliUsageError(`--${flag}: '${text}' is not an ISO time, epoch ms, now or now-<duration> (e.g. now-10m)`);
  return t;
}

function str(v: unknown, flag: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new CliUsageError(`--${flag} is required`);
  return v;
}

function format(samples: Sample[], mode: 'json' | 'csv' | 'text', downsampled: boolean, unit: string | null): string {
  if (mode === 'json') return `${JSON.stringify(samples.map((s) => ({ time: new Date(s.ts).toISOString(), ...s, ...(unit ? { unit } : {}) })))}\n`;
  const lines: string[] = [];
  if (mode === 'csv') {
    const value = unit ? `value (${unit})` : 'value';
    lines.push(downsampled ? `time,ts,${value},quality,count` : `time,ts,${value},quality`);
    for (const s of samples) lines.push([new Date(s.ts).toISOString(), s.ts, s.v ?? '', s.q, ...(downsampled ? [s.n ?? 0] : [])].join(','));
  } else {
    const u = unit ? ` ${unit}` : '';
    for (const s of samples) lines.push(`${new Date(s.ts).toISOString()}  ${`${String(s.v ?? 'null')}${s.v === null ? '' : u}`.padStart(16)}  ${s.q}${downsampled ? `  n=${s.n ?? 0}` : ''}`);
    lines.push(`${samples.length} ${downsampled ? 'buckets' : 'samples'}${unit ? ` (unit ${unit})` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Opens the store read-only, or says which file could not be opened and why. */
function open(db: string): StoreReader {
  if (!fs.existsSync(db)) throw new Error(`cannot open the store ${db}: no such file (the demo's is .nucleus/work/com.dcmms.edge.Processor/raw.db)`);
  try {
    return openStoreReader(db);
  } catch (e) {
    throw new Error(`cannot open the store ${db}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export async function runQuery(args: string[]): Promise<number> {
  const { values } = parseCommand(QUERY, args);
  const db = str(values.db, 'db');
  if (values.json && values.csv) throw new CliUsageError('--json and --csv exclude each other');
  const mode = values.json ? 'json' : values.csv ? 'csv' : 'text';
  if (values.list) {
    const reader = open(db);
    try {
      const list = reader.listSeries();
      process.stdout.write(mode === 'json' ? `${JSON.stringify(list)}\n` : list.map((s) => `${s.assetId}\t${s.point}${s.unit ? `\t${s.unit}` : ''}`).join('\n') + (list.length ? '\n' : ''));
    } finally {
      reader.close();
    }
    return 0;
  }
  const key = { assetId: str(values.asset, 'asset'), point: str(values.point, 'point') };
  const from = parseTime(str(values.from, 'from'), 'from');
  const to = parseTime(str(values.to, 'to'), 'to');
  if (to < from) throw new CliUsageError('--to is before --from');
  let downsample: { bucketMs: number; agg: DownsampleAgg } | undefined;
  if (typeof values.downsample === 'string') {
    const [d, agg = 'avg'] = values.downsample.split(':');
    if (!AGGS.includes(agg as DownsampleAgg)) throw new CliUsageError(`--downsample aggregate must be one of ${AGGS.join(', ')}`);
    downsample = { bucketMs: parseDuration(d ?? ''), agg: agg as DownsampleAgg };
  }
  const reader = open(db);
  try {
    const series = reader.listSeries().find((s) => s.assetId === key.assetId && s.point === key.point);
    if (!series) {
      const points = reader.listSeries().filter((s) => s.assetId === key.assetId).map((s) => s.point);
      process.stderr.write(
        `no series ${key.assetId} ${key.point} in ${db}: ${points.length ? `${key.assetId} has ${points.slice(0, 12).join(', ')}${points.length > 12 ? ', …' : ''}` : `no asset ${key.assetId}`} ('dcmms-edge query --db ${db} --list' lists every series)\n`,
      );
      return 1;
    }
    const samples = reader.range(key, from, to, downsample ? { downsample } : {});
    process.stdout.write(format(samples, mode, downsample !== undefined, series.unit));
  } finally {
    reader.close();
  }
  return 0;
}

/**
 * `dcmms-edge query`: read one series from the raw store on a gateway, for troubleshooting.
 * Opens the database read-only, so it is safe while the Processor writes (WAL).
 *
 *   dcmms-edge query --db FILE --asset A --point P --from ISO --to ISO [--downsample 1m:avg] [--json|--csv]
 *   dcmms-edge query --db FILE --list
 */
import { openStoreReader, type DownsampleAgg, type Sample } from '../../components/lib/store';
import { CliUsageError, parse } from './args';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };
const AGGS: readonly DownsampleAgg[] = ['avg', 'min', 'max', 'last'];

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!m) throw new CliUsageError(`bad duration '${text}' (e.g. 500ms, 10s, 1m, 1h, 1d)`);
  const ms = Number(m[1]) * (UNITS[m[2] as string] as number);
  if (ms <= 0) throw new CliUsageError(`duration '${text}' must be positive`);
  return ms;
}

export function parseTime(text: string, flag: string): number {
  // Accept ISO 8601 or plain epoch milliseconds (what the logs and payloads carry).
  const t = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(t)) throw new CliUsageError(`--${flag}: '${text}' is not an ISO time or epoch ms`);
  return t;
}

function str(v: unknown, flag: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new CliUsageError(`--${flag} is required`);
  return v;
}

function format(samples: Sample[], mode: 'json' | 'csv' | 'text', downsampled: boolean): string {
  if (mode === 'json') return `${JSON.stringify(samples.map((s) => ({ time: new Date(s.ts).toISOString(), ...s })))}\n`;
  const lines: string[] = [];
  if (mode === 'csv') {
    lines.push(downsampled ? 'time,ts,value,quality,count' : 'time,ts,value,quality');
    for (const s of samples) lines.push([new Date(s.ts).toISOString(), s.ts, s.v ?? '', s.q, ...(downsampled ? [s.n ?? 0] : [])].join(','));
  } else {
    for (const s of samples) lines.push(`${new Date(s.ts).toISOString()}  ${String(s.v ?? 'null').padStart(14)}  ${s.q}${downsampled ? `  n=${s.n ?? 0}` : ''}`);
    lines.push(`${samples.length} ${downsampled ? 'buckets' : 'samples'}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function runQuery(args: string[]): Promise<number> {
  const { values } = parse(args, {
    db: { type: 'string' },
    asset: { type: 'string' },
    point: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    downsample: { type: 'string' },
    json: { type: 'boolean' },
    csv: { type: 'boolean' },
    list: { type: 'boolean' },
  });
  const db = str(values.db, 'db');
  if (values.json && values.csv) throw new CliUsageError('--json and --csv exclude each other');
  const mode = values.json ? 'json' : values.csv ? 'csv' : 'text';
  if (values.list) {
    const reader = openStoreReader(db);
    try {
      const list = reader.listSeries();
      process.stdout.write(mode === 'json' ? `${JSON.stringify(list)}\n` : list.map((s) => `${s.assetId}\t${s.point}`).join('\n') + (list.length ? '\n' : ''));
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
  const reader = openStoreReader(db);
  try {
    const samples = reader.range(key, from, to, downsample ? { downsample } : {});
    process.stdout.write(format(samples, mode, downsample !== undefined));
  } finally {
    reader.close();
  }
  return 0;
}

/**
 * What the demo prints about the cloud side and the local HMI, as one readable line each: the
 * Uplink's gzip batches summarised (kind, items, first alarm), the health summary with why it is
 * degraded, the Uplink's link status, and LocalHmi's address and first-start credential.
 * Pure functions over payloads and files, so they are tested without running the demo.
 */
import fs from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { AlarmMessage, SiteHealthSummary, UplinkBatch, UplinkStatus } from '../../components/lib/contract';
import { clip } from '../../components/lib/text';

const GZIP_MAGIC = [0x1f, 0x8b];
const MAX_RAW = 200;

/** The JSON in a payload, gunzipped first when it is gzip (Uplink batches). */
export function decodePayload(payload: Buffer): { json?: unknown; gzip: boolean; bytes: number; text?: string } {
  const gzip = payload.length > 2 && payload[0] === GZIP_MAGIC[0] && payload[1] === GZIP_MAGIC[1];
  let text: string;
  try {
    text = (gzip ? gunzipSync(payload) : payload).toString('utf8');
  } catch {
    return { gzip, bytes: payload.length };
  }
  try {
    return { json: JSON.parse(text) as unknown, gzip, bytes: payload.length, text };
  } catch {
    // Uplink batches may be NDJSON (one record a line) in S3; on MQTT they are one JSON document.
    return { gzip, bytes: payload.length, text };
  }
}

export function alarmText(a: AlarmMessage): string {
  const transition = a.transition ?? a.state;
  const value = a.value !== undefined && a.value !== null ? ` ${a.point ? `${a.point} ` : ''}${Math.round(a.value * 1000) / 1000}${a.threshold !== undefined ? ` (threshold ${a.threshold})` : ''}` : '';
  return `${a.assetId} ${a.type} ${transition} (${a.severity}, ${a.source})${a.message ? `: ${a.message}` : value ? `:${value}` : ''}`;
}

const isAlarm = (x: unknown): x is AlarmMessage => typeof x === 'object' && x !== null && typeof (x as AlarmMessage).alarmId === 'string' && typeof (x as AlarmMessage).type === 'string';

/** What a batch item is, by the contract payload's own fields (components/lib/contract/payloads.ts). */
function itemKind(item: unknown): string {
  if (isAlarm(item)) return 'alarm';
  const o = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
  if (typeof o['decisionId'] === 'string') return 'control decision';
  if (typeof o['commandId'] === 'string' && typeof o['status'] === 'string') return 'control result';
  if (typeof o['model'] === 'string') return 'ML result';
  if (typeof o['kind'] === 'string' && 'value' in o) return 'analytics';
  if (typeof o['state'] === 'string' && 'consecutiveFailures' in o) return 'device status';
  if (typeof o['interval'] === 'string' && 'series' in o) return 'rollup';
  if (typeof o['day'] === 'string') return 'daily summary';
  return 'other';
}

/** `kind`, item count and what the items are; the first alarm of an alarm batch in full. */
export function batchSummary(b: UplinkBatch, bytes: number, gzip: boolean): string {
  const kinds = new Map<string, number>();
  for (const item of b.items) {
    const k = itemKind(item);
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  const what = [...kinds].map(([k, n]) => `${n} ${k}`).join(', ');
  const first = b.items.find(isAlarm);
  return `${b.kind}${b.interval ? ` ${b.interval}` : ''} batch #${b.seq}: ${b.items.length} item${b.items.length === 1 ? '' : 's'} (${what})${first ? `; first alarm ${alarmText(first)}` : ''} [${bytes} B${gzip ? ' gzip' : ''}]`;
}

/** Why a component is degraded: its own last error, or its newest warning in its log. */
export function degradedReason(summary: SiteHealthSummary['components'][number], logFile?: string): string | undefined {
  const le = summary.metrics?.lastError;
  if (le?.message) return le.message;
  if (!logFile) return undefined;
  const line = lastWarning(logFile);
  return line;
}

/** A component log line: the runtime prefixes the component's JSON with its time and stream. */
function jsonOf(line: string): Record<string, unknown> {
  return JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>;
}

/** The newest warn or error line of a component's log (its last 64 KiB), as msg and its detail. */
export function lastWarning(logFile: string): string | undefined {
  let text: string;
  try {
    const fd = fs.openSync(logFile, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const n = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(n);
      fs.readSync(fd, buf, 0, n, size - n);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const lines = text.split('\n').reverse();
  for (const l of lines) {
    if (!l.includes('"level":"warn"') && !l.includes('"level":"error"')) continue;
    try {
      const r = jsonOf(l);
      const detail = r['err'] ?? r['reason'] ?? r['file'];
      const at = typeof r['time'] === 'string' ? ` [logged ${r['time'].slice(11, 19)}]` : '';
      return `${String(r['msg'])}${detail !== undefined ? ` (${typeof detail === 'string' ? detail : JSON.stringify(detail)})` : ''}${at}`;
    } catch {
      continue;
    }
  }
  return undefined;
}

/** One line for the site's health summary: its status, and for each issue the component and why. */
export function healthSummary(h: SiteHealthSummary, logFileOf: (componentName: string) => string | undefined = () => undefined): string {
  if (h.issues.length === 0) return `health: ${h.status}`;
  const parts = h.issues.map((i) => {
    const c = i.component ? h.components.find((s) => s.component === i.component) : undefined;
    if (i.code === 'COMPONENT_DEGRADED' && c) {
      const why = degradedReason(c, c.componentName ? logFileOf(c.componentName) : undefined);
      return `${i.component} degraded${why ? `: ${clip(why, MAX_REASON)}` : ''}`;
    }
    return i.message;
  });
  return clip(`health: ${h.status} because ${parts.join('; ')}`, MAX_LINE);
}

/** One reason and one line stay readable in a terminal; `dcmms-edge status` shows the whole. */
const MAX_REASON = 160;
const MAX_LINE = 400;

export function uplinkStatusSummary(s: UplinkStatus): string {
  const ex = Object.entries(s.exporters)
    .filter(([, e]) => e.state !== 'disabled')
    .map(([name, e]) => `${name} ${e.state}${e.backlogBatches ? `, ${e.backlogBatches} batch${e.backlogBatches === 1 ? '' : 'es'} waiting` : ''}${e.state === 'offline' && e.lastError ? ` (${e.lastError})` : ''}`);
  const dropped = Object.entries(s.dropped ?? {}).filter(([, n]) => n > 0);
  return `uplink: ${ex.join('; ') || 'no exporter enabled'}; outbox ${(s.outboxBytes / 1024).toFixed(1)} KiB${dropped.length ? `; dropped ${dropped.map(([r, n]) => `${r} ${n}`).join(', ')}` : ''}`;
}

/**
 * One line for a message that reached the cloud. Health and the Uplink's status are returned with
 * a `key` the caller prints only when it changes (they repeat every few seconds).
 */
export function describeCloudMessage(topic: string, payload: Buffer, logFileOf?: (componentName: string) => string | undefined): { line: string; key?: string } {
  const r = describe(topic, payload, logFileOf);
  return { ...r, line: clip(r.line, MAX_LINE) };
}

function describe(_topic: string, payload: Buffer, logFileOf?: (componentName: string) => string | undefined): { line: string; key?: string } {
  const d = decodePayload(payload);
  const j = d.json as Record<string, unknown> | undefined;
  if (j && Array.isArray(j['items']) && typeof j['kind'] === 'string') return { line: batchSummary(j as unknown as UplinkBatch, d.bytes, d.gzip) };
  if (j && typeof j['status'] === 'string' && Array.isArray(j['issues'])) {
    const h = j as unknown as SiteHealthSummary;
    // Printed when the status or the set of issues changes, not when a figure in them moves (CPU 97 % -> 98 %).
    return { line: healthSummary(h, logFileOf), key: `health:${h.status}:${h.issues.map((i) => `${i.code}/${i.component ?? ''}`).join(',')}` };
  }
  if (j && typeof j['exporters'] === 'object' && j['exporters'] !== null) {
    const u = j as unknown as UplinkStatus;
    // Printed when an exporter's state changes, a backlog builds up (more than 10 batches, as in an
    // outage) or drains, or something is dropped; not for each batch sent.
    const key = Object.entries(u.exporters ?? {}).map(([n, e]) => `${n}:${e.state}:${e.backlogBatches > 10}`).join(',') + `:${Object.values(u.dropped ?? {}).reduce((a, b) => a + b, 0)}`;
    return { line: uplinkStatusSummary(u), key: `uplink:${key}` };
  }
  if (d.text !== undefined && !d.gzip && /^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/.test(d.text)) return { line: d.text.length > MAX_RAW ? `${d.text.slice(0, MAX_RAW)}…` : d.text };
  return { line: `${d.bytes} bytes${d.gzip ? ' (gzip)' : ''} of binary data` };
}

/** LocalHmi's first-start line (components/local-hmi): where it listens and the admin credential, shown once. */
export const HMI_FIRST_START_MSG = 'first start: admin credential created (shown once)';

export interface HmiInfo {
  /** Where it listens (its newest `listening` or first-start line). */
  url: string;
  /** The first-start credential, when its line is in the log. */
  credential?: { username: string; password: string; at: string };
}

/** LocalHmi's address and first-start credential from its log, if it has logged them. */
export function readHmiInfo(logFile: string): HmiInfo | undefined {
  let text: string;
  try {
    text = fs.readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  let url: string | undefined;
  let credential: HmiInfo['credential'];
  for (const l of text.split('\n')) {
    if (!l.includes('"url"')) continue;
    let r: Record<string, unknown>;
    try {
      r = jsonOf(l);
    } catch {
      continue;
    }
    if (typeof r['url'] !== 'string') continue;
    if (r['msg'] === HMI_FIRST_START_MSG && typeof r['username'] === 'string' && typeof r['password'] === 'string') {
      credential = { username: r['username'], password: r['password'], at: typeof r['time'] === 'string' ? r['time'] : '' };
      url = r['url'];
    } else if (r['msg'] === 'listening') url = r['url'];
  }
  return url === undefined ? undefined : { url, ...(credential ? { credential } : {}) };
}

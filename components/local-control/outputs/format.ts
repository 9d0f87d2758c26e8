/**
 * What a person reads: the e-mail's subject and plain-text body, and the SMS text
 * (docs/local-control-outputs.md "What the messages say"). Pure functions.
 */
import type { AlarmMessage, Severity } from '../../lib/contract';
import { severityRank, transitionOf } from './routing';
import type { Notification } from './types';

export interface FormatContext {
  siteId: string;
  siteName: string;
  escalateAfterMs: number;
}

function iso(ts: number): string {
  return Number.isFinite(ts) ? new Date(ts).toISOString() : String(ts);
}

/** 6 significant digits, no exponent for everyday magnitudes, no trailing zeros. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return String(Number(v.toPrecision(6)));
}

export function formatDuration(ms: number): string {
  if (ms % 3600_000 === 0) return `${ms / 3600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)} s`;
}

function highest(ns: readonly Notification[]): Severity {
  let best = ns[0]!.alarm.severity;
  for (const n of ns) if (severityRank(n.alarm.severity) < severityRank(best)) best = n.alarm.severity;
  return best;
}

function what(n: Notification): string {
  return n.kind === 'escalation' ? 'NOT ACKNOWLEDGED' : transitionOf(n.alarm).toUpperCase();
}

/**
 * `[plant-7] CRITICAL raised: INV-01 over_temperature` for one, `[plant-7] 3 alarm notifications,
 * highest CRITICAL (2 raised, 1 cleared)` for several: site, count and highest severity first, so a
 * phone's notification line shows what matters.
 */
export function mailSubject(ns: readonly Notification[], ctx: FormatContext): string {
  const site = `[${ctx.siteName}]`;
  if (ns.length === 1) {
    const n = ns[0]!;
    const a = n.alarm;
    if (n.kind === 'escalation') return `${site} ESCALATION ${a.severity.toUpperCase()} not acknowledged for ${formatDuration(ctx.escalateAfterMs)}: ${a.assetId} ${a.type}`;
    return `${site} ${a.severity.toUpperCase()} ${transitionOf(a)}: ${a.assetId} ${a.type}`;
  }
  const counts = new Map<string, number>();
  for (const n of ns) {
    const k = n.kind === 'escalation' ? 'escalated' : transitionOf(n.alarm);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const parts = ['escalated', 'raised', 'updated', 'cleared'].filter((k) => counts.has(k)).map((k) => `${counts.get(k)} ${k}`);
  return `${site} ${ns.length} alarm notifications, highest ${highest(ns).toUpperCase()} (${parts.join(', ')})`;
}

function valueLine(a: AlarmMessage): string | undefined {
  const bits: string[] = [];
  if (a.value !== undefined) bits.push(a.value === null ? 'no value' : formatNumber(a.value));
  if (a.threshold !== undefined) bits.push(`threshold ${formatNumber(a.threshold)}`);
  if (a.point !== undefined) bits.push(`point ${a.point}`);
  return bits.length ? bits.join(', ') : undefined;
}

/** Plain text, one block per transition, most important first, then oldest first. */
export function mailBody(ns: readonly Notification[], ctx: FormatContext): string {
  const order = [...ns].sort((x, y) => severityRank(x.alarm.severity) - severityRank(y.alarm.severity) || x.alarm.ts - y.alarm.ts || x.id - y.id);
  const lines: string[] = [];
  lines.push(`Site ${ctx.siteName}${ctx.siteName !== ctx.siteId ? ` (${ctx.siteId})` : ''}: ${ns.length} alarm notification${ns.length === 1 ? '' : 's'}, highest severity ${highest(ns)}.`, '');
  order.forEach((n, i) => {
    const a = n.alarm;
    lines.push(`${i + 1}. ${a.severity.toUpperCase()} ${what(n)}: ${a.assetId} ${a.type}`);
    const field = (k: string, v: string | undefined): void => {
      if (v !== undefined) lines.push(`   ${`${k}:`.padEnd(12)}${v}`);
    };
    field('Time', iso(a.ts));
    field('Site', a.siteId);
    field('Asset', a.assetId);
    field('Type', a.type);
    field('Severity', a.severity);
    field('Transition', `${transitionOf(a)}${a.transitionSeq !== undefined ? ` (#${a.transitionSeq})` : ''}`);
    if (n.kind === 'escalation') field('Escalation', `raised and not acknowledged for ${formatDuration(ctx.escalateAfterMs)}`);
    field('Value', valueLine(a));
    field('Message', a.message);
    field('Alarm id', a.alarmId);
    field('Source', a.source);
    lines.push('');
  });
  lines.push('-- ', `dCMMS edge gateway of site ${ctx.siteId}`, 'local alarm outputs (work without the cloud)');
  return lines.join('\n') + '\n';
}

// --- SMS ---------------------------------------------------------------------------------------

/** Septets in one SMS of the GSM 7-bit default alphabet (3GPP TS 23.038 §6.1.2.1). */
export const SMS_SEPTETS = 160;
/** These take two septets each: an escape to the extension table, then the character (TS 23.038 §6.2.1.1). */
const GSM_EXTENSION = new Set(['^', '{', '}', '\\', '[', ']', '~', '|']);

/**
 * The text as the modem can carry it. We send in the IRA (ASCII) character set (AT+CSCS="IRA", 3GPP
 * TS 27.007 §5.5), so the text is kept to printable ASCII: accents are taken off (é -> e), ß ->
 * ss, æ -> ae, ø -> o, ` (not in GSM 7-bit) -> ', line breaks and controls (Ctrl-Z would end
 * the message, ESC cancel it) -> space, anything else -> ?.
 */
export function toGsmAscii(s: string): string {
  const mapped = s
    .replace(/ß/g, 'ss')
    .replace(/[æÆ]/g, (c) => (c === 'æ' ? 'ae' : 'AE'))
    .replace(/[øØ]/g, (c) => (c === 'ø' ? 'o' : 'O'))
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '');
  let out = '';
  for (const ch of mapped) {
    const c = ch.codePointAt(0)!;
    if (ch === '`') out += "'";
    else if (c < 0x20 || c === 0x7f) out += ' ';
    else if (c > 0x7e) out += '?';
    else out += ch;
  }
  return out.replace(/ {2,}/g, ' ');
}

export function septets(s: string): number {
  let n = 0;
  for (const ch of s) n += GSM_EXTENSION.has(ch) ? 2 : 1;
  return n;
}

/** The longest prefix of `s` with at most `max` septets. */
function cut(s: string, max: number): string {
  let n = 0;
  let i = 0;
  for (const ch of s) {
    const w = GSM_EXTENSION.has(ch) ? 2 : 1;
    if (n + w > max) break;
    n += w;
    i += ch.length;
  }
  return s.slice(0, i);
}

/** A piece of at most `max` septets, ending at a space when one is in its last quarter. */
function piece(s: string, max: number): string {
  const p = cut(s, max);
  if (p.length === s.length) return p;
  const sp = p.lastIndexOf(' ');
  return sp >= p.length * 0.75 ? p.slice(0, sp + 1) : p;
}

const ELLIPSIS = '..';

/**
 * One SMS (maxParts 1): at most 160 septets, cut with `..`. Several: at most maxParts messages of
 * 160 septets each, numbered `(1/2) `, the last one cut with `..` if the text is longer still.
 * Text mode cannot send a concatenated SMS (that needs a user data header, PDU mode), so parts
 * arrive as separate messages, possibly out of order: hence the numbers.
 */
export function splitSms(text: string, maxParts: number): string[] {
  const t = toGsmAscii(text).trim();
  if (septets(t) <= SMS_SEPTETS) return [t];
  if (maxParts <= 1) return [cut(t, SMS_SEPTETS - ELLIPSIS.length).trimEnd() + ELLIPSIS];
  const prefixLen = (i: number, n: number): number => `(${i}/${n}) `.length;
  // How many parts are needed (recomputed because the prefix length depends on n, at most 9 here).
  let n = 2;
  for (; n < maxParts; n++) {
    let rest = t;
    for (let i = 1; i <= n && rest; i++) rest = rest.slice(piece(rest, SMS_SEPTETS - prefixLen(i, n)).length).trimStart();
    if (!rest) break;
  }
  const parts: string[] = [];
  let rest = t;
  for (let i = 1; i <= n && rest; i++) {
    const room = SMS_SEPTETS - prefixLen(i, n);
    let p = piece(rest, room);
    rest = rest.slice(p.length).trimStart();
    if (i === n && rest) p = cut(p, room - ELLIPSIS.length).trimEnd() + ELLIPSIS;
    parts.push(`(${i}/${n}) ${p.trimEnd()}`);
  }
  // Fewer pieces than announced (rare: words fitted better): renumber.
  return parts.length === n ? parts : parts.map((p, i) => p.replace(/^\(\d+\/\d+\) /, `(${i + 1}/${parts.length}) `));
}

/**
 * The SMS text, most important first so a cut loses the least: severity and transition, asset,
 * type, value and threshold, site, time (UTC, to the second), then the free-text message.
 */
export function smsText(n: Notification, ctx: FormatContext): string {
  const a = n.alarm;
  const head = n.kind === 'escalation' ? `ESCALATION ${a.severity.toUpperCase()} not acked ${formatDuration(ctx.escalateAfterMs).replace(' ', '')}` : `${a.severity.toUpperCase()} ${transitionOf(a).toUpperCase()}`;
  const bits = [head, a.assetId, a.type];
  if (a.value !== undefined && a.value !== null) bits.push(`v=${formatNumber(a.value)}${a.threshold !== undefined ? ` thr=${formatNumber(a.threshold)}` : ''}`);
  else if (a.threshold !== undefined) bits.push(`thr=${formatNumber(a.threshold)}`);
  bits.push(`site ${ctx.siteName}`, iso(a.ts).replace(/\.\d{3}Z$/, 'Z'));
  return bits.join(' ') + (a.message ? `: ${a.message}` : '');
}

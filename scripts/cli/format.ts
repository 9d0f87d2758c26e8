/** Small text formats the CLI's commands share: aligned tables, durations, times. */

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => (r[k] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, k) => (k === cells.length - 1 ? c : c.padEnd(widths[k]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

/** 42s, 5m 03s, 2h 07m, 3d 04h. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const p = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${p(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${p(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d ${p(Math.floor(s / 3600) % 24)}h`;
}

/** 2026-12-03 17:02:25 (UTC). */
export function utc(ts: number): string {
  return new Date(ts).toISOString().slice(0, 19).replace('T', ' ');
}

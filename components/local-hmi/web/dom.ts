/// <reference lib="dom" />
/**
 * Building the DOM without innerHTML: every text from the server goes in as a text node, so an
 * asset name or alarm message can never become markup (and the CSP forbids inline script anyway).
 */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((ev: Event) => void)>;

/** h('button', { class: 'primary', onclick: fn }, 'Acknowledge') */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el: HTMLElement, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces an element's children. */
export function replace(el: HTMLElement, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

const DASH = '–';

export function toMs(t: number | string | undefined | null): number | undefined {
  if (t === undefined || t === null) return undefined;
  const n = typeof t === 'number' ? t : Date.parse(t);
  return Number.isFinite(n) ? n : undefined;
}

/** A number with a unit, or a dash when there is none. */
export function fmt(v: number | null | undefined, unit = '', digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  return `${v.toLocaleString('en-GB', { minimumFractionDigits: digits, maximumFractionDigits: digits })}${unit ? ` ${unit}` : ''}`;
}

/** Watts as kW with two decimals: a change of 10 W shows. */
export function kw(w: number | null | undefined): string {
  return w === null || w === undefined ? DASH : fmt(w / 1000, 'kW', 2);
}

export function bytes(b: number | null | undefined): string {
  if (b === null || b === undefined || !Number.isFinite(b)) return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = b;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Local wall-clock time of the gateway's browser, seconds shown: operators compare with the plant. */
export function time(t: number | string | undefined | null): string {
  const ms = toMs(t);
  if (ms === undefined) return DASH;
  const d = new Date(ms);
  const sameDay = new Date().toDateString() === d.toDateString();
  return sameDay ? d.toLocaleTimeString('en-GB') : `${d.toLocaleDateString('en-GB')} ${d.toLocaleTimeString('en-GB')}`;
}

/** "12 s ago", "3 min ago". */
export function ago(t: number | string | undefined | null, now = Date.now()): string {
  const ms = toMs(t);
  if (ms === undefined) return DASH;
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** A coloured status word; the class carries the colour (the CSP allows no style attributes). */
export function pill(text: string, kind: string = text): HTMLSpanElement {
  return h('span', { class: `pill pill-${kind.toLowerCase().replace(/[^a-z0-9]+/g, '-')}` }, text);
}

export function duration(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return DASH;
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return d > 0 ? `${d} d ${hh} h` : hh > 0 ? `${hh} h ${mm} min` : `${mm} min ${Math.floor(s % 60)} s`;
}

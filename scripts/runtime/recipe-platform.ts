/**
 * Platform detection, manifest Platform matching and global-Lifecycle Selections
 * (Greengrass Developer Guide, "AWS IoT Greengrass component recipe reference", Manifests).
 *
 * - Detection follows config/PlatformResolver.java: os linux/darwin/windows; architecture amd64,
 *   aarch64, arm or x86; `architecture.detail` only for armv6l/armv7l/armv8l.
 * - Matching follows component-common PlatformHelper.testField: every key of the manifest Platform
 *   must match; a value is an exact label, `*` (matches anything, an absent key included), `//`
 *   (any present value), `/regex/` (whole-label match), a list of alternatives, or null (key absent).
 *   `all`/`any` are legacy wildcards for os and architecture.
 * - Selections follow PlatformResolver.filterPlatform: at any level of the global Lifecycle, a
 *   mapping whose keys include a selector keyword is replaced by the entry of the manifest's first
 *   listed selector present there, else by its `all` entry, else dropped; other mappings are
 *   filtered recursively.
 */
import os from 'node:os';
import { Obj, RecipeError, Where, isObj } from './recipe-lifecycle';

export interface Platform {
  os: string;
  architecture: string;
  [key: string]: string;
}

const OS: Partial<Record<NodeJS.Platform, string>> = { linux: 'linux', darwin: 'darwin', win32: 'windows' };
const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'aarch64', arm: 'arm', ia32: 'x86' };

export function currentPlatform(): Platform {
  const p: Platform = { os: OS[process.platform] ?? process.platform, architecture: ARCH[process.arch] ?? process.arch };
  if (p.architecture === 'arm') {
    const machine = os.machine();
    if (/^armv[678]l$/.test(machine)) p['architecture.detail'] = machine;
  }
  return p;
}

function isRegex(t: string): boolean {
  return t.length > 2 && t.startsWith('/') && t.endsWith('/');
}

function compile(t: string): RegExp {
  return new RegExp(`^(?:${t.slice(1, -1)})$`);
}

/** Check a manifest Platform at parse time: values must be strings, lists of strings or null, regexes must compile. */
export function validatePlatform(platform: Record<string, unknown>, w: Where): void {
  for (const [key, value] of Object.entries(platform)) {
    const alternatives = Array.isArray(value) ? value : [value];
    for (const t of alternatives) {
      if (t === null && !Array.isArray(value)) continue;
      if (typeof t !== 'string') {
        throw new RecipeError(`${w.source}: ${w.path}.${key} must be a label (e.g. linux), "*", "/regex/" or a list of those, got ${JSON.stringify(value)}`);
      }
      if (isRegex(t)) {
        try {
          compile(t);
        } catch (e) {
          throw new RecipeError(`${w.source}: ${w.path}.${key}: ${t} is not a valid regular expression: ${(e as Error).message}`);
        }
      }
    }
  }
}

function fieldMatches(name: string, label: string | undefined, t: unknown): boolean {
  if (t === '*') return true;
  if (t === null) return label === undefined;
  if (label === undefined || typeof t !== 'string') return false;
  if (t === '//') return true;
  if (isRegex(t)) return compile(t).test(label);
  if ((name === 'os' || name === 'architecture') && (t === 'all' || t === 'any')) return true;
  return t === label;
}

export function platformMatches(template: Record<string, unknown>, platform: Platform): boolean {
  const labels = new Map<string, string>();
  for (const [k, v] of Object.entries(platform)) labels.set(k.toLowerCase(), v);
  return Object.entries(template).every(([key, t]) => {
    const label = labels.get(key);
    return Array.isArray(t) ? t.some((alt) => fieldMatches(key, label, alt)) : fieldMatches(key, label, t);
  });
}

/**
 * Filter a global Lifecycle by a manifest's Selections. Returns undefined when the selection
 * removes the node (no listed selector and no `all` entry at a selector level).
 */
export function filterSelections(node: unknown, keywords: ReadonlySet<string>, selectors: readonly string[]): unknown {
  if (!isObj(node)) return node === null ? undefined : node;
  const keys = Object.keys(node);
  if (keys.some((k) => keywords.has(k))) {
    const chosen = selectors.find((s) => node[s] !== undefined && node[s] !== null);
    const picked = chosen !== undefined ? node[chosen] : node.all;
    return picked === undefined || picked === null ? undefined : filterSelections(picked, keywords, selectors);
  }
  const out: Obj = {};
  for (const k of keys) {
    const v = filterSelections(node[k], keywords, selectors);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

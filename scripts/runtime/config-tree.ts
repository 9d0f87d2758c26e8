/**
 * The configuration tree under the ConfigStore: containers and leaves, each with a modification time,
 * modelled on the nucleus's `config/Topics.java` (container) and `config/Topic.java` (leaf):
 * - child names are case-insensitive (`CaseInsensitiveString`); a node keeps the spelling it was
 *   created with;
 * - a leaf takes a proposed value only if the proposed timestamp is not older than its modtime, and
 *   an equal value changes nothing, not even the modtime (`Topic.withNewerValue`);
 * - a container's modtime is the newest modtime below it (`Topics.childChanged`), its own creation
 *   time while empty.
 * Leaf values are JSON scalars, lists (lists are leaves, replaced whole) or null.
 */

/** A value, key path or document the nucleus would refuse (caller maps it to InvalidArgumentsError). */
export class ConfigInvalidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigInvalidError';
  }
}

export interface Leaf {
  kind: 'leaf';
  name: string;
  modtime: number;
  value: unknown;
}

export interface Branch {
  kind: 'branch';
  name: string;
  modtime: number;
  /** Keyed by lower-cased name. */
  children: Map<string, ConfigNode>;
}

export type ConfigNode = Leaf | Branch;

/** One change event: the node's path (as spelled in the tree) and, for a removal, what was removed. */
export interface Change {
  path: string[];
  removed?: ConfigNode;
}

export const keyOf = (name: string): string => name.toLowerCase();

export function newBranch(name: string, modtime: number): Branch {
  return { kind: 'branch', name, modtime, children: new Map() };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Throws unless `v` is JSON data (what arrives over IPC or from a recipe). */
export function checkJson(v: unknown, where: string): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ConfigInvalidError(`${where}: numbers must be finite`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((item, i) => checkJson(item, `${where}[${i}]`));
    return;
  }
  if (isPlainObject(v)) {
    for (const [k, item] of Object.entries(v)) if (item !== undefined) checkJson(item, `${where}.${k}`);
    return;
  }
  throw new ConfigInvalidError(`${where}: unsupported value of type ${typeof v}`);
}

export function cloneJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneJson);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v)) if (item !== undefined) out[k] = cloneJson(item);
    return out;
  }
  return v;
}

export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

export function findNode(root: Branch, path: string[]): ConfigNode | undefined {
  let node: ConfigNode = root;
  for (const seg of path) {
    if (node.kind !== 'branch') return undefined;
    const next: ConfigNode | undefined = node.children.get(keyOf(seg));
    if (!next) return undefined;
    node = next;
  }
  return node;
}

/** Plain JSON copy of a node (a container becomes an object). */
export function toPlain(node: ConfigNode): unknown {
  if (node.kind === 'leaf') return cloneJson(node.value);
  const out: Record<string, unknown> = {};
  for (const c of node.children.values()) out[c.name] = toPlain(c);
  return out;
}

export function subtreeModtime(node: ConfigNode): number {
  if (node.kind === 'leaf' || node.children.size === 0) return node.modtime;
  let max = -Infinity;
  for (const c of node.children.values()) max = Math.max(max, subtreeModtime(c));
  return max;
}

export function cloneNode<N extends ConfigNode>(node: N): N {
  if (node.kind === 'leaf') return { ...node, value: cloneJson(node.value) };
  const b = newBranch(node.name, node.modtime);
  for (const [k, c] of node.children) b.children.set(k, cloneNode(c));
  return b as N;
}

/** Builds a fresh node for `value` stamped `ts`, recording one change per leaf it creates. */
function build(name: string, value: unknown, ts: number, path: string[], changes: Change[]): ConfigNode {
  if (!isPlainObject(value)) {
    changes.push({ path });
    return { kind: 'leaf', name, modtime: ts, value: cloneJson(value) };
  }
  const b = newBranch(name, ts);
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    b.children.set(keyOf(k), build(k, v, ts, [...path, k], changes));
  }
  return b;
}

/**
 * Merges `obj` into `branch` with timestamp `ts` (`Topics.updateFromMap`, MERGE behaviour): objects are
 * merged key by key, anything else replaces a leaf if `ts` is not older than its modtime. A type change
 * (object onto a leaf, value onto a container) replaces the node when `ts` is not older than it; callers
 * that must refuse type changes check with `findTypeConflict` first.
 */
export function mergeInto(branch: Branch, obj: Record<string, unknown>, ts: number, path: string[], changes: Change[]): void {
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    const key = keyOf(k);
    const existing = branch.children.get(key);
    if (!existing) {
      branch.children.set(key, build(k, v, ts, [...path, k], changes));
      continue;
    }
    const childPath = [...path, existing.name];
    if (isPlainObject(v) && existing.kind === 'branch') {
      mergeInto(existing, v, ts, childPath, changes);
    } else if (!isPlainObject(v) && existing.kind === 'leaf') {
      if (ts >= existing.modtime && !jsonEqual(existing.value, v)) {
        existing.value = cloneJson(v);
        existing.modtime = ts;
        changes.push({ path: childPath });
      }
    } else if (ts >= subtreeModtime(existing)) {
      changes.push({ path: childPath, removed: existing });
      branch.children.set(key, build(existing.name, v, ts, childPath, changes));
    }
  }
}

/** Path of the first place where merging `obj` would turn a leaf into a container or back, if any. */
export function findTypeConflict(branch: Branch, obj: Record<string, unknown>, path: string[]): string[] | undefined {
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    const existing = branch.children.get(keyOf(k));
    if (!existing) continue;
    if (isPlainObject(v) !== (existing.kind === 'branch')) return [...path, existing.name];
    if (existing.kind === 'branch' && isPlainObject(v)) {
      const deeper = findTypeConflict(existing, v, [...path, existing.name]);
      if (deeper) return deeper;
    }
  }
  return undefined;
}

/**
 * Makes `target` hold exactly the values of `source`, recording a change for every leaf added or changed
 * and every node removed. Changed and added nodes get modtime `stamp`, or keep the source's modtime when
 * `stamp` is 'keep' (used to restore a snapshot exactly).
 */
export function syncInto(target: Branch, source: Branch, stamp: number | 'keep', path: string[], changes: Change[]): void {
  for (const [key, t] of [...target.children]) {
    if (!source.children.has(key)) {
      target.children.delete(key);
      changes.push({ path: [...path, t.name], removed: t });
    }
  }
  for (const [key, s] of source.children) {
    const t = target.children.get(key);
    const childPath = [...path, t ? t.name : s.name];
    if (t && t.kind === 'leaf' && s.kind === 'leaf') {
      if (!jsonEqual(t.value, s.value)) {
        t.value = cloneJson(s.value);
        t.modtime = stamp === 'keep' ? s.modtime : stamp;
        changes.push({ path: childPath });
      } else if (stamp === 'keep') {
        t.modtime = s.modtime;
      }
    } else if (t && t.kind === 'branch' && s.kind === 'branch') {
      if (stamp === 'keep') t.modtime = s.modtime;
      syncInto(t, s, stamp, childPath, changes);
    } else {
      if (t) changes.push({ path: childPath, removed: t });
      const fresh = stamp === 'keep' ? cloneNode(s) : restamp(cloneNode(s), stamp);
      if (t) fresh.name = t.name;
      target.children.set(key, fresh);
      collectLeaves(fresh, childPath, changes);
    }
  }
}

function restamp<N extends ConfigNode>(node: N, ts: number): N {
  node.modtime = ts;
  if (node.kind === 'branch') for (const c of node.children.values()) restamp(c, ts);
  return node;
}

function collectLeaves(node: ConfigNode, path: string[], changes: Change[]): void {
  if (node.kind === 'leaf') {
    changes.push({ path });
    return;
  }
  for (const c of node.children.values()) collectLeaves(c, [...path, c.name], changes);
}

/** Removes the node at `path` (case-insensitive); returns the change, or undefined if absent. */
export function removeAt(root: Branch, path: string[]): Change | undefined {
  if (path.length === 0) return undefined;
  const parent = findNode(root, path.slice(0, -1));
  if (!parent || parent.kind !== 'branch') return undefined;
  const key = keyOf(path[path.length - 1]);
  const node = parent.children.get(key);
  if (!node) return undefined;
  parent.children.delete(key);
  const realPath: string[] = [];
  let n: ConfigNode = root;
  for (const seg of path.slice(0, -1)) {
    n = (n as Branch).children.get(keyOf(seg)) as ConfigNode;
    realPath.push(n.name);
  }
  realPath.push(node.name);
  return { path: realPath, removed: node };
}

// ---- persistence ----------------------------------------------------------------------------------

export type SerializedNode =
  | { n: string; t: number; v: unknown }
  | { n: string; t: number; c: SerializedNode[] };

export function serialize(node: ConfigNode): SerializedNode {
  if (node.kind === 'leaf') return { n: node.name, t: node.modtime, v: cloneJson(node.value) };
  return { n: node.name, t: node.modtime, c: [...node.children.values()].map(serialize) };
}

export function deserialize(data: unknown, where = 'config'): ConfigNode {
  if (!isPlainObject(data) || typeof data.n !== 'string' || typeof data.t !== 'number' || !Number.isFinite(data.t)) {
    throw new ConfigInvalidError(`${where}: malformed serialized node`);
  }
  if ('c' in data) {
    if (!Array.isArray(data.c)) throw new ConfigInvalidError(`${where}: children must be a list`);
    const b = newBranch(data.n, data.t);
    for (const c of data.c) {
      const child = deserialize(c, `${where}/${data.n}`);
      b.children.set(keyOf(child.name), child);
    }
    return b;
  }
  if (!('v' in data)) throw new ConfigInvalidError(`${where}: node has neither value nor children`);
  checkJson(data.v, `${where}/${data.n}`);
  if (isPlainObject(data.v)) throw new ConfigInvalidError(`${where}/${data.n}: a leaf cannot hold an object`);
  return { kind: 'leaf', name: data.n, modtime: data.t, value: cloneJson(data.v) };
}

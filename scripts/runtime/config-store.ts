/**
 * Per-component configuration (the `services.<name>.configuration` subtree of the nucleus), backing
 * GetConfiguration / UpdateConfiguration / SubscribeToConfigurationUpdate and deployments.
 *
 * Semantics (docs/local-runtime.md "Operation semantics components rely on" and "Deployments";
 * nucleus `ConfigStoreIPCEventStreamAgent.java`,
 * `KernelConfigResolver.resolveConfigurationToApply`, `config/Topic(s).java`):
 * - UpdateConfiguration merges `valueToMerge` into the container named by keyPath. The nucleus refuses
 *   the update (FailedUpdateConditionCheck) when the timestamp is older than the container's modtime,
 *   which is the newest modtime below it; we refuse it the same way, but before changing anything
 *   (the nucleus has already merged the newer leaves by then). Turning a leaf into a container or back
 *   is refused (the nucleus throws IllegalArgumentException -> InvalidArgumentsError).
 * - Deployments: current config, minus RESET pointers, plus DefaultConfiguration at timestamp 1 (so
 *   existing values win), plus MERGE at `now`; changed nodes are then stamped `now`.
 * - One change event per leaf added or changed and per node removed, keyPath relative to the
 *   component's configuration; no event for unchanged values, none on subscribe, none for an empty
 *   container appearing (the nucleus filters `interiorAdded`).
 * - Keys are case-insensitive like the nucleus's `CaseInsensitiveString`; a node keeps its first spelling.
 */
import { createLogger } from '../../components/lib/logger';
import {
  Branch,
  Change,
  ConfigInvalidError,
  ConfigNode,
  checkJson,
  cloneNode,
  deserialize,
  findNode,
  findTypeConflict,
  isPlainObject,
  keyOf,
  mergeInto,
  newBranch,
  removeAt,
  serialize,
  subtreeModtime,
  syncInto,
  toPlain,
} from './config-tree';

export { ConfigInvalidError } from './config-tree';

/** UpdateConfiguration with a timestamp older than the node's modtime (-> FailedUpdateConditionCheckError). */
export class ConfigConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigConflictError';
  }
}

/** `DefaultConfiguration` merges carry this timestamp so that any existing value wins (`Topic.DEFAULT_VALUE_TIMESTAMP`). */
const DEFAULT_TIMESTAMP = 1;

interface Subscription {
  keyPath: string[]; // lower-cased
  listener: (changedKeyPath: string[]) => void;
}

export type ListenerErrorHandler = (err: unknown, component: string, keyPath: string[]) => void;

export class ConfigStore {
  private readonly roots = new Map<string, Branch>();
  private readonly subs = new Map<string, Set<Subscription>>();
  private readonly now: () => number;
  private readonly onListenerError: ListenerErrorHandler;

  constructor(now: () => number = Date.now, onListenerError?: ListenerErrorHandler) {
    this.now = now;
    this.onListenerError =
      onListenerError ??
      ((err, component, keyPath) =>
        createLogger({ module: 'config-store' }).error('configuration listener threw', { component, keyPath, err }));
  }

  has(component: string): boolean {
    return this.roots.has(component);
  }

  /** Node at keyPath ([] = whole document); deep copy. */
  read(component: string, keyPath: string[]): { found: true; value: unknown } | { found: false } {
    const root = this.roots.get(component);
    const node = root && findNode(root, keyPath);
    return node ? { found: true, value: toPlain(node) } : { found: false };
  }

  document(component: string): Record<string, unknown> {
    const root = this.roots.get(component);
    return root ? (toPlain(root) as Record<string, unknown>) : {};
  }

  /** UpdateConfiguration (see the file comment); `timestampMs` is the request's timestamp in ms. */
  update(component: string, keyPath: string[], valueToMerge: Record<string, unknown>, timestampMs: number): void {
    if (!isPlainObject(valueToMerge)) throw new ConfigInvalidError('valueToMerge must be an object');
    if (typeof timestampMs !== 'number' || !Number.isFinite(timestampMs)) throw new ConfigInvalidError('timestamp must be a finite number');
    checkJson(valueToMerge, 'valueToMerge');

    const root = this.roots.get(component) ?? newBranch(component, timestampMs);
    let container: ConfigNode | undefined = root;
    let depth = 0;
    for (; depth < keyPath.length && container; depth++) {
      if (container.kind === 'leaf') break;
      container = container.children.get(keyOf(keyPath[depth]));
    }
    if (container?.kind === 'leaf') {
      throw new ConfigInvalidError(`keyPath ${JSON.stringify(keyPath.slice(0, depth))} names a value, not a container`);
    }
    if (container) {
      const modtime = subtreeModtime(container);
      if (timestampMs < modtime) {
        throw new ConfigConflictError(
          `Proposed timestamp ${timestampMs} is older than the config's latest modified timestamp ${modtime}`,
        );
      }
      const conflict = findTypeConflict(container, valueToMerge, keyPath);
      if (conflict) throw new ConfigInvalidError(`cannot change ${JSON.stringify(conflict)} between a value and a container`);
    }

    // Validated: from here on nothing throws.
    this.roots.set(component, root);
    let target = root;
    const path: string[] = [];
    for (const seg of keyPath) {
      let next = target.children.get(keyOf(seg));
      if (!next) {
        next = newBranch(seg, timestampMs);
        target.children.set(keyOf(seg), next);
      }
      target = next as Branch;
      path.push(target.name);
    }
    const changes: Change[] = [];
    mergeInto(target, valueToMerge, timestampMs, path, changes);
    this.emit(component, changes);
  }

  /** Deployment resolution order (`KernelConfigResolver`), see the file comment. */
  applyDeployment(component: string, change: { defaults: Record<string, unknown>; reset?: string[]; merge?: Record<string, unknown> }): void {
    const defaults = change.defaults ?? {};
    if (!isPlainObject(defaults)) throw new ConfigInvalidError('DefaultConfiguration must be an object');
    checkJson(defaults, 'DefaultConfiguration');
    if (change.merge !== undefined) {
      if (!isPlainObject(change.merge)) throw new ConfigInvalidError('MERGE must be an object');
      checkJson(change.merge, 'MERGE');
    }
    const resets = (change.reset ?? []).map(parsePointer);

    const now = this.now();
    const live = this.roots.get(component);
    let work = live ? cloneNode(live) : newBranch(component, now);
    const scratch: Change[] = []; // changes to the working copy are not events; the final sync is
    for (const ptr of resets) {
      if (ptr === 'whole') work = newBranch(component, now);
      else if (ptr !== 'array-element') removeAt(work, ptr);
    }
    mergeInto(work, defaults, DEFAULT_TIMESTAMP, [], scratch);
    if (change.merge) mergeInto(work, change.merge, now, [], scratch);

    const target = live ?? newBranch(component, now);
    this.roots.set(component, target);
    const changes: Change[] = [];
    syncInto(target, work, now, [], changes);
    this.emit(component, changes);
  }

  /** Forgets a component's configuration, emitting a removal event per top-level key. */
  remove(component: string): void {
    const root = this.roots.get(component);
    if (!root) return;
    this.roots.delete(component);
    this.emit(
      component,
      [...root.children.values()].map((n) => ({ path: [n.name], removed: n })),
    );
  }

  /**
   * Listener gets one call per changed leaf/node, keyPath relative to the component's configuration,
   * for changes at or under `keyPath` (and with `keyPath` itself when an ancestor of it is removed).
   * Subscriptions follow the path, not a node, so they survive the node being removed and re-created;
   * a caller that must answer ResourceNotFound for a missing key checks `read` first.
   */
  subscribe(component: string, keyPath: string[], listener: (changedKeyPath: string[]) => void): () => void {
    const sub: Subscription = { keyPath: keyPath.map(keyOf), listener };
    let set = this.subs.get(component);
    if (!set) {
      set = new Set();
      this.subs.set(component, set);
    }
    set.add(sub);
    return () => {
      const s = this.subs.get(component);
      if (!s) return;
      s.delete(sub);
      if (s.size === 0) this.subs.delete(component);
    };
  }

  toJSON(): unknown {
    const components: Record<string, unknown> = {};
    for (const [name, root] of this.roots) components[name] = serialize(root);
    return { version: 1, components };
  }

  static fromJSON(data: unknown, now?: () => number): ConfigStore {
    if (!isPlainObject(data) || data.version !== 1 || !isPlainObject(data.components)) {
      throw new ConfigInvalidError('not a ConfigStore document (expected {version: 1, components})');
    }
    const store = new ConfigStore(now);
    for (const [name, node] of Object.entries(data.components)) {
      const root = deserialize(node, name);
      if (root.kind !== 'branch') throw new ConfigInvalidError(`${name}: configuration root must be a container`);
      store.roots.set(name, root);
    }
    return store;
  }

  /** Opaque copy of one component's configuration (with modtimes), for rollback. */
  snapshot(component: string): unknown {
    const root = this.roots.get(component);
    return root ? serialize(root) : null;
  }

  /** Puts a snapshot back exactly (values and modtimes), emitting change events for what differs. */
  restore(component: string, snapshot: unknown): void {
    if (snapshot === null || snapshot === undefined) {
      this.remove(component);
      return;
    }
    const source = deserialize(snapshot, component);
    if (source.kind !== 'branch') throw new ConfigInvalidError(`${component}: snapshot root must be a container`);
    const target = this.roots.get(component) ?? newBranch(component, source.modtime);
    target.modtime = source.modtime;
    this.roots.set(component, target);
    const changes: Change[] = [];
    syncInto(target, source, 'keep', [], changes);
    this.emit(component, changes);
  }

  private emit(component: string, changes: Change[]): void {
    const subs = this.subs.get(component);
    if (!subs || changes.length === 0) return;
    for (const change of changes) {
      const lower = change.path.map(keyOf);
      for (const sub of [...subs]) {
        const sp = sub.keyPath;
        let deliverPath: string[] | undefined;
        if (lower.length >= sp.length && sp.every((s, i) => s === lower[i])) {
          deliverPath = change.path.slice();
        } else if (change.removed?.kind === 'branch' && lower.every((s, i) => s === sp[i])) {
          // An ancestor of the watched node was removed: report the watched node if it existed there.
          const names = realNames(change.removed, sp.slice(lower.length));
          if (names) deliverPath = [...change.path, ...names];
        }
        if (!deliverPath) continue;
        try {
          sub.listener(deliverPath);
        } catch (err) {
          this.onListenerError(err, component, deliverPath);
        }
      }
    }
  }
}

/** Spelling of a lower-cased path below `root`, or undefined if it does not exist there. */
function realNames(root: Branch, path: string[]): string[] | undefined {
  const out: string[] = [];
  let n: ConfigNode = root;
  for (const seg of path) {
    if (n.kind !== 'branch') return undefined;
    const next: ConfigNode | undefined = n.children.get(seg);
    if (!next) return undefined;
    out.push(next.name);
    n = next;
  }
  return out;
}

/**
 * A RESET entry: '' is the whole document; otherwise an RFC 6901 pointer. Like the nucleus (Jackson's
 * `JsonPointer.mayMatchElement`), a pointer with a segment that could be an array index is skipped.
 */
function parsePointer(ptr: unknown): string[] | 'whole' | 'array-element' {
  if (typeof ptr !== 'string') throw new ConfigInvalidError('RESET entries must be JSON pointer strings');
  if (ptr === '') return 'whole';
  if (!ptr.startsWith('/')) throw new ConfigInvalidError(`invalid JSON pointer in RESET: '${ptr}'`);
  const segs = ptr
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (segs.some((s) => /^(0|[1-9][0-9]{0,9})$/.test(s))) return 'array-element';
  return segs;
}

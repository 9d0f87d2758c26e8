/**
 * Dependency-graph helpers for the service manager (HARD and SOFT dependencies,
 * docs/local-runtime.md "Components and their lifecycle"). Kept apart from the state machine: they
 * only read names and edges.
 */

export interface Node {
  name: string;
  dependencies: { name: string; type: 'HARD' | 'SOFT' }[];
}

/**
 * Dependencies before dependents (depth-first post-order, starting from names in sorted order so the
 * result is stable). Members of a cycle all appear, in some order; edges to unknown names are skipped.
 */
export function dependencyOrder<T extends Node>(nodes: ReadonlyMap<string, T>): T[] {
  const out: T[] = [];
  const seen = new Set<string>();
  const visit = (n: T): void => {
    if (seen.has(n.name)) return;
    seen.add(n.name);
    for (const d of n.dependencies) {
      const dep = nodes.get(d.name);
      if (dep) visit(dep);
    }
    out.push(n);
  };
  for (const name of [...nodes.keys()].sort()) visit(nodes.get(name) as T);
  return out;
}

/** A dependency path from `start` back to itself (any dependency type), or undefined. */
export function findCycle<T extends Node>(nodes: ReadonlyMap<string, T>, start: string): string[] | undefined {
  const onPath: string[] = [];
  const done = new Set<string>();
  const visit = (name: string): string[] | undefined => {
    if (name === start && onPath.length > 0) return [...onPath, start];
    if (done.has(name) || onPath.includes(name)) return undefined;
    const n = nodes.get(name);
    if (!n) return undefined;
    onPath.push(name);
    for (const d of n.dependencies) {
      const found = visit(d.name);
      if (found) return found;
    }
    onPath.pop();
    done.add(name);
    return undefined;
  };
  return visit(start);
}

/** Why this node cannot start at all: a missing HARD dependency or a dependency cycle. */
export function blockedReason<T extends Node>(nodes: ReadonlyMap<string, T>, node: T): string | undefined {
  const missing = node.dependencies.filter((d) => d.type === 'HARD' && !nodes.has(d.name)).map((d) => d.name);
  if (missing.length > 0) return `HARD dependency ${missing.join(', ')} is not deployed`;
  const cycle = findCycle(nodes, node.name);
  if (cycle) return `dependency cycle ${cycle.join(' -> ')}`;
  return undefined;
}

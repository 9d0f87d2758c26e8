/**
 * Recipe variable interpolation (Greengrass Developer Guide, "AWS IoT Greengrass component recipe
 * reference", Recipe variables;
 * componentmanager/KernelConfigResolver.java).
 *
 * Forms, same component: `{artifacts:path}`, `{artifacts:decompressedPath}`, `{work:path}`,
 * `{kernel:rootPath}`, `{iot:thingName}`, `{configuration:/json/pointer}`. Cross-component, for
 * direct dependencies only: `{<dep>:configuration:/x}`, `{<dep>:artifacts:path}`,
 * `{<dep>:artifacts:decompressedPath}`, `{<dep>:work:path}` (and `{<dep>:kernel:rootPath}`, which
 * the nucleus also resolves). The placeholder grammar is the nucleus's: namespace and component
 * name are word characters and dots, the key runs up to the next `:` or `}`.
 *
 * A configuration scalar gives its string form (null gives `null`), an object or array gives its
 * JSON (keys sorted, as the nucleus's mapper does), a missing node leaves the text unchanged.
 * Anything we cannot resolve is left as written, as the nucleus does, and listed in `unresolved`
 * so the caller can warn. Unlike the nucleus, which runs a same-component pass and then a
 * cross-component pass over the result, we make one pass, so a substituted value is never
 * interpolated again.
 */
import type { Lifecycle, LifecycleStep } from './recipe';

export interface VariableScope {
  artifactsPath: string;
  artifactsDecompressedPath: string;
  workPath: string;
  configuration: unknown;
}

export interface VariableContext extends VariableScope {
  kernelRootPath: string;
  thingName: string;
  /** Direct dependencies only: cross-component variables naming anything else stay unresolved. */
  dependencies: Record<string, VariableScope>;
}

// {ns:key} or {component:ns:key}; key = anything but ':' and '}'.
const PLACEHOLDER = /\{([.\w]+):(?:([.\w]+):)?([^:}]+)\}/g;

/** RFC 6901 JSON pointer lookup; undefined when the pointer is malformed or the node is missing. */
export function lookupPointer(doc: unknown, pointer: string): { found: boolean; value?: unknown } {
  if (pointer === '') return { found: true, value: doc };
  if (!pointer.startsWith('/')) return { found: false };
  let node: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      if (!/^(0|[1-9]\d*)$/.test(token) || Number(token) >= node.length) return { found: false };
      node = node[Number(token)];
    } else if (typeof node === 'object' && node !== null && Object.prototype.hasOwnProperty.call(node, token)) {
      node = (node as Record<string, unknown>)[token];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: node };
}

function sortedJson(v: unknown): string {
  return JSON.stringify(v, (_key, val: unknown) => {
    if (typeof val !== 'object' || val === null || Array.isArray(val)) return val;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(val).sort()) sorted[k] = (val as Record<string, unknown>)[k];
    return sorted;
  });
}

function configValue(configuration: unknown, pointer: string): string | undefined {
  const hit = lookupPointer(configuration, pointer);
  if (!hit.found || hit.value === undefined) return undefined;
  const v = hit.value;
  if (v === null) return 'null';
  if (typeof v === 'object') return sortedJson(v);
  return String(v);
}

function scopeValue(scope: VariableScope, namespace: string, key: string): string | undefined {
  if (namespace === 'configuration') return configValue(scope.configuration, key);
  if (namespace === 'artifacts' && key === 'path') return scope.artifactsPath;
  if (namespace === 'artifacts' && key === 'decompressedPath') return scope.artifactsDecompressedPath;
  if (namespace === 'work' && key === 'path') return scope.workPath;
  return undefined;
}

export function interpolate(text: string, ctx: VariableContext): { text: string; unresolved: string[] } {
  const unresolved: string[] = [];
  const out = text.replace(PLACEHOLDER, (whole: string, first: string, second: string | undefined, key: string) => {
    let value: string | undefined;
    if (second === undefined) {
      if (first === 'kernel' && key === 'rootPath') value = ctx.kernelRootPath;
      else if (first === 'iot' && key === 'thingName') value = ctx.thingName;
      else value = scopeValue(ctx, first, key);
    } else {
      const dep = Object.prototype.hasOwnProperty.call(ctx.dependencies, first) ? ctx.dependencies[first] : undefined;
      if (dep && second === 'kernel' && key === 'rootPath') value = ctx.kernelRootPath;
      else if (dep) value = scopeValue(dep, second, key);
    }
    if (value === undefined) {
      if (!unresolved.includes(whole)) unresolved.push(whole);
      return whole;
    }
    return value;
  });
  return { text: out, unresolved };
}

/** Interpolate every script, Skipif and Setenv value of a lifecycle (the nucleus interpolates the whole section). */
export function interpolateLifecycle(l: Lifecycle, ctx: VariableContext): { lifecycle: Lifecycle; unresolved: string[] } {
  const unresolved = new Set<string>();
  const one = (s: string): string => {
    const r = interpolate(s, ctx);
    r.unresolved.forEach((u) => unresolved.add(u));
    return r.text;
  };
  const env = (e: Record<string, string>): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(e)) out[k] = one(v);
    return out;
  };
  const step = (s: LifecycleStep): LifecycleStep => {
    const copy: LifecycleStep = { ...s, script: one(s.script), setenv: env(s.setenv) };
    if (s.skipif !== undefined) copy.skipif = one(s.skipif);
    return copy;
  };
  const lifecycle: Lifecycle = { setenv: env(l.setenv) };
  for (const name of ['bootstrap', 'install', 'startup', 'run', 'shutdown', 'recover'] as const) {
    const s = l[name];
    if (s) lifecycle[name] = step(s);
  }
  return { lifecycle, unresolved: [...unresolved] };
}

/**
 * Recipe key handling and the Lifecycle section (Greengrass Developer Guide, "AWS IoT Greengrass
 * component recipe reference", Lifecycle).
 *
 * A step is either a script string or `{Script, RequiresPrivilege?, Skipif?, Timeout?, Setenv?}`;
 * `Lifecycle.Setenv` applies to every step and a step's own Setenv overrides it
 * (lifecyclemanager/GenericExternalService.addEnv adds the parent's variables first). Skipif is
 * `onpath <exe>` or `exists <path>`, optionally negated with a leading `!`; anything else is an
 * error in the nucleus (`SKIP_COMMAND_REGEX = "(exists|onpath) +(.+)"`), so we reject it here.
 */

/** A recipe problem; the message names the file, the key path, what is wrong and what is allowed. */
export class RecipeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecipeError';
  }
}

export interface LifecycleStep {
  script: string;
  /** Kept from the recipe; the local runtime runs every step as its own user (see services.ts). */
  requiresPrivilege: boolean;
  skipif?: string;
  timeoutSec?: number;
  setenv: Record<string, string>;
}

export interface Lifecycle {
  setenv: Record<string, string>;
  bootstrap?: LifecycleStep;
  install?: LifecycleStep;
  startup?: LifecycleStep;
  run?: LifecycleStep;
  shutdown?: LifecycleStep;
  recover?: LifecycleStep;
}

export type Obj = Record<string, unknown>;

/** Where in which file a value sits, for error messages. */
export interface Where {
  source: string;
  path: string;
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function at(w: Where, key: string): string {
  return w.path ? `${w.path}.${key}` : key;
}

/**
 * Read a mapping whose keys are case-insensitive: returns canonical key -> value. Unknown keys and
 * keys given twice in different cases are errors that list the allowed keys.
 */
export function readKeys<K extends string>(value: unknown, allowed: readonly K[], w: Where): Map<K, unknown> {
  if (!isObj(value)) throw new RecipeError(`${w.source}: ${w.path || 'recipe'} must be a mapping with keys ${allowed.join(', ')}`);
  const out = new Map<K, unknown>();
  for (const [key, v] of Object.entries(value)) {
    const canonical = allowed.find((a) => a.toLowerCase() === key.toLowerCase());
    if (!canonical) throw new RecipeError(`${w.source}: ${at(w, key)} is not a known key; allowed here: ${allowed.join(', ')} (case-insensitive)`);
    if (out.has(canonical)) throw new RecipeError(`${w.source}: ${at(w, key)} is given twice (keys are case-insensitive)`);
    out.set(canonical, v);
  }
  return out;
}

const STEP_NAMES = ['Bootstrap', 'Install', 'Startup', 'Run', 'Shutdown', 'Recover'] as const;
// Uninstall exists in newer nuclei only; it is accepted and not run by the local runtime.
const LIFECYCLE_KEYS = ['Setenv', ...STEP_NAMES, 'Uninstall'] as const;
const STEP_KEYS = ['Script', 'RequiresPrivilege', 'Skipif', 'Timeout', 'Setenv'] as const;

export const SKIPIF_RE = /^!?\s*(exists|onpath) +(.+)$/;

function parseSetenv(v: unknown, w: Where): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new RecipeError(`${w.source}: ${w.path} must be a mapping of variable name to string, number or boolean`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val === 'string' || typeof val === 'number' || typeof val === 'boolean') out[k] = String(val);
    else throw new RecipeError(`${w.source}: ${at(w, k)} must be a string, number or boolean, got ${JSON.stringify(val)}`);
  }
  return out;
}

function parseTimeout(v: unknown, w: Where): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) {
    throw new RecipeError(`${w.source}: ${w.path} must be a positive whole number of seconds, got ${JSON.stringify(v)}`);
  }
  return n;
}

function parseBool(v: unknown, w: Where): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  throw new RecipeError(`${w.source}: ${w.path} must be true or false, got ${JSON.stringify(v)}`);
}

export function parseStep(v: unknown, w: Where): LifecycleStep {
  if (typeof v === 'string') return { script: v, requiresPrivilege: false, setenv: {} };
  if (!isObj(v)) throw new RecipeError(`${w.source}: ${w.path} must be a script string or a mapping {Script, RequiresPrivilege, Skipif, Timeout, Setenv}`);
  const keys = readKeys(v, STEP_KEYS, w);
  const script = keys.get('Script');
  if (typeof script !== 'string') throw new RecipeError(`${w.source}: ${at(w, 'Script')} is required and must be a string (the shell script to run)`);
  const step: LifecycleStep = {
    script,
    requiresPrivilege: parseBool(keys.get('RequiresPrivilege'), { source: w.source, path: at(w, 'RequiresPrivilege') }),
    setenv: parseSetenv(keys.get('Setenv'), { source: w.source, path: at(w, 'Setenv') }),
  };
  const skipif = keys.get('Skipif');
  if (skipif !== undefined && skipif !== null) {
    if (typeof skipif !== 'string' || !SKIPIF_RE.test(skipif.trim())) {
      throw new RecipeError(`${w.source}: ${at(w, 'Skipif')} must be "onpath <executable>" or "exists <path>", optionally negated with a leading "!", got ${JSON.stringify(skipif)}`);
    }
    step.skipif = skipif.trim();
  }
  const timeout = parseTimeout(keys.get('Timeout'), { source: w.source, path: at(w, 'Timeout') });
  if (timeout !== undefined) step.timeoutSec = timeout;
  return step;
}

/** Parse one (already platform-filtered) Lifecycle mapping. */
export function parseLifecycle(v: unknown, w: Where): Lifecycle {
  const keys = readKeys(v, LIFECYCLE_KEYS, w);
  const lifecycle: Lifecycle = { setenv: parseSetenv(keys.get('Setenv'), { source: w.source, path: at(w, 'Setenv') }) };
  for (const name of STEP_NAMES) {
    const raw = keys.get(name);
    if (raw === undefined || raw === null) continue;
    const step = parseStep(raw, { source: w.source, path: at(w, name) });
    const key = name.toLowerCase() as 'bootstrap' | 'install' | 'startup' | 'run' | 'shutdown' | 'recover';
    lifecycle[key] = step;
  }
  const uninstall = keys.get('Uninstall');
  if (uninstall !== undefined && uninstall !== null) parseStep(uninstall, { source: w.source, path: at(w, 'Uninstall') });
  return lifecycle;
}

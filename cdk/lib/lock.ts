/**
 * Component versions are immutable, and so are their artifacts: Greengrass records each
 * artifact's digest when a version is created, so a changed object under an old version makes
 * devices fail with ARTIFACT_CHECKSUM_MISMATCH, and re-creating an existing name@version is a
 * ConflictException (Greengrass developer guide, "Publish components to deploy to your core devices").
 * The lock file records, per name@version, the hashes of the built recipe and of every artifact.
 * Synth refuses a build whose hashes differ from the recorded ones: bump the version instead.
 *
 * The lock is the record of what was released: a recorded name@version can never change. A
 * version not yet recorded is still in development and may change from build to build (every
 * commit before a release rebuilds 0.x.y); synth reports it as a warning, and recording it is the
 * release step, before `cdk deploy` (docs/cdk.md "Ship an update").
 *
 * Modes:
 *   verify  (default) every recorded name@version that is built must have the same hashes;
 *           unrecorded ones are passed to `onUnrecorded`;
 *   record  add entries for name@versions not yet recorded (never changes an existing one).
 */
import fs from 'node:fs';
import path from 'node:path';

export type LockMode = 'verify' | 'record';

export interface LockEntry {
  readonly recipe: string;
  readonly artifacts: Readonly<Record<string, string>>;
  /** ComponentDependencies of the version, so a deployment can pin an older bundle (rollback). */
  readonly dependencies: Readonly<Record<string, string>>;
  /**
   * S3 keys of the CDK assets holding the artifacts. They are part of the inline recipe, so a CDK
   * upgrade that changed asset hashing would change a published recipe (ConflictException on
   * deploy); recorded keys also let a pinned older version's artifacts stay readable.
   */
  readonly assets: readonly string[];
}

/** What the lock checks of one built component version. */
export interface LockInput {
  readonly name: string;
  readonly version: string;
  readonly recipeSha256: string;
  readonly artifacts: Readonly<Record<string, string>>;
  readonly dependencies: Readonly<Record<string, string>>;
  readonly assets: readonly string[];
}

export interface LockFile {
  readonly components: Readonly<Record<string, LockEntry>>;
}

export class LockError extends Error {}

export const RECORD_HINT = 'npx cdk synth -c dcmms:lock=record';

export function lockKey(name: string, version: string): string {
  return `${name}@${version}`;
}

export function readLock(file: string): LockFile {
  if (!fs.existsSync(file)) return { components: {} };
  const raw: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  const comps = (raw as { components?: unknown } | null)?.components;
  if (typeof comps !== 'object' || comps === null || Array.isArray(comps)) throw new LockError(`${file}: expected {"components": {...}}`);
  return { components: comps as Record<string, LockEntry> };
}

function entryOf(c: LockInput): LockEntry {
  return { recipe: c.recipeSha256, artifacts: { ...c.artifacts }, dependencies: { ...c.dependencies }, assets: [...c.assets].sort() };
}

function differences(want: LockEntry, got: LockEntry): string[] {
  const out: string[] = [];
  if (want.recipe !== got.recipe) out.push('recipe');
  const files = new Set([...Object.keys(want.artifacts), ...Object.keys(got.artifacts)]);
  for (const f of [...files].sort()) {
    if (want.artifacts[f] !== got.artifacts[f]) out.push(f in got.artifacts ? (f in want.artifacts ? `artifact ${f}` : `new artifact ${f}`) : `missing artifact ${f}`);
  }
  if (JSON.stringify([...(want.assets ?? [])].sort()) !== JSON.stringify(got.assets)) out.push('asset keys (the artifact zips or CDK asset hashing)');
  return out;
}

/**
 * Check the build against the lock; in `record` mode add missing entries and write the file.
 * Returns the lock as it stands afterwards. Throws LockError naming every offending version.
 */
export function checkLock(
  file: string,
  built: readonly LockInput[],
  mode: LockMode,
  onUnrecorded: (keys: string[], hint: string) => void = () => undefined,
): LockFile {
  const lock = readLock(file);
  const components: Record<string, LockEntry> = { ...lock.components };
  const problems: string[] = [];
  const missing: string[] = [];
  for (const c of built) {
    const key = lockKey(c.name, c.version);
    const got = entryOf(c);
    const want = components[key];
    if (!want) {
      if (mode === 'record') components[key] = got;
      else missing.push(key);
      continue;
    }
    const diff = differences(want, got);
    if (diff.length > 0) problems.push(`${key}: ${diff.join(', ')} changed`);
  }
  if (problems.length > 0) {
    throw new LockError(
      `component versions are immutable, but the build changed published versions:\n  ${problems.join('\n  ')}\n` +
        `Bump ComponentVersion in recipes/ (and the Site bundle) and run \`npm run build\`; ` +
        `only if a version was never deployed may you delete its entry from ${path.basename(file)} and record it again.`,
    );
  }
  if (missing.length > 0) {
    onUnrecorded(missing, `not yet released (not in ${path.basename(file)}): ${missing.join(', ')}. Record them with \`${RECORD_HINT}\` and commit the lock file before deploying.`);
  }
  if (mode === 'record' && Object.keys(components).length !== Object.keys(lock.components).length) {
    const sorted = Object.fromEntries(Object.keys(components).sort().map((k) => [k, components[k]]));
    fs.writeFileSync(file, `${JSON.stringify({ components: sorted }, null, 2)}\n`);
  }
  return { components };
}

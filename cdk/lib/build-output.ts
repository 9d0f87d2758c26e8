/**
 * Reads the build output of `npm run build` (scripts/build.js): the same recipes and artifacts gdk
 * and the local runtime use, so what CDK publishes is exactly what was tested locally.
 *
 *   greengrass-build/recipes/<Name>-<Version>.yaml
 *   greengrass-build/artifacts/<Name>/<Version>/<file>
 *
 * Built recipes name artifacts in gdk's form `s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/<file>`
 * (awsdocs greengrass-development-kit-cli-configuration: gdk rewrites BUCKET_NAME on publish);
 * components.ts rewrites them to CDK assets instead.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

export const GDK_URI_PREFIX = 's3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Recipe = { [k: string]: Json };

export interface BuiltManifest {
  /** Index in the recipe's Manifests list. */
  readonly index: number;
  readonly name: string;
  /** File names (no folders) this manifest's artifacts name. */
  readonly files: readonly string[];
  /** Platform.architecture (amd64, aarch64...); undefined for a manifest of any architecture. */
  readonly architecture: string | undefined;
  /**
   * The files of `files` the recipe unarchives (`Unarchive: ZIP`): a platform's natives that share
   * names with another platform's (the arm64 onnxruntime pair). Each lands in
   * `{artifacts:decompressedPath}/<zip name without .zip>/`.
   */
  readonly unarchive: readonly string[];
}

export interface BuiltComponent {
  readonly name: string;
  readonly version: string;
  readonly recipePath: string;
  readonly recipe: Recipe;
  /** sha256 of the recipe file as built (a recipe change needs a version bump too). */
  readonly recipeSha256: string;
  /** greengrass-build/artifacts/<Name>/<Version>; may not exist for a component without artifacts. */
  readonly artifactDir: string;
  readonly manifests: readonly BuiltManifest[];
  /** file name -> sha256 hex, for every file any manifest names. */
  readonly artifacts: Readonly<Record<string, string>>;
  /** ComponentDependencies: name -> VersionRequirement. */
  readonly dependencies: Readonly<Record<string, string>>;
}

export class BuildOutputError extends Error {}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function isObject(v: unknown): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, what: string, file: string): string {
  if (typeof v !== 'string' || v === '') throw new BuildOutputError(`${file}: ${what} must be a non-empty string`);
  return v;
}

function readOne(buildDir: string, recipePath: string): BuiltComponent {
  const rel = path.relative(buildDir, recipePath);
  const recipe: unknown = YAML.parse(fs.readFileSync(recipePath, 'utf8'));
  if (!isObject(recipe)) throw new BuildOutputError(`${rel}: not a recipe object`);
  const name = str(recipe['ComponentName'], 'ComponentName', rel);
  const version = str(recipe['ComponentVersion'], 'ComponentVersion', rel);
  const artifactDir = path.join(buildDir, 'artifacts', name, version);
  const manifestsRaw = Array.isArray(recipe['Manifests']) ? recipe['Manifests'] : [];
  const artifacts: Record<string, string> = {};
  const manifests = manifestsRaw.map((m, index): BuiltManifest => {
    if (!isObject(m)) throw new BuildOutputError(`${rel}: Manifests[${index}] is not an object`);
    const list = Array.isArray(m['Artifacts']) ? m['Artifacts'] : [];
    const unarchive: string[] = [];
    const files = list.map((a, i) => {
      const uri = isObject(a) ? a['URI'] : undefined;
      if (typeof uri !== 'string' || !uri.startsWith(GDK_URI_PREFIX)) {
        throw new BuildOutputError(`${rel}: Manifests[${index}].Artifacts[${i}].URI must start with ${GDK_URI_PREFIX} (got ${JSON.stringify(uri)})`);
      }
      const file = uri.slice(GDK_URI_PREFIX.length);
      if (file.includes('/') || file === '') throw new BuildOutputError(`${rel}: artifact ${uri} must name one file directly under the version folder`);
      const full = path.join(artifactDir, file);
      if (!fs.existsSync(full)) throw new BuildOutputError(`${rel}: artifact ${file} is missing from ${path.relative(buildDir, artifactDir)}; run npm run build`);
      artifacts[file] ??= sha256(full);
      const how = isObject(a) ? a['Unarchive'] : undefined;
      if (typeof how === 'string' && how.toUpperCase() === 'ZIP') {
        if (!file.endsWith('.zip')) throw new BuildOutputError(`${rel}: Manifests[${index}] unarchives ${file}, which is not a .zip`);
        unarchive.push(file);
      }
      return file;
    });
    const platform = m['Platform'];
    const architecture = isObject(platform) && typeof platform['architecture'] === 'string' ? platform['architecture'] : undefined;
    return { index, name: typeof m['Name'] === 'string' ? m['Name'] : `manifest-${index}`, files, architecture, unarchive };
  });
  const deps: Record<string, string> = {};
  const depsRaw = recipe['ComponentDependencies'];
  if (isObject(depsRaw)) {
    for (const [dep, spec] of Object.entries(depsRaw)) {
      const req = isObject(spec) ? spec['VersionRequirement'] : undefined;
      deps[dep] = typeof req === 'string' ? req : '*';
    }
  }
  return { name, version, recipePath, recipe, recipeSha256: sha256(recipePath), artifactDir, manifests, artifacts, dependencies: deps };
}

/** Every built recipe, sorted by name. Fails with a clear message if the build has not run. */
export function readBuildOutput(buildDir: string): BuiltComponent[] {
  const recipesDir = path.join(buildDir, 'recipes');
  if (!fs.existsSync(recipesDir)) {
    throw new BuildOutputError(`no build output at ${recipesDir}: run \`npm run build\` first (the CDK app publishes the built recipes and artifacts)`);
  }
  // recipe.yaml is gdk's copy of the root component (build.js --gdk), not a separate component.
  const files = fs.readdirSync(recipesDir).filter((f) => /\.ya?ml$/.test(f) && f !== 'recipe.yaml').sort();
  if (files.length === 0) throw new BuildOutputError(`${recipesDir} holds no recipes: run \`npm run build\``);
  const out = files.map((f) => readOne(buildDir, path.join(recipesDir, f)));
  const seen = new Set<string>();
  for (const c of out) {
    const key = `${c.name}@${c.version}`;
    if (seen.has(key)) throw new BuildOutputError(`${key} is built twice in ${recipesDir}`);
    seen.add(key);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

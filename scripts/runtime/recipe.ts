/**
 * Greengrass component recipes: parsing, validation and manifest selection.
 *
 * Follows the Greengrass Developer Guide, "AWS IoT Greengrass component recipe reference"
 * (component-recipe-reference.html), and the nucleus sources: keys are case-insensitive (gdk
 * `recipe_schema.json` lower-cases them, the nucleus config store compares them with
 * CaseInsensitiveString), the first manifest whose Platform matches wins (component-common
 * `PlatformHelper.findBestMatch`), and a manifest without its own Lifecycle takes the recipe's
 * global Lifecycle filtered by its Selections (`componentmanager/converter/RecipeLoader.java`,
 * `config/PlatformResolver.filterPlatform`).
 *
 * Validation is stricter than the nucleus in one way: unknown keys are rejected (gdk's schema has
 * `additionalProperties: false` at the top level; elsewhere a misspelt `Scirpt` would otherwise be
 * dropped in silence). Every error names the file, the key path and what is allowed.
 */
import fs from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { parse as parseYaml } from 'yaml';
import { Lifecycle, Obj, RecipeError, Where, at, isObj, parseLifecycle, readKeys } from './recipe-lifecycle';
import { Platform, filterSelections, platformMatches, validatePlatform } from './recipe-platform';

export { RecipeError } from './recipe-lifecycle';
export type { Lifecycle, LifecycleStep } from './recipe-lifecycle';
export { currentPlatform } from './recipe-platform';
export type { Platform } from './recipe-platform';

export type Permission = 'NONE' | 'OWNER' | 'ALL';

export interface Artifact {
  uri: string;
  fileName: string;
  unarchive: 'NONE' | 'ZIP';
  permission: { read: Permission; execute: Permission };
  digest?: string;
  algorithm?: string;
}

export interface Dependency {
  versionRequirement: string;
  dependencyType: 'HARD' | 'SOFT';
}

/** One entry of `Manifests`, validated; its Lifecycle is resolved by `selectManifest`. */
export interface RawManifest {
  name?: string;
  /** Platform keys lower-cased; values are a label, `*`, `/regex/`, a list of those, or null. */
  platform: Record<string, unknown>;
  /** The manifest's own Lifecycle section as written (keys as in the file), if any. */
  lifecycle?: Obj;
  selections: string[];
  artifacts: Artifact[];
}

export interface Recipe {
  formatVersion: string;
  name: string;
  version: string;
  description?: string;
  publisher?: string;
  defaultConfiguration: Record<string, unknown>;
  dependencies: Record<string, Dependency>;
  manifests: RawManifest[];
  globalLifecycle?: unknown;
  /** File path (or whatever label the caller gave) used in error messages. */
  source: string;
}

export interface ResolvedManifest {
  lifecycle: Lifecycle;
  artifacts: Artifact[];
}

const FORMAT_VERSION = '2020-01-25';

const TOP_KEYS = [
  'RecipeFormatVersion', 'ComponentName', 'ComponentVersion', 'ComponentDescription', 'ComponentPublisher',
  'ComponentType', 'ComponentSource', 'ComponentConfiguration', 'ComponentDependencies', 'Manifests', 'Lifecycle',
] as const;
const MANIFEST_KEYS = ['Name', 'Platform', 'Lifecycle', 'Selections', 'Artifacts'] as const;
const ARTIFACT_KEYS = ['URI', 'Unarchive', 'Permission', 'Digest', 'Algorithm'] as const;
const DEPENDENCY_KEYS = ['VersionRequirement', 'DependencyType'] as const;

// gdk recipe_schema.json: ComponentName `^[a-zA-Z0-9-_.]+$`, at most 128 characters. We also ask for
// the reverse-DNS form the docs recommend (at least two dot-separated labels).
const NAME_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/;
const COMPONENT_TYPES = ['aws.greengrass.generic', 'aws.greengrass.nucleus', 'aws.greengrass.plugin', 'aws.greengrass.lambda'];

function optionalString(v: unknown, w: Where, key: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new RecipeError(`${w.source}: ${at(w, key)} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function requiredString(v: unknown, w: Where, key: string, what: string): string {
  if (v === undefined || v === null) throw new RecipeError(`${w.source}: ${at(w, key)} is required (${what})`);
  if (typeof v !== 'string') {
    // YAML reads an unquoted 1.0 as a number: say so, it is the usual cause.
    const hint = typeof v === 'number' ? ' (a number: quote it in YAML)' : '';
    throw new RecipeError(`${w.source}: ${at(w, key)} must be a string (${what}), got ${JSON.stringify(v)}${hint}`);
  }
  return v;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], dflt: T, w: Where, key: string): T {
  if (v === undefined || v === null) return dflt;
  const up = typeof v === 'string' ? v.toUpperCase() : undefined;
  const hit = allowed.find((a) => a === up);
  if (!hit) throw new RecipeError(`${w.source}: ${at(w, key)} must be one of ${allowed.join(', ')} (any case), got ${JSON.stringify(v)}`);
  return hit;
}

function parseDependencies(v: unknown, w: Where): Record<string, Dependency> {
  const out: Record<string, Dependency> = {};
  if (v === undefined || v === null) return out;
  if (!isObj(v)) throw new RecipeError(`${w.source}: ComponentDependencies must be a mapping of component name to {VersionRequirement, DependencyType}`);
  for (const [dep, spec] of Object.entries(v)) {
    const dw: Where = { source: w.source, path: `ComponentDependencies.${dep}` };
    if (!/^[A-Za-z0-9._-]+$/.test(dep)) throw new RecipeError(`${w.source}: ${dw.path}: dependency name may contain only letters, digits, '.', '_' and '-'`);
    const keys = readKeys(spec, DEPENDENCY_KEYS, dw);
    const range = requiredString(keys.get('VersionRequirement'), dw, 'VersionRequirement', 'an npm-style semver range such as ^1.0.0 or >=1.2.0 <2.0.0');
    if (semver.validRange(range) === null) {
      throw new RecipeError(`${w.source}: ${at(dw, 'VersionRequirement')} ${JSON.stringify(range)} is not a valid semver range (use npm-style ranges such as ^1.0.0, ~1.2.0, >=1.0.0 <2.0.0 or *)`);
    }
    out[dep] = { versionRequirement: range, dependencyType: oneOf(keys.get('DependencyType'), ['HARD', 'SOFT'] as const, 'HARD', dw, 'DependencyType') };
  }
  return out;
}

/** The artifact's file name: the last path segment of its URI (s3://bucket/a/b/file.zip -> file.zip). */
function fileNameOf(uri: string): string {
  const noScheme = uri.replace(/^[A-Za-z][A-Za-z0-9+.-]*:(\/\/)?/, '');
  const last = noScheme.split('/').pop() ?? '';
  return last;
}

function parseArtifacts(v: unknown, w: Where): Artifact[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new RecipeError(`${w.source}: ${at(w, 'Artifacts')} must be a list of {URI, Unarchive, Permission, Digest, Algorithm}`);
  const perms = ['NONE', 'OWNER', 'ALL'] as const;
  const seen = new Set<string>();
  return v.map((raw: unknown, i: number) => {
    const aw: Where = { source: w.source, path: at(w, `Artifacts[${i}]`) };
    const keys = readKeys(raw, ARTIFACT_KEYS, aw);
    const uri = requiredString(keys.get('URI'), aw, 'URI', 'where the artifact comes from, e.g. s3://bucket/name/1.0.0/file.zip');
    const fileName = fileNameOf(uri);
    if (!fileName) throw new RecipeError(`${w.source}: ${at(aw, 'URI')} ${JSON.stringify(uri)} must end in a file name`);
    // Artifact file names must be unique per manifest: they share one folder on disk (Greengrass
    // component recipe reference, Artifacts).
    if (seen.has(fileName)) throw new RecipeError(`${w.source}: ${at(aw, 'URI')}: file name ${JSON.stringify(fileName)} is used twice in this manifest; artifact file names must be unique`);
    seen.add(fileName);
    const permRaw = keys.get('Permission');
    const pkeys = permRaw === undefined || permRaw === null ? new Map<string, unknown>() : readKeys(permRaw, ['Read', 'Execute'] as const, { source: w.source, path: at(aw, 'Permission') });
    const pw: Where = { source: w.source, path: at(aw, 'Permission') };
    const artifact: Artifact = {
      uri,
      fileName,
      unarchive: oneOf(keys.get('Unarchive'), ['NONE', 'ZIP'] as const, 'NONE', aw, 'Unarchive'),
      permission: { read: oneOf(pkeys.get('Read'), perms, 'OWNER', pw, 'Read'), execute: oneOf(pkeys.get('Execute'), perms, 'NONE', pw, 'Execute') },
    };
    const digest = optionalString(keys.get('Digest'), aw, 'Digest');
    const algorithm = optionalString(keys.get('Algorithm'), aw, 'Algorithm');
    if (digest !== undefined) artifact.digest = digest;
    if (algorithm !== undefined) artifact.algorithm = algorithm;
    return artifact;
  });
}

function parseSelections(v: unknown, w: Where): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) {
    throw new RecipeError(`${w.source}: ${at(w, 'Selections')} must be a list of selector names (strings), e.g. [linux, all]`);
  }
  return list as string[];
}

function parseManifest(v: unknown, w: Where): RawManifest {
  const keys = readKeys(v, MANIFEST_KEYS, w);
  const platformRaw = keys.get('Platform');
  const platform: Record<string, unknown> = {};
  if (platformRaw !== undefined && platformRaw !== null) {
    if (!isObj(platformRaw)) throw new RecipeError(`${w.source}: ${at(w, 'Platform')} must be a mapping such as {os: linux, architecture: amd64}`);
    for (const [k, val] of Object.entries(platformRaw)) platform[k.toLowerCase()] = val;
    validatePlatform(platform, { source: w.source, path: at(w, 'Platform') });
  }
  const lifecycle = keys.get('Lifecycle');
  if (lifecycle !== undefined && lifecycle !== null && !isObj(lifecycle)) {
    throw new RecipeError(`${w.source}: ${at(w, 'Lifecycle')} must be a mapping of lifecycle steps (Setenv, Bootstrap, Install, Startup, Run, Shutdown, Recover)`);
  }
  const m: RawManifest = {
    platform,
    selections: parseSelections(keys.get('Selections'), w),
    artifacts: parseArtifacts(keys.get('Artifacts'), w),
  };
  const name = optionalString(keys.get('Name'), w, 'Name');
  if (name !== undefined) m.name = name;
  if (isObj(lifecycle)) m.lifecycle = lifecycle;
  return m;
}

/**
 * Parse and validate one recipe (YAML or JSON: the `yaml` package reads both). Throws RecipeError.
 * The global Lifecycle is checked against every manifest's Selections so that errors surface here
 * rather than at deployment time.
 */
export function parseRecipe(text: string, source: string): Recipe {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, prettyErrors: true });
  } catch (e) {
    throw new RecipeError(`${source}: not valid YAML or JSON: ${(e as Error).message}`);
  }
  const w: Where = { source, path: '' };
  if (!isObj(doc)) throw new RecipeError(`${source}: a recipe must be a mapping with RecipeFormatVersion, ComponentName, ComponentVersion and Manifests`);
  const keys = readKeys(doc, TOP_KEYS, w);

  const formatVersion = requiredString(keys.get('RecipeFormatVersion'), w, 'RecipeFormatVersion', `must be "${FORMAT_VERSION}"`);
  if (formatVersion !== FORMAT_VERSION) throw new RecipeError(`${source}: RecipeFormatVersion must be "${FORMAT_VERSION}", got ${JSON.stringify(formatVersion)}`);

  const name = requiredString(keys.get('ComponentName'), w, 'ComponentName', 'a reverse-DNS name such as com.example.HelloWorld');
  if (name.length > 128 || !NAME_RE.test(name)) {
    throw new RecipeError(`${source}: ComponentName ${JSON.stringify(name)} must be a reverse-DNS name (dot-separated labels of letters, digits, '_' or '-', e.g. com.example.HelloWorld), at most 128 characters`);
  }
  if (name.toLowerCase().startsWith('aws.greengrass.')) {
    throw new RecipeError(`${source}: ComponentName ${JSON.stringify(name)}: the aws.greengrass.* namespace is reserved for AWS-provided components`);
  }

  const version = requiredString(keys.get('ComponentVersion'), w, 'ComponentVersion', 'a semantic version such as 1.0.0');
  if (version.length > 64 || semver.valid(version) !== version) {
    throw new RecipeError(`${source}: ComponentVersion ${JSON.stringify(version)} must be a semantic version MAJOR.MINOR.PATCH (e.g. 1.0.0 or 1.2.0-beta.1), at most 64 characters`);
  }

  const type = optionalString(keys.get('ComponentType'), w, 'ComponentType');
  if (type !== undefined && !COMPONENT_TYPES.includes(type.toLowerCase())) {
    throw new RecipeError(`${source}: ComponentType ${JSON.stringify(type)} must be one of ${COMPONENT_TYPES.join(', ')} (best left out: the default is aws.greengrass.generic)`);
  }
  optionalString(keys.get('ComponentSource'), w, 'ComponentSource');

  let defaultConfiguration: Record<string, unknown> = {};
  const cc = keys.get('ComponentConfiguration');
  if (cc !== undefined && cc !== null) {
    const ccKeys = readKeys(cc, ['DefaultConfiguration'] as const, { source, path: 'ComponentConfiguration' });
    const dc = ccKeys.get('DefaultConfiguration');
    if (dc !== undefined && dc !== null) {
      if (!isObj(dc)) throw new RecipeError(`${source}: ComponentConfiguration.DefaultConfiguration must be a mapping (a JSON object)`);
      defaultConfiguration = dc;
    }
  }

  const manifestsRaw = keys.get('Manifests');
  if (!Array.isArray(manifestsRaw) || manifestsRaw.length === 0) {
    throw new RecipeError(`${source}: Manifests is required: a non-empty list of {Platform, Lifecycle, Selections, Artifacts}`);
  }
  const manifests = manifestsRaw.map((m: unknown, i: number) => parseManifest(m, { source, path: `Manifests[${i}]` }));

  const globalLifecycle = keys.get('Lifecycle');
  if (globalLifecycle !== undefined && globalLifecycle !== null && !isObj(globalLifecycle)) {
    throw new RecipeError(`${source}: Lifecycle must be a mapping of lifecycle steps, optionally under selector keys such as all or linux`);
  }

  const recipe: Recipe = {
    formatVersion,
    name,
    version,
    defaultConfiguration,
    dependencies: parseDependencies(keys.get('ComponentDependencies'), w),
    manifests,
    source,
  };
  const description = optionalString(keys.get('ComponentDescription'), w, 'ComponentDescription');
  const publisher = optionalString(keys.get('ComponentPublisher'), w, 'ComponentPublisher');
  if (description !== undefined) recipe.description = description;
  if (publisher !== undefined) recipe.publisher = publisher;
  if (isObj(globalLifecycle)) recipe.globalLifecycle = globalLifecycle;

  // Resolve every manifest's lifecycle once so that a bad step is reported now, naming the manifest.
  manifests.forEach((_, i) => resolveLifecycle(recipe, i));
  return recipe;
}

function resolveLifecycle(recipe: Recipe, index: number): Lifecycle {
  const m = recipe.manifests[index];
  if (m.lifecycle && Object.keys(m.lifecycle).length > 0) {
    return parseLifecycle(m.lifecycle, { source: recipe.source, path: `Manifests[${index}].Lifecycle` });
  }
  if (!isObj(recipe.globalLifecycle)) return { setenv: {} };
  // Keywords are every selector named by any manifest, plus `all` (RecipeLoader.collectAllSelectors).
  const keywords = new Set<string>(['all']);
  for (const other of recipe.manifests) for (const s of other.selections) keywords.add(s);
  const filtered = filterSelections(recipe.globalLifecycle, keywords, m.selections);
  const where: Where = { source: recipe.source, path: `Lifecycle (selected for Manifests[${index}] with Selections [${m.selections.join(', ') || 'all'}])` };
  if (!isObj(filtered)) return { setenv: {} };
  return parseLifecycle(filtered, where);
}

/** The first manifest whose Platform matches wins; throws RecipeError if none does. */
export function selectManifest(recipe: Recipe, platform: Platform): ResolvedManifest {
  const index = recipe.manifests.findIndex((m) => platformMatches(m.platform, platform));
  if (index < 0) {
    const wanted = recipe.manifests.map((m) => JSON.stringify(m.platform)).join(', ');
    throw new RecipeError(`${recipe.source}: no manifest matches platform ${JSON.stringify(platform)} (manifest platforms: ${wanted})`);
  }
  return { lifecycle: resolveLifecycle(recipe, index), artifacts: recipe.manifests[index].artifacts };
}

function listRecipeFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listRecipeFiles(full));
    else if (entry.isFile() && /\.(json|ya?ml)$/i.test(entry.name)) out.push(full);
  }
  return out;
}

/**
 * Every .json/.yaml/.yml file under `dir` (recursively) parsed as a recipe, name and version taken
 * from the content, as the Greengrass CLI's `--recipeDir` does (deployment/DeploymentService.java).
 * Two files declaring the same name and version are an error.
 */
export function loadRecipeDir(dir: string): Recipe[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new RecipeError(`${dir}: recipe directory does not exist`);
  const seen = new Map<string, string>();
  return listRecipeFiles(dir).map((file) => {
    const recipe = parseRecipe(fs.readFileSync(file, 'utf8'), file);
    const id = `${recipe.name}@${recipe.version}`;
    const other = seen.get(id);
    if (other) throw new RecipeError(`${file}: ${id} is also declared by ${other}; each component version must come from one recipe`);
    seen.set(id, file);
    return recipe;
  });
}

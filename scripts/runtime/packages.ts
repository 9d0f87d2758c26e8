/**
 * The local component store's recipes and dependency resolution.
 *
 * Recipes given with a local deployment (`--recipeDir`) are copied into
 * `<root>/packages/recipes/` and indexed by name and version, so later deployments and a nucleus
 * restart find them again (deployment/DeploymentService.java copies them the same way). The
 * dependency closure of the root components is resolved against that store: roots by exact
 * version, dependencies by their npm-style VersionRequirement, preferring the version already
 * running, then the highest that satisfies (componentmanager/DependencyResolver.java).
 */
import fs from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { Recipe, RecipeError, loadRecipeDir, parseRecipe } from './recipe';
import { STREAM_MANAGER_COMPONENT_NAME, streamManagerRecipe } from './stream-manager/component';

export class ResolutionError extends Error {}

/**
 * Components the local runtime provides itself, without a recipe: a dependency on one resolves (and
 * is left out of the closure). aws.greengrass.TokenExchangeService is served by scripts/runtime/tes.ts
 * when the nucleus is created with `tes`; without it the dependency still resolves, but the
 * component gets no AWS_CONTAINER_CREDENTIALS_FULL_URI.
 */
export const BUILTIN_COMPONENTS: ReadonlySet<string> = new Set(['aws.greengrass.TokenExchangeService']);

/**
 * Components the runtime runs inside its own process, from a recipe of its own that the store always
 * holds: aws.greengrass.StreamManager (scripts/runtime/stream-manager). They are part of the closure
 * and the service graph like any component (state, HARD dependencies, configuration).
 */
export const IN_PROCESS_COMPONENTS: ReadonlySet<string> = new Set([STREAM_MANAGER_COMPONENT_NAME]);

export class PackageStore {
  private readonly recipes = new Map<string, Map<string, Recipe>>();
  private readonly dir: string;

  constructor(root: string) {
    this.dir = path.join(root, 'packages', 'recipes');
    fs.mkdirSync(this.dir, { recursive: true });
    this.index(streamManagerRecipe());
    for (const file of fs.readdirSync(this.dir)) {
      const full = path.join(this.dir, file);
      try {
        this.index(parseRecipe(fs.readFileSync(full, 'utf8'), full));
      } catch (e) {
        // A damaged file in our own store must not stop the nucleus; it is skipped and said so.
        if (!(e instanceof RecipeError)) throw e;
      }
    }
  }

  private index(recipe: Recipe): void {
    let versions = this.recipes.get(recipe.name);
    if (!versions) this.recipes.set(recipe.name, (versions = new Map()));
    versions.set(recipe.version, recipe);
  }

  /** Parses every recipe under dir (all or nothing) and stores them. Returns the names@versions. */
  importDir(dir: string): string[] {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new RecipeError(`recipe directory ${dir} does not exist`);
    const recipes = loadRecipeDir(dir);
    const out: string[] = [];
    for (const r of recipes) {
      const target = path.join(this.dir, `${r.name}@${r.version}${path.extname(r.source) || '.yaml'}`);
      fs.copyFileSync(r.source, target);
      this.index({ ...r, source: target });
      out.push(`${r.name}@${r.version}`);
    }
    return out;
  }

  get(name: string, version: string): Recipe | undefined {
    return this.recipes.get(name)?.get(version);
  }

  versions(name: string): string[] {
    return [...(this.recipes.get(name)?.keys() ?? [])];
  }

  /**
   * The closure of roots (name -> exact version) over HARD and SOFT dependencies.
   * `active` is what runs now; a dependency keeps its running version when that still satisfies.
   */
  resolve(roots: Map<string, string>, active: Map<string, string>): Map<string, Recipe> {
    const chosen = new Map<string, Recipe>();
    const requirements = new Map<string, string[]>();
    const visit = (name: string, requirement: string, requiredBy: string): void => {
      // A built-in as a dependency, with no recipe of it in the store, is satisfied by the runtime.
      if (BUILTIN_COMPONENTS.has(name) && requiredBy !== 'the deployment' && this.versions(name).length === 0) return;
      // A component the deployment names itself is pinned to that version before a dependent's
      // requirement is checked against it, whichever root is visited first (Greengrass gathers
      // every requirement on a component before it picks): a new version of a dependency deployed
      // as a root must not lose to the version running now.
      if (requiredBy !== 'the deployment' && roots.has(name) && !chosen.has(name)) visit(name, roots.get(name)!, 'the deployment');
      const reqs = requirements.get(name) ?? [];
      reqs.push(`${requiredBy} requires ${requirement}`);
      requirements.set(name, reqs);
      const already = chosen.get(name);
      if (already) {
        if (!semver.satisfies(already.version, requirement, { includePrerelease: true })) {
          throw new ResolutionError(`conflicting version requirements for ${name}: ${reqs.join('; ')} (chosen ${already.version})`);
        }
        return;
      }
      const candidates = this.versions(name).filter((v) => semver.satisfies(v, requirement, { includePrerelease: true }));
      if (candidates.length === 0) {
        const have = this.versions(name);
        throw new ResolutionError(
          `no local recipe satisfies ${name} ${requirement} (${requiredBy}); ` +
            (have.length ? `available versions: ${have.join(', ')}` : 'none in the store: give it with --recipeDir'),
        );
      }
      const current = active.get(name);
      const version = current && candidates.includes(current) ? current : semver.rsort(candidates)[0]!;
      const recipe = this.get(name, version)!;
      chosen.set(name, recipe);
      for (const [dep, d] of Object.entries(recipe.dependencies)) visit(dep, d.versionRequirement, `${name}@${version}`);
    };
    for (const [name, version] of roots) visit(name, version, 'the deployment');
    return chosen;
  }
}

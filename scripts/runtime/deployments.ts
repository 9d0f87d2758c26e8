/**
 * Local deployments, as the Greengrass CLI makes them (CreateLocalDeployment;
 * docs/local-runtime.md "Deployments"; nucleus deployment/DeploymentService.java,
 * DeploymentConfigMerger.java).
 *
 * One deployment at a time, in order of arrival:
 *  1. import recipes (--recipeDir) and artifacts (--artifactDir) into the component store;
 *  2. resolve the new root set's dependency closure and each component's manifest for this
 *     platform, and prepare its artifacts (digest, permissions, ZIP);
 *  3. tell subscribed components an update is coming and honour their deferrals;
 *  4. send proposed configuration to components that validate it;
 *  5. merge configuration (RESET, then defaults, then MERGE), replace policies, remove what left
 *     the closure, and (re)start what changed;
 *  6. succeed when every component of the closure is RUNNING or FINISHED; fail when one turns
 *     BROKEN, rolling back if the deployment asked for ROLLBACK.
 * Anything wrong before step 5 fails the deployment with nothing changed (FAILED_NO_STATE_CHANGE).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../components/lib/logger';
import { ArtifactError, artifactsPath, prepareArtifacts, unarchivedPath } from './artifacts';
import type { Authorizer } from './authorization';
import type { ComponentUpdates } from './component-updates';
import { ConfigStore } from './config-store';
import type { ConfigValidation } from './config-validation';
import { BUILTIN_COMPONENTS, IN_PROCESS_COMPONENTS, PackageStore, ResolutionError } from './packages';
import { Platform, Recipe, RecipeError, ResolvedManifest, selectManifest } from './recipe';
import type { ServiceDefinition, ServiceManager, ServiceState } from './services';
import { VariableContext, VariableScope, interpolateLifecycle } from './variables';

export interface DeploymentRequest {
  rootComponentsToAdd: Record<string, string>;
  rootComponentsToRemove: string[];
  configuration: Record<string, { merge?: Record<string, unknown>; reset: string[] }>;
  recipeDirectoryPath?: string;
  artifactsDirectoryPath?: string;
  failureHandlingPolicy: 'ROLLBACK' | 'DO_NOTHING';
}

export type DeploymentStatus = 'QUEUED' | 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED';
export type DetailedStatus = 'SUCCESSFUL' | 'FAILED_NO_STATE_CHANGE' | 'FAILED_ROLLBACK_NOT_REQUESTED' | 'FAILED_ROLLBACK_COMPLETE' | 'REJECTED';

/** The LocalDeployment shape of the IPC model. */
export interface LocalDeployment {
  deploymentId: string;
  status: DeploymentStatus;
  createdOn: string;
  deploymentStatusDetails?: { detailedDeploymentStatus: DetailedStatus; deploymentErrorStack?: string[]; deploymentErrorTypes?: string[] };
}

export interface DeploymentOptions {
  /** componentUpdatePolicy.timeoutInSeconds (default 60 s). */
  componentUpdateTimeoutMs: number;
  /** configurationValidationPolicy.timeoutInSeconds (default 30 s). */
  configValidationTimeoutMs: number;
  /** How long the components of a deployment may take to reach RUNNING/FINISHED. */
  deploymentTimeoutMs: number;
  /** How long they must then stay RUNNING/FINISHED for the deployment to succeed. */
  stableMs: number;
}

export interface DeploymentDeps {
  rootDir: string;
  thingName: string;
  platform: Platform;
  logger: Logger;
  config: ConfigStore;
  services: ServiceManager;
  authorizer: Authorizer;
  updates: ComponentUpdates;
  validation: ConfigValidation;
  packages: PackageStore;
  options: DeploymentOptions;
  /** The nucleus-provided environment of a component's processes. */
  /** The nucleus's environment for a component's processes; `dependencies` are its recipe's. */
  envFor(name: string, dependencies: readonly string[]): Record<string, string>;
  /** A component left the deployment: drop its token and connections. */
  onRemoved(name: string): void;
  /** The deployed set changed: persist it. */
  onCommitted(): void;
}

class DeploymentFailure extends Error {
  constructor(
    readonly errorType: string,
    message: string,
    readonly stateChanged: boolean,
  ) {
    super(message);
  }
}

interface Deployed {
  recipe: Recipe;
  manifest: ResolvedManifest;
}

const OK_STATES: ServiceState[] = ['RUNNING', 'FINISHED'];
const MAX_KEPT = 50;

export class DeploymentEngine {
  private readonly history = new Map<string, LocalDeployment>();
  private readonly queue: { id: string; request: DeploymentRequest }[] = [];
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  /** Root components and their versions. */
  roots = new Map<string, string>();
  /** Everything deployed (the closure of the roots). */
  readonly deployed = new Map<string, Deployed>();

  constructor(private readonly d: DeploymentDeps) {}

  submit(request: DeploymentRequest): string {
    const id = randomUUID();
    this.record({ deploymentId: id, status: 'QUEUED', createdOn: new Date().toISOString() });
    this.queue.push({ id, request });
    void this.pump();
    return id;
  }

  status(id: string): LocalDeployment | undefined {
    const s = this.history.get(id);
    return s && structuredClone(s);
  }

  list(): LocalDeployment[] {
    return [...this.history.values()].map((s) => structuredClone(s));
  }

  /** Resolves when no deployment is queued or in progress. */
  whenIdle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  version(name: string): string | undefined {
    return this.deployed.get(name)?.recipe.version;
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  /** At nucleus start: bring back what was deployed before, from the component store. */
  restore(roots: Map<string, string>): void {
    const active = new Map<string, string>();
    const closure = this.d.packages.resolve(roots, active);
    for (const [name, recipe] of closure) {
      this.deployed.set(name, { recipe, manifest: selectManifest(recipe, this.d.platform) });
      this.d.authorizer.setComponentPolicies(name, this.d.config.document(name).accessControl);
    }
    this.roots = new Map(roots);
    for (const name of closure.keys()) this.d.services.upsert(this.definition(name));
  }

  private record(s: LocalDeployment): void {
    this.history.set(s.deploymentId, s);
    while (this.history.size > MAX_KEPT) this.history.delete(this.history.keys().next().value!);
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const { id, request } = this.queue.shift()!;
        await this.execute(id, request);
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private setStatus(id: string, status: DeploymentStatus, detailed?: DetailedStatus, error?: DeploymentFailure): void {
    const s = this.history.get(id);
    if (!s) return;
    s.status = status;
    if (detailed) {
      s.deploymentStatusDetails = { detailedDeploymentStatus: detailed };
      if (error) {
        s.deploymentStatusDetails.deploymentErrorStack = [error.message];
        s.deploymentStatusDetails.deploymentErrorTypes = [error.errorType];
      }
    }
  }

  private async execute(id: string, req: DeploymentRequest): Promise<void> {
    const log = this.d.logger.child({ deploymentId: id });
    this.setStatus(id, 'IN_PROGRESS');
    log.info('deployment started', { add: req.rootComponentsToAdd, remove: req.rootComponentsToRemove });
    const before = this.capture();
    try {
      const plan = await this.prepare(req);
      await this.d.updates.preUpdate(id, this.d.options.componentUpdateTimeoutMs);
      await this.validate(id, plan, req);
      await this.apply(plan, req);
      await this.awaitHealthy(plan.closure);
      this.d.onCommitted();
      this.d.updates.postUpdate(id);
      this.setStatus(id, 'SUCCEEDED', 'SUCCESSFUL');
      log.info('deployment succeeded', { components: [...plan.closure.keys()] });
    } catch (e) {
      const failure =
        e instanceof DeploymentFailure ? e : new DeploymentFailure('NUCLEUS_ERROR', e instanceof Error ? e.message : String(e), true);
      log.error('deployment failed', { error: failure.message, type: failure.errorType });
      if (!failure.stateChanged) {
        this.setStatus(id, 'FAILED', 'FAILED_NO_STATE_CHANGE', failure);
      } else if (req.failureHandlingPolicy === 'ROLLBACK') {
        await this.rollback(before);
        this.setStatus(id, 'FAILED', 'FAILED_ROLLBACK_COMPLETE', failure);
      } else {
        this.d.onCommitted();
        this.setStatus(id, 'FAILED', 'FAILED_ROLLBACK_NOT_REQUESTED', failure);
      }
    }
  }

  private async prepare(req: DeploymentRequest): Promise<{ roots: Map<string, string>; closure: Map<string, Deployed> }> {
    try {
      if (req.recipeDirectoryPath) this.d.packages.importDir(path.resolve(req.recipeDirectoryPath));
      if (req.artifactsDirectoryPath) {
        const src = path.resolve(req.artifactsDirectoryPath);
        if (!fs.existsSync(src)) throw new ArtifactError(`artifact directory ${src} does not exist`);
        fs.cpSync(src, path.join(this.d.rootDir, 'packages', 'artifacts'), { recursive: true, force: true });
      }
      const roots = new Map(this.roots);
      for (const name of req.rootComponentsToRemove) roots.delete(name);
      for (const [name, version] of Object.entries(req.rootComponentsToAdd)) roots.set(name, version);
      const active = new Map([...this.deployed].map(([n, d]) => [n, d.recipe.version]));
      const recipes = this.d.packages.resolve(roots, active);
      for (const name of Object.keys(req.configuration)) {
        if (!recipes.has(name)) throw new ResolutionError(`configuration given for ${name}, which is not part of the deployment`);
      }
      const closure = new Map<string, Deployed>();
      for (const [name, recipe] of recipes) {
        const manifest = selectManifest(recipe, this.d.platform);
        await prepareArtifacts(this.d.rootDir, name, recipe.version, manifest.artifacts);
        closure.set(name, { recipe, manifest });
      }
      return { roots, closure };
    } catch (e) {
      if (e instanceof RecipeError) throw new DeploymentFailure('RECIPE_ERROR', e.message, false);
      if (e instanceof ResolutionError) throw new DeploymentFailure('COMPONENT_RESOLUTION_ERROR', e.message, false);
      if (e instanceof ArtifactError) throw new DeploymentFailure('ARTIFACT_ERROR', e.message, false);
      throw e;
    }
  }

  private async validate(id: string, plan: { closure: Map<string, Deployed> }, req: DeploymentRequest): Promise<void> {
    const scratch = ConfigStore.fromJSON(this.d.config.toJSON());
    const proposed = new Map<string, Record<string, unknown>>();
    for (const [name, dep] of plan.closure) {
      const c = req.configuration[name];
      scratch.applyDeployment(name, { defaults: dep.recipe.defaultConfiguration, reset: c?.reset, merge: c?.merge });
      proposed.set(name, scratch.document(name));
    }
    const result = await this.d.validation.validate(id, proposed, this.d.options.configValidationTimeoutMs);
    if (!result.ok) {
      throw new DeploymentFailure('COMPONENT_CONFIGURATION_NOT_VALID', `${result.component} rejected the configuration: ${result.message}`, false);
    }
  }

  private async apply(plan: { roots: Map<string, string>; closure: Map<string, Deployed> }, req: DeploymentRequest): Promise<void> {
    const removed = [...this.deployed.keys()].filter((n) => !plan.closure.has(n));
    for (const name of removed) await this.removeComponent(name);
    for (const [name, dep] of plan.closure) {
      const c = req.configuration[name];
      this.d.config.applyDeployment(name, { defaults: dep.recipe.defaultConfiguration, reset: c?.reset, merge: c?.merge });
      this.applyPolicies(name);
      this.deployed.set(name, dep);
    }
    this.roots = plan.roots;
    for (const name of plan.closure.keys()) {
      const def = this.definition(name);
      // A BROKEN component is given a fresh start by a deployment that includes it (as the nucleus
      // reinstalls it; lifecyclemanager/Lifecycle.java).
      if (this.d.services.state(name) === 'BROKEN') this.d.services.restart(name);
      this.d.services.upsert(def);
    }
    this.d.services.start();
  }

  private applyPolicies(name: string): void {
    const errors = this.d.authorizer.setComponentPolicies(name, this.d.config.document(name).accessControl);
    for (const error of errors) this.d.logger.warn('invalid accessControl policy dropped', { component: name, error });
  }

  private async removeComponent(name: string): Promise<void> {
    await this.d.services.remove(name);
    this.d.config.remove(name);
    this.d.authorizer.removeComponent(name);
    this.deployed.delete(name);
    this.d.onRemoved(name);
  }

  /** The variable scope of a deployed component (its own or as someone's dependency). */
  private scope(name: string): VariableScope {
    const version = this.deployed.get(name)!.recipe.version;
    return {
      artifactsPath: artifactsPath(this.d.rootDir, name, version),
      artifactsDecompressedPath: unarchivedPath(this.d.rootDir, name, version),
      workPath: path.join(this.d.rootDir, 'work', name),
      configuration: this.d.config.document(name),
    };
  }

  definition(name: string): ServiceDefinition {
    const { recipe, manifest } = this.deployed.get(name)!;
    const dependencies: Record<string, VariableScope> = {};
    for (const dep of Object.keys(recipe.dependencies)) if (this.deployed.has(dep)) dependencies[dep] = this.scope(dep);
    const ctx: VariableContext = { ...this.scope(name), kernelRootPath: this.d.rootDir, thingName: this.d.thingName, dependencies };
    const { lifecycle, unresolved } = interpolateLifecycle(manifest.lifecycle, ctx);
    if (unresolved.length > 0) {
      this.d.logger.warn('recipe variables left unresolved', { component: name, variables: unresolved });
    }
    return {
      name,
      version: recipe.version,
      lifecycle,
      // Built-ins (the TES) are provided by the runtime, not a service to wait for.
      dependencies: Object.entries(recipe.dependencies)
        .filter(([n]) => !(BUILTIN_COMPONENTS.has(n) && !this.deployed.has(n)))
        .map(([n, dep]) => ({ name: n, type: dep.dependencyType })),
      env: this.d.envFor(name, Object.keys(recipe.dependencies)),
      ...(IN_PROCESS_COMPONENTS.has(name) ? { inProcess: true } : {}),
    };
  }

  /**
   * Success needs every component of the closure RUNNING or FINISHED and staying so for
   * `stableMs`: a Run step is RUNNING the moment it is launched, so a component that crashes at
   * once would otherwise pass. Any BROKEN component fails the deployment (nucleus
   * DeploymentConfigMerger.java).
   */
  private awaitHealthy(closure: Map<string, Deployed>): Promise<void> {
    const names = [...closure.keys()];
    const services = this.d.services;
    const stableMs = this.d.options.stableMs;
    return new Promise((resolve, reject) => {
      let stableTimer: NodeJS.Timeout | undefined;
      const check = (): void => {
        const broken = names.filter((n) => services.state(n) === 'BROKEN');
        if (broken.length > 0) {
          finish(new DeploymentFailure('COMPONENT_BROKEN', `${broken.join(', ')} broke after the deployment (see logs/<component>.log)`, true));
          return;
        }
        const healthy = names.every((n) => OK_STATES.includes(services.state(n)!));
        if (!healthy && stableTimer) {
          clearTimeout(stableTimer);
          stableTimer = undefined;
        } else if (healthy && !stableTimer) {
          stableTimer = setTimeout(() => finish(), stableMs);
        }
      };
      const onState = (name: string): void => {
        if (closure.has(name)) check();
      };
      const timer = setTimeout(() => {
        const pending = names.filter((n) => !OK_STATES.includes(services.state(n)!)).map((n) => `${n}=${services.state(n)}`);
        finish(new DeploymentFailure('DEPLOYMENT_TIMEOUT', `components did not reach RUNNING or FINISHED in time: ${pending.join(', ')}`, true));
      }, this.d.options.deploymentTimeoutMs);
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        if (stableTimer) clearTimeout(stableTimer);
        services.off('state', onState);
        if (err) reject(err);
        else resolve();
      };
      services.on('state', onState);
      check();
    });
  }

  private capture(): { roots: Map<string, string>; deployed: Map<string, Deployed>; config: Map<string, unknown> } {
    const config = new Map<string, unknown>();
    for (const name of this.deployed.keys()) config.set(name, this.d.config.snapshot(name));
    return { roots: new Map(this.roots), deployed: new Map(this.deployed), config };
  }

  /** Back to the pre-deployment snapshot: added components go, changed ones get their old definition. */
  private async rollback(before: ReturnType<DeploymentEngine['capture']>): Promise<void> {
    this.d.logger.info('rolling back deployment');
    for (const name of [...this.deployed.keys()]) if (!before.deployed.has(name)) await this.removeComponent(name);
    for (const [name, dep] of before.deployed) {
      this.deployed.set(name, dep);
      this.d.config.restore(name, before.config.get(name));
      this.applyPolicies(name);
    }
    this.roots = before.roots;
    for (const name of before.deployed.keys()) {
      if (this.d.services.state(name) === 'BROKEN') this.d.services.restart(name);
      this.d.services.upsert(this.definition(name));
    }
    this.d.services.start();
    this.d.onCommitted();
  }
}

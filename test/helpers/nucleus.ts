/**
 * Test harness: a local nucleus in a temporary root, recipes written on the fly, and real SDK
 * clients connected with a deployed component's token.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { silentLogger } from '../../components/lib/logger';
import { IpcClient, connectIpc } from '../../scripts/runtime/client';
import type { DeploymentRequest, LocalDeployment } from '../../scripts/runtime/deployments';
import { Nucleus, NucleusOptions, createNucleus } from '../../scripts/runtime/nucleus';

export interface RecipeSpec {
  name: string;
  version?: string;
  defaults?: Record<string, unknown>;
  accessControl?: Record<string, unknown>;
  /** Manifest lifecycle, e.g. { Run: 'sleep 60' }. None: the component is FINISHED at once. */
  lifecycle?: Record<string, unknown>;
  dependencies?: Record<string, { VersionRequirement: string; DependencyType?: 'HARD' | 'SOFT' }>;
  artifacts?: Record<string, unknown>[];
}

export function recipeYaml(spec: RecipeSpec): string {
  const defaults = { ...(spec.defaults ?? {}) };
  if (spec.accessControl) defaults.accessControl = spec.accessControl;
  return YAML.stringify({
    RecipeFormatVersion: '2020-01-25',
    ComponentName: spec.name,
    ComponentVersion: spec.version ?? '1.0.0',
    ComponentDescription: `test component ${spec.name}`,
    ComponentPublisher: 'dcmms-edge tests',
    ...(spec.dependencies ? { ComponentDependencies: spec.dependencies } : {}),
    ComponentConfiguration: { DefaultConfiguration: defaults },
    Manifests: [
      {
        Platform: { os: '*' },
        ...(spec.lifecycle ? { Lifecycle: spec.lifecycle } : {}),
        ...(spec.artifacts ? { Artifacts: spec.artifacts } : {}),
      },
    ],
  });
}

export interface Harness {
  nucleus: Nucleus;
  root: string;
  /** Writes the recipes into a fresh folder and deploys them as roots; resolves with the final status. */
  deploy(specs: RecipeSpec[], extra?: Partial<DeploymentRequest>): Promise<LocalDeployment>;
  /** Submits a raw request and waits for it to finish. */
  run(request: Partial<DeploymentRequest>): Promise<LocalDeployment>;
  /** A real SDK client authenticated as the component. */
  client(component: string): Promise<IpcClient>;
  close(): Promise<void>;
}

let counter = 0;

export async function startNucleus(opts: Partial<NucleusOptions> = {}): Promise<Harness> {
  const root = fs.mkdtempSync('/tmp/gg-');
  const nucleus = createNucleus({
    rootDir: root,
    logger: silentLogger,
    deployment: { componentUpdateTimeoutMs: 2000, configValidationTimeoutMs: 2000, deploymentTimeoutMs: 30_000, stableMs: 500 },
    lifecycle: { stopGraceMs: 1000 },
    ...opts,
  });
  await nucleus.start();
  const clients: IpcClient[] = [];

  const run = async (request: Partial<DeploymentRequest>): Promise<LocalDeployment> => {
    const id = nucleus.deployments.submit({
      rootComponentsToAdd: {},
      rootComponentsToRemove: [],
      configuration: {},
      failureHandlingPolicy: 'DO_NOTHING',
      ...request,
    });
    for (;;) {
      await nucleus.deployments.whenIdle();
      const s = nucleus.deployments.status(id)!;
      if (s.status === 'SUCCEEDED' || s.status === 'FAILED') return s;
    }
  };

  return {
    nucleus,
    root,
    run,
    async deploy(specs, extra = {}) {
      const dir = path.join(root, `recipes-${++counter}`);
      fs.mkdirSync(dir);
      for (const s of specs) fs.writeFileSync(path.join(dir, `${s.name}-${s.version ?? '1.0.0'}.yaml`), recipeYaml(s));
      return run({
        recipeDirectoryPath: dir,
        rootComponentsToAdd: Object.fromEntries(specs.map((s) => [s.name, s.version ?? '1.0.0'])),
        ...extra,
      });
    },
    async client(component) {
      const c = await connectIpc(nucleus.socketPath, nucleus.tokenFor(component));
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await nucleus.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A pub/sub policy block for a test component. */
export function pubsubPolicy(name: string, ops: string[], resources: string[]): Record<string, unknown> {
  return {
    'aws.greengrass.ipc.pubsub': {
      [`${name}:pubsub:1`]: { policyDescription: 'test', operations: ops.map((o) => `aws.greengrass#${o}`), resources },
    },
  };
}

/**
 * Builds the CDK app from the project's files: cdk/bin/app.ts calls it for `npx cdk synth`, and
 * the tests call it with their own options (temporary lock file, validation off).
 */
import { App, Validations, type Environment } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readBuildOutput } from './build-output';
import { loadConfig, type AppConfig } from './config';
import { projectPaths } from './paths';
import { DcmmsEdgeStack } from './stack';
import type { LockMode } from './lock';

export const STACK_NAME = 'DcmmsEdge';

export interface CreateAppOptions {
  /** Project root (default: found from the working directory). */
  readonly root?: string;
  /** Override greengrass-build/ (tests). */
  readonly buildDir?: string;
  readonly lockFile?: string;
  readonly lockMode?: LockMode;
  /** Parsed configuration instead of cdk/config/*.json (tests). */
  readonly config?: AppConfig;
  /** Run cdk-nag AwsSolutions (violations fail the synth). Default true. */
  readonly nag?: boolean;
  /** CDK's built-in CloudFormation validation (~8 s on first synth). Default true. */
  readonly cfnValidation?: boolean;
  readonly outdir?: string;
  readonly context?: Record<string, unknown>;
  /**
   * The stack's account and region when known (tests); the app's stack is environment-agnostic.
   * With a region, secrets of another region fail the synth instead of the deployment.
   */
  readonly env?: Environment;
}

export function createApp(options: CreateAppOptions = {}): { app: App; stack: DcmmsEdgeStack } {
  const paths = projectPaths(options.root);
  const app = new App({
    ...(options.outdir ? { outdir: options.outdir } : {}),
    ...(options.context ? { context: options.context } : {}),
    ...(options.cfnValidation === false ? { builtinCloudFormationValidation: false } : {}),
  });
  const mode = options.lockMode ?? (app.node.tryGetContext('dcmms:lock') === 'record' ? 'record' : 'verify');
  const config = options.config ?? loadConfig(paths.fleetsFile, paths.sitesFile);
  const built = readBuildOutput(options.buildDir ?? paths.buildDir);
  const stack = new DcmmsEdgeStack(app, STACK_NAME, {
    description: 'dCMMS Edge: Greengrass component versions, fleets, provisioning, OTA deployments, cloud data',
    config,
    built,
    lockFile: options.lockFile ?? paths.lockFile,
    lockMode: mode,
    ...(options.env ? { env: options.env } : {}),
  });
  if (options.nag !== false) {
    // cdk-nag 3.x registers as a policy-validation plugin; acknowledgements sit next to the
    // resources they concern (cloud.ts, fleet.ts), each with its reason.
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  }
  return { app, stack };
}

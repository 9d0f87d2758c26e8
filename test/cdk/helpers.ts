/**
 * Shared set-up for the CDK tests: the app built from the real build output (npm test runs
 * `npm run build` first) and config files, with a temporary lock file in record mode (the
 * committed lock is checked by `npx cdk synth`; these tests check the lock logic on copies), and
 * CDK's CloudFormation validation and cdk-nag off: only app.test.ts pays for those.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { createApp, type CreateAppOptions } from '../../cdk/lib/app';
import { loadConfig, parseConfig, type AppConfig } from '../../cdk/lib/config';
import { projectPaths } from '../../cdk/lib/paths';

export const paths = projectPaths();

/** Temporary folders of this test file; a synth stages every asset in its own (about 140 MB). */
const made: string[] = [];

// Jest evaluates this module once per test file: its folders go when that file is done (left behind,
// a full run of test/cdk filled 120 GB of /tmp).
afterAll(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dcmms-cdk-${prefix}-`));
  made.push(dir);
  return dir;
}

export function realConfig(): AppConfig {
  return loadConfig(paths.fleetsFile, paths.sitesFile);
}

export function synthTemplate(options: CreateAppOptions = {}) {
  const dir = tempDir('synth');
  const { app, stack } = createApp({
    nag: false,
    cfnValidation: false,
    lockFile: path.join(dir, 'lock.json'),
    lockMode: 'record',
    outdir: path.join(dir, 'cdk.out'),
    ...options,
  });
  return { app, stack, template: Template.fromStack(stack), dir };
}

type Cfn = unknown;

/** A CloudFormation value as a string: Ref -> <Id>, GetAtt -> <Id.Attr>, Join flattened. */
export function render(v: Cfn): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if ('Ref' in o) return `<${String(o['Ref'])}>`;
    if ('Fn::GetAtt' in o) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, Cfn[]];
      return parts.map(render).join(sep);
    }
    if ('Fn::Sub' in o) return String(o['Fn::Sub']);
    const [fn] = Object.keys(o);
    if (fn?.startsWith('Fn::')) return `<${fn}>`;
  }
  return JSON.stringify(v);
}

export function asArray<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export type Resources = Record<string, { Type: string; Properties?: Record<string, unknown>; DependsOn?: string[]; DeletionPolicy?: string }>;

export function resourcesOf(template: Template, type?: string): Resources {
  const all = template.toJSON()['Resources'] as Resources;
  return Object.fromEntries(Object.entries(all).filter(([, r]) => type === undefined || r.Type === type));
}

/**
 * Secret ARNs for tests, well formed: the six characters Secrets Manager appends, and the AWS
 * documentation's example account id (111122223333), never a real one.
 */
export const EXAMPLE_ACCOUNT = '111122223333';
export function secretArn(name: string, region = 'eu-west-1', partition = 'aws'): string {
  return `arn:${partition}:secretsmanager:${region}:${EXAMPLE_ACCOUNT}:secret:${name}`;
}
export function kmsKeyArn(id = '1234abcd-12ab-34cd-56ef-1234567890ab', region = 'eu-west-1', partition = 'aws'): string {
  return `arn:${partition}:kms:${region}:${EXAMPLE_ACCOUNT}:key/${id}`;
}

/** LocalControl notification outputs naming an SMTP password secret and a webhook token secret. */
export function notifyOutputs(passwordSecret: string | undefined, bearerTokenSecret?: string): Record<string, unknown> {
  return {
    ...(passwordSecret !== undefined
      ? { email: { host: 'smtp.plant.example', port: 587, user: 'gateway', passwordSecret, from: 'gateway@plant.example', to: ['ops@example.com'] } }
      : {}),
    ...(bearerTokenSecret !== undefined ? { webhook: { url: 'https://alerts.example/hook', bearerTokenSecret } } : {}),
  };
}

/** The real fleets and sites as JSON documents, for parseConfig with changes. */
export function rawConfig(config: AppConfig = realConfig()): { fleets: Record<string, any>; sites: any[] } {
  return JSON.parse(JSON.stringify({ fleets: Object.fromEntries(config.fleets.map(({ name, ...f }) => [name, f])), sites: config.sites }));
}

/**
 * The real configuration with LocalControl notifications naming `secrets` (SMTP password, webhook
 * token) for its first site, plus `extra` site keys (e.g. secretsKmsKeyArns); the other sites
 * unchanged.
 */
export function configWithSecrets(secrets: string[] = [secretArn('dcmms/plant-a/smtp-AbCdEf'), secretArn('dcmms/plant-a/webhook-GhIjKl')], extra: Record<string, unknown> = {}): { config: AppConfig; siteId: string; fleet: string } {
  const doc = rawConfig();
  const site = doc.sites[0];
  site.componentConfig = { ...(site.componentConfig ?? {}), 'com.dcmms.edge.LocalControl': { outputs: notifyOutputs(secrets[0], secrets[1]) } };
  Object.assign(site, extra);
  return { config: parseConfig({ fleets: doc.fleets }, { sites: doc.sites }), siteId: site.siteId, fleet: site.fleet };
}

/**
 * `dcmms-edge deployment create|status|list`, with the Greengrass CLI's options
 * (`greengrass-cli deployment create --recipeDir --artifactDir --merge Name=Version
 * --update-config '{"Name":{"MERGE":{...},"RESET":[...]}}' --remove Name`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { IMPLEMENTED_COMPONENTS } from '../../components/lib/contract';
import { CliUsageError, parseCommand, requireRoot } from './args';
import { DEPLOYMENT_CREATE, DEPLOYMENT_LIST, DEPLOYMENT_STATUS } from './commands';
import { describeError, withNucleus } from './session';

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED']);

function parseUpdateConfig(text: string | undefined): Map<string, unknown> | undefined {
  if (text === undefined) return undefined;
  const raw = fs.existsSync(text) ? fs.readFileSync(text, 'utf8') : text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new CliUsageError(`--update-config must be JSON (or a file holding JSON): ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CliUsageError('--update-config must be an object: {"<component>": {"MERGE": {...}, "RESET": ["/pointer"]}}');
  }
  const out = new Map<string, unknown>();
  for (const [name, update] of Object.entries(parsed)) {
    if (typeof update !== 'object' || update === null) throw new CliUsageError(`--update-config: ${name} must map to {"MERGE": {...}, "RESET": [...]}`);
    const keys = Object.keys(update);
    const bad = keys.filter((k) => k !== 'MERGE' && k !== 'RESET');
    if (bad.length) throw new CliUsageError(`--update-config: ${name} has ${bad.join(', ')}; only MERGE and RESET are allowed`);
    out.set(name, update);
  }
  return out;
}

/**
 * `--site ID`: the site id in one place for the whole bundle. It merges `siteId` into the
 * configuration of every dCMMS component (as the CDK's site deployment does), under what
 * --update-config says for each; a component whose MERGE names its own siteId keeps it.
 */
export function withSiteId(update: Map<string, unknown> | undefined, siteId: string): Map<string, unknown> {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(siteId)) throw new CliUsageError(`--site must be 1-64 letters, digits, _ or -, not '${siteId}'`);
  const out = new Map(update ?? []);
  for (const c of IMPLEMENTED_COMPONENTS) {
    const prev = (out.get(c.name) ?? {}) as { MERGE?: Record<string, unknown>; RESET?: string[] };
    out.set(c.name, { ...prev, MERGE: { siteId, ...(prev.MERGE ?? {}) } });
  }
  return out;
}

function parseMerge(list: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of list) {
    const m = /^([^=]+)=([^=]+)$/.exec(item);
    if (!m) throw new CliUsageError(`--merge takes Name=Version, not '${item}'`);
    out.set(m[1]!, m[2]!);
  }
  return out;
}

export async function runDeployment(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const spec = sub === 'create' ? DEPLOYMENT_CREATE : sub === 'status' ? DEPLOYMENT_STATUS : sub === 'list' ? DEPLOYMENT_LIST : undefined;
  if (!spec) throw new CliUsageError(`deployment takes create, status or list, not '${sub ?? ''}'`);
  const { values } = parseCommand(spec, rest);
  const root = requireRoot(values);
  switch (sub) {
    case 'create': {
      const merge = parseMerge((values.merge as string[] | undefined) ?? []);
      const remove = ((values.remove as string[] | undefined) ?? []).flatMap((s) => s.split(','));
      const parsedConfig = parseUpdateConfig(values['update-config'] as string | undefined);
      const updateConfig = typeof values.site === 'string' ? withSiteId(parsedConfig, values.site) : parsedConfig;
      const policy = values['failure-handling-policy'] as string | undefined;
      if (policy !== undefined && policy !== 'ROLLBACK' && policy !== 'DO_NOTHING') {
        throw new CliUsageError('--failure-handling-policy must be ROLLBACK or DO_NOTHING');
      }
      if (merge.size === 0 && remove.length === 0 && !updateConfig) {
        throw new CliUsageError('deployment create needs --merge, --remove, --update-config or --site');
      }
      const timeoutMs = Number(values['timeout-s'] ?? 600) * 1000;
      return withNucleus(root, async (client) => {
        const abs = (p: unknown): string | undefined => (typeof p === 'string' ? path.resolve(p) : undefined);
        const { deploymentId } = await client
          .createLocalDeployment({
            rootComponentVersionsToAdd: merge,
            rootComponentsToRemove: remove,
            componentToConfiguration: updateConfig,
            recipeDirectoryPath: abs(values.recipeDir),
            artifactsDirectoryPath: abs(values.artifactDir),
            failureHandlingPolicy: policy as never,
          })
          .catch((e: unknown) => {
            throw new Error(describeError(e));
          });
        process.stdout.write(`Local deployment submitted! Deployment Id: ${deploymentId}\n`);
        if (!values.wait) return 0;
        const start = Date.now();
        const deadline = start + timeoutMs;
        let shown = '';
        let lastShownAt = start;
        for (;;) {
          const { deployment } = await client.getLocalDeploymentStatus({ deploymentId: deploymentId! });
          // A deployment can take minutes (artifacts, a component's install step): say what it is doing.
          if (!TERMINAL.has(deployment.status) && (deployment.status !== shown || Date.now() - lastShownAt >= 10_000)) {
            process.stderr.write(`${deploymentId}: ${deployment.status} (${Math.round((Date.now() - start) / 1000)} s)\n`);
            shown = deployment.status;
            lastShownAt = Date.now();
          }
          if (TERMINAL.has(deployment.status)) {
            const details = deployment.deploymentStatusDetails;
            process.stdout.write(`${deploymentId}: ${deployment.status}${details ? ` (${details.detailedDeploymentStatus})` : ''}\n`);
            for (const line of details?.deploymentErrorStack ?? []) process.stdout.write(`  ${line}\n`);
            return deployment.status === 'SUCCEEDED' ? 0 : 1;
          }
          if (Date.now() > deadline) {
            process.stderr.write(`${deploymentId}: still ${deployment.status} after ${timeoutMs / 1000} s\n`);
            return 1;
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      });
    }
    case 'status': {
      const id = values.deploymentId;
      if (typeof id !== 'string') throw new CliUsageError('deployment status needs -i DEPLOYMENT_ID');
      return withNucleus(root, async (client) => {
        const { deployment } = await client.getLocalDeploymentStatus({ deploymentId: id }).catch((e: unknown) => {
          throw new Error(describeError(e));
        });
        process.stdout.write(JSON.stringify(deployment, null, 2) + '\n');
        return 0;
      });
    }
    case 'list':
      return withNucleus(root, async (client) => {
        const { localDeployments } = await client.listLocalDeployments({});
        for (const d of localDeployments ?? []) process.stdout.write(`${d.deploymentId}: ${d.status} (${d.createdOn ?? ''})\n`);
        return 0;
      });
    default:
      throw new CliUsageError(`deployment takes create, status or list, not '${sub ?? ''}'`);
  }
}

/** `dcmms-edge nucleus --root DIR`: the local Greengrass runtime in the foreground. */
import fs from 'node:fs';
import path from 'node:path';
import { isLogLevel } from '../../components/lib/logger';
import { createNucleus } from '../runtime/nucleus';
import { CliUsageError, parse, requireRoot } from './args';

export function pidFile(root: string): string {
  return path.join(path.resolve(root), 'nucleus.pid');
}

/**
 * `--secrets FILE`: a JSON object of secret id or ARN -> string, what the secret manager component
 * would serve to GetSecretValue. Its values are never printed, also not in an error.
 */
function readSecrets(file: string): Record<string, string> {
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliUsageError(`--secrets ${file}: not a readable JSON file (${(err as NodeJS.ErrnoException).code ?? 'invalid JSON'})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new CliUsageError(`--secrets ${file}: must be a JSON object of secret id -> string`);
  for (const [id, v] of Object.entries(data)) {
    if (id.length === 0 || typeof v !== 'string') throw new CliUsageError(`--secrets ${file}: each key must be a secret id or ARN and each value a string (${JSON.stringify(id)} is not)`);
  }
  return data as Record<string, string>;
}

export async function runNucleus(args: string[]): Promise<number> {
  const { values } = parse(args, {
    root: { type: 'string' },
    'thing-name': { type: 'string' },
    region: { type: 'string' },
    'mqtt-url': { type: 'string' },
    offline: { type: 'boolean' },
    'offline-behaviour': { type: 'string' },
    'spool-bytes': { type: 'string' },
    'log-level': { type: 'string' },
    secrets: { type: 'string' },
  });
  const root = requireRoot(values);
  const behaviour = (values['offline-behaviour'] as string | undefined) ?? 'spool';
  if (behaviour !== 'spool' && behaviour !== 'fail') throw new CliUsageError(`--offline-behaviour must be spool or fail, not '${behaviour}'`);
  const spoolBytes = Number(values['spool-bytes'] ?? 2_621_440);
  if (!Number.isInteger(spoolBytes) || spoolBytes <= 0) throw new CliUsageError('--spool-bytes must be a positive integer');
  const level = (values['log-level'] as string | undefined) ?? 'info';
  if (!isLogLevel(level)) throw new CliUsageError(`--log-level must be debug, info, warn or error, not '${level}'`);
  const url = values['mqtt-url'] as string | undefined;
  const secretsFile = values.secrets as string | undefined;

  const nucleus = createNucleus({
    rootDir: root,
    thingName: values['thing-name'] as string | undefined,
    region: values.region as string | undefined,
    logLevel: level,
    logToStdout: true,
    ...(secretsFile !== undefined ? { secrets: readSecrets(secretsFile) } : {}),
    iot: {
      broker: url ? { kind: 'external', url } : { kind: 'embedded' },
      offline: { behaviour, maxSpoolBytes: spoolBytes, keepQos0WhenOffline: false },
      reachable: !values.offline,
    },
  });
  await nucleus.start();
  fs.writeFileSync(pidFile(root), String(process.pid));

  // The cloud switch of a running nucleus: `dcmms-edge cloud offline|online` sends these.
  process.on('SIGUSR1', () => {
    nucleus.iotCore.setReachable(false);
    nucleus.logger.info('IoT Core is now unreachable (simulated outage)');
  });
  process.on('SIGUSR2', () => {
    nucleus.iotCore.setReachable(true);
    nucleus.logger.info('IoT Core is reachable again');
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      nucleus.logger.info('stopping', { signal });
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await nucleus.close();
  fs.rmSync(pidFile(root), { force: true });
  return 0;
}

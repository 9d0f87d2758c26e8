/** `dcmms-edge nucleus --root DIR`: the local Greengrass runtime in the foreground. */
import fs from 'node:fs';
import path from 'node:path';
import { isLogLevel } from '../../components/lib/logger';
import { createNucleus, type Nucleus } from '../runtime/nucleus';
import { CliUsageError, parseCommand, requireRoot } from './args';
import { NUCLEUS } from './commands';

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

/**
 * The cloud switch of a running nucleus: `dcmms-edge cloud offline|online --root DIR` reads the pid
 * in DIR/nucleus.pid and sends SIGUSR1 (unreachable) or SIGUSR2 (reachable). Both `nucleus` and
 * `demo` serve it, so the command works on whichever runs.
 */
export function serveCloudSwitch(nucleus: Pick<Nucleus, 'iotCore' | 'logger'>, root: string, onChange?: (reachable: boolean) => void): { close(): void } {
  const file = pidFile(root);
  fs.writeFileSync(file, String(process.pid));
  const set = (reachable: boolean): void => {
    nucleus.iotCore.setReachable(reachable);
    nucleus.logger.info(reachable ? 'IoT Core is reachable again' : 'IoT Core is now unreachable (simulated outage)');
    onChange?.(reachable);
  };
  const off = (): void => set(false);
  const on = (): void => set(true);
  process.on('SIGUSR1', off);
  process.on('SIGUSR2', on);
  return {
    close: () => {
      process.off('SIGUSR1', off);
      process.off('SIGUSR2', on);
      // Only our own pid file: a second nucleus on the same root may have written its own since.
      try {
        if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.rmSync(file, { force: true });
      } catch {
        /* already gone */
      }
    },
  };
}

/** `--stream-manager-endpoints JSON`: {s3?, kinesis?, sitewiseFile?} for the built-in Stream Manager's exporters. */
function readStreamManagerEndpoints(json: string | undefined): { s3?: string; kinesis?: string; sitewiseFile?: string } | undefined {
  if (json === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new CliUsageError('--stream-manager-endpoints must be a JSON object, e.g. {"s3":"http://127.0.0.1:4568"}');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CliUsageError('--stream-manager-endpoints must be a JSON object');
  for (const [k, x] of Object.entries(v)) {
    if (!['s3', 'kinesis', 'sitewiseFile'].includes(k) || typeof x !== 'string') throw new CliUsageError(`--stream-manager-endpoints: keys are s3, kinesis and sitewiseFile, each a string (not ${JSON.stringify(k)})`);
  }
  return v as { s3?: string; kinesis?: string; sitewiseFile?: string };
}

export async function runNucleus(args: string[]): Promise<number> {
  const { values } = parseCommand(NUCLEUS, args);
  const root = requireRoot(values);
  const behaviour = (values['offline-behaviour'] as string | undefined) ?? 'spool';
  if (behaviour !== 'spool' && behaviour !== 'fail') throw new CliUsageError(`--offline-behaviour must be spool or fail, not '${behaviour}'`);
  const spoolBytes = Number(values['spool-bytes'] ?? 2_621_440);
  if (!Number.isInteger(spoolBytes) || spoolBytes <= 0) throw new CliUsageError('--spool-bytes must be a positive integer');
  const level = (values['log-level'] as string | undefined) ?? 'info';
  if (!isLogLevel(level)) throw new CliUsageError(`--log-level must be debug, info, warn or error, not '${level}'`);
  const url = values['mqtt-url'] as string | undefined;
  const secretsFile = values.secrets as string | undefined;
  const smEndpoints = readStreamManagerEndpoints(values['stream-manager-endpoints'] as string | undefined);

  const nucleus = createNucleus({
    rootDir: root,
    thingName: values['thing-name'] as string | undefined,
    region: values.region as string | undefined,
    logLevel: level,
    logToStdout: true,
    ...(secretsFile !== undefined ? { secrets: readSecrets(secretsFile) } : {}),
    ...(smEndpoints ? { streamManager: { endpoints: smEndpoints } } : {}),
    iot: {
      broker: url ? { kind: 'external', url } : { kind: 'embedded' },
      offline: { behaviour, maxSpoolBytes: spoolBytes, keepQos0WhenOffline: false },
      reachable: !values.offline,
    },
  });
  await nucleus.start();
  const cloudSwitch = serveCloudSwitch(nucleus, root);

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      nucleus.logger.info('stopping', { signal });
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  cloudSwitch.close();
  await nucleus.close();
  return 0;
}

/**
 * Secrets for LocalControl's notification outputs through the local runtime: the runtime's
 * GetSecretValue (scripts/runtime/ops/secret-ops.ts; docs/local-runtime.md "Secrets") answered
 * to the real aws-iot-device-sdk-v2 client, and our bus's getSecretValue on top of it
 * (components/lib/bus.ts). Authorisation as the secret manager component does it: a policy of
 * service aws.greengrass.SecretManager naming the secret id; no policy, no value, whether the
 * secret exists or not. The `dcmms-edge nucleus --secrets FILE` option serves a file's secrets.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { createBus, type Bus } from '../../components/lib/bus';
import { systemClock } from '../../components/lib/clock';
import { ErrorCode, FatalError, TransientError } from '../../components/lib/errors';
import { createLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { clientConfig, connectIpc } from '../../scripts/runtime/client';
import { readCliIpcInfo } from '../../scripts/runtime/cli-ipc-info';
import { startNucleus, type Harness } from '../helpers/nucleus';
import { tmpDir, waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const READER = 'com.test.SecretReader';
const OTHER = 'com.test.NoSecrets';
// A made-up ARN: partition, region and account are placeholders, not an account of anyone.
const ARN = 'arn:aws:secretsmanager:region-1:account:secret:plant-7/smtp-AbCdEf';
const TOKEN_ID = 'plant-7/webhook-token';
const PASSWORD = 'smtp-pw-Q9!never-logged';
const TOKEN = 'tok-7c1e-never-logged';

let h: Harness;
const lines: string[] = [];
const buses: Bus[] = [];

function secretPolicy(name: string, resources: string[]): Record<string, unknown> {
  return {
    'aws.greengrass.SecretManager': {
      [`${name}:secrets:1`]: { policyDescription: 'test', operations: ['aws.greengrass#GetSecretValue'], resources },
    },
  };
}

function bus(component: string): Bus {
  const b = createBus({
    createClient: () => greengrasscoreipc.createClient(clientConfig(h.nucleus.socketPath, h.nucleus.tokenFor(component))),
    logger: createLogger({ component: 'test' }, { write: (l) => lines.push(l) }),
    metrics: createMetrics({ clock: systemClock }),
    clock: systemClock,
    callTimeoutMs: 5000,
  });
  buses.push(b);
  return b;
}

beforeAll(async () => {
  h = await startNucleus({ secrets: { [ARN]: PASSWORD, [TOKEN_ID]: TOKEN, 'not-allowed': 'x' } });
  const d = await h.deploy([
    { name: READER, accessControl: secretPolicy(READER, [ARN, TOKEN_ID, 'plant-7/smtp', 'missing-secret']) },
    { name: OTHER },
  ]);
  expect(d.status).toBe('SUCCEEDED');
});

afterAll(async () => {
  await Promise.all(buses.map((b) => b.close()));
  await h?.close();
});

test('the real SDK client gets a secret by ARN with the response shapes of the SDK model', async () => {
  const c = await h.client(READER);
  const r = await c.getSecretValue({ secretId: ARN });
  expect(r.secretId).toBe(ARN);
  expect(r.versionStage).toEqual(['AWSCURRENT']);
  expect(typeof r.versionId).toBe('string');
  expect(r.secretValue).toEqual({ secretString: PASSWORD });
  // The same version asked for by id and by stage; another stage is not there.
  await expect(c.getSecretValue({ secretId: ARN, versionId: r.versionId })).resolves.toMatchObject({ secretValue: { secretString: PASSWORD } });
  await expect(c.getSecretValue({ secretId: ARN, versionStage: 'AWSCURRENT' })).resolves.toMatchObject({ versionId: r.versionId });
  await expect(c.getSecretValue({ secretId: ARN, versionStage: 'AWSPREVIOUS' })).rejects.toMatchObject({ serviceError: { _errorCode: 'ResourceNotFoundError' } });
  await expect(c.getSecretValue({ secretId: ARN, versionId: 'another' })).rejects.toMatchObject({ serviceError: { _errorCode: 'ResourceNotFoundError' } });
  // By its name (the ARN's name without the suffix Secrets Manager appends), when the policy names it.
  await expect(c.getSecretValue({ secretId: 'plant-7/smtp' })).resolves.toMatchObject({ secretId: ARN, secretValue: { secretString: PASSWORD } });
});

test('authorisation on the secret id: another secret, or a component without a policy, gets UnauthorizedError whether the secret exists or not', async () => {
  const reader = await h.client(READER);
  const other = await h.client(OTHER);
  for (const [c, id] of [[reader, 'not-allowed'], [reader, 'nothing-here'], [other, ARN], [other, 'nothing-here']] as const) {
    const err = await c.getSecretValue({ secretId: id }).then(
      () => undefined,
      (e: unknown) => e as { serviceError?: { _errorCode?: string; message?: string } },
    );
    expect(err?.serviceError?._errorCode).toBe('UnauthorizedError');
    expect(err?.serviceError?.message).toMatch(/is not authorized to perform aws\.greengrass\.SecretManager:aws\.greengrass#GetSecretValue on resource/);
    expect(JSON.stringify(err)).not.toContain(PASSWORD);
  }
  // Allowed, but not there.
  await expect(reader.getSecretValue({ secretId: 'missing-secret' })).rejects.toMatchObject({ serviceError: { _errorCode: 'ResourceNotFoundError' } });
});

test('our bus: getSecretValue returns the value; a denial is a FatalError IPC_UNAUTHORIZED, a missing secret a TransientError; nothing of it is logged', async () => {
  const b = bus(READER);
  await b.connect();
  const v = await b.getSecretValue(TOKEN_ID);
  expect(v).toEqual({ secretId: TOKEN_ID, versionId: expect.any(String), versionStage: ['AWSCURRENT'], secretString: TOKEN });
  const denied = await b.getSecretValue('not-allowed').catch((e: unknown) => e);
  expect(denied).toBeInstanceOf(FatalError);
  expect((denied as FatalError).code).toBe(ErrorCode.IPC_UNAUTHORIZED);
  const missing = await b.getSecretValue('missing-secret').catch((e: unknown) => e);
  expect(missing).toBeInstanceOf(TransientError);
  expect((missing as TransientError).details).toMatchObject({ serviceError: 'ResourceNotFoundError' });
  // The connection is still fine after both errors.
  await expect(b.getSecretValue(ARN)).resolves.toMatchObject({ secretString: PASSWORD });
  expect(b.state).toBe('connected');
  expect(lines.join('')).not.toContain(TOKEN);
  expect(lines.join('')).not.toContain(PASSWORD);
});

test('`dcmms-edge nucleus --secrets FILE` serves the file\'s secrets; its values appear in no log line', async () => {
  const cli = path.resolve(__dirname, '../../dist/cli.js');
  if (!fs.existsSync(cli)) throw new Error('dist/cli.js is missing: run `npm run build` (npm test does)');
  const root = tmpDir('/tmp/gg-sec-');
  const file = path.join(root, 'secrets.json');
  fs.writeFileSync(file, JSON.stringify({ [TOKEN_ID]: TOKEN }), { mode: 0o600 });
  const p = spawn(process.execPath, [cli, 'nucleus', '--root', root, '--secrets', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await waitFor(() => /nucleus started/.test(out), 20_000, 'the nucleus started');
    expect(out).toMatch(/"secrets":1/);
    // The CLI's own token has no SecretManager policy: refused, as any component without one.
    const info = readCliIpcInfo(root);
    const c = await connectIpc(info.socket_path, info.cli_auth_token);
    await expect(c.getSecretValue({ secretId: TOKEN_ID })).rejects.toMatchObject({ serviceError: { _errorCode: 'UnauthorizedError' } });
    await c.close();
  } finally {
    p.kill('SIGTERM');
    await new Promise((r) => p.once('exit', r));
    expect(out + fs.readFileSync(path.join(root, 'logs', 'greengrass.log'), 'utf8')).not.toContain(TOKEN);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('`--secrets` with a file that is not an object of strings is refused without quoting it', async () => {
  const cli = path.resolve(__dirname, '../../dist/cli.js');
  const root = tmpDir('/tmp/gg-sec-');
  const file = path.join(root, 'secrets.json');
  fs.writeFileSync(file, `{"a": ${JSON.stringify(TOKEN)}, "b": 7}`);
  const p = spawn(process.execPath, [cli, 'nucleus', '--root', root, '--secrets', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  fs.rmSync(root, { recursive: true, force: true });
  expect(code).not.toBe(0);
  expect(out).toMatch(/--secrets .*each key must be a secret id or ARN and each value a string \("b" is not\)/);
  expect(out).not.toContain(TOKEN);
});

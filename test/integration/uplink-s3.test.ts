/**
 * The S3 exporter against real peers: s3rver (a process) behind a fault-injecting front, with
 * credentials from the local runtime's Token Exchange Service (the values of
 * AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN, as a gateway's nucleus
 * gives them), and from nowhere else: static keys, a profile or ~/.aws in the environment are never
 * used. Sink contract: a confirmed batch is in S3 exactly once, a retry overwrites its own key, and a
 * failure (500, slow answer past the timeout, expired token) rejects instead of confirming.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { createTes, type TokenExchangeService } from '../../scripts/runtime/tes';
import { ConfigError } from '../../components/lib/errors';
import { silentLogger } from '../../components/lib/logger';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { createS3Exporter, s3Key } from '../../components/uplink/exporters/s3';
import { ExportError, type ExportBatch } from '../../components/uplink/exporters/types';
import { startFaultProxy, startS3rver, type FaultProxy, type S3rver } from '../helpers/s3rver';

let s3: S3rver;
let proxy: FaultProxy;
let tes: TokenExchangeService;
const TOKEN = 'component-token-1234';
const saved = { ...process.env };

beforeAll(async () => {
  s3 = await startS3rver('uplink-it');
  proxy = await startFaultProxy(s3.url);
  tes = createTes({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', lifetimeMs: 3600_000 }, (t) => (t === TOKEN ? 'com.dcmms.edge.Uplink' : undefined), silentLogger);
  await tes.listen();
  for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
}, 30000);

afterAll(async () => {
  process.env = saved;
  await tes?.close();
  await proxy?.close();
  await s3?.stop();
});

const batch = (seq: number, lines: string[]): ExportBatch => ({ seq, cls: 'alarms', oldestAt: Date.UTC(2025, 0, 15), createdAt: Date.UTC(2025, 0, 15), count: lines.length, body: gzipSync(lines.join('\n') + '\n') });

/** The gateway's AWS IoT thing name (AWS_IOT_THING_NAME): its S3 grant is `<prefix><thing name>/*`. */
const THING = 'dcmms_solar-eu_site-a_gw-01';

const exporter = (timeoutMs = 5000, siteId = 'site-a', thingName = THING) =>
  createS3Exporter({ siteId, thingName, bucket: 'uplink-it', prefix: 'edge/', endpoint: proxy.url, region: 'us-east-1', forcePathStyle: true, requestTimeoutMs: timeoutMs, outboxId: 'ob-1', tes: { fullUri: tes.url, authorizationToken: TOKEN } });

/** A developer's credentials as a runtime would pass them through: static keys, and a profile in a credentials file. */
function developerEnvironment(accessKeyId: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-aws-'));
  fs.writeFileSync(path.join(dir, 'credentials'), `[dev]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = ${accessKeyId}\n`);
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: accessKeyId, AWS_PROFILE: 'dev', AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'credentials'), AWS_CONFIG_FILE: path.join(dir, 'config') });
}

function clearDeveloperEnvironment(): void {
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_PROFILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE']) delete process.env[k];
}

test('without the TES variables the exporter refuses to start, naming them, and never signs with static keys from the environment', async () => {
  // s3rver accepts these very keys: had the exporter used the environment, the PUT would succeed.
  developerEnvironment('S3RVER');
  const puts = proxy.putLog.length;
  try {
    for (const tesVars of [{ fullUri: undefined, authorizationToken: undefined }, { fullUri: tes.url, authorizationToken: undefined }, { fullUri: undefined, authorizationToken: TOKEN }]) {
      let ex: ReturnType<typeof createS3Exporter> | undefined;
      let err: unknown;
      try {
        ex = createS3Exporter({ siteId: 'site-dev', thingName: 'dcmms_solar-eu_site-dev_gw-01', bucket: 'uplink-it', prefix: 'edge/', endpoint: proxy.url, region: 'us-east-1', forcePathStyle: true, requestTimeoutMs: 5000, outboxId: 'ob-1', tes: tesVars });
        await ex.send(batch(90, ['{"dev":1}']));
      } catch (e) {
        err = e;
      } finally {
        await ex?.close();
      }
      expect(err).toBeInstanceOf(ConfigError);
      const missing = [...(tesVars.fullUri ? [] : ['AWS_CONTAINER_CREDENTIALS_FULL_URI']), ...(tesVars.authorizationToken ? [] : ['AWS_CONTAINER_AUTHORIZATION_TOKEN'])];
      for (const v of missing) expect((err as Error).message).toContain(v);
      expect((err as Error).message).toMatch(/Token Exchange Service/);
    }
    expect(proxy.putLog.length).toBe(puts);
  } finally {
    clearDeveloperEnvironment();
  }
});

test('with a TES and a developer\'s keys in the environment, requests are signed with the TES credentials only', async () => {
  developerEnvironment('AKIADEVELOPER');
  try {
    const ex = exporter(5000, 'site-dev', 'dcmms_solar-eu_site-dev_gw-01');
    await ex.send(batch(91, ['{"tes":1}']));
    await ex.close();
    const signedBy = proxy.putLog.filter((p) => p.path.includes('-000000000091.')).map((p) => p.accessKeyId);
    expect(signedBy).toEqual(['S3RVER']);
  } finally {
    clearDeveloperEnvironment();
  }
});

test('TES answers 403 to a wrong token and credentials to the right one', async () => {
  const bad = await fetch(tes.url, { headers: { Authorization: 'nope' } });
  expect(bad.status).toBe(403);
  const good = await fetch(tes.url, { headers: { Authorization: TOKEN } });
  const body = (await good.json()) as Record<string, string>;
  expect(body['AccessKeyId']).toBe('S3RVER');
  expect(new Date(body['Expiration']!).getTime()).toBeGreaterThan(Date.now());
});

test('sink contract: confirmed means stored once; a retry overwrites the same key', async () => {
  const ex = exporter();
  const b = batch(1, ['{"a":1}', '{"a":2}']);
  await ex.send(b);
  await ex.send(b); // a retry after a crash between PUT and confirm
  const objs = await s3.objects(`edge/${THING}/`);
  const key = s3Key('edge/', THING, 'ob-1', { seq: 1, cls: 'alarms', oldestAt: b.oldestAt });
  expect([...objs.keys()]).toEqual([key]);
  expect(objs.get(key)).toEqual(['{"a":1}', '{"a":2}']);
  await ex.close();
});

test('key layout: every object under <prefix><thing name>/ (the per-thing grant), then class and UTC day; site id, class and thing name in the metadata', async () => {
  const ex = exporter();
  await ex.send({ ...batch(3, ['{"k":1}']), cls: '15m', oldestAt: Date.UTC(2026, 11, 31, 23, 59, 59) });
  await ex.close();
  const key = 'edge/dcmms_solar-eu_site-a_gw-01/15m/2026/12/31/ob-1-000000000003.ndjson.gz';
  expect([...(await s3.objects(`edge/${THING}/15m/`)).keys()]).toEqual([key]);
  const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
  expect(head.Metadata).toMatchObject({ 'site-id': 'site-a', 'thing-name': THING, class: '15m', seq: '3', count: '1' });
  expect(head.ContentEncoding).toBe('gzip');
  // Nothing was written outside the thing's prefix (the site id is not a key segment any more).
  expect([...(await s3.objects('edge/site-a/')).keys()]).toEqual([]);
});

test('a thing name that is missing or not an AWS IoT thing name is a ConfigError naming AWS_IOT_THING_NAME', () => {
  for (const bad of ['', 'a/b', '../x', 'x'.repeat(129)]) expect(() => exporter(5000, 'site-a', bad)).toThrow(/AWS_IOT_THING_NAME/);
});

test('500s and slow answers reject (nothing confirmed), then succeed', async () => {
  const ex = exporter(300);
  proxy.fail500(1);
  await expect(ex.send(batch(2, ['{"b":1}']))).rejects.toMatchObject({ code: 'S3_500' });
  proxy.setDelayMs(1000);
  await expect(ex.send(batch(2, ['{"b":1}']))).rejects.toThrow();
  proxy.setDelayMs(0);
  await ex.send(batch(2, ['{"b":1}']));
  const objs = await s3.objects(`edge/${THING}/`);
  expect([...objs.values()].filter((l) => l[0] === '{"b":1}')).toHaveLength(1);
  expect(proxy.counts.injected500).toBe(1);
  await ex.close();
});

test('expired credentials: ExpiredToken rejects, the exporter asks the TES again and succeeds', async () => {
  proxy.checkTokenExpiry(true);
  tes.setLifetimeMs(-1000); // what the TES hands out now is already expired
  const ex = exporter();
  await expect(ex.send(batch(5, ['{"e":1}']))).rejects.toMatchObject({ code: 'S3_400' });
  expect(ex.credentialRefreshes).toBe(1);
  expect(proxy.counts.expiredRejected).toBe(1);
  const issued = tes.stats().issued;
  tes.setLifetimeMs(400_000);
  await ex.send(batch(5, ['{"e":1}']));
  expect(tes.stats().issued).toBe(issued + 1); // fresh credentials were fetched
  const objs = await s3.objects(`edge/${THING}/`);
  expect([...objs.values()].filter((l) => l[0] === '{"e":1}')).toHaveLength(1);
  proxy.checkTokenExpiry(false);
  await ex.close();
});

describe('probe: a cheap PutObject to a fixed per-outbox key under the thing\'s prefix', () => {
  const PROBE_KEY = `edge/${THING}/probe/ob-1.json`;
  const probePuts = (): typeof proxy.putLog => proxy.putLog.filter((p) => p.path === `/uplink-it/${PROBE_KEY}`);

  test('up: resolves, and the probe object is where the per-thing grant allows, outside every class', async () => {
    const ex = exporter(30_000);
    const before = probePuts().length;
    await ex.probe!();
    await ex.probe!(); // the same key every time: a probe never adds objects
    expect(probePuts().slice(before).map((p) => p.status)).toEqual([200, 200]);
    const all = [...(await s3.objects(`edge/${THING}/probe/`)).keys()];
    expect(all).toEqual([PROBE_KEY]);
    await ex.close();
  });

  test('down (connections reset, 500s, an answer that never comes): rejects, within 5 s even with a 30 s request timeout; back up: resolves', async () => {
    const ex = exporter(30_000);
    proxy.setDown(true);
    try {
      await expect(ex.probe!()).rejects.toBeInstanceOf(ExportError);
    } finally {
      proxy.setDown(false);
    }
    proxy.fail500(1);
    await expect(ex.probe!()).rejects.toMatchObject({ code: 'S3_500' });
    proxy.setDelayMs(7000);
    const t0 = Date.now();
    try {
      await expect(ex.probe!()).rejects.toBeInstanceOf(ExportError);
    } finally {
      proxy.setDelayMs(0);
    }
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(4500);
    expect(took).toBeLessThan(5500);
    await ex.probe!();
    expect(probePuts().at(-1)!.status).toBe(200);
    await ex.close();
  }, 20_000);

  test('credentials S3 would refuse (expired) or cannot be had (TES down): rejects; the next probe with fresh credentials resolves', async () => {
    proxy.checkTokenExpiry(true);
    tes.setLifetimeMs(-1000);
    const ex = exporter(30_000);
    try {
      await expect(ex.probe!()).rejects.toMatchObject({ code: 'S3_400' });
      expect(ex.credentialRefreshes).toBe(1);
      tes.setAvailable(false);
      tes.setLifetimeMs(400_000);
      await expect(ex.probe!()).rejects.toBeInstanceOf(ExportError);
      tes.setAvailable(true);
      await ex.probe!();
    } finally {
      tes.setAvailable(true);
      tes.setLifetimeMs(3600_000);
      proxy.checkTokenExpiry(false);
      await ex.close();
    }
  });
});

/**
 * The S3 exporter against real peers: s3rver (a process) behind a fault-injecting front, with
 * credentials from the local runtime's Token Exchange Service through the AWS SDK's default chain
 * (AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN), as on a gateway.
 * Sink contract: a confirmed batch is in S3 exactly once, a retry overwrites its own key, and a
 * failure (500, slow answer past the timeout, expired token) rejects instead of confirming.
 */
import { gzipSync } from 'node:zlib';
import { createTes, type TokenExchangeService } from '../../scripts/runtime/tes';
import { silentLogger } from '../../components/lib/logger';
import { createS3Exporter, s3Key } from '../../components/uplink/exporters/s3';
import type { ExportBatch } from '../../components/uplink/exporters/types';
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
  process.env['AWS_CONTAINER_CREDENTIALS_FULL_URI'] = tes.url;
  process.env['AWS_CONTAINER_AUTHORIZATION_TOKEN'] = TOKEN;
}, 30000);

afterAll(async () => {
  process.env = saved;
  await tes?.close();
  await proxy?.close();
  await s3?.stop();
});

const batch = (seq: number, lines: string[]): ExportBatch => ({ seq, cls: 'alarms', oldestAt: Date.UTC(2025, 0, 15), createdAt: Date.UTC(2025, 0, 15), count: lines.length, body: gzipSync(lines.join('\n') + '\n') });

const exporter = (timeoutMs = 5000) =>
  createS3Exporter({ siteId: 'site-a', bucket: 'uplink-it', prefix: 'edge/', endpoint: proxy.url, region: 'us-east-1', forcePathStyle: true, requestTimeoutMs: timeoutMs, outboxId: 'ob-1' });

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
  const objs = await s3.objects('edge/site-a/');
  const key = s3Key('edge/', 'site-a', 'ob-1', { seq: 1, cls: 'alarms', oldestAt: b.oldestAt });
  expect([...objs.keys()]).toEqual([key]);
  expect(objs.get(key)).toEqual(['{"a":1}', '{"a":2}']);
  await ex.close();
});

test('500s and slow answers reject (nothing confirmed), then succeed', async () => {
  const ex = exporter(300);
  proxy.fail500(1);
  await expect(ex.send(batch(2, ['{"b":1}']))).rejects.toMatchObject({ code: 'S3_500' });
  proxy.setDelayMs(1000);
  await expect(ex.send(batch(2, ['{"b":1}']))).rejects.toThrow();
  proxy.setDelayMs(0);
  await ex.send(batch(2, ['{"b":1}']));
  const objs = await s3.objects('edge/site-a/');
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
  const objs = await s3.objects('edge/site-a/');
  expect([...objs.values()].filter((l) => l[0] === '{"e":1}')).toHaveLength(1);
  proxy.checkTokenExpiry(false);
  await ex.close();
});

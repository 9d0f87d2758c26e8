/**
 * MLInference's forecasts reach the cloud through the Uplink (docs/ml-inference.md "To the cloud"):
 * the Uplink takes the site forecast into its outbox with the events class; the per-inverter fault
 * and anomaly scores stay on the gateway (their alarms travel as alarms), counted in but not queued.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBus } from '../../components/lib/bus';
import { validateConfig } from '../../components/lib/config';
import { topics, type MlResult } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock, settle } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { uplinkConfigSpec } from '../../components/uplink/config';
import { ExportError, type Exporter } from '../../components/uplink/exporters/types';
import { createUplink } from '../../components/uplink/uplink';

const SITE = 'unit-site';
const T = Date.UTC(2026, 5, 21, 12, 0, 0);

test('the site forecast is queued for the cloud with the events; fault and anomaly scores are not', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ml-uplink-'));
  const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Uplink' });
  const clock = new FakeClock(T);
  const metrics = createMetrics({ clock });
  const bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock });
  await bus.connect();
  const config = validateConfig(uplinkConfigSpec, {
    siteId: SITE,
    exporters: { iotcore: { enabled: false, publishesPerSecond: 50, bytesPerSecond: 262144, concurrency: 8, probeIntervalMs: 1000 }, s3: { enabled: true, bucket: 'b', prefix: 'edge/', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', forcePathStyle: true, concurrency: 4, requestTimeoutMs: 1000, probeIntervalMs: 5000 } },
    routes: { alarms: ['s3'], events: ['s3'], '1m': ['s3'], '15m': ['s3'], '1d': ['s3'], health: ['s3'] },
  });
  // S3 is down: what the Uplink took stays in its outbox, where the test counts it.
  const s3: Exporter = { name: 's3', send: () => Promise.reject(new ExportError('S3_500', 'down')), close: () => Promise.resolve() };
  const uplink = createUplink({ bus, logger: silentLogger, metrics, clock, fail: (e) => { throw e; }, workDir: dir, exporters: { s3 }, random: () => 0.5 }, config);
  await uplink.start();

  const forecast: MlResult = { schemaVersion: 1, siteId: SITE, assetId: 'site', model: 'forecast', modelVersion: '1.0.0', ts: T, forecast: { stepMs: 900000, values: new Array(16).fill(1000), u: 'W' }, inferenceMs: 0.2 };
  const fault: MlResult = { schemaVersion: 1, siteId: SITE, assetId: 'INV-01', model: 'fault', modelVersion: '1.0.0', ts: T, score: 0.1, inferenceMs: 0.1 };
  nucleus.inject(topics.mlResult(SITE, 'site', 'forecast'), forecast);
  nucleus.inject(topics.mlResult(SITE, 'INV-01', 'fault'), fault);
  await settle();
  uplink.flush(true);
  expect(uplink.outbox!.backlog()['events']).toBe(1);
  await uplink.close();
  await bus.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

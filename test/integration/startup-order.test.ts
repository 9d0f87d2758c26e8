/**
 * No telemetry lost to start-up order: the BUILT ModbusAdapter and Processor (greengrass-build/
 * recipes and bundles, started by the local runtime as their own processes) against the site
 * simulator, deployed one after the other in both orders, with the site's assets declared (as the
 * demo and CDK do) and without (then the Processor learns them from the adapter's device status,
 * which the adapter repeats on its heartbeat, and holds telemetry of a not-yet-announced asset in
 * its quarantine). Every configured device's data must be stored and nothing rejected as
 * `unknown_asset`.
 *
 * Needs `npm run build` first (npm test does it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { filters, pubsubResource, type ComponentHealth } from '../../components/lib/contract';
import { openStoreReader } from '../../components/lib/store';
import type { IpcClient } from '../../scripts/runtime/client';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import { version } from '../../package.json';
import { startNucleus, pubsubPolicy, type Harness } from '../helpers/nucleus';
import { waitFor } from '../helpers/wait';

jest.setTimeout(90_000);

const BUILD = path.resolve(__dirname, '../../greengrass-build');
const ADAPTER = 'com.dcmms.edge.ModbusAdapter';
const PROCESSOR = 'com.dcmms.edge.Processor';
const OBSERVER = 'com.test.HealthObserver';
const SITE = 'order-site';

let sim: SiteSimulator;

beforeAll(async () => {
  for (const n of [ADAPTER, PROCESSOR]) {
    if (!fs.existsSync(path.join(BUILD, 'recipes', `${n}-${version}.yaml`))) throw new Error(`greengrass-build/ has no ${n} recipe: run \`npm run build\` (npm test does)`);
  }
  sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 2, cloudiness: 0, startTime: new Date(Date.UTC(2026, 3, 15, 12, 0, 0)), timeScale: 1 });
});

afterAll(async () => {
  await sim?.close();
});

/** Samples stored per asset (any point), read from the Processor's store file as another reader would. */
function storedPerAsset(h: Harness): Map<string, number> {
  const file = path.join(h.nucleus.rootDir, 'work', PROCESSOR, 'raw.db');
  const out = new Map<string, number>();
  if (!fs.existsSync(file)) return out;
  const r = openStoreReader(file);
  try {
    for (const s of r.listSeries()) out.set(s.assetId, (out.get(s.assetId) ?? 0) + r.range(s, 0, 2 ** 46).length);
  } finally {
    r.close();
  }
  return out;
}

const orders = [
  ['adapter first', [ADAPTER, PROCESSOR]],
  ['processor first', [PROCESSOR, ADAPTER]],
] as const;

describe.each([
  ['assets declared', true],
  ['assets announced only', false],
])('%s', (_label, declared) => {
  test.each(orders)('%s: every device stored, nothing rejected unknown_asset', async (_name, order) => {
    const h = await startNucleus();
    let observer: IpcClient | undefined;
    try {
      const devices = sim.deviceConfig({ pollIntervalMs: 500 });
      const assets = devices.devices.map((d) => d.assetId);
      const observed = await h.deploy([{ name: OBSERVER, accessControl: pubsubPolicy(OBSERVER, ['SubscribeToTopic'], [pubsubResource('componentHealth', { siteId: SITE })]) }]);
      expect(observed.status).toBe('SUCCEEDED');
      observer = await h.client(OBSERVER);
      const health: ComponentHealth[] = [];
      const sub = observer.subscribeToTopic({ topic: filters.componentHealth(SITE).filter });
      sub.on('message', (m) => void health.push(m.jsonMessage?.message as ComponentHealth));
      await sub.activate();

      const config = {
        [ADAPTER]: { merge: { siteId: SITE, metricsIntervalMs: 1000, statusHeartbeatMs: 2000, ...devices }, reset: [] },
        [PROCESSOR]: { merge: { siteId: SITE, metricsIntervalMs: 1000, ...(declared ? { assets } : {}) }, reset: [] },
      };
      for (const name of order) {
        const d = await h.run({
          recipeDirectoryPath: path.join(BUILD, 'recipes'),
          artifactsDirectoryPath: path.join(BUILD, 'artifacts'),
          rootComponentsToAdd: { [name]: version },
          configuration: { [name]: config[name] },
        });
        expect(d.status).toBe('SUCCEEDED');
        // The first component is well under way (the adapter polling and announcing, or the Processor
        // subscribed) before the second starts.
        await waitFor(() => health.some((r) => r.componentName === name && r.state !== 'starting'), 20_000, `${name} running`);
        if (name === ADAPTER) await waitFor(() => (health.filter((r) => r.componentName === ADAPTER).at(-1)?.metrics.messagesIn ?? 0) >= 3 * assets.length, 20_000, 'a few polls of every device');
      }
      await waitFor(() => assets.every((a) => (storedPerAsset(h).get(a) ?? 0) > 0), 30_000, `data stored for every device (${assets.join(', ')})`);
      const proc = health.filter((r) => r.componentName === PROCESSOR).at(-1)!;
      expect(proc.metrics.rejections['unknown_asset'] ?? 0).toBe(0);
    } finally {
      await h.close();
    }
  });
});

/**
 * Child process for test/integration/aggregator-crash.test.ts: the Aggregator factory on a real
 * store and database, an in-memory bus, a fixed clock. Prints `R <n>` every 5 store reads (the
 * test SIGKILLs it mid-aggregation on one of them), `P <interval> <start> <asset>` per publication
 * and `D` when everything up to the clock is closed and published.
 *
 * argv: storePath dbPath nowMs backfillMs
 */
import { createAggregator } from '../aggregator';
import { aggregatorConfigSpec } from '../config';
import { ManualScheduler } from '../scheduler';
import { createBus } from '../../lib/bus';
import { validateConfig } from '../../lib/config';
import { silentLogger } from '../../lib/logger';
import { createMetrics } from '../../lib/metrics';
import { FakeClock } from '../../lib/testing/fake-clock';
import { FakeNucleus } from '../../lib/testing/fake-ipc';
import { openStoreReader } from '../../lib/store';

async function main(): Promise<void> {
  const [storePath, dbPath, nowArg, backfillArg] = process.argv.slice(2);
  const now = Number(nowArg);
  const clock = new FakeClock(now);
  const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Aggregator' });
  const metrics = createMetrics({ clock });
  const bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock });
  await bus.connect();
  const origRoute = nucleus.route.bind(nucleus);
  nucleus.route = (from, topic, msg) => {
    const m = msg.jsonMessage?.message as { interval?: string; start?: number; assetId?: string } | undefined;
    if (m?.interval) process.stdout.write(`P ${m.interval} ${m.start} ${m.assetId}\n`);
    origRoute(from, topic, msg);
  };
  let reads = 0;
  const config = validateConfig(aggregatorConfigSpec, { siteId: 's1', storePath, dbPath, initialBackfillMs: Number(backfillArg), seriesPerSlice: 2 });
  const agg = createAggregator(
    {
      bus,
      logger: silentLogger,
      metrics,
      clock,
      fail: (e) => {
        process.stderr.write(`fail ${String(e)}\n`);
        process.exit(3);
      },
      scheduler: new ManualScheduler(),
      openStore: (file) => {
        const r = openStoreReader(file);
        return {
          ...r,
          range: (k, f, t) => {
            if (++reads % 5 === 0) process.stdout.write(`R ${reads}\n`);
            return r.range(k, f, t);
          },
        };
      },
    },
    config,
  );
  await agg.start();
  await agg.tick();
  process.stdout.write(`D ${agg.engine?.watermark('1m')}\n`);
  await agg.close();
  await bus.close();
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(2);
});

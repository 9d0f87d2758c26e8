/**
 * The component half of `--only ml` (scripts/bench/ml.ts), in a process of its own so its RSS is
 * MLInference's working set alone (the component's modules, onnxruntime, three models, 100
 * inverters' samples), not the bench runner's:
 *
 *   node dist/bench-ml-worker.js MODELS_DIR SECONDS   -> one JSON object on stdout
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validateConfig } from '../../components/lib/config';
import type { MlModel, TelemetryMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { ML_INFERENCE_DEFAULTS, mlInferenceConfigSpec } from '../../components/ml-inference/config';
import { createMlInference } from '../../components/ml-inference/ml-inference';

const KINDS: readonly MlModel[] = ['fault', 'anomaly', 'forecast'];
const MIN = 60_000;
function pct(xs: number[], p: number): number {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))]!;
}
const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const mb = (b: number): number => Math.round((b / 1048576) * 10) / 10;

export async function component(dir: string, seconds: number): Promise<Record<string, unknown>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-ml-'));
  const N = 100;
  const inverters: Record<string, { ratedW: number }> = {};
  for (let i = 1; i <= N; i++) inverters[`INV-${String(i).padStart(3, '0')}`] = { ratedW: 60000 };
  const clock = new FakeClock(Date.UTC(2026, 5, 21, 6, 0, 0));
  const bus = new RecordingBus({ record: false });
  const metrics = createMetrics({ clock });
  const DAY = 86_400_000;
  const config = validateConfig(mlInferenceConfigSpec, {
    siteId: 'bench',
    storePath: path.join(work, 'raw.db'),
    modelDir: dir,
    dbPath: path.join(work, 'ml.db'),
    inverters,
    site: { ...ML_INFERENCE_DEFAULTS.site, weatherStation: 'WS-01', tracker: 'TRK-01' },
    fault: { ...ML_INFERENCE_DEFAULTS.fault, intervalMs: DAY },
    anomaly: { ...ML_INFERENCE_DEFAULTS.anomaly, intervalMs: DAY },
    forecast: { enabled: true, intervalMs: DAY },
    modelCheckIntervalMs: DAY,
  });
  const rssBefore = process.memoryUsage().rss;
  const ml = createMlInference({ bus, logger: silentLogger, metrics, clock, component: 'ml-inference', fail: () => undefined, workDir: work }, config);
  await ml.start();
  let seq = 0;
  const msg = (assetId: string, ts: number, points: Record<string, number | string>): TelemetryMessage => ({
    schemaVersion: 1, siteId: 'bench', assetId, ts, seq: ++seq,
    points: Object.fromEntries(Object.entries(points).map(([k, v]) => [k, { v, q: 'good' as const }])),
  });
  const tIntake = performance.now();
  let messages = 0;
  for (let m = 0; m < 255; m++) {
    const ts = clock.now() + 30_000;
    const x = m / 255;
    const sun = Math.sin(Math.PI * (0.1 + 0.6 * x));
    await bus.deliver('processedTelemetry', 'site/bench/processed/WS-01/telemetry', msg('WS-01', ts, { ghi: 900 * sun, poa: 1000 * sun, ambientTemp: 20 + 8 * x, moduleTemp: 25 + 25 * sun, windSpeed: 3 }));
    await bus.deliver('processedTelemetry', 'site/bench/processed/TRK-01/telemetry', msg('TRK-01', ts, { actualAngle: -40 + 80 * x, targetAngle: -40 + 80 * x }));
    let i = 0;
    for (const id of Object.keys(inverters)) {
      const w = 55000 * sun * (1 - 0.002 * (i++ % 10));
      const p: Record<string, number | string> = { '103.W': w, '103.DCW': w * 1.03, '103.DCV': 600, '103.TmpSnk': 25 + 30 * sun, '103.TmpCab': 22 + 10 * sun, '103.St': 'MPPT', '103.Evt1': '', '160.module.1.Tmp': 25 + 25 * sun };
      for (let n = 1; n <= 4; n++) p[`160.module.${n}.DCA`] = (w * 1.03) / 600 / 4;
      await bus.deliver('processedTelemetry', `site/bench/processed/${id}/telemetry`, msg(id, ts, p));
    }
    messages += N + 2;
    await clock.advanceAsync(MIN);
  }
  const intakeMs = performance.now() - tIntake;
  const evalMs: Record<string, number[]> = { fault: [], anomaly: [], forecast: [] };
  const deadline = performance.now() + seconds * 1000;
  let rounds = 0;
  let results = 0;
  const cpu0 = process.cpuUsage();
  while (performance.now() < deadline || rounds < 3) {
    for (const kind of KINDS) {
      const t0 = performance.now();
      const rep = await ml.evaluate(kind);
      evalMs[kind]!.push(performance.now() - t0);
      results += rep.results.length;
      if (kind !== 'forecast' && rep.results.length !== N) throw new Error(`${kind}: ${rep.results.length} results of ${N} (unscored ${JSON.stringify(rep.unscored)})`);
    }
    rounds++;
  }
  const cpu = process.cpuUsage(cpu0);
  const rss = process.memoryUsage().rss;
  await ml.close();
  fs.rmSync(work, { recursive: true, force: true });
  return {
    inverters: N,
    intake: { messages, ms: Math.round(intakeMs), usPerMessage: r3((intakeMs * 1000) / messages) },
    evaluationRounds: rounds,
    faultEvaluation100Ms: { p50: r3(pct(evalMs['fault']!, 50)), p99: r3(pct(evalMs['fault']!, 99)) },
    anomalyEvaluation100Ms: { p50: r3(pct(evalMs['anomaly']!, 50)), p99: r3(pct(evalMs['anomaly']!, 99)) },
    forecastEvaluationMs: { p50: r3(pct(evalMs['forecast']!, 50)), p99: r3(pct(evalMs['forecast']!, 99)) },
    inverterWindowsPerSecond: Math.round((2 * N * rounds) / ((evalMs['fault']!.reduce((a, b) => a + b, 0) + evalMs['anomaly']!.reduce((a, b) => a + b, 0)) / 1000)),
    cpuMsPerRound: r3((cpu.user + cpu.system) / 1000 / rounds),
    results,
    rssMB: mb(rss),
    rssGrowthMB: mb(rss - rssBefore),
    heapUsedMB: mb(process.memoryUsage().heapUsed),
    heapTotalMB: mb(process.memoryUsage().heapTotal),
    externalMB: mb(process.memoryUsage().external),
  };
}


const [dir, seconds] = process.argv.slice(2);
component(String(dir), Number(seconds)).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (err: unknown) => {
    process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  },
);

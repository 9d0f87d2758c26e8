/**
 * `npm run bench` (dist/bench.js): the project's benchmarks. Not part of the test run.
 *
 *   node dist/bench.js [--only ipc] [--seconds N] [--window N] [--json]
 *
 * Prints the machine and the figures of every benchmark (or the one named with --only); with
 * --json, stdout carries exactly one JSON object with all figures and progress goes to stderr.
 * Exits 1 if a benchmark fails or reports a correctness problem (e.g. a lost message).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runIpcBench } from './ipc';
import { formatIpcReport } from './ipc-report';
import { describeMachine, formatMachine } from './machine';
import { formatModbusReport, modbusProblems, runModbusBench } from './modbus';
import { runLoggerBench } from './logger';
import { runAggregatorBench } from './aggregator';
import { runAnalyticsBench } from './analytics';
import { runMlBench } from './ml';
import { controlProblems, formatControlReport, runControlBench } from './control';
import { formatHmiReport, hmiProblems, runHmiBench } from './hmi';
import { runProcessorBench } from './processor';
import { runStoreBench } from './store';
import { killAllNucleiNow, stopAllNuclei } from './nucleus-process';
import { formatUplinkReport, runUplinkBench, uplinkProblems } from './uplink';

const USAGE = `usage: node dist/bench.js [--only NAME] [--seconds N] [--window N] [--json] [--cpu-prof-dir DIR]

  --only NAME    run one benchmark (ipc, modbus, store, processor, aggregator, analytics, ml, uplink, logger, control, hmi, streammanager, arm64)
  --seconds N    load duration of each scenario, >= 1 (default 5)
  --window N     ipc: PublishToTopic calls kept in flight by the publisher (default 64)
  --long MINUTES modbus: the memory run lasts MINUTES (default 12 x --seconds; at least 10 for
                 the figure in docs/modbus-adapter.md)
  --json         print one JSON object with all figures on stdout (progress on stderr)
  --cpu-prof-dir DIR
                 ipc: run each scenario's nucleus under node --cpu-prof, profiles into DIR
                 (open them in Chrome DevTools > Performance); figures are slower then
`;

interface BenchContext {
  projectRoot: string;
  cpuProfileDir?: string;
  seconds: number;
  window: number;
  longMinutes?: number;
  log: (line: string) => void;
}

interface Benchmark {
  run(ctx: BenchContext): Promise<{ figures: unknown; text: string; problems: string[] }>;
}

const BENCHMARKS: Record<string, Benchmark> = {
  ipc: {
    async run(ctx) {
      const figures = await runIpcBench(ctx);
      return { figures, text: formatIpcReport(figures), problems: figures.correctnessProblems };
    },
  },
  modbus: {
    async run(ctx) {
      // Progress lines go to stderr, as the other benchmarks' do, also under --json.
      const figures = await runModbusBench({ seconds: ctx.seconds, json: false, projectRoot: ctx.projectRoot, ...(ctx.longMinutes !== undefined ? { longMinutes: ctx.longMinutes } : {}) });
      return { figures, text: formatModbusReport(figures), problems: modbusProblems(figures) };
    },
  },
  uplink: {
    async run(ctx) {
      const figures = await runUplinkBench({ seconds: ctx.seconds, json: false });
      return { figures, text: formatUplinkReport(figures), problems: uplinkProblems(figures) };
    },
  },
  store: figuresOnly((seconds) => runStoreBench({ seconds, json: true })),
  processor: figuresOnly((seconds) => runProcessorBench({ seconds, json: true })),
  aggregator: figuresOnly((seconds) => runAggregatorBench({ seconds, json: true })),
  analytics: figuresOnly((seconds) => runAnalyticsBench({ seconds })),
  ml: figuresOnly((seconds) => runMlBench({ seconds })),
  logger: {
    async run(ctx) {
      const { figures, problems } = await runLoggerBench({ projectRoot: ctx.projectRoot, seconds: ctx.seconds });
      return { figures, text: formatTree(figures, ''), problems };
    },
  },
  arm64: { run: async (ctx) => (await import('./arm64')).runArm64Bench(ctx) },
  streammanager: { run: async (ctx) => { const m = await import('./stream-manager'); const r = await m.runStreamManagerBench(ctx); return { figures: r.figures, text: m.formatStreamManagerReport(r.figures), problems: r.problems }; } },
  control: {
    async run(ctx) {
      const figures = await runControlBench({ projectRoot: ctx.projectRoot, log: ctx.log });
      return { figures, text: formatControlReport(figures), problems: controlProblems(figures) };
    },
  },
  hmi: {
    async run(ctx) {
      const figures = await runHmiBench({ projectRoot: ctx.projectRoot, log: ctx.log, seconds: ctx.seconds });
      return { figures, text: formatHmiReport(figures), problems: hmiProblems(figures) };
    },
  },
};

/** A benchmark that returns a tree of figures: printed as indented `name: value` lines. */
function figuresOnly(run: (seconds: number) => Promise<Record<string, unknown>>): Benchmark {
  return {
    async run(ctx) {
      const figures = await run(ctx.seconds);
      return { figures, text: formatTree(figures, ''), problems: [] };
    },
  };
}

function formatTree(v: unknown, indent: string): string {
  if (v === null || typeof v !== 'object') return String(v);
  if (Array.isArray(v) && v.every((x) => x === null || typeof x !== 'object')) return v.join(', ');
  return Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => (x !== null && typeof x === 'object' && !(Array.isArray(x) && x.every((y) => y === null || typeof y !== 'object'))
      ? `${indent}${k}:\n${formatTree(x, `${indent}  `)}`
      : `${indent}${k}: ${formatTree(x, indent)}`))
    .join('\n');
}

class UsageError extends Error {}

function numberArg(v: string | undefined, flag: string, fallback: number, min: number, integer: boolean): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) throw new UsageError(`--${flag} must be ${integer ? 'an integer' : 'a number'} >= ${min}, not '${v}'`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        only: { type: 'string' },
        seconds: { type: 'string' },
        window: { type: 'string' },
        long: { type: 'string' },
        json: { type: 'boolean' },
        'cpu-prof-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const names = values.only === undefined ? Object.keys(BENCHMARKS) : [values.only];
  for (const n of names) if (!BENCHMARKS[n]) throw new UsageError(`unknown benchmark '${n}' (known: ${Object.keys(BENCHMARKS).join(', ')})`);
  const ctx: BenchContext = {
    // dist/bench.js -> the project root.
    projectRoot: path.resolve(__dirname, '..'),
    // Below a second the 200 ms resource sampling has too few points.
    seconds: numberArg(values.seconds, 'seconds', 5, 1, false),
    window: numberArg(values.window, 'window', 64, 1, true),
    ...(values.long !== undefined ? { longMinutes: numberArg(values.long, 'long', 10, 1, false) } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
    ...(values['cpu-prof-dir'] !== undefined ? { cpuProfileDir: path.resolve(values['cpu-prof-dir']) } : {}),
  };

  const machine = describeMachine();
  const date = new Date().toISOString();
  if (!values.json) process.stdout.write(`dCMMS Edge benchmarks, ${date}\nmachine: ${formatMachine(machine)}\n\n`);
  const figures: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const name of names) {
    const r = await BENCHMARKS[name]!.run(ctx);
    figures[name] = r.figures;
    problems.push(...r.problems.map((p) => `${name}: ${p}`));
    if (!values.json) process.stdout.write(`== ${name} ==\n${r.text}\n\n`);
  }
  if (values.json) process.stdout.write(`${JSON.stringify({ date, machine, benchmarks: figures, problems })}\n`);
  if (problems.length) {
    process.stderr.write(`bench: ${problems.length} correctness problem(s):\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    return 1;
  }
  return 0;
}

// An interrupted benchmark must not leave a nucleus (and its components) running.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping\n`);
    stopAllNuclei({ keepRoot: false }).finally(() => process.exit(130));
  });
}
process.on('exit', killAllNucleiNow);

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  async (err: unknown) => {
    // Normally already stopped by the scenario; keep the root for a look at its logs.
    await stopAllNuclei({ keepRoot: true });
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);

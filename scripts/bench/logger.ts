/**
 * Logger benchmark, `runLoggerBench({ projectRoot, seconds })`: the cost of one log line.
 *
 *   serialise        in process, into a `write` sink that keeps nothing: building the line
 *                    (bindings, fields, redaction, JSON) without I/O. A typical line and a
 *                    `configuration updated` line (20 assets, nested, one secret per asset).
 *   toFile           a worker process whose stdout is a file: the default destination, one
 *                    synchronous write(2) per line.
 *   toPipe           the same into a pipe this process drains (how Greengrass reads a component).
 *   toPipeTouched    the same with process.stdout touched first, as in a component: Node has
 *                    made the pipe non-blocking, so a full pipe is EAGAIN rather than a wait.
 *
 * µs per line = wall time / lines; CPU µs per line from process.cpuUsage. `lost` counts lines
 * logged that never arrived; any is a correctness problem. Figures go with the machine into
 * components/lib/README.md.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../components/lib/logger';
import { configFields, typicalFields } from './logger-lines';
import { bundleWorker } from './nucleus-process';

interface LineCost {
  lines: number;
  usPerLine: number;
  cpuUsPerLine: number;
  linesPerSecond: number;
  /** Worker scenarios: lines logged that did not arrive. */
  lost?: number;
}

function cost(lines: number, wallNs: number, cpuUs: number): LineCost {
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  return { lines, usPerLine: r(wallNs / 1000 / lines), cpuUsPerLine: r(cpuUs / lines), linesPerSecond: Math.round(lines / (wallNs / 1e9)) };
}

function inProcess(seconds: number, fields: Record<string, unknown>): LineCost {
  let bytes = 0;
  const log = createLogger({ component: 'processor', version: '1.0.0' }, { write: (l) => void (bytes += l.length) }).child({ module: 'processor' });
  // Warm up so the JIT has settled before the clock starts.
  for (let i = 0; i < 2000; i++) log.info('warm-up', fields);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(seconds * 1e9));
  let lines = 0;
  do {
    for (let i = 0; i < 200; i++) log.info('telemetry rejected', fields);
    lines += 200;
  } while (process.hrtime.bigint() < end);
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  if (bytes === 0) throw new Error('logger bench: nothing was written');
  return cost(lines, wallNs, cpu.user + cpu.system);
}

function runWorker(worker: string, seconds: number, stdout: 'file' | 'pipe', dir: string, touch = false): Promise<LineCost> {
  return new Promise((resolve, reject) => {
    const file = path.join(dir, 'out.log');
    const fd = stdout === 'file' ? fs.openSync(file, 'w') : undefined;
    const child = spawn(process.execPath, [worker, String(seconds), ...(touch ? ['touch'] : [])], { stdio: ['ignore', fd ?? 'pipe', 'pipe'] });
    if (fd !== undefined) fs.closeSync(fd);
    let received = 0;
    child.stdout?.on('data', (d: Buffer) => {
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) received += 1;
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`logger bench worker exited ${code}: ${err}`));
      const r = JSON.parse(err.trim().split('\n').at(-1) ?? '{}') as { lines: number; wallNs: number; cpuUs: number };
      // A logger that drops lines under load would look fast here: count what arrived.
      const arrived = stdout === 'file' ? fs.readFileSync(file, 'utf8').split('\n').length - 1 : received;
      resolve({ ...cost(r.lines, r.wallNs, r.cpuUs), lost: r.lines - arrived });
    });
  });
}

export async function runLoggerBench(opts: { projectRoot: string; seconds: number }): Promise<{ figures: Record<string, LineCost>; problems: string[] }> {
  const seconds = Math.max(1, Math.min(opts.seconds, 5));
  const worker = bundleWorker(opts.projectRoot, 'logger-worker.ts', 'bench-logger-worker.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-logger-'));
  try {
    const figures: Record<string, LineCost> = {
      serialiseTypicalLine: inProcess(seconds, typicalFields()),
      serialiseConfigLine: inProcess(seconds, configFields()),
      toFile: await runWorker(worker, seconds, 'file', dir),
      toPipe: await runWorker(worker, seconds, 'pipe', dir),
      toPipeTouched: await runWorker(worker, seconds, 'pipe', dir, true),
    };
    const problems = Object.entries(figures)
      .filter(([, f]) => (f.lost ?? 0) !== 0)
      .map(([name, f]) => `${name}: ${f.lost} of ${f.lines} lines never arrived`);
    return { figures, problems };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

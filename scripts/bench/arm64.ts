/**
 * `node dist/bench.js --only arm64`: the store ingest (store.ts `ingest`, synchronous FULL) and the
 * Processor hot path (processor.ts `hotPath`) run here on x64, then the same code in the arm64
 * Node.js under QEMU user mode, in one run; the report is each figure on both and their ratio.
 *
 * The arm64 side is this very bundle (dist/bench.js) started by qemu-aarch64 from a temporary
 * folder whose node_modules is the cross-installed arm64 tree (scripts/arm64/toolchain.js), so
 * better-sqlite3 is the AArch64 addon; DCMMS_BENCH_ARM64_CHILD tells it to measure and print.
 *
 * QEMU translates every AArch64 instruction on this x86-64 machine: the ratio says how much slower
 * the emulation is, not how fast a gateway is (docs/benchmarks.md "aarch64 under QEMU").
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as toolchain from '../arm64/toolchain';
import { describeMachine } from './machine';
import { hotPath } from './processor';
import { ingest } from './store';

const CHILD_ENV = 'DCMMS_BENCH_ARM64_CHILD';
const MARK = 'ARM64-BENCH-FIGURES ';

interface Side {
  arch: string;
  node: string;
  storeIngestSamplesPerS: number;
  storeSealSamplesPerS: number;
  processorHotPathSamplesPerS: number;
  processorHotPathSamplesPerCpuS: number;
}

/** The two measurements, in this process, whatever its architecture. */
async function measure(seconds: number): Promise<Side> {
  const store = ingest(seconds, 'FULL');
  const hot = await hotPath(seconds);
  return {
    arch: process.arch,
    node: process.version,
    storeIngestSamplesPerS: Number(store['samplesPerSec']),
    storeSealSamplesPerS: Number(store['sealSamplesPerSec']),
    processorHotPathSamplesPerS: Number(hot['samplesPerS']),
    processorHotPathSamplesPerCpuS: Number(hot['samplesPerCpuS']),
  };
}

/** This bundle under qemu-aarch64 with the arm64 tree's node_modules; resolves with its figures. */
async function measureOnArm64(projectRoot: string, seconds: number, log: (l: string) => void): Promise<Side> {
  const tree = toolchain.ensureArm64Tree(log);
  const missing = toolchain.missingQemu();
  if (missing.length) throw new Error(`cannot run arm64: missing ${missing.join(', ')} (scripts/install-test-peers.sh)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmms-bench-arm64-'));
  try {
    fs.mkdirSync(path.join(dir, 'dist'));
    fs.copyFileSync(path.join(projectRoot, 'dist', 'bench.js'), path.join(dir, 'dist', 'bench.js'));
    fs.symlinkSync(tree.nodeModules, path.join(dir, 'node_modules'), 'dir');
    const q = toolchain.qemuCommand([tree.node, path.join(dir, 'dist', 'bench.js'), '--only', 'arm64', '--seconds', String(seconds)]);
    const child = spawn(q.file, q.args, {
      cwd: dir,
      env: toolchain.qemuEnv({ ...process.env, [CHILD_ENV]: '1' }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    const line = out.split('\n').find((l) => l.startsWith(MARK));
    if (code !== 0 || !line) throw new Error(`the arm64 run exited ${code} without figures:\n${out.slice(-2000)}`);
    return JSON.parse(line.slice(MARK.length)) as Side;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function runArm64Bench(opts: { projectRoot: string; seconds: number; log: (l: string) => void }): Promise<{ figures: Record<string, unknown>; text: string; problems: string[] }> {
  const seconds = Math.max(1, opts.seconds);
  if (process.env[CHILD_ENV]) {
    const side = await measure(seconds);
    process.stdout.write(`${MARK}${JSON.stringify(side)}\n`);
    return { figures: side as unknown as Record<string, unknown>, text: '', problems: [] };
  }
  opts.log('arm64: store ingest and Processor hot path on x64');
  const x64 = await measure(seconds);
  opts.log('arm64: the same under the arm64 Node in QEMU');
  const arm64 = await measureOnArm64(opts.projectRoot, seconds, opts.log);
  const ratio = (a: number, b: number): number => Math.round((a / b) * 10) / 10;
  const ratios = {
    storeIngest: ratio(x64.storeIngestSamplesPerS, arm64.storeIngestSamplesPerS),
    storeSeal: ratio(x64.storeSealSamplesPerS, arm64.storeSealSamplesPerS),
    processorHotPath: ratio(x64.processorHotPathSamplesPerS, arm64.processorHotPathSamplesPerS),
    processorHotPathPerCpuS: ratio(x64.processorHotPathSamplesPerCpuS, arm64.processorHotPathSamplesPerCpuS),
  };
  const problems = arm64.arch === 'arm64' ? [] : [`the QEMU run reported process.arch ${arm64.arch}, not arm64`];
  const figures = { machine: describeMachine(), seconds, x64, arm64, x64OverQemuArm64: ratios };
  const row = (name: string, a: number, b: number, r: number): string => `  ${name.padEnd(30)} ${String(a).padStart(10)} ${String(b).padStart(10)}   x${r}`;
  const text = [
    `store ingest and Processor hot path, ${seconds} s each: x64 and the arm64 Node under QEMU (samples/s; ratio x64 / arm64-in-QEMU)`,
    `  ${''.padEnd(30)} ${'x64'.padStart(10)} ${'arm64/QEMU'.padStart(10)}`,
    row('store ingest (FULL)', x64.storeIngestSamplesPerS, arm64.storeIngestSamplesPerS, ratios.storeIngest),
    row('store seal', x64.storeSealSamplesPerS, arm64.storeSealSamplesPerS, ratios.storeSeal),
    row('Processor hot path', x64.processorHotPathSamplesPerS, arm64.processorHotPathSamplesPerS, ratios.processorHotPath),
    row('Processor hot path per CPU s', x64.processorHotPathSamplesPerCpuS, arm64.processorHotPathSamplesPerCpuS, ratios.processorHotPathPerCpuS),
    '  QEMU emulates AArch64 on this x86-64 machine: these ratios are the emulation\'s cost, not a gateway\'s speed.',
  ].join('\n');
  return { figures, text, problems };
}

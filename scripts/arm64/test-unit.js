#!/usr/bin/env node
// @ts-check
/**
 * The unit tests under the arm64 Node.js in QEMU user mode (docs/aarch64.md "What is tested"):
 * this checkout's sources, copied into a temporary folder whose node_modules is the cross-installed
 * arm64 tree (scripts/arm64/toolchain.js), run by Jest in that Node under qemu-aarch64. So every
 * native addon the tests load (better-sqlite3, serialport, aws-crt, onnxruntime) is the AArch64 one.
 *
 * Each Jest runs in band (-i): its workers would be started from process.execPath, an AArch64
 * binary the kernel cannot run without a binfmt registration, which CI machines do not have; one
 * Jest per core takes a shard of the files instead. For the same reason the test files in
 * EXCLUDED, which start process.execPath themselves, are left to the x64 run; each says why.
 *
 * Usage: node scripts/arm64/test-unit.js [--all] [extra jest arguments]   exit code: Jest's
 */
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const toolchain = require('./toolchain');

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * Unit test files not run under QEMU, and why (they run on x64 in the main test run): the first
 * start process.execPath (a new such test fails here with "<arm64 node>: 1: ELF...: not found", the
 * shell trying the AArch64 binary: add it); the others hold the code to a deadline or a latency set
 * for native speed,
 * which the emulation (tens of times slower than this CPU, docs/benchmarks.md "aarch64 under
 * QEMU") cannot meet; their code has no architecture-specific part.
 */
const EXCLUDED = [
  { file: 'test/unit/build.test.ts', why: 'runs scripts/build.js as process.execPath (and esbuild); the build runs on the x64 build machine' },
  { file: 'test/unit/cli-help.test.ts', why: 'starts dist/cli.js as process.execPath' },
  { file: 'test/unit/logger-backpressure.test.ts', why: 'starts a child logger as process.execPath' },
  { file: 'test/unit/ml-models.test.ts', why: 'starts scripts/training/run-onnx.js as process.execPath' },
  { file: 'test/unit/solar.test.ts', why: 'starts a fresh node as process.execPath to compare module state' },
  { file: 'test/unit/local-hmi-trends.test.ts', why: "runs docs/local-hmi.md's password-hash one-liner as process.execPath" },
  { file: 'test/unit/standalone.test.ts', why: "reads the checkout's git index (git ls-files); the copy under test has none, and it checks text, not code" },
  { file: 'test/unit/local-control-latency.test.ts', why: 'asserts native-speed latencies (fire alarm to 200 shutdowns under 50 ms)' },
  { file: 'test/unit/uplink-stream-manager.test.ts', why: 'gives a loopback connection 300 ms to open' },
  { file: 'test/unit/local-hmi-api.test.ts', why: 'gives the HMI 60 s to start (a certificate generated in JavaScript, scrypt hashes); under QEMU it needs longer' },
];

/**
 * By default (CI) only the unit tests of code whose behaviour can depend on the CPU: every native
 * addon (better-sqlite3: the store, the rollups, the outbox, the journals; onnxruntime: the models),
 * binary formats written on one architecture and read on another (the store's Gorilla chunks, the
 * IPC event-stream codec with its CRCs, Stream Manager's frames and segment files, SunSpec and
 * Modbus register decoding), floating-point numerics whose results are compared to golden values
 * (features, IV curves, performance ratio, soiling), and the password hashing (crypto). The rest
 * is plain TypeScript logic with nothing architecture-specific; `--all` runs every unit test
 * (about twice as long: docs/aarch64.md "In CI").
 */
const ARCH_SENSITIVE = /^test\/unit\/(store-|aggregator-(db|rollup)|uplink-outbox|alarm-journal|ml-|analytics-(iv|performance|soiling)|sunspec|modbus-offsets|ipc-codec|stream-manager-(protocol|store)|local-hmi-sessions)/;

/** What the copy needs: sources, tests, models and the configuration Jest and ts-jest read. */
const COPY = ['components', 'scripts', 'test', 'models', 'schemas', 'recipes', 'cdk', 'docs', 'README.md', 'package.json', 'package-lock.json', 'tsconfig.json', 'jest.config.js', 'gdk-config.json'];

/** Seconds per test file under QEMU: the committed seed, overridden by this machine's last run. */
const SEED = path.join(__dirname, 'unit-durations.json');
const durationsFile = () => path.join(toolchain.cacheDir(), 'arm64', 'unit-durations.json');

/** @returns {Record<string, number>} */
function readDurations() {
  /** @type {Record<string, number>} */
  const out = {};
  for (const f of [SEED, durationsFile()]) {
    try {
      Object.assign(out, JSON.parse(fs.readFileSync(f, 'utf8')).durations);
    } catch {
      // none yet
    }
  }
  return out;
}

/** @param {Record<string, number>} durations */
function writeDurations(durations) {
  fs.writeFileSync(durationsFile(), `${JSON.stringify({ durations }, null, 1)}\n`);
}

async function main() {
  const log = (/** @type {string} */ m) => process.stderr.write(`arm64 unit: ${m}\n`);
  const missing = toolchain.missingQemu();
  if (missing.length) {
    log(`cannot run: missing ${missing.join(', ')} (scripts/install-test-peers.sh installs qemu-user and the cross toolchain)`);
    return 1;
  }
  const tree = toolchain.ensureArm64Tree(log);
  // A fixed folder and Jest cache: Jest keys its transform cache on the folder, so a second run
  // reuses the first one's TypeScript transpiling, a large part of the time under QEMU.
  const work = path.join(toolchain.cacheDir(), 'arm64', 'unit-checkout');
  const jestCache = path.join(toolchain.cacheDir(), 'arm64', 'jest-cache');
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  try {
    for (const e of COPY) {
      const from = path.join(ROOT, e);
      if (fs.existsSync(from)) fs.cpSync(from, path.join(work, e), { recursive: true, filter: (src) => !/[\\/](node_modules|cdk\.out)([\\/]|$)/.test(src) });
    }
    fs.symlinkSync(tree.nodeModules, path.join(work, 'node_modules'), 'dir');
    for (const x of EXCLUDED) log(`excluded ${x.file}: ${x.why}`);
    // One Jest per core, each with its share of the files: in band, a single Jest would leave the
    // other core idle. Shares are balanced on how long each file took under QEMU (longest first
    // to the least loaded; Jest's own --shard splits by a hash and was 234 s against 335 s).
    const shards = Math.max(1, Math.min(4, os.cpus().length));
    const excluded = new Set(EXCLUDED.map((x) => x.file));
    const all = process.argv.includes('--all');
    const files = fs
      .readdirSync(path.join(work, 'test', 'unit'))
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => `test/unit/${f}`)
      .filter((f) => !excluded.has(f) && (all || ARCH_SENSITIVE.test(f)));
    log(all ? `every unit test file: ${files.length}` : `the architecture-sensitive unit test files: ${files.length} (--all: every one)`);
    const durations = readDurations();
    const weight = (/** @type {string} */ f) => durations[f] ?? 5;
    /** @type {{ files: string[], load: number }[]} */
    const shares = Array.from({ length: shards }, () => ({ files: [], load: 0 }));
    for (const f of [...files].sort((a, b) => weight(b) - weight(a) || a.localeCompare(b))) {
      const least = shares.reduce((m, x) => (x.load < m.load ? x : m));
      least.files.push(f);
      least.load += weight(f);
    }
    /** @type {Record<string, number>} */
    const measured = {};
    const t0 = Date.now();
    const codes = await Promise.all(
      shares.map((share, i) => {
        const args = [
          tree.node,
          // No optimising compilers: under QEMU their machine code is new code to translate, and
          // short test files never repay it (two test files: 18.2 s of CPU with them, 11.7 without).
          '--no-opt',
          '--no-maglev',
          path.join(work, 'node_modules', 'jest', 'bin', 'jest.js'),
          '-i',
          '--ci',
          `--cacheDirectory=${jestCache}`,
          // A test that leaves a handle open must not hold CI up.
          '--forceExit',
          // Under QEMU everything is several times slower than on x64.
          '--testTimeout=120000',
          ...process.argv.slice(2).filter((a) => a !== '--all'),
          '--runTestsByPath',
          ...share.files,
        ];
        const q = toolchain.qemuCommand(args);
        const child = spawn(q.file, q.args, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'], env: toolchain.qemuEnv({ ...process.env, CI: 'true', FORCE_COLOR: '0' }) });
        const prefix = `[arm64 ${i + 1}/${shards}] `;
        log(`shard ${i + 1}/${shards}: ${share.files.length} files, about ${Math.round(share.load)} s by the last times`);
        for (const s of [child.stdout, child.stderr]) {
          let rest = '';
          s.on('data', (d) => {
            const lines = (rest + d.toString()).split('\n');
            rest = lines.pop() ?? '';
            for (const l of lines) {
              process.stdout.write(`${prefix}${l}\n`);
              // Jest prints a file's time when it is 5 s or more.
              const m = /^(?:PASS|FAIL) (test\/unit\/\S+\.test\.ts)(?: \(([\d.]+) s\))?/.exec(l);
              if (m && m[1]) measured[m[1]] = m[2] ? Number(m[2]) : 2;
            }
          });
          s.on('end', () => rest && process.stdout.write(`${prefix}${rest}\n`));
        }
        return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
      }),
    );
    log(`jest under qemu-aarch64 (${shards} shards) took ${Math.round((Date.now() - t0) / 1000)} s; exit codes ${codes.join(', ')}`);
    writeDurations({ ...durations, ...measured });
    return codes.every((c) => c === 0) ? 0 : 1;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err) => {
    process.stderr.write(`arm64 unit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

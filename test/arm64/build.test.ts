/**
 * `node scripts/build.js --arch all`: every component gets a linux/aarch64 manifest beside its
 * linux/amd64 one, with the same lifecycle and AArch64 binaries (better-sqlite3 and serialport
 * cross-compiled, aws-crt and onnxruntime from their packages), and the arm64 bundle starts under
 * the arm64 Node in QEMU. Without the cross toolchain the build still builds linux-x64 and says
 * what it skipped. Needs g++-aarch64-linux-gnu and qemu-user (scripts/install-test-peers.sh); the
 * first run cross-installs the arm64 tree into the cache (about 2 minutes), later runs reuse it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import yauzl from 'yauzl';
import YAML from 'yaml';
import { IMPLEMENTED_COMPONENTS } from '../../components/lib/contract';
import * as toolchain from '../../scripts/arm64/toolchain';

jest.setTimeout(600_000);

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const pkgVersion = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const URI_PREFIX = 's3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/';
const EM_AARCH64 = 183;
const EM_X86_64 = 62;

interface Manifest {
  Name?: string;
  Platform?: { os?: string; architecture?: string };
  Artifacts?: Array<{ URI: string; Unarchive?: string }>;
  Lifecycle?: { Run?: { Script?: string; Setenv?: Record<string, string> } };
}

function manifestsOf(out: string, name: string): Manifest[] {
  return (YAML.parse(fs.readFileSync(path.join(out, 'recipes', `${name}-${pkgVersion}.yaml`), 'utf8')) as { Manifests: Manifest[] }).Manifests;
}

function zipEntries(file: string): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('no zip'));
      const out = new Map<string, Buffer>();
      zip.on('entry', (e: yauzl.Entry) => {
        zip.openReadStream(e, (err2, s) => {
          if (err2 || !s) return reject(err2 ?? new Error('no stream'));
          const parts: Buffer[] = [];
          s.on('data', (d: Buffer) => parts.push(d));
          s.on('end', () => {
            out.set(e.fileName, Buffer.concat(parts));
            zip.readEntry();
          });
        });
      });
      zip.on('end', () => resolve(out));
      zip.readEntry();
    });
  });
}

/** The newest symbol version of `prefix` (GLIBC_ or GLIBCXX_) a binary requires, as numbers. */
function newestVersion(bytes: Buffer, prefix: string): number[] {
  const found = [...bytes.toString('latin1').matchAll(new RegExp(`${prefix}_(\\d+(?:\\.\\d+)+)\\0`, 'g'))].map((m) => m[1]!.split('.').map(Number));
  const cmp = (a: number[], b: number[]): number => {
    for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
    return 0;
  };
  return found.sort(cmp).at(-1) ?? [];
}

describe('build --arch all', () => {
  let out: string;
  let stdout: string;

  beforeAll(async () => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmms-build-arm64-'));
    ({ stdout } = await run(process.execPath, ['scripts/build.js', '--arch', 'all', '--no-tools', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }));
  });
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  test('reports both architectures for every component and skips nothing', () => {
    for (const c of IMPLEMENTED_COMPONENTS) expect(stdout).toContain(`${c.name}@${pkgVersion} [amd64, aarch64]`);
    expect(stdout).not.toMatch(/SKIPPED|not built/);
  });

  test.each(IMPLEMENTED_COMPONENTS.map((c) => c.name))('%s: an aarch64 manifest with the amd64 lifecycle and AArch64 natives', (name) => {
    const manifests = manifestsOf(out, name);
    expect(manifests.map((m) => m.Platform)).toEqual([{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'aarch64' }]);
    const [amd64, aarch64] = manifests as [Manifest, Manifest];
    expect(aarch64.Lifecycle?.Run?.Script).toBe(amd64.Lifecycle?.Run?.Script);
    expect(Object.keys(aarch64.Lifecycle?.Run?.Setenv ?? {}).sort()).toEqual(Object.keys(amd64.Lifecycle?.Run?.Setenv ?? {}).sort());
    const dir = path.join(out, 'artifacts', name, pkgVersion);
    for (const [m, machine] of [[amd64, EM_X86_64], [aarch64, EM_AARCH64]] as const) {
      const files = (m.Artifacts ?? []).map((a) => a.URI.slice(URI_PREFIX.length));
      expect(files).toContain('main.js');
      for (const f of files.filter((x) => x.endsWith('.node') || x.endsWith('.so.1'))) expect([f, toolchain.elfMachine(path.join(dir, f))]).toEqual([f, machine]);
      // Every Setenv naming a file of this component names one this manifest ships.
      for (const v of Object.values(m.Lifecycle?.Run?.Setenv ?? {})) {
        const own = /^\{artifacts:path\}\/(.+)$/.exec(v);
        if (own) expect(files).toContain(own[1]);
      }
    }
  });

  test('MLInference: the arm64 onnxruntime pair is a zip the aarch64 manifest unpacks, and the binding is loaded from its folder', async () => {
    const aarch64 = manifestsOf(out, 'com.dcmms.edge.MLInference')[1]!;
    expect(aarch64.Artifacts).toContainEqual({ URI: `${URI_PREFIX}onnxruntime-linux-arm64.zip`, Unarchive: 'ZIP' });
    expect(aarch64.Lifecycle?.Run?.Setenv?.['DCMMS_ONNXRUNTIME_BINDING']).toBe('{artifacts:decompressedPath}/onnxruntime-linux-arm64/onnxruntime_binding.node');
    const entries = await zipEntries(path.join(out, 'artifacts', 'com.dcmms.edge.MLInference', pkgVersion, 'onnxruntime-linux-arm64.zip'));
    expect([...entries.keys()].sort()).toEqual(['libonnxruntime.so.1', 'onnxruntime_binding.node']);
    for (const b of entries.values()) expect(b.readUInt16LE(18)).toBe(EM_AARCH64);
  });

  test('the cross-compiled addons need no more than glibc 2.34 and GLIBCXX 3.4.29 (the floor docs/aarch64.md states)', () => {
    for (const f of ['better-sqlite3-linux-arm64.node', 'serialport-bindings-linux-arm64.node']) {
      const comp = f.startsWith('better') ? 'com.dcmms.edge.Processor' : 'com.dcmms.edge.ModbusAdapter';
      const bytes = fs.readFileSync(path.join(out, 'artifacts', comp, pkgVersion, f));
      const glibc = newestVersion(bytes, 'GLIBC');
      expect(glibc.length).toBeGreaterThan(0);
      expect(glibc[0]! * 1000 + (glibc[1] ?? 0)).toBeLessThanOrEqual(2034);
      const cxx = newestVersion(bytes, 'GLIBCXX');
      if (cxx.length) expect(cxx[0]! * 1e6 + (cxx[1] ?? 0) * 1e3 + (cxx[2] ?? 0)).toBeLessThanOrEqual(3004029);
    }
  });

  test('the arm64 bundle starts under the arm64 Node in QEMU with the shipped aws-crt and exits 1 outside a nucleus', async () => {
    const node = toolchain.arm64NodeIfPresent();
    expect(node).toBeDefined();
    const dir = path.join(out, 'artifacts', 'com.dcmms.edge.Health', pkgVersion);
    const env = toolchain.qemuEnv({ PATH: process.env['PATH'], AWS_CRT_NODEJS_BINARY_ABSOLUTE_PATH: path.join(dir, 'aws-crt-nodejs-linux-arm64.node') });
    const q = toolchain.qemuCommand([node!, '-e', 'console.log(JSON.stringify({arch: process.arch})); require(process.argv[1])', path.join(dir, 'main.js')]);
    const err = await run(q.file, q.args, { cwd: out, env, timeout: 60_000 }).then(
      () => undefined,
      (e: unknown) => e as { code?: number; stdout?: string },
    );
    expect(err?.stdout).toContain('{"arch":"arm64"}');
    expect(err?.code).toBe(1);
    expect(err?.stdout).toContain('"code":"IPC_UNAVAILABLE"');
  });
});

describe('build --arch all without the cross toolchain', () => {
  test('builds linux-x64, writes amd64 manifests only and says what it skipped', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmms-build-nocross-'));
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmms-nocross-bin-'));
    try {
      // A PATH with node and nothing else, and an empty cache: no compiler, no cached tree.
      fs.symlinkSync(process.execPath, path.join(bin, 'node'));
      const env = { ...process.env, PATH: bin, DCMMS_EDGE_CACHE: path.join(out, 'cache') };
      const { stdout, stderr } = await run(process.execPath, ['scripts/build.js', '--arch', 'all', '--no-tools', '--out', path.join(out, 'build')], { cwd: ROOT, env });
      expect(stderr).toMatch(/linux-arm64 SKIPPED: the cross toolchain is not installed \(missing aarch64-linux-gnu-gcc/);
      expect(stdout).toMatch(/linux-arm64 SKIPPED: .*every recipe has its linux\/amd64 manifest only/);
      for (const c of IMPLEMENTED_COMPONENTS) expect(manifestsOf(path.join(out, 'build'), c.name).map((m) => m.Platform?.architecture)).toEqual(['amd64']);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  test('an unknown --arch is refused', async () => {
    const err = await run(process.execPath, ['scripts/build.js', '--arch', 'arm', '--no-tools', '--out', os.tmpdir()], { cwd: ROOT }).then(
      () => undefined,
      (e: unknown) => e as { code?: number; stderr?: string },
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain('--arch must be x64 or all (got "arm")');
  });
});

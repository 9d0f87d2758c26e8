/**
 * scripts/arm64/check-gateway.sh, the check an integrator runs on a gateway before deploying
 * (docs/aarch64.md "Check a gateway"), against made-up gateways: uname, getconf, ldconfig and node
 * replaced on the PATH, a libstdc++ file with or without GLIBCXX_3.4.29.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SCRIPT = path.resolve(__dirname, '../../scripts/arm64/check-gateway.sh');

interface Gateway {
  machine: string;
  glibc: string;
  glibcxx: string[];
  node?: string;
}

function check(g: Gateway): Promise<{ code: number; out: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmms-gw-'));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const lib = path.join(dir, 'libstdc++.so.6');
  fs.writeFileSync(lib, Buffer.from(`\x7fELF\0${g.glibcxx.map((v) => `GLIBCXX_${v}\0`).join('')}`, 'latin1'));
  const tool = (name: string, body: string): void => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  tool('uname', `echo ${g.machine}`);
  tool('getconf', `echo "glibc ${g.glibc}"`);
  tool('ldconfig', `echo "	libstdc++.so.6 (libc6,AArch64) => ${lib}"`);
  if (g.node) tool('node', `echo "${g.node}"`);
  // Only the tools the script uses besides these, so the machine's own node is not found.
  for (const t of ['awk', 'grep', 'sort', 'head', 'ls']) fs.symlinkSync(['/usr/bin', '/bin'].map((d) => path.join(d, t)).find((f) => fs.existsSync(f))!, path.join(bin, t));
  return new Promise((resolve) => {
    execFile('/bin/sh', [SCRIPT], { env: { PATH: bin } }, (err, stdout) => {
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout });
    });
  });
}

test('a Debian 12 / Raspberry Pi OS bookworm 64-bit gateway with Node 20 passes', async () => {
  const r = await check({ machine: 'aarch64', glibc: '2.36', glibcxx: ['3.4.28', '3.4.29', '3.4.30'], node: 'v20.20.2 arm64' });
  expect(r).toEqual({ code: 0, out: expect.stringMatching(/^ok {4}CPU architecture aarch64[\s\S]*ok {4}glibc 2\.36[\s\S]*GLIBCXX_3\.4\.29[\s\S]*ok {4}node v20\.20\.2 arm64/) });
  expect(r.out).not.toContain('FAIL');
});

test('an Ubuntu 20.04 gateway with Node 18 fails on glibc, libstdc++ and node, each named', async () => {
  const r = await check({ machine: 'aarch64', glibc: '2.31', glibcxx: ['3.4.26', '3.4.28'], node: 'v18.19.0 arm64' });
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/FAIL {2}glibc 2\.31: 2\.34 or later needed/);
  expect(r.out).toMatch(/FAIL {2}.*lacks GLIBCXX_3\.4\.29/);
  expect(r.out).toMatch(/FAIL {2}node v18\.19\.0 arm64 on the PATH: Node\.js 20/);
});

test('a 32-bit ARM gateway, or one without node, fails', async () => {
  const r = await check({ machine: 'armv7l', glibc: '2.36', glibcxx: ['3.4.30', '3.4.29'] });
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/FAIL {2}CPU architecture armv7l: no manifest/);
  expect(r.out).toMatch(/FAIL {2}no node on the PATH/);
  // An x64 node on an aarch64 gateway would not run the arm64 addons.
  expect((await check({ machine: 'aarch64', glibc: '2.36', glibcxx: ['3.4.29'], node: 'v20.20.2 x64' })).out).toMatch(/FAIL {2}node v20\.20\.2 x64 on the PATH: Node\.js 20 for this CPU \(arm64\)/);
  // glibc 2.4 is older than 2.34 although it sorts after it as text.
  expect((await check({ machine: 'aarch64', glibc: '2.4', glibcxx: ['3.4.29'], node: 'v20.1.0 arm64' })).out).toMatch(/FAIL {2}glibc 2\.4:/);
});

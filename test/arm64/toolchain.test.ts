/**
 * scripts/arm64/toolchain.js's cache: a tree is found by its key (package-lock.json's hash and the
 * Node version) and only when complete; trees of other keys are deleted once unused for 14 days,
 * recent ones kept. A made-up cache folder, nothing compiled.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as toolchain from '../../scripts/arm64/toolchain';

let cache: string;
const saved = process.env['DCMMS_EDGE_CACHE'];

beforeEach(() => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmms-arm64-cache-'));
  process.env['DCMMS_EDGE_CACHE'] = cache;
  const bin = path.join(cache, 'arm64', `node-v${toolchain.NODE_VERSION}`, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'node'), '');
});
afterEach(() => {
  if (saved === undefined) delete process.env['DCMMS_EDGE_CACHE'];
  else process.env['DCMMS_EDGE_CACHE'] = saved;
  fs.rmSync(cache, { recursive: true, force: true });
});

function tree(key: string, complete: boolean, ageDays = 0): string {
  const dir = path.join(cache, 'arm64', key);
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  if (complete) {
    const marker = path.join(dir, 'complete.json');
    fs.writeFileSync(marker, '{}');
    const t = new Date(Date.now() - ageDays * 86400_000);
    fs.utimesSync(marker, t, t);
  }
  return dir;
}

test('the key is the lock hash and the Node version; a half-made tree is not used', () => {
  expect(toolchain.treeKey()).toMatch(new RegExp(`^[0-9a-f]{16}-node${toolchain.NODE_VERSION.replace(/\./g, '\\.')}$`));
  tree(toolchain.treeKey(), false);
  expect(toolchain.arm64TreeIfPresent()).toBeUndefined();
});

test("other keys' trees unused for 14 days are deleted, recent ones and this key's kept", () => {
  const mine = tree(toolchain.treeKey(), true, 30);
  const stale = tree('0123456789abcdef-node20.0.0', true, 15);
  const recent = tree('fedcba9876543210-node20.0.0', true, 3);
  const logged: string[] = [];
  const t = toolchain.ensureArm64Tree((m) => logged.push(m));
  expect(t.dir).toBe(mine);
  expect(t.betterSqlite3).toBe(path.join(mine, 'addons', 'better_sqlite3.node'));
  expect(fs.existsSync(stale)).toBe(false);
  expect(fs.existsSync(recent)).toBe(true);
  expect(fs.existsSync(mine)).toBe(true);
  expect(logged).toEqual([`deleted ${stale} (not used for 15 days)`]);
  // Using it marked this key's tree as used now.
  expect(Date.now() - fs.statSync(path.join(mine, 'complete.json')).mtimeMs).toBeLessThan(60_000);
});

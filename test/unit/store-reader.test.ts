/**
 * The store has one owner (the Processor, through `openStore`) and one way in for everybody else:
 * `openStoreReader`, a read-only SQLite connection. What the reader offers beyond ranges (the late
 * log, units, the store's identity) is tested in store-late-log.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { openStore, openStoreReader, STORE_FILE_MODE, type Store } from '../../components/lib/store';

const ROOT = path.resolve(__dirname, '../..');
const T0 = Date.UTC(2026, 10, 26);
const KEY = { assetId: 'inv-1', point: 'W' };

let dir: string;
const open: Array<{ close(): void }> = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-reader-'));
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function writer(): Store {
  const s = openStore({ path: path.join(dir, 'raw.db'), clock: new FakeClock(T0) });
  open.push(s);
  return s;
}

/** Every .ts file under a folder. */
function sources(d: string): string[] {
  return fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(d, e.name)) : e.name.endsWith('.ts') ? [path.join(d, e.name)] : []));
}

describe('one owner, one reader', () => {
  test('outside the store and its writer (the Processor), nothing imports the store internals or better-sqlite3 to read raw.db', () => {
    const offenders: string[] = [];
    for (const f of sources(path.join(ROOT, 'components'))) {
      const rel = path.relative(ROOT, f);
      if (rel.startsWith(path.join('components', 'lib', 'store'))) continue;
      if (rel.startsWith(path.join('components', 'processor'))) continue;
      const text = fs.readFileSync(f, 'utf8');
      // Type-only imports of the store's types are fine; values from its modules are not.
      for (const m of text.matchAll(/^import\s+(?!type\b)[^;]*from\s+'([^']*lib\/store\/(?:query|schema|head|seal|retention|reclaim|chunk|gorilla)[^']*)'/gm)) offenders.push(`${rel}: ${m[1]}`);
    }
    expect(offenders).toEqual([]);
  });

  test('openStoreReader takes the native addon path a bundled component ships (a wrong one fails the open)', () => {
    const s = writer();
    s.append([{ ...KEY, ts: T0, v: 1, q: 'good' }]);
    s.flush();
    const file = path.join(dir, 'raw.db');
    expect(() => openStoreReader(file, { nativeBinding: path.join(dir, 'missing.node') })).toThrow();
    const r = openStoreReader(file, { nativeBinding: path.join(ROOT, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node') });
    open.push(r);
    expect(r.range(KEY, T0, T0)).toHaveLength(1);
  });

  test('the reader cannot write, and sees what the writer commits afterwards (WAL)', () => {
    const s = writer();
    s.append([{ ...KEY, ts: T0, v: 1, q: 'good' }]);
    s.flush();
    const r = openStoreReader(path.join(dir, 'raw.db'));
    open.push(r);
    s.append([{ ...KEY, ts: T0 + 1000, v: 2, q: 'good' }]);
    s.flush();
    expect(r.range(KEY, T0, T0 + 1000).map((x) => x.v)).toEqual([1, 2]);
    // A read-only connection: a write through the file is refused by SQLite, not just by our API.
    const Database = require('better-sqlite3') as typeof import('better-sqlite3');
    const ro = new Database(path.join(dir, 'raw.db'), { readonly: true });
    try {
      expect(() => ro.exec('DELETE FROM head')).toThrow(/readonly/);
    } finally {
      ro.close();
    }
  });

  test('the writer sets raw.db, -wal and -shm to 0640 whatever the umask (the group reads, nobody else)', () => {
    const old = process.umask(0o022);
    try {
      const s = writer();
      s.append([{ ...KEY, ts: T0, v: 1, q: 'good' }]);
      s.flush();
      for (const f of ['raw.db', 'raw.db-wal', 'raw.db-shm']) expect((fs.statSync(path.join(dir, f)).mode & 0o777).toString(8)).toBe(STORE_FILE_MODE.toString(8));
    } finally {
      process.umask(old);
    }
  });
});

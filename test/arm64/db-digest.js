// @ts-check
/**
 * Opens a SQLite file with the better-sqlite3 given and prints, as JSON, its integrity_check and a
 * digest of every table (row count, sha256 of all rows in rowid order). Run by the x64 node and by
 * the arm64 node under QEMU on the same file: equal output means both read the same data.
 *
 *   node db-digest.js <better-sqlite3 package folder> <db file> [write]
 *
 * `write` first adds a table of rows written by this architecture (floats, text, blobs, integers
 * past 2^53 as BigInt), as a component would, so the other architecture reads what this one wrote.
 */
'use strict';
const crypto = require('node:crypto');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Database = require(process.argv[2]);
const file = process.argv[3];
const db = new Database(file, process.argv[4] === 'write' ? {} : { readonly: true });
db.defaultSafeIntegers(true);
if (process.argv[4] === 'write') {
  db.exec(`CREATE TABLE IF NOT EXISTS portability_${process.arch} (id INTEGER PRIMARY KEY, f REAL, t TEXT, b BLOB, big INTEGER)`);
  const ins = db.prepare(`INSERT INTO portability_${process.arch} (f, t, b, big) VALUES (?, ?, ?, ?)`);
  db.transaction(() => {
    for (let i = 0; i < 1000; i++) ins.run(Math.sin(i) * 1e6 + 1 / 3, `row ${i} ${process.arch} é`, Buffer.from([i & 255, (i * 7) & 255, 0, 255]), 2n ** 60n + BigInt(i));
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
}
const integrity = db.pragma('integrity_check', { simple: true });
const tables = {};
for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all()) {
  const hash = crypto.createHash('sha256');
  let count = 0;
  for (const row of db.prepare(`SELECT * FROM "${name}"`).iterate()) {
    count++;
    hash.update(JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v && v.type === 'Buffer' ? `hex:${Buffer.from(v.data).toString('hex')}` : v)));
    hash.update('\n');
  }
  tables[name] = { count, sha256: hash.digest('hex') };
}
db.close();
process.stdout.write(`${JSON.stringify({ arch: process.arch, integrity: String(integrity), tables })}\n`);

/**
 * The Aggregator's own database (aggregates.db, one writer: the Aggregator): file modes, space
 * given back after retention, statements prepared once, and the outbox left for the next tick
 * when the bus only queued a publish.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AggDb } from '../../components/aggregator/db';
import { tmp } from './aggregator-helpers';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('aggregates.db', () => {
  test('is 0640 (owner writes, group reads) with its -wal and -shm, whatever the umask', () => {
    const dir = tmp('agg-db-mode-');
    dirs.push(dir);
    const old = process.umask(0o022);
    try {
      const db = new AggDb(path.join(dir, 'agg.db'));
      db.tx(() => db.setProgress('1m', 1));
      for (const f of ['agg.db', 'agg.db-wal', 'agg.db-shm']) expect((fs.statSync(path.join(dir, f)).mode & 0o777).toString(8)).toBe('640');
      db.close();
    } finally {
      process.umask(old);
    }
  });
});

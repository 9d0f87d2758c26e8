/**
 * For tests: what an Uplink outbox file holds now, read from the side (read-only, while the Uplink
 * may be running or dead): records not yet delivered everywhere (unsealed + in sealed batches),
 * outstanding deliveries, and the records dropped so far.
 */
import Database from 'better-sqlite3';

export interface OutboxState {
  records: number;
  unsealed: number;
  deliveries: number;
  dropped: number;
}

export function outboxState(file: string): OutboxState {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const one = (sql: string): number => Number((db.prepare(sql).get() as { n: number | null }).n ?? 0);
    return {
      records: one('SELECT COUNT(*) n FROM records') + one('SELECT COALESCE(SUM(count), 0) n FROM batches'),
      unsealed: one('SELECT COUNT(*) n FROM records'),
      deliveries: one('SELECT COUNT(*) n FROM deliveries'),
      dropped: one('SELECT COALESCE(SUM(n), 0) n FROM dropped'),
    };
  } finally {
    db.close();
  }
}

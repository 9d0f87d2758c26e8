/**
 * A component's own small SQLite database (its alarm journal, audit log, latest results): one
 * writer, the component itself. WAL with synchronous=FULL, so a transaction that returned is on disk
 * when the process dies (an alarm transition journaled is never lost), and a 5 s busy timeout for a
 * read-only reader (the CLI) holding a snapshot.
 */
import Database from 'better-sqlite3';

export function openOwnDb(file: string, nativeBinding?: string): Database.Database {
  const db = new Database(file, nativeBinding ? { nativeBinding } : {});
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  return db;
}

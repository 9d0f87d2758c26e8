/**
 * The Stream Manager's segment store: whole-segment eviction (maxSize, TTL), RejectNewData,
 * recovery after a restart and after a torn write, numbering that continues, reads across segments.
 */
import fs from 'node:fs';
import path from 'node:path';
import { silentLogger, createLogger } from '../../components/lib/logger';
import { StreamDefinition, parseDefinition } from '../../scripts/runtime/stream-manager/definition';
import { RequestError, Status } from '../../scripts/runtime/stream-manager/protocol';
import { RECORD_HEADER, StreamStore } from '../../scripts/runtime/stream-manager/store';

const def = (over: Record<string, unknown>): StreamDefinition => parseDefinition({ name: 's', strategyOnFull: 1, ...over }, new Set());

describe('Stream Manager store', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync('/tmp/sm-store-');
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const files = (store: StreamStore) => fs.readdirSync(store.get('s')!.dir!).filter((f) => f.endsWith('.log')).sort();

  test('records go into segments of streamSegmentSize; a read crosses them in order', () => {
    const store = new StreamStore(root, silentLogger);
    const s = store.create(def({ streamSegmentSize: 1024, maxSize: 1 << 20 }));
    for (let i = 0; i < 40; i++) expect(s.append(Buffer.alloc(100, i), 1000 + i)).toBe(i);
    // 124 bytes a record: 8 to a 1 KiB segment.
    expect(files(store)).toEqual(['0000000000000000.log', '0000000000000008.log', '0000000000000016.log', '0000000000000024.log', '0000000000000032.log']);
    expect(s.status()).toEqual({ oldestSequenceNumber: 0, newestSequenceNumber: 39, totalBytes: 40 * (RECORD_HEADER + 100) });
    const got = s.read(5, 20, 1 << 20);
    expect(got.map((m) => m.sequenceNumber)).toEqual(Array.from({ length: 20 }, (_, i) => i + 5));
    expect(got.map((m) => m.payload[0])).toEqual(Array.from({ length: 20 }, (_, i) => i + 5));
    expect(got[0]!.ingestTime).toBe(1005);
    // The byte budget of a response stops a read early, but never before its first message.
    expect(s.read(0, 40, 250).length).toBe(2);
    expect(s.read(0, 40, 1).length).toBe(1);
    store.close();
  });

  test('OverwriteOldestData drops whole oldest segments; RejectNewData refuses with RequestPayloadTooLarge', () => {
    const store = new StreamStore(root, silentLogger);
    const s = store.create(def({ streamSegmentSize: 1024, maxSize: 2048 }));
    for (let i = 0; i < 50; i++) s.append(Buffer.alloc(100, i), i);
    const st = s.status();
    expect(st.totalBytes).toBeLessThanOrEqual(2048);
    expect(st.newestSequenceNumber).toBe(49);
    // Whole segments went: the oldest left is a segment's first record.
    expect((st.oldestSequenceNumber) % 8).toBe(0);
    expect(files(store)[0]).toBe(`${String(st.oldestSequenceNumber).padStart(16, '0')}.log`);

    const r = store.create({ ...def({ streamSegmentSize: 1024, maxSize: 2048, strategyOnFull: 0 }), name: 'r' });
    let n = 0;
    let refused: unknown;
    for (; n < 50; n++) {
      try {
        r.append(Buffer.alloc(100), 0);
      } catch (e) {
        refused = e;
        break;
      }
    }
    expect(refused).toBeInstanceOf(RequestError);
    expect((refused as RequestError).status).toBe(Status.RequestPayloadTooLarge);
    expect(n).toBe(Math.floor(2048 / 124));
    expect(r.status().oldestSequenceNumber).toBe(0);
    expect(() => r.append(Buffer.alloc(4000), 0)).toThrow(/can never fit/);
    store.close();
  });

  test('timeToLiveMillis removes expired whole segments, the newest too; numbering continues', () => {
    const store = new StreamStore(root, silentLogger);
    const s = store.create(def({ streamSegmentSize: 1024, timeToLiveMillis: 60000 }));
    for (let i = 0; i < 12; i++) s.append(Buffer.alloc(100), i < 8 ? 0 : 50_000);
    expect(s.expire(59_999)).toBe(0);
    // The first segment (0..7) is older than 60 s at 60 000; the second (8..11, newest at 50 000) is not.
    expect(s.expire(60_000)).toBe(8);
    expect(s.status().oldestSequenceNumber).toBe(8);
    expect(s.expire(110_000)).toBe(4);
    expect(s.status()).toEqual({ oldestSequenceNumber: 12, newestSequenceNumber: 11, totalBytes: 0 });
    expect(s.append(Buffer.from('x'), 120_000)).toBe(12);
    store.close();
    const again = new StreamStore(root, silentLogger);
    again.recover();
    expect(again.get('s')!.append(Buffer.from('y'), 0)).toBe(13);
    again.close();
  });

  test('restart: definitions, data, numbering and export progress come back; Memory streams do not', () => {
    const store = new StreamStore(root, silentLogger);
    const s = store.create(def({ streamSegmentSize: 1024, flushOnWrite: true }));
    store.create({ ...def({ persistence: 1 }), name: 'mem' }).append(Buffer.from('m'), 0);
    for (let i = 0; i < 30; i++) s.append(Buffer.alloc(50 + i, i), i);
    s.saveExportProgress('e1', { lastExportedSequenceNumber: 11, exportedBytesFromStream: 5, exportedMessagesCount: 12, startSequenceNumber: 0, lastExportTime: 7 });
    store.close();

    const again = new StreamStore(root, silentLogger);
    again.recover();
    expect([...again.streams.keys()]).toEqual(['s']);
    const r = again.get('s')!;
    expect(r.definition.streamSegmentSize).toBe(1024);
    expect(r.definition.flushOnWrite).toBe(true);
    expect(r.status().newestSequenceNumber).toBe(29);
    expect(r.read(0, 100, 1 << 20).map((m) => [m.sequenceNumber, m.payload.length, m.payload[0], m.ingestTime])).toEqual(Array.from({ length: 30 }, (_, i) => [i, 50 + i, i, i]));
    expect(r.exportProgress('e1')).toMatchObject({ lastExportedSequenceNumber: 11, exportedMessagesCount: 12 });
    expect(r.append(Buffer.from('next'), 0)).toBe(30);
    again.close();
  });

  test('a torn or corrupt tail of the last segment is cut off and logged, not fatal', () => {
    const store = new StreamStore(root, silentLogger);
    const s = store.create(def({ streamSegmentSize: 4096 }));
    for (let i = 0; i < 10; i++) s.append(Buffer.alloc(100, i), i);
    const last = path.join(s.dir!, files(store).at(-1)!);
    store.close();
    const whole = fs.statSync(last).size;
    // Half a record header, as a kill -9 in the middle of a write leaves it.
    fs.appendFileSync(last, Buffer.from([0, 0, 0, 100, 1, 2, 3]));
    const lines: string[] = [];
    const log = createLogger({}, { write: (l) => lines.push(l), level: 'warn' });
    let again = new StreamStore(root, log);
    again.recover();
    expect(again.get('s')!.status().newestSequenceNumber).toBe(9);
    expect(fs.statSync(last).size).toBe(whole);
    expect(lines.join('')).toMatch(/damaged tail/);
    expect(again.get('s')!.append(Buffer.from('ok'), 0)).toBe(10);
    again.close();

    // A whole record whose bytes were not all written (CRC fails): it goes too, and what follows.
    const size = fs.statSync(last).size;
    const fd = fs.openSync(last, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, size - 1);
    fs.closeSync(fd);
    again = new StreamStore(root, silentLogger);
    again.recover();
    expect(again.get('s')!.status().newestSequenceNumber).toBe(9);
    expect(again.get('s')!.append(Buffer.from('again'), 0)).toBe(10);
    again.close();
  });

  test('a stream folder that cannot be read is left alone; the others load', () => {
    const store = new StreamStore(root, silentLogger);
    store.create(def({}));
    store.close();
    const broken = path.join(root, 'streams', 'broken-0000');
    fs.mkdirSync(broken);
    fs.writeFileSync(path.join(broken, 'definition.json'), '{not json');
    const again = new StreamStore(root, silentLogger);
    again.recover();
    expect([...again.streams.keys()]).toEqual(['s']);
    expect(fs.existsSync(broken)).toBe(true);
    again.close();
  });

  test('delete removes the folder and its data', () => {
    const store = new StreamStore(root, silentLogger);
    const s = store.create(def({}));
    s.append(Buffer.from('x'), 0);
    const dir = s.dir!;
    expect(store.remove('s')).toBe(true);
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.readdirSync(path.join(root, 'streams'))).toEqual([]);
  });

  test('file streams keep payloads on disk: heap stays flat while 64 MiB go in', () => {
    const store = new StreamStore(root, silentLogger);
    const s = store.create(def({ maxSize: 256 * 1024 * 1024 }));
    const payload = Buffer.alloc(64 * 1024, 1);
    global.gc?.();
    const before = process.memoryUsage();
    for (let i = 0; i < 1024; i++) s.append(payload, i);
    global.gc?.();
    const after = process.memoryUsage();
    expect(s.status().totalBytes).toBe(1024 * (RECORD_HEADER + payload.length));
    // 64 MiB appended; what stays in memory is counters and a sparse index.
    expect(after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers)).toBeLessThan(16 * 1024 * 1024);
    store.close();
  });
});

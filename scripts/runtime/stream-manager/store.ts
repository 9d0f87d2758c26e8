/**
 * The Stream Manager's message store (docs/stream-manager.md "Storage").
 *
 * A stream is a list of segments; a segment holds whole records with consecutive sequence numbers
 * and is closed once the next record would take it past streamSegmentSize. Data leaves only one
 * whole segment at a time (maxSize with OverwriteOldestData, timeToLiveMillis), as the Stream
 * Manager documents. The last segment is the one appended to; there is always one, possibly empty,
 * so the next sequence number is known after any eviction and after a restart.
 *
 * File persistence: `<store root>/streams/<name>-<hash>/` holds `definition.json`, `exports.json`
 * (export progress) and one file per segment, `<first sequence number>.log`, of records
 *
 *   uint32 BE payload length | uint32 BE CRC-32 of the rest | float64 BE sequence number |
 *   float64 BE ingest time (ms) | payload
 *
 * Payloads of file streams stay on disk: memory holds per segment its counters and a sparse index
 * (one offset per 64 KiB), built when the segment is first read. At start the last segment of each
 * stream is scanned; a torn or corrupt tail (kill -9 in the middle of a write) is cut off and
 * logged, and numbering continues after the last whole record. Earlier segments are trusted by
 * their size and the next segment's first number, and their file time stands for their newest
 * record's ingest time (TTL).
 *
 * Memory persistence: the same segments, in memory, lost on restart (as the Stream Manager's
 * Memory persistence is).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../../../components/lib/logger';
import { Persistence, StrategyOnFull, StreamDefinition } from './definition';
import { RequestError, Status } from './protocol';
import type { StoredMessage } from './types';

export const RECORD_HEADER = 24;
const INDEX_EVERY = 64 * 1024;
const READ_CHUNK = 64 * 1024;

export interface StorageStatus {
  oldestSequenceNumber: number;
  newestSequenceNumber: number;
  totalBytes: number;
}

/** Export progress of one export config, as DescribeMessageStream shows it and as it is persisted. */
export interface ExportProgress {
  lastExportedSequenceNumber: number;
  lastExportTime?: number;
  exportedBytesFromStream: number;
  exportedMessagesCount: number;
  /** The startSequenceNumber the progress was counted from (a changed one restarts the export). */
  startSequenceNumber: number;
}

interface Segment {
  readonly firstSeq: number;
  count: number;
  bytes: number;
  /** Ingest time of the newest record (TTL). */
  newestIngest: number;
  append(seq: number, time: number, payload: Buffer, sync: boolean): void;
  /** Records with sequence number >= fromSeq, at most `max` of them and about `maxBytes` of payload (always at least one). */
  read(fromSeq: number, max: number, maxBytes: number, streamName: string): StoredMessage[];
  seal(): void;
  remove(): void;
}

class MemorySegment implements Segment {
  count = 0;
  bytes = 0;
  newestIngest = 0;
  private readonly records: { seq: number; time: number; payload: Buffer }[] = [];
  constructor(readonly firstSeq: number) {}

  append(seq: number, time: number, payload: Buffer): void {
    this.records.push({ seq, time, payload });
    this.count += 1;
    this.bytes += RECORD_HEADER + payload.length;
    this.newestIngest = time;
  }

  read(fromSeq: number, max: number, maxBytes: number, streamName: string): StoredMessage[] {
    const out: StoredMessage[] = [];
    let bytes = 0;
    for (let i = Math.max(0, fromSeq - this.firstSeq); i < this.records.length && out.length < max; i++) {
      const r = this.records[i]!;
      if (out.length > 0 && bytes + r.payload.length > maxBytes) break;
      bytes += r.payload.length;
      out.push({ streamName, sequenceNumber: r.seq, ingestTime: r.time, payload: r.payload });
    }
    return out;
  }

  seal(): void {}
  remove(): void {
    this.records.length = 0;
  }
}

function encodeHeader(seq: number, time: number, payload: Buffer): Buffer {
  const h = Buffer.allocUnsafe(RECORD_HEADER);
  h.writeUInt32BE(payload.length, 0);
  h.writeDoubleBE(seq, 8);
  h.writeDoubleBE(time, 16);
  h.writeUInt32BE(crc32(payload, crc32(h.subarray(8, 24))), 4);
  return h;
}

interface ScanResult {
  count: number;
  /** Offset after the last whole, valid record. */
  end: number;
  lastSeq: number;
  lastIngest: number;
  index: [number, number][];
  /** Why the scan stopped before the file's end, if it did. */
  damage?: string;
}

/** Walks a segment file's records from `start`; `visit` returns false to stop. Verifies CRCs when asked. */
function walk(fd: number, start: number, end: number, verify: boolean, visit: (seq: number, time: number, payload: Buffer, offset: number) => boolean): { end: number; damage?: string } {
  const chunk = Buffer.allocUnsafe(READ_CHUNK);
  let bufStart = start;
  let bufLen = 0;
  let off = start;
  const fill = (at: number, need: number): Buffer | undefined => {
    if (at >= bufStart && at + need <= bufStart + bufLen) return chunk.subarray(at - bufStart, at - bufStart + need);
    if (need > READ_CHUNK) {
      const big = Buffer.allocUnsafe(need);
      const n = fs.readSync(fd, big, 0, need, at);
      return n === need ? big : undefined;
    }
    bufStart = at;
    bufLen = fs.readSync(fd, chunk, 0, Math.min(READ_CHUNK, end - at), at);
    return bufLen >= need ? chunk.subarray(0, need) : undefined;
  };
  while (off < end) {
    if (end - off < RECORD_HEADER) return { end: off, damage: `a partial record header at offset ${off}` };
    const h = fill(off, RECORD_HEADER);
    if (!h) return { end: off, damage: `unreadable record header at offset ${off}` };
    const len = h.readUInt32BE(0);
    const crc = h.readUInt32BE(4);
    const seq = h.readDoubleBE(8);
    const time = h.readDoubleBE(16);
    const meta = Buffer.from(h.subarray(8, 24));
    if (off + RECORD_HEADER + len > end) return { end: off, damage: `a record of ${len} bytes at offset ${off} runs past the end of the file` };
    const payload = fill(off + RECORD_HEADER, len);
    if (!payload) return { end: off, damage: `unreadable record at offset ${off}` };
    if (verify && crc32(payload, crc32(meta)) !== crc) return { end: off, damage: `a record at offset ${off} fails its CRC` };
    if (!visit(seq, time, payload, off)) return { end: off };
    off += RECORD_HEADER + len;
  }
  return { end: off };
}

class FileSegment implements Segment {
  count = 0;
  bytes = 0;
  newestIngest = 0;
  private fd: number | undefined;
  private index: [number, number][] | undefined;
  private lastIndexed = -Infinity;

  constructor(
    readonly firstSeq: number,
    readonly file: string,
  ) {}

  static create(dir: string, firstSeq: number): FileSegment {
    const s = new FileSegment(firstSeq, path.join(dir, segmentFileName(firstSeq)));
    s.fd = fs.openSync(s.file, 'a+');
    s.index = [];
    return s;
  }

  /** A sealed segment found at start: trusted by size; indexed on first read. */
  static sealed(file: string, firstSeq: number, count: number, bytes: number, newestIngest: number): FileSegment {
    const s = new FileSegment(firstSeq, file);
    s.count = count;
    s.bytes = bytes;
    s.newestIngest = newestIngest;
    return s;
  }

  /** The last segment found at start: scanned, a damaged tail cut off. */
  static recover(file: string, firstSeq: number, log: Logger, stream: string): FileSegment {
    const s = new FileSegment(firstSeq, file);
    s.fd = fs.openSync(file, 'a+');
    const size = fs.fstatSync(s.fd).size;
    const scan = s.scan(size, true);
    if (scan.damage || scan.end < size) {
      log.warn('Stream Manager: cut off a damaged tail of a stream segment (an interrupted write)', { stream, file: path.basename(file), keptBytes: scan.end, droppedBytes: size - scan.end, reason: scan.damage });
      fs.ftruncateSync(s.fd, scan.end);
      fs.fsyncSync(s.fd);
    }
    s.count = scan.count;
    s.bytes = scan.end;
    s.newestIngest = scan.count > 0 ? scan.lastIngest : 0;
    s.index = scan.index;
    return s;
  }

  private scan(size: number, verify: boolean): ScanResult {
    const r: ScanResult = { count: 0, end: 0, lastSeq: this.firstSeq - 1, lastIngest: 0, index: [] };
    let lastIndexed = -Infinity;
    const w = walk(this.fd ?? -1, 0, size, verify, (seq, time, _p, off) => {
      if (seq !== r.lastSeq + 1) return false;
      if (off - lastIndexed >= INDEX_EVERY) {
        r.index.push([seq, off]);
        lastIndexed = off;
      }
      r.count += 1;
      r.lastSeq = seq;
      r.lastIngest = time;
      return true;
    });
    r.end = w.end;
    if (w.damage) r.damage = w.damage;
    else if (w.end < size) r.damage = `a record out of sequence at offset ${w.end}`;
    this.lastIndexed = lastIndexed;
    return r;
  }

  append(seq: number, time: number, payload: Buffer, sync: boolean): void {
    if (this.fd === undefined) throw new Error('segment is sealed');
    const h = encodeHeader(seq, time, payload);
    const off = this.bytes;
    fs.writeSync(this.fd, h);
    if (payload.length > 0) fs.writeSync(this.fd, payload);
    if (sync) fs.fsyncSync(this.fd);
    if (this.index && off - this.lastIndexed >= INDEX_EVERY) {
      this.index.push([seq, off]);
      this.lastIndexed = off;
    }
    this.count += 1;
    this.bytes += RECORD_HEADER + payload.length;
    this.newestIngest = time;
  }

  read(fromSeq: number, max: number, maxBytes: number, streamName: string): StoredMessage[] {
    const own = this.fd === undefined;
    const fd = own ? fs.openSync(this.file, 'r') : this.fd!;
    try {
      if (!this.index) {
        const prev = this.fd;
        this.fd = fd;
        try {
          this.index = this.scan(this.bytes, false).index;
        } finally {
          this.fd = prev;
        }
      }
      let start = 0;
      for (const [seq, off] of this.index) {
        if (seq > fromSeq) break;
        start = off;
      }
      const out: StoredMessage[] = [];
      let bytes = 0;
      walk(fd, start, this.bytes, false, (seq, time, payload) => {
        if (seq < fromSeq) return true;
        if (out.length > 0 && bytes + payload.length > maxBytes) return false;
        bytes += payload.length;
        out.push({ streamName, sequenceNumber: seq, ingestTime: time, payload: Buffer.from(payload) });
        return out.length < max;
      });
      return out;
    } finally {
      if (own) fs.closeSync(fd);
    }
  }

  seal(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
      // The index is rebuilt on demand; a sealed segment holds no memory but its counters.
      this.index = undefined;
    }
  }

  remove(): void {
    this.seal();
    fs.rmSync(this.file, { force: true });
  }
}

function segmentFileName(firstSeq: number): string {
  return `${String(firstSeq).padStart(16, '0')}.log`;
}

function writeJsonAtomic(file: string, data: unknown): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(data));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Emits 'append' (sequenceNumber) after each append, and 'removed' once deleted. */
export class MessageStream extends EventEmitter {
  private segments: Segment[] = [];
  private next = 0;
  private total = 0;
  private deleted = false;
  private progress: Record<string, ExportProgress> = {};

  private constructor(
    public definition: StreamDefinition,
    /** The stream's folder (File persistence). */
    readonly dir: string | undefined,
  ) {
    super();
    this.setMaxListeners(0);
  }

  static create(def: StreamDefinition, streamsDir: string | undefined): MessageStream {
    if (def.persistence === Persistence.Memory || !streamsDir) {
      const s = new MessageStream(def, undefined);
      s.segments.push(new MemorySegment(0));
      return s;
    }
    const dir = path.join(streamsDir, streamDirName(def.name));
    const tmp = `${dir}.creating`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    writeJsonAtomic(path.join(tmp, 'definition.json'), def);
    fs.closeSync(fs.openSync(path.join(tmp, segmentFileName(0)), 'w'));
    fs.renameSync(tmp, dir);
    const s = new MessageStream(def, dir);
    s.segments.push(FileSegment.create(dir, 0));
    return s;
  }

  /** A file stream found at start; throws if its definition is unreadable. */
  static recover(dir: string, log: Logger): MessageStream {
    const def = JSON.parse(fs.readFileSync(path.join(dir, 'definition.json'), 'utf8')) as StreamDefinition;
    const s = new MessageStream(def, dir);
    try {
      s.progress = JSON.parse(fs.readFileSync(path.join(dir, 'exports.json'), 'utf8')) as Record<string, ExportProgress>;
    } catch {
      s.progress = {};
    }
    const files = fs
      .readdirSync(dir)
      .filter((f) => /^\d+\.log$/.test(f))
      .map((f) => ({ f, first: Number(f.slice(0, -4)) }))
      .sort((a, b) => a.first - b.first);
    if (files.length === 0) {
      s.segments.push(FileSegment.create(dir, 0));
      return s;
    }
    for (let i = 0; i < files.length - 1; i++) {
      const { f, first } = files[i]!;
      const st = fs.statSync(path.join(dir, f));
      const count = files[i + 1]!.first - first;
      if (count <= 0 || st.size === 0) {
        fs.rmSync(path.join(dir, f), { force: true });
        continue;
      }
      s.segments.push(FileSegment.sealed(path.join(dir, f), first, count, st.size, st.mtimeMs));
    }
    const last = files[files.length - 1]!;
    s.segments.push(FileSegment.recover(path.join(dir, last.f), last.first, log, def.name));
    for (const seg of s.segments) s.total += seg.bytes;
    const tail = s.segments[s.segments.length - 1]!;
    s.next = tail.firstSeq + tail.count;
    return s;
  }

  get name(): string {
    return this.definition.name;
  }

  get isDeleted(): boolean {
    return this.deleted;
  }

  get nextSequenceNumber(): number {
    return this.next;
  }

  status(): StorageStatus {
    const first = this.segments.find((s) => s.count > 0);
    return {
      oldestSequenceNumber: first ? first.firstSeq : this.next,
      newestSequenceNumber: this.next - 1,
      totalBytes: this.total,
    };
  }

  /** Appends one message; RequestError when it cannot be stored (see docs/stream-manager.md "A full stream"). */
  append(payload: Buffer, now: number): number {
    const d = this.definition;
    const rec = RECORD_HEADER + payload.length;
    if (rec > d.maxSize) {
      throw new RequestError(Status.RequestPayloadTooLarge, `a message of ${payload.length} bytes (${rec} stored) can never fit stream '${d.name}' (maxSize ${d.maxSize})`);
    }
    if (this.total + rec > d.maxSize) {
      if (d.strategyOnFull === StrategyOnFull.RejectNewData) {
        throw new RequestError(
          Status.RequestPayloadTooLarge,
          `stream '${d.name}' is full (${this.total} of ${d.maxSize} bytes, strategyOnFull RejectNewData): the message of ${payload.length} bytes was not stored`,
        );
      }
      while (this.total + rec > d.maxSize && this.total > 0) {
        if (this.segments.length === 1) this.roll();
        this.dropOldest();
      }
    }
    let active = this.segments[this.segments.length - 1]!;
    if (active.count > 0 && active.bytes + rec > d.streamSegmentSize) active = this.roll();
    const seq = this.next;
    active.append(seq, now, payload, d.flushOnWrite);
    this.next += 1;
    this.total += rec;
    this.emit('append', seq);
    return seq;
  }

  read(fromSeq: number, max: number, maxBytes: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    let bytes = 0;
    let from = Math.max(fromSeq, this.status().oldestSequenceNumber);
    for (const seg of this.segments) {
      if (out.length >= max) break;
      if (seg.count === 0 || seg.firstSeq + seg.count <= from) continue;
      const got = seg.read(from, max - out.length, Math.max(1, maxBytes - bytes), this.name);
      if (got.length === 0) continue;
      if (out.length > 0 && bytes + got[0]!.payload.length > maxBytes) break;
      for (const m of got) bytes += m.payload.length;
      out.push(...got);
      from = got[got.length - 1]!.sequenceNumber + 1;
    }
    return out;
  }

  /** Drops whole segments whose newest record is older than timeToLiveMillis. Returns how many messages went. */
  expire(now: number): number {
    const ttl = this.definition.timeToLiveMillis;
    if (ttl === undefined) return 0;
    let dropped = 0;
    while (this.segments.length > 0) {
      const oldest = this.segments[0]!;
      if (oldest.count === 0 || oldest.newestIngest + ttl > now) break;
      if (this.segments.length === 1) this.roll();
      dropped += oldest.count;
      this.dropOldest();
    }
    return dropped;
  }

  updateDefinition(def: StreamDefinition): void {
    if (this.dir) writeJsonAtomic(path.join(this.dir, 'definition.json'), def);
    this.definition = def;
  }

  exportProgress(identifier: string): ExportProgress | undefined {
    const p = this.progress[identifier];
    return p && { ...p };
  }

  /** Records (and for file streams persists) an export's progress; `keep` prunes entries of removed configs. */
  saveExportProgress(identifier: string, p: ExportProgress | undefined, keep?: ReadonlySet<string>): void {
    if (this.deleted) return;
    if (p) this.progress[identifier] = { ...p };
    else delete this.progress[identifier];
    if (keep) for (const id of Object.keys(this.progress)) if (!keep.has(id)) delete this.progress[id];
    if (this.dir) writeJsonAtomic(path.join(this.dir, 'exports.json'), this.progress);
  }

  /** Deletes the stream and its data. */
  remove(): void {
    if (this.deleted) return;
    this.deleted = true;
    for (const s of this.segments) s.seal();
    this.segments = [];
    if (this.dir) {
      // Renamed first, so a crash half-way through never brings back half a stream.
      const gone = `${this.dir}.deleted`;
      fs.rmSync(gone, { recursive: true, force: true });
      fs.renameSync(this.dir, gone);
      fs.rmSync(gone, { recursive: true, force: true });
    }
    this.emit('removed');
    this.removeAllListeners('append');
  }

  close(): void {
    for (const s of this.segments) s.seal();
  }

  private roll(): Segment {
    const active = this.segments[this.segments.length - 1]!;
    active.seal();
    const seg = this.dir ? FileSegment.create(this.dir, this.next) : new MemorySegment(this.next);
    this.segments.push(seg);
    return seg;
  }

  private dropOldest(): void {
    const s = this.segments.shift()!;
    this.total -= s.bytes;
    s.remove();
  }
}

export function streamDirName(name: string): string {
  const readable = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  return `${readable}-${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}

/** The streams of one Stream Manager: File streams under `<root>/streams/`, Memory streams in memory. */
export class StreamStore {
  readonly streams = new Map<string, MessageStream>();
  readonly streamsDir: string;

  constructor(
    root: string,
    private readonly log: Logger,
  ) {
    this.streamsDir = path.join(root, 'streams');
    fs.mkdirSync(this.streamsDir, { recursive: true });
  }

  /** Loads the file streams found on disk; a stream that cannot be read is logged and left where it is. */
  recover(): void {
    for (const entry of fs.readdirSync(this.streamsDir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = path.join(this.streamsDir, entry.name);
      if (entry.name.endsWith('.creating') || entry.name.endsWith('.deleted')) {
        fs.rmSync(dir, { recursive: true, force: true });
        continue;
      }
      try {
        const s = MessageStream.recover(dir, this.log);
        this.streams.set(s.name, s);
        const st = s.status();
        this.log.info('Stream Manager: stream recovered', { stream: s.name, ...st });
      } catch (err) {
        this.log.error('Stream Manager: a stream folder could not be read; left untouched', { dir: entry.name, err: err as Error });
      }
    }
  }

  create(def: StreamDefinition): MessageStream {
    const s = MessageStream.create(def, this.streamsDir);
    this.streams.set(def.name, s);
    return s;
  }

  get(name: string): MessageStream | undefined {
    return this.streams.get(name);
  }

  remove(name: string): boolean {
    const s = this.streams.get(name);
    if (!s) return false;
    this.streams.delete(name);
    s.remove();
    return true;
  }

  close(): void {
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
  }
}

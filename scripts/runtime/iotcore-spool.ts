/**
 * The bounded in-memory spool in front of the IoT Core connection, after the nucleus's
 * `mqttclient/spool/Spool.java` (storageType Memory):
 * - the size is the sum of payload lengths, bounded by `maxSizeInBytes` (default 2.5 MiB);
 * - a message larger than the whole spool is refused outright;
 * - when a message does not fit, QoS 0 messages are evicted oldest first; if it still does not fit it
 *   is refused ("spool full"). Unlike the nucleus we check that eviction would make room before
 *   evicting, so a refused message does not also cost the queued QoS 0 ones;
 * - a message taken for sending stays counted until it is acknowledged (`removeMessageById` after a
 *   successful publish), and goes back to the front if the publish fails (`addId`).
 */

export class SpoolFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpoolFullError';
  }
}

export interface SpoolEntry<M> {
  msg: M;
  bytes: number;
  /** Failed sends so far; the caller drops the entry past its retry limit. */
  retries: number;
}

export class MessageSpool<M extends { qos: 0 | 1; payload: Buffer }> {
  private queue: SpoolEntry<M>[] = [];
  private head = 0;
  private bytesUsed = 0;

  constructor(readonly maxBytes: number) {
    if (!Number.isFinite(maxBytes) || maxBytes <= 0) throw new RangeError(`maxSpoolBytes must be a positive number, got ${maxBytes}`);
  }

  /** Bytes held: queued messages plus those taken and not yet released. */
  get bytes(): number {
    return this.bytesUsed;
  }

  /** Messages waiting to be sent (not counting those in flight). */
  get depth(): number {
    return this.queue.length - this.head;
  }

  /** Queues a message; returns how many QoS 0 messages were evicted to make room. */
  add(msg: M): number {
    const bytes = msg.payload.length;
    if (bytes > this.maxBytes) throw new SpoolFullError('Message is larger than the size of message spool.');
    let evicted = 0;
    if (this.bytesUsed + bytes > this.maxBytes) {
      let reclaimable = 0;
      for (let i = this.head; i < this.queue.length; i++) if (this.queue[i].msg.qos === 0) reclaimable += this.queue[i].bytes;
      if (this.bytesUsed - reclaimable + bytes > this.maxBytes) {
        throw new SpoolFullError('Message spool is full. Message could not be added.');
      }
      const kept: SpoolEntry<M>[] = [];
      for (let i = this.head; i < this.queue.length; i++) {
        const e = this.queue[i];
        if (e.msg.qos === 0 && this.bytesUsed + bytes > this.maxBytes) {
          this.bytesUsed -= e.bytes;
          evicted++;
        } else {
          kept.push(e);
        }
      }
      this.queue = kept;
      this.head = 0;
    }
    this.queue.push({ msg, bytes, retries: 0 });
    this.bytesUsed += bytes;
    return evicted;
  }

  /** Oldest message, removed from the queue but still counted in `bytes` until `release` or `putBack`. */
  take(): SpoolEntry<M> | undefined {
    if (this.head >= this.queue.length) return undefined;
    const e = this.queue[this.head];
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return e;
  }

  /** The taken message was delivered (or given up on): free its bytes. */
  release(entry: SpoolEntry<M>): void {
    this.bytesUsed -= entry.bytes;
  }

  /** The taken message failed: back to the front, to be sent first next time. */
  putBack(entry: SpoolEntry<M>): void {
    if (this.head > 0) {
      this.head--;
      this.queue[this.head] = entry;
    } else {
      this.queue.unshift(entry);
    }
  }

  /** Empties the queue (used on close); returns what was dropped. */
  clear(): SpoolEntry<M>[] {
    const dropped = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    this.bytesUsed = 0;
    return dropped;
  }
}

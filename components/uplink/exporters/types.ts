/**
 * One interface for every destination, so that another one (Greengrass Stream Manager, for Kinesis
 * or SiteWise) can be added without touching the outbox or the sender; after eKuiper's sinks: the
 * sender owns ordering, pacing, backoff and the outbox; an exporter only turns one sealed batch
 * into one confirmed delivery.
 *
 * Contract (test/integration/uplink-sinks.test.ts runs it against each exporter and its real peer):
 *  - `send` resolves only once the destination has the batch (S3: PutObject 200; IoT Core: the
 *    publish was PUBACKed while the connection was known online). It rejects otherwise; the batch
 *    then stays in the outbox and is sent again later, with the same identity (S3 key, `seq`), so
 *    a retry overwrites or is de-duplicated, never doubled.
 *  - `PermanentExportError` means this batch can never go to this destination (too large for IoT
 *    Core): the sender counts it and gives up on this destination only.
 */
import type { RecordClass } from '../classes';

export interface ExportBatch {
  /** The batch's sequence number: its outbox id. */
  seq: number;
  cls: RecordClass;
  oldestAt: number;
  createdAt: number;
  count: number;
  /** gzip NDJSON, one record per line. */
  body: Buffer;
}

export interface Exporter {
  readonly name: string;
  send(batch: ExportBatch): Promise<void>;
  /** Optional cheap connectivity check, used while backing off before retrying real data. */
  probe?(): Promise<void>;
  close(): Promise<void>;
}

export class PermanentExportError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'PermanentExportError';
    this.code = code;
  }
}

/** A transient export failure with a stable code for metrics (`S3_500`, `IOT_OFFLINE`, ...). */
export class ExportError extends Error {
  readonly code: string;
  /**
   * The destination answered and refused this data (S3 403, 400...), as opposed to being away (no
   * connection, a timeout, a 5xx, IoT Core offline). After an unavailability, a successful probe
   * means the destination is back and the drain starts at once; after a refusal, the backoff is
   * waited out even though probes succeed (sender.ts).
   */
  readonly refused: boolean;
  constructor(code: string, message: string, opts?: { cause?: unknown; refused?: boolean }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ExportError';
    this.code = code;
    this.refused = opts?.refused === true;
  }
}

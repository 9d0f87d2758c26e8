export interface StoredMessage { streamName: string; sequenceNumber: number; ingestTime: number; payload: Buffer }

/** One export configuration as it arrives on the wire (camelCase keys, already validated by the server). */
export type ExportKind = 'kinesis' | 'IotSitewise' | 's3TaskExecutor' | 'http' | 'iotAnalytics';
export interface ExportConfig {
  identifier: string;
  batchSize?: number; batchIntervalMillis?: number; priority?: number; startSequenceNumber?: number; disabled?: boolean;
  [key: string]: unknown;            // kinesisStreamName, uri, exportFormat, statusConfig, sizeThresholdForMultipartUploadBytes ...
}

/** What every exporter gets from the server. */
export interface ExportEnvironment {
  /** Resolves AWS credentials the way a component would (the Token Exchange Service); undefined in tests that pass static ones. */
  credentials?: () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }>;
  region: string;
  /** Endpoint overrides, e.g. s3rver / kinesalite on loopback: { s3?: string; kinesis?: string; sitewiseFile?: string } */
  endpoints: { s3?: string; kinesis?: string; sitewiseFile?: string };
  /** Append a message to another stream of this Stream Manager (the S3 task's status stream). Rejects if it does not exist. */
  appendToStream(streamName: string, payload: Buffer): Promise<number>;
  log: { info(msg: string, f?: object): void; warn(msg: string, f?: object): void; error(msg: string, f?: object): void };
}

/**
 * An exporter sends one batch (in sequence order, all from one stream). It resolves when the destination has every message
 * of the batch, and rejects with an Error whose message is what DescribeMessageStream shows as errorMessage. The server owns
 * batching (batchSize / batchIntervalMillis), priority order, retry with backoff (up to 5 min), progress
 * (lastExportedSequenceNumber etc.) and persistence of progress. A message that can never be exported (malformed S3 task or
 * SiteWise entry) is NOT a rejection: the exporter records it (S3: a Failure status message; log) and resolves, so the
 * stream does not stall.
 */
export interface Exporter {
  readonly kind: ExportKind;
  send(batch: StoredMessage[]): Promise<void>;
  close(): Promise<void>;
}
export type ExporterFactory = (config: ExportConfig, streamName: string, env: ExportEnvironment) => Exporter;

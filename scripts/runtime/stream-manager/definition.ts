/**
 * MessageStreamDefinition: validation of what arrives on the wire and the rules of an update, with
 * the status codes the Stream Manager answers (docs/stream-manager.md "Validation").
 *
 * The field rules are those of the SDKs' validation maps (AWS Stream Manager SDK, MessageStreamDefinition
 * and the export configs): a client built from them refuses most bad values itself, so the server
 * applies them again for clients that do not (another SDK version, our own tests on the raw socket).
 */
import { NAME_PATTERN, RequestError, Status } from './protocol';
import type { ExportConfig, ExportKind } from './types';

export const Persistence = { File: 0, Memory: 1 } as const;
export const StrategyOnFull = { RejectNewData: 0, OverwriteOldestData: 1 } as const;

export const DEFAULT_MAX_SIZE = 256 * 1024 * 1024;
export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;
const MIN_SIZE = 1024;
const MAX_SEGMENT_SIZE = 2147483647;
const MIN_TTL = 60000;
/** 9223372036854 ms: the SDKs' maximum for timeToLiveMillis, batchIntervalMillis and readTimeoutMillis. */
export const MAX_MILLIS = 9223372036854;

export interface StreamDefinition {
  name: string;
  maxSize: number;
  streamSegmentSize: number;
  timeToLiveMillis?: number;
  strategyOnFull: 0 | 1;
  persistence: 0 | 1;
  flushOnWrite: boolean;
  /** Export configs by kind, as they came (validated). */
  exportDefinition: Partial<Record<ExportKind, ExportConfig[]>>;
}

export const EXPORT_KINDS: readonly ExportKind[] = ['kinesis', 'IotSitewise', 's3TaskExecutor', 'http', 'iotAnalytics'];

/** Batch size range per kind (default = max), from the SDKs' export config classes. */
const BATCH: Record<ExportKind, { max: number } | undefined> = {
  kinesis: { max: 500 },
  IotSitewise: { max: 10 },
  iotAnalytics: { max: 100 },
  http: { max: 500 },
  s3TaskExecutor: undefined,
};

export function defaultBatchSize(kind: ExportKind): number {
  return BATCH[kind]?.max ?? 1;
}

const bad = (message: string): RequestError => new RequestError(Status.InvalidRequest, message);

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

export function checkName(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length < 1 || v.length > 255 || !NAME_PATTERN.test(v)) {
    throw bad(`${what} must be 1 to 255 characters of letters, digits, space, ',', '.', '-' and '_', got ${JSON.stringify(v)?.slice(0, 300)}`);
  }
  return v;
}

function int(v: unknown, what: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw bad(`${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(v: unknown, what: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(`${what} must be a boolean, got ${JSON.stringify(v)}`);
  return v;
}

function str(v: unknown, what: string, required: boolean, maxLength = Infinity): string | undefined {
  if (v === undefined || v === null) {
    if (required) throw bad(`${what} is required`);
    return undefined;
  }
  if (typeof v !== 'string' || (required && v.length < 1) || v.length > maxLength) {
    throw bad(`${what} must be a string${required ? ' of at least 1 character' : ''}${maxLength < Infinity ? ` of at most ${maxLength}` : ''}, got ${JSON.stringify(v)?.slice(0, 300)}`);
  }
  return v;
}

function exportConfig(kind: ExportKind, v: unknown, where: string): ExportConfig {
  if (!isMap(v)) throw bad(`${where} must be a map`);
  const identifier = checkName(v['identifier'], `${where}.identifier`);
  const w = `${where} '${identifier}'`;
  const batch = BATCH[kind];
  if (batch) int(v['batchSize'], `${w}: batchSize`, 1, batch.max);
  if (kind !== 's3TaskExecutor') {
    int(v['batchIntervalMillis'], `${w}: batchIntervalMillis`, MIN_TTL, MAX_MILLIS);
    int(v['startSequenceNumber'], `${w}: startSequenceNumber`, 0, Number.MAX_SAFE_INTEGER);
  }
  int(v['priority'], `${w}: priority`, 1, 10);
  bool(v['disabled'], `${w}: disabled`);
  switch (kind) {
    case 'kinesis':
      str(v['kinesisStreamName'], `${w}: kinesisStreamName`, true);
      break;
    case 'http':
      str(v['uri'], `${w}: uri`, true);
      int(v['exportFormat'], `${w}: exportFormat (0 RAW_NOT_BATCHED, 1 JSON_BATCHED)`, 0, 1);
      break;
    case 'iotAnalytics':
      str(v['iotChannel'], `${w}: iotChannel`, true);
      str(v['iotMsgIdPrefix'], `${w}: iotMsgIdPrefix`, false, 32);
      break;
    case 's3TaskExecutor': {
      int(v['sizeThresholdForMultipartUploadBytes'], `${w}: sizeThresholdForMultipartUploadBytes`, 5242880, Number.MAX_SAFE_INTEGER);
      const sc = v['statusConfig'];
      if (sc !== undefined && sc !== null) {
        if (!isMap(sc)) throw bad(`${w}: statusConfig must be a map`);
        int(sc['statusLevel'], `${w}: statusConfig.statusLevel (0 ERROR .. 4 TRACE)`, 0, 4);
        if (sc['statusStreamName'] !== undefined && sc['statusStreamName'] !== null) checkName(sc['statusStreamName'], `${w}: statusConfig.statusStreamName`);
      }
      break;
    }
    case 'IotSitewise':
      break;
  }
  // Kept as sent (camelCase wire keys), without nulls.
  const out: ExportConfig = { identifier };
  for (const [k, val] of Object.entries(v)) if (val !== null && val !== undefined) out[k] = val;
  return out;
}

/**
 * A definition from the wire, validated, with defaults filled in. `supportedKinds`: the export kinds
 * this server has an exporter for; any other kind is InvalidRequest saying which are supported.
 */
export function parseDefinition(v: unknown, supportedKinds: ReadonlySet<ExportKind>): StreamDefinition {
  if (!isMap(v)) throw bad('definition is required and must be a map');
  const name = checkName(v['name'], 'definition.name');
  const maxSize = int(v['maxSize'], 'maxSize', MIN_SIZE, Number.MAX_SAFE_INTEGER) ?? DEFAULT_MAX_SIZE;
  // An unset segment size is the default, but never more than maxSize (a small stream asked for
  // without a segment size is one segment rather than an error).
  const streamSegmentSize = int(v['streamSegmentSize'], 'streamSegmentSize', MIN_SIZE, MAX_SEGMENT_SIZE) ?? Math.min(DEFAULT_SEGMENT_SIZE, maxSize);
  const timeToLiveMillis = int(v['timeToLiveMillis'], 'timeToLiveMillis', MIN_TTL, MAX_MILLIS);
  if (v['strategyOnFull'] === undefined || v['strategyOnFull'] === null) throw bad('strategyOnFull is required (0 RejectNewData, 1 OverwriteOldestData)');
  const strategyOnFull = int(v['strategyOnFull'], 'strategyOnFull (0 RejectNewData, 1 OverwriteOldestData)', 0, 1) as 0 | 1;
  const persistence = (int(v['persistence'], 'persistence (0 File, 1 Memory)', 0, 1) ?? Persistence.File) as 0 | 1;
  const flushOnWrite = bool(v['flushOnWrite'], 'flushOnWrite') ?? false;
  if (maxSize < streamSegmentSize) throw bad(`maxSize (${maxSize}) must be at least streamSegmentSize (${streamSegmentSize}): data is removed one whole segment at a time`);
  const exportDefinition: StreamDefinition['exportDefinition'] = {};
  const ed = v['exportDefinition'];
  if (ed !== undefined && ed !== null) {
    if (!isMap(ed)) throw bad('exportDefinition must be a map of export kind to a list of configs');
    const ids = new Set<string>();
    for (const [key, list] of Object.entries(ed)) {
      if (list === null || list === undefined) continue;
      const kind = key as ExportKind;
      if (!EXPORT_KINDS.includes(kind)) throw bad(`exportDefinition.${key}: unknown export kind (known: ${EXPORT_KINDS.join(', ')})`);
      if (!Array.isArray(list)) throw bad(`exportDefinition.${key} must be a list`);
      if (list.length === 0) continue;
      if (!supportedKinds.has(kind)) {
        throw bad(`exportDefinition.${key}: this Stream Manager has no ${key} exporter (supported: ${[...supportedKinds].join(', ') || 'none'})`);
      }
      const configs = list.map((c, i) => exportConfig(kind, c, `exportDefinition.${key}[${i}]`));
      for (const c of configs) {
        if (ids.has(c.identifier)) throw bad(`export identifier '${c.identifier}' is used twice in the stream's export definition`);
        ids.add(c.identifier);
      }
      exportDefinition[kind] = configs;
    }
  }
  return {
    name,
    maxSize,
    streamSegmentSize,
    ...(timeToLiveMillis !== undefined ? { timeToLiveMillis } : {}),
    strategyOnFull,
    persistence,
    flushOnWrite,
    exportDefinition,
  };
}

/** What DescribeMessageStream returns as `definition` (defaults filled in). */
export function definitionToWire(d: StreamDefinition): Record<string, unknown> {
  const exportDefinition: Record<string, unknown> = {};
  for (const [k, list] of Object.entries(d.exportDefinition)) if (list && list.length > 0) exportDefinition[k] = list;
  return {
    name: d.name,
    maxSize: d.maxSize,
    streamSegmentSize: d.streamSegmentSize,
    ...(d.timeToLiveMillis !== undefined ? { timeToLiveMillis: d.timeToLiveMillis } : {}),
    strategyOnFull: d.strategyOnFull,
    persistence: d.persistence,
    flushOnWrite: d.flushOnWrite,
    exportDefinition,
  };
}

export function exportConfigs(d: StreamDefinition): { kind: ExportKind; config: ExportConfig }[] {
  const out: { kind: ExportKind; config: ExportConfig }[] = [];
  for (const kind of EXPORT_KINDS) for (const config of d.exportDefinition[kind] ?? []) out.push({ kind, config });
  return out;
}

/**
 * UpdateMessageStream's rules against the stream as it is: persistence cannot change, maxSize
 * cannot go below what the stream holds now, and an export's new startSequenceNumber must lie within
 * what the stream has had (UpdateNotAllowed).
 */
export function checkUpdate(current: StreamDefinition, next: StreamDefinition, state: { totalBytes: number; newestSequenceNumber: number }): void {
  const notAllowed = (m: string): RequestError => new RequestError(Status.UpdateNotAllowed, m);
  if (next.persistence !== current.persistence) throw notAllowed('persistence of a stream cannot be changed (delete and create the stream instead)');
  if (next.maxSize < state.totalBytes) throw notAllowed(`maxSize ${next.maxSize} is below the ${state.totalBytes} bytes the stream holds now`);
  const before = new Map(exportConfigs(current).map((e) => [e.config.identifier, e.config]));
  for (const { config } of exportConfigs(next)) {
    const start = config.startSequenceNumber;
    if (start === undefined || before.get(config.identifier)?.startSequenceNumber === start) continue;
    if (start > state.newestSequenceNumber + 1) {
      throw notAllowed(`export '${config.identifier}': startSequenceNumber ${start} is beyond the stream's next sequence number ${state.newestSequenceNumber + 1}`);
    }
  }
}

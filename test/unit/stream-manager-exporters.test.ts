/**
 * The Stream Manager exporters' pure parts: S3 key patterns (Java DateTimeFormatter letters), task
 * definitions, SiteWise entry checks, Kinesis request splitting, config errors.
 */
import { ConfigError } from '../../components/lib/errors';
import { exporterFactories } from '../../scripts/runtime/stream-manager/exporters';
import { DeliveredSet, isRefusal } from '../../scripts/runtime/stream-manager/exporters/common';
import { ExportFormat, jsonBatchBody } from '../../scripts/runtime/stream-manager/exporters/http';
import { formatTimestamp, KeyPatternError, resolveKey } from '../../scripts/runtime/stream-manager/exporters/key-pattern';
import { chunkRecords } from '../../scripts/runtime/stream-manager/exporters/kinesis';
import { inputPath, MIB, parseTask, partSize, s3TaskOptions } from '../../scripts/runtime/stream-manager/exporters/s3-task';
import { checkEntry, EntryInvalid } from '../../scripts/runtime/stream-manager/exporters/sitewise';
import type { ExportEnvironment, StoredMessage } from '../../scripts/runtime/stream-manager/types';

const AT = new Date(Date.UTC(2026, 0, 5, 7, 8, 9, 45)); // Monday 2026-01-05 07:08:09.045 UTC

describe('S3 key patterns (!{timestamp:...})', () => {
  it.each([
    ['yyyy/MM/dd', '2026/01/05'],
    ['yyyy-MM-dd HH:mm:ss', '2026-01-05 07:08:09'],
    ['yy/M/d/H/m/s', '26/1/5/7/8/9'],
    ['HHmmss.SSS', '070809.045'],
    ["'year='yyyy'/month='MM", 'year=2026/month=01'],
    ["yyyy''MM", "2026'01"],
    ["'it''s'", "it's"],
    ['MMM MMMM EEE EEEE', 'Jan January Mon Monday'],
    ['DDD hh a', '005 07 AM'],
    ['uuuu', '2026'],
  ])('%s -> %s', (pattern, want) => {
    expect(formatTimestamp(pattern, AT)).toBe(want);
  });

  it('replaces every placeholder and keeps the rest of the key', () => {
    expect(resolveKey('site-1/!{timestamp:yyyy/MM/dd}/data-!{timestamp:HHmm}.csv', AT)).toBe('site-1/2026/01/05/data-0708.csv');
    expect(resolveKey('plain/key.bin', AT)).toBe('plain/key.bin');
  });

  it.each([['yyyy/MM/dd VV'], ['yyyy[MM]'], ["'open"], ['ddd'], ['Q']])('refuses %s', (pattern) => {
    expect(() => formatTimestamp(pattern, AT)).toThrow(KeyPatternError);
  });

  it('refuses an empty pattern', () => {
    expect(() => resolveKey('a/!{timestamp:}/b', AT)).toThrow(KeyPatternError);
  });
});

describe('S3 task definitions', () => {
  const ok = { inputUrl: 'file:/var/data/a.csv', bucket: 'my-bucket', key: 'k/a.csv' };
  it('reads a definition with userMetadata', () => {
    expect(parseTask(Buffer.from(JSON.stringify({ ...ok, userMetadata: { site: 'S1' } })))).toEqual({ ...ok, userMetadata: { site: 'S1' } });
  });
  it.each([
    ['not json', '{'],
    ['no bucket', JSON.stringify({ inputUrl: ok.inputUrl, key: 'k' })],
    ['bad bucket', JSON.stringify({ ...ok, bucket: 'Upper_Case' })],
    ['no key', JSON.stringify({ inputUrl: ok.inputUrl, bucket: 'b-1' })],
    ['no inputUrl', JSON.stringify({ bucket: 'b-1', key: 'k' })],
    ['metadata not strings', JSON.stringify({ ...ok, userMetadata: { n: 1 } })],
    ['reserved metadata', JSON.stringify({ ...ok, userMetadata: { '$aws-gg-x': 'y' } })],
    ['an array', '[]'],
  ])('refuses %s', (_what, text) => {
    expect(() => parseTask(Buffer.from(text))).toThrow();
  });
  it('takes file:/abs and file:///abs, refuses other schemes and relative paths', () => {
    expect(inputPath('file:/var/data/a.csv')).toBe('/var/data/a.csv');
    expect(inputPath('file:///var/data/a%20b.csv')).toBe('/var/data/a b.csv');
    expect(() => inputPath('http://x/a')).toThrow();
    expect(() => inputPath('relative/a.csv')).toThrow();
    expect(() => inputPath('file://otherhost/a')).toThrow();
  });
  it('splits into 5 MiB parts, larger only beyond 10,000 parts', () => {
    expect(partSize(6 * MIB)).toBe(5 * MIB);
    expect(partSize(100_000 * MIB)).toBe(10 * MIB);
  });
  it('statusConfig and the multipart threshold are checked (ConfigError naming the key)', () => {
    expect(s3TaskOptions({ identifier: 'x' })).toEqual({ sizeThresholdForMultipartUploadBytes: 5 * MIB, statusLevel: 2 });
    expect(s3TaskOptions({ identifier: 'x', statusConfig: { statusStreamName: 's', statusLevel: 4 } })).toMatchObject({ statusStreamName: 's', statusLevel: 4 });
    const key = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return e instanceof ConfigError ? e.key : 'not a ConfigError';
      }
      return undefined;
    };
    expect(key(() => s3TaskOptions({ identifier: 'x', sizeThresholdForMultipartUploadBytes: 1024 }))).toBe('sizeThresholdForMultipartUploadBytes');
    expect(key(() => s3TaskOptions({ identifier: 'x', statusConfig: { statusLevel: 5 } }))).toBe('statusConfig/statusLevel');
  });
});

describe('IoT SiteWise entries', () => {
  const now = Date.UTC(2026, 0, 5, 12);
  const s = Math.floor(now / 1000);
  const value = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ value: { doubleValue: 1.5 }, timestamp: { timeInSeconds: s - 60, offsetInNanos: 0 }, quality: 'GOOD', ...over });
  const entry = (over: Record<string, unknown> = {}): Buffer => Buffer.from(JSON.stringify({ entryId: 'e-1', propertyAlias: '/site/inv1/power', propertyValues: [value()], ...over }));
  const reason = (b: Buffer): string => {
    try {
      checkEntry(b, now);
      return 'valid';
    } catch (e) {
      return e instanceof EntryInvalid ? e.reason : 'other';
    }
  };

  it('accepts an alias entry and an asset/property entry', () => {
    expect(reason(entry())).toBe('valid');
    expect(reason(entry({ propertyAlias: undefined, assetId: 'a1b2c3d4-0000-4000-8000-000000000001', propertyId: 'externalId:inv-1_power' }))).toBe('valid');
  });
  it.each([
    ['entryId too long', { entryId: 'x'.repeat(65) }, 'entry_id'],
    ['entryId with a space', { entryId: 'a b' }, 'entry_id'],
    ['no property', { propertyAlias: undefined }, 'property'],
    ['assetId not a UUID', { propertyAlias: undefined, assetId: 'nope', propertyId: 'externalId:p1' }, 'asset_id'],
    ['11 values', { propertyValues: Array.from({ length: 11 }, () => value()) }, 'property_values'],
    ['no values', { propertyValues: [] }, 'property_values'],
    ['two variants', { propertyValues: [value({ value: { doubleValue: 1, integerValue: 2 } })] }, 'value'],
    ['integer beyond 32 bits', { propertyValues: [value({ value: { integerValue: 2 ** 31 } })] }, 'value'],
    ['empty string', { propertyValues: [value({ value: { stringValue: '' } })] }, 'value'],
    ['bad quality', { propertyValues: [value({ quality: 'good' })] }, 'quality'],
    ['nanos out of range', { propertyValues: [value({ timestamp: { timeInSeconds: s, offsetInNanos: 1e9 } })] }, 'timestamp'],
    ['8 days old', { propertyValues: [value({ timestamp: { timeInSeconds: s - 8 * 86400, offsetInNanos: 0 } })] }, 'timestamp_out_of_range'],
    ['11 minutes ahead', { propertyValues: [value({ timestamp: { timeInSeconds: s + 11 * 60, offsetInNanos: 0 } })] }, 'timestamp_out_of_range'],
  ])('refuses %s', (_what, over, want) => {
    expect(reason(entry(over))).toBe(want);
  });
  it('refuses what is not JSON', () => {
    expect(reason(Buffer.from('nope'))).toBe('not_json');
  });
  it('leaves out only the values outside the time window', () => {
    const r = checkEntry(entry({ propertyValues: [value(), value({ timestamp: { timeInSeconds: s - 8 * 86400, offsetInNanos: 0 } }), value({ value: { booleanValue: true } })] }), now);
    expect(r.outOfRange).toBe(1);
    expect((r.entry['propertyValues'] as unknown[]).length).toBe(2);
  });
});

describe('Kinesis and HTTP helpers', () => {
  it('splits records at 500 a request and at 5 MiB', () => {
    const recs = (n: number, bytes: number): Array<{ bytes: number }> => Array.from({ length: n }, () => ({ bytes }));
    expect(chunkRecords(recs(1200, 10)).map((c) => c.length)).toEqual([500, 500, 200]);
    expect(chunkRecords(recs(12, MIB)).map((c) => c.length)).toEqual([5, 5, 2]);
  });
  it('a JSON batch is a list of Message objects with base64 payloads', () => {
    const batch: StoredMessage[] = [{ streamName: 's', sequenceNumber: 3, ingestTime: 1000, payload: Buffer.from([0, 255, 1]) }];
    expect(JSON.parse(jsonBatchBody(batch))).toEqual([{ streamName: 's', sequenceNumber: 3, ingestTime: 1000, payload: 'AP8B' }]);
    expect(ExportFormat.JSON_BATCHED).toBe(1);
  });
  it('tells a refusal from what may pass', () => {
    const err = (name: string, status?: number): unknown => Object.assign(new Error(name), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}) });
    expect(isRefusal(err('NoSuchBucket', 404))).toBe(true);
    expect(isRefusal(err('AccessDenied', 403))).toBe(true);
    expect(isRefusal(err('ExpiredToken', 400))).toBe(false);
    expect(isRefusal(err('SlowDown', 503))).toBe(false);
    expect(isRefusal(err('TooManyRequests', 429))).toBe(false);
    expect(isRefusal(err('ECONNREFUSED'))).toBe(false);
  });
  it('forgets what a resolved batch delivered', () => {
    const m = (n: number): StoredMessage => ({ streamName: 's', sequenceNumber: n, ingestTime: 0, payload: Buffer.alloc(1) });
    const d = new DeliveredSet();
    d.add(m(1));
    d.add(m(2));
    d.add(m(7));
    d.settle([m(1), m(2), m(3)]);
    expect(d.size).toBe(1);
    expect(d.has(m(7))).toBe(true);
  });
});

describe('factories', () => {
  const env: ExportEnvironment = { region: 'us-east-1', endpoints: {}, appendToStream: () => Promise.resolve(0), log: { info: () => undefined, warn: () => undefined, error: () => undefined } };
  it('has kinesis, IotSitewise, s3TaskExecutor and http, and no iotAnalytics', () => {
    expect(Object.keys(exporterFactories).sort()).toEqual(['IotSitewise', 'http', 'kinesis', 's3TaskExecutor']);
  });
  it('refuses a config it cannot use with a ConfigError naming the key', () => {
    expect(() => exporterFactories.kinesis!({ identifier: 'k' }, 's', env)).toThrow(expect.objectContaining({ key: 'kinesisStreamName' }));
    expect(() => exporterFactories.http!({ identifier: 'h', uri: 'ftp://x' }, 's', env)).toThrow(expect.objectContaining({ key: 'uri' }));
    expect(() => exporterFactories.http!({ identifier: 'h', uri: 'http://127.0.0.1:1/', exportFormat: 2 }, 's', env)).toThrow(expect.objectContaining({ key: 'exportFormat' }));
  });
});

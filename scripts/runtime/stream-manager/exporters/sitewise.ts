/**
 * `IotSitewise`: a RECORDER, not a peer. Every message is a JSON PutAssetPropertyValueEntry
 * `{entryId, propertyAlias | assetId + propertyId, propertyValues: [{value: {stringValue |
 * integerValue | doubleValue | booleanValue}, timestamp: {timeInSeconds, offsetInNanos}, quality}]}`.
 * There is no AWS IoT SiteWise to talk to on loopback, so nothing calls BatchPutAssetPropertyValue:
 * each entry is checked the way that API checks it (AWS IoT SiteWise API Reference,
 * BatchPutAssetPropertyValue, PutAssetPropertyValueEntry, AssetPropertyValue, Variant, TimeInNanos)
 * and what it would have stored is appended as one JSON line to `endpoints.sitewiseFile`:
 *
 *   {"exportIdentifier","streamName","sequenceNumber","recordedAtMs","entry":{...}}
 *
 * Checks: entryId 1-64 of [a-zA-Z0-9_-], unique within one request of at most 10 entries (a larger
 * batch is split into requests of 10); a propertyAlias (1-2048 characters, no control characters)
 * or an assetId and a propertyId (UUIDs or `externalId:...`); 1-10 propertyValues, each with exactly
 * one of the four values (a string of 1-1024 characters, a 32-bit integer, a finite double, a
 * boolean), a timestamp (timeInSeconds 1-31556889864403199, offsetInNanos 0-999999999) and, if given,
 * a quality GOOD, BAD or UNCERTAIN. An entry that fails is not recorded; a value older than 7 days or
 * more than 10 minutes ahead is left out of its entry (the API answers TimestampOutOfRangeException
 * for those values only). Both are logged (rate-limited) and counted by reason; the stream moves on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errorMessage } from '../../../../components/lib/errors';
import type { ExportConfig, ExportEnvironment, Exporter, StoredMessage } from '../types';
import { isObject, limitedLog, Rejections } from './common';

export const SITEWISE_MAX_ENTRIES = 10;
export const SITEWISE_MAX_VALUES = 10;
const PAST_S = 7 * 86_400;
const FUTURE_S = 10 * 60;
const ENTRY_ID = /^[a-zA-Z0-9_-]{1,64}$/;
const ID = /^(?!00000000-0000-0000-0000-000000000000)[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$|^externalId:[a-zA-Z0-9][a-zA-Z0-9_\-:]*[a-zA-Z0-9]+$/;
// eslint-disable-next-line no-control-regex
const ALIAS = /^[^\u0000-\u001F\u007F]{1,2048}$/;
const QUALITIES = new Set(['GOOD', 'BAD', 'UNCERTAIN']);
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

export class EntryInvalid extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CheckedEntry {
  entry: Record<string, unknown>;
  /** Values left out for a timestamp outside the window. */
  outOfRange: number;
}

function checkValue(v: unknown, i: number): void {
  if (!isObject(v)) throw new EntryInvalid('value', `propertyValues[${i}] is not an object`);
  const variant = v['value'];
  if (!isObject(variant)) throw new EntryInvalid('value', `propertyValues[${i}].value is missing`);
  const present = ['stringValue', 'integerValue', 'doubleValue', 'booleanValue'].filter((k) => variant[k] !== undefined && variant[k] !== null);
  if (present.length !== 1) throw new EntryInvalid('value', `propertyValues[${i}].value must have exactly one of stringValue, integerValue, doubleValue, booleanValue (has ${present.length})`);
  const k = present[0]!;
  const x = variant[k];
  const ok =
    k === 'stringValue' ? typeof x === 'string' && x.length >= 1 && x.length <= 1024
    : k === 'integerValue' ? typeof x === 'number' && Number.isInteger(x) && x >= INT32_MIN && x <= INT32_MAX
    : k === 'doubleValue' ? typeof x === 'number' && Number.isFinite(x)
    : typeof x === 'boolean';
  if (!ok) throw new EntryInvalid('value', `propertyValues[${i}].value.${k} is not a valid ${k} (${JSON.stringify(x)?.slice(0, 40)})`);
  const ts = v['timestamp'];
  if (!isObject(ts)) throw new EntryInvalid('timestamp', `propertyValues[${i}].timestamp is missing`);
  const s = ts['timeInSeconds'];
  const ns = ts['offsetInNanos'] ?? 0;
  if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s > 31556889864403199) throw new EntryInvalid('timestamp', `propertyValues[${i}].timestamp.timeInSeconds must be an integer from 1, got ${JSON.stringify(s)}`);
  if (typeof ns !== 'number' || !Number.isInteger(ns) || ns < 0 || ns > 999_999_999) throw new EntryInvalid('timestamp', `propertyValues[${i}].timestamp.offsetInNanos must be 0-999999999, got ${JSON.stringify(ns)}`);
  const q = v['quality'];
  if (q !== undefined && q !== null && (typeof q !== 'string' || !QUALITIES.has(q))) throw new EntryInvalid('quality', `propertyValues[${i}].quality must be GOOD, BAD or UNCERTAIN, got ${JSON.stringify(q)}`);
}

/** Checks one entry as BatchPutAssetPropertyValue would; values outside the time window are left out. */
export function checkEntry(payload: Buffer, nowMs: number): CheckedEntry {
  let e: unknown;
  try {
    e = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new EntryInvalid('not_json', `not a JSON PutAssetPropertyValueEntry: ${errorMessage(err)}`);
  }
  if (!isObject(e)) throw new EntryInvalid('not_object', 'not a JSON object (PutAssetPropertyValueEntry)');
  const entryId = e['entryId'];
  if (typeof entryId !== 'string' || !ENTRY_ID.test(entryId)) throw new EntryInvalid('entry_id', `entryId must be 1-64 of letters, digits, _ and -, got ${JSON.stringify(entryId)?.slice(0, 80)}`);
  const alias = e['propertyAlias'];
  const assetId = e['assetId'];
  const propertyId = e['propertyId'];
  if (alias !== undefined && alias !== null) {
    if (typeof alias !== 'string' || !ALIAS.test(alias)) throw new EntryInvalid('property_alias', `entry ${entryId}: propertyAlias must be 1-2048 characters without control characters`);
  } else if (assetId === undefined || propertyId === undefined || assetId === null || propertyId === null) {
    throw new EntryInvalid('property', `entry ${entryId}: needs a propertyAlias, or an assetId and a propertyId`);
  }
  if (assetId !== undefined && assetId !== null && (typeof assetId !== 'string' || !ID.test(assetId))) throw new EntryInvalid('asset_id', `entry ${entryId}: assetId must be a UUID or externalId:..., got ${JSON.stringify(assetId)}`);
  if (propertyId !== undefined && propertyId !== null && (typeof propertyId !== 'string' || !ID.test(propertyId))) throw new EntryInvalid('property_id', `entry ${entryId}: propertyId must be a UUID or externalId:..., got ${JSON.stringify(propertyId)}`);
  const values = e['propertyValues'];
  if (!Array.isArray(values) || values.length < 1 || values.length > SITEWISE_MAX_VALUES) {
    throw new EntryInvalid('property_values', `entry ${entryId}: propertyValues must hold 1-${SITEWISE_MAX_VALUES} values, has ${Array.isArray(values) ? values.length : 'none'}`);
  }
  values.forEach(checkValue);
  const nowS = nowMs / 1000;
  const kept = values.filter((v: Record<string, Record<string, number>>) => {
    const t = v['timestamp']!['timeInSeconds']! + (v['timestamp']!['offsetInNanos'] ?? 0) / 1e9;
    return t >= nowS - PAST_S && t <= nowS + FUTURE_S;
  });
  if (kept.length === 0) throw new EntryInvalid('timestamp_out_of_range', `entry ${entryId}: every value is older than 7 days or more than 10 minutes ahead`);
  return { entry: kept.length === values.length ? e : { ...e, propertyValues: kept }, outOfRange: values.length - kept.length };
}

export interface SiteWiseRecorder extends Exporter {
  readonly file: string;
  readonly rejections: Rejections;
  readonly counts: { entries: number; values: number; requests: number };
}

export function defaultSitewiseFile(): string {
  return path.join(os.tmpdir(), 'dcmms-stream-manager', 'sitewise-entries.jsonl');
}

export function createSiteWiseRecorder(config: ExportConfig, streamName: string, env: ExportEnvironment, now: () => number = Date.now): SiteWiseRecorder {
  const file = env.endpoints.sitewiseFile ?? defaultSitewiseFile();
  const rejections = new Rejections();
  const counts = { entries: 0, values: 0, requests: 0 };
  const limited = limitedLog();
  let dirMade = false;

  const reject = (m: StoredMessage, reason: string, message: string): void => {
    rejections.count(reason);
    limited(`invalid:${reason}`, (suppressed) =>
      env.log.warn('IoT SiteWise entry refused; not recorded', { export: config.identifier, stream: streamName, sequenceNumber: m.sequenceNumber, reason, err: message, suppressed }),
    );
  };

  return {
    kind: 'IotSitewise',
    file,
    rejections,
    counts,
    async send(batch) {
      const lines: string[] = [];
      let values = 0;
      const t = now();
      for (let start = 0; start < batch.length; start += SITEWISE_MAX_ENTRIES) {
        counts.requests++;
        const ids = new Set<string>();
        for (const m of batch.slice(start, start + SITEWISE_MAX_ENTRIES)) {
          let checked: CheckedEntry;
          try {
            checked = checkEntry(m.payload, t);
          } catch (e) {
            if (e instanceof EntryInvalid) reject(m, e.reason, e.message);
            else reject(m, 'invalid', errorMessage(e));
            continue;
          }
          const id = checked.entry['entryId'] as string;
          if (ids.has(id)) {
            reject(m, 'duplicate_entry_id', `entryId ${id} appears twice in one request`);
            continue;
          }
          ids.add(id);
          for (let i = 0; i < checked.outOfRange; i++) rejections.count('timestamp_out_of_range');
          if (checked.outOfRange > 0) {
            limited('invalid:timestamp_out_of_range', (suppressed) =>
              env.log.warn('IoT SiteWise values outside 7 days past .. 10 minutes ahead left out', { export: config.identifier, stream: streamName, sequenceNumber: m.sequenceNumber, values: checked.outOfRange, suppressed }),
            );
          }
          values += (checked.entry['propertyValues'] as unknown[]).length;
          lines.push(JSON.stringify({ exportIdentifier: config.identifier, streamName, sequenceNumber: m.sequenceNumber, recordedAtMs: t, entry: checked.entry }));
        }
      }
      if (lines.length === 0) return;
      try {
        if (!dirMade) {
          await fs.promises.mkdir(path.dirname(file), { recursive: true });
          dirMade = true;
        }
        await fs.promises.appendFile(file, `${lines.join('\n')}\n`);
      } catch (e) {
        throw new Error(`IoT SiteWise recorder: cannot append to ${file}: ${errorMessage(e)}`, { cause: e });
      }
      counts.entries += lines.length;
      counts.values += values;
    },
    close: () => Promise.resolve(),
  };
}

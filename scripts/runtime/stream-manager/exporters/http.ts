/**
 * `http` (HTTPConfig; the Stream Manager SDK marks it "not supported", for tests): POST to `uri`.
 *
 *   exportFormat 0 RAW_NOT_BATCHED  one POST per message, its bytes as the body
 *                                   (application/octet-stream), even if batchSize is set.
 *   exportFormat 1 JSON_BATCHED     one POST per batch: a JSON array of Message objects
 *                                   `{streamName, sequenceNumber, ingestTime, payload}` (application/json).
 *
 * Both as the SDK's ExportFormat documents them ("Each batch of messages will be sent as a JSON list
 * of Message objects as the body"). The SDK does not say how the payload bytes are written in JSON;
 * here they are base64, as a JSON mapper writes a byte array (and the only way arbitrary bytes fit
 * in JSON).
 *
 * Any answer but 2xx, or none within 30 s, rejects the batch with the status and the start of the
 * body; the server retries it. A raw batch whose first messages got their 2xx sends only the rest
 * again.
 */
import type { ExportConfig, ExportEnvironment, Exporter, StoredMessage } from '../types';
import { ConfigError, errorMessage } from '../../../../components/lib/errors';
import { DeliveredSet, intField } from './common';

export const ExportFormat = { RAW_NOT_BATCHED: 0, JSON_BATCHED: 1 } as const;
const REQUEST_TIMEOUT_MS = 30_000;

export function httpUri(config: ExportConfig): URL {
  const v = config['uri'];
  let url: URL | undefined;
  try {
    url = typeof v === 'string' ? new URL(v) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new ConfigError('uri', `export '${config.identifier}': uri must be an http:// or https:// URL, got ${JSON.stringify(v)}`);
  }
  return url;
}

/** The JSON_BATCHED body: the batch as Message objects, payloads in base64. */
export function jsonBatchBody(batch: readonly StoredMessage[]): string {
  return JSON.stringify(batch.map((m) => ({ streamName: m.streamName, sequenceNumber: m.sequenceNumber, ingestTime: m.ingestTime, payload: m.payload.toString('base64') })));
}

export interface HttpExporter extends Exporter {
  readonly counts: { requests: number; messages: number };
}

export function createHttpExporter(config: ExportConfig, streamName: string, _env: ExportEnvironment): HttpExporter {
  const uri = httpUri(config);
  const format = intField(config, 'exportFormat', 0, 1, ExportFormat.RAW_NOT_BATCHED);
  const delivered = new DeliveredSet();
  const counts = { requests: 0, messages: 0 };
  const inFlight = new Set<AbortController>();

  const post = async (body: string | Buffer, contentType: string, what: string): Promise<void> => {
    const ac = new AbortController();
    inFlight.add(ac);
    const timer = setTimeout(() => ac.abort(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
    counts.requests++;
    try {
      let res: Response;
      try {
        res = await fetch(uri, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { 'content-type': contentType }, signal: ac.signal });
      } catch (e) {
        const cause = e instanceof Error && e.cause !== undefined ? `: ${errorMessage(e.cause)}` : '';
        throw new Error(`POST ${uri.origin}${uri.pathname} (${what}): ${errorMessage(e)}${cause}`);
      }
      const text = await res.text().catch(() => '');
      if (res.status < 200 || res.status > 299) {
        throw new Error(`POST ${uri.origin}${uri.pathname} (${what}): HTTP ${res.status} ${text.slice(0, 200)}`.trimEnd());
      }
    } finally {
      clearTimeout(timer);
      inFlight.delete(ac);
    }
  };

  return {
    kind: 'http',
    counts,
    async send(batch) {
      if (format === ExportFormat.JSON_BATCHED) {
        await post(jsonBatchBody(batch), 'application/json', `${batch.length} messages of ${streamName}`);
        counts.messages += batch.length;
        return;
      }
      for (const m of batch) {
        if (delivered.has(m)) continue;
        await post(m.payload, 'application/octet-stream', `message ${m.sequenceNumber} of ${streamName}`);
        delivered.add(m);
        counts.messages++;
      }
      delivered.settle(batch);
    },
    close() {
      for (const ac of inFlight) ac.abort(new Error('exporter closed'));
      return Promise.resolve();
    },
  };
}

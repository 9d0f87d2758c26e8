/**
 * Test helper: how many S3 export tasks each key has in the Uplink's S3 task streams, read with
 * AWS's Stream Manager client (one task per key means nothing was appended twice).
 */
import { systemClock } from '../../lib/clock';
import { silentLogger } from '../../lib/logger';
import { CLASSES } from '../classes';
import { sm, SmConnection } from '../exporters/stream-manager-client';

export async function s3TasksPerKey(port: number, authToken: string, streamPrefix = 'dcmms-'): Promise<Map<string, number>> {
  const conn = new SmConnection({ clock: systemClock, logger: silentLogger, resolvePort: () => Promise.resolve(port), authToken, requestTimeoutMs: 5000, backoffInitialMs: 100, backoffMaxMs: 500 });
  const out = new Map<string, number>();
  try {
    for (const cls of CLASSES) {
      for (let from = 0; ; ) {
        const msgs = await conn
          .call('ReadMessages', (c) => c.readMessages(`${streamPrefix}${cls}-s3`, new sm.ReadMessagesOptions().withDesiredStartSequenceNumber(from).withMinMessageCount(1).withMaxMessageCount(500).withReadTimeoutMillis(0)))
          .catch((e: unknown) => (e instanceof sm.NotEnoughMessagesException || e instanceof sm.ResourceNotFoundException ? [] : Promise.reject(e)));
        for (const m of msgs) {
          const key = (JSON.parse(m.payload.toString('utf8')) as { key: string }).key;
          out.set(key, (out.get(key) ?? 0) + 1);
          from = m.sequenceNumber + 1;
        }
        if (msgs.length < 500) break;
      }
    }
  } finally {
    conn.close();
  }
  return out;
}

/**
 * The LocalHmi benchmark's observer component (./hmi.ts):
 *
 *   node bench-hmi-worker.js --port P --site S
 *
 * Run by the local runtime from a recipe with the unmodified SDK client. It subscribes to the
 * site's processed telemetry (what LocalHmi turns into SSE `telemetry` events) and sends one line
 * per message, `{"a":assetId,"ts":sampleTime,"at":arrival}`, to the benchmark over loopback TCP:
 * the list every SSE client must have received. Exits 0 when the benchmark closes the connection.
 */
import { parseArgs } from 'node:util';
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { filters } from '../../components/lib/contract';
import { connectObserver } from './observer-link';

export type HmiObserved = { k: 'ready' } | { k: 'error'; error: string } | { k: 'tel'; a: string; ts: number; at: number };

async function main(): Promise<void> {
  const { values } = parseArgs({ strict: true, options: { port: { type: 'string' }, site: { type: 'string' } } });
  const site = values.site ?? 'demo-site';
  const { send, client } = await connectObserver<HmiObserved>(Number(values.port));
  const op = client.subscribeToTopic({ topic: filters.processedTelemetry(site).filter, receiveMode: greengrasscoreipc.model.ReceiveMode.RECEIVE_ALL_MESSAGES });
  op.on('message', (ev) => {
    const at = Date.now();
    const m: unknown = ev.jsonMessage?.message;
    if (typeof m !== 'object' || m === null) return;
    const { assetId, ts } = m as { assetId?: unknown; ts?: unknown };
    if (typeof assetId === 'string' && typeof ts === 'number') send({ k: 'tel', a: assetId, ts, at });
  });
  await op.activate();
  send({ k: 'ready' });
}

main().catch((err: unknown) => {
  process.stderr.write(`hmi bench observer failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

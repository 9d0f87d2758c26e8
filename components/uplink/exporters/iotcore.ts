/**
 * IoT Core exporter: IPC PublishToIoTCore, QoS 1 (docs/uplink.md "Delivery confirmation").
 *
 * The nucleus answers PublishToIoTCore once a message is in its spool, not when IoT Core has it
 * (aws/aws-iot-device-sdk-python-v2#354), and that spool is small (2.5 MB) and in memory by default
 * (greengrass-nucleus-component.md `mqtt.spooler`). So a "sent" is a delivery only while the
 * connection is online, and we check that first: a QoS 0 publish of the Uplink status is refused by
 * the nucleus while offline ("Device is offline. Dropping QoS 0 message.", keepQos0WhenOffline
 * false, the default), so a successful probe no older than `probeIntervalMs` gates the QoS 1 publish.
 * What the probe cannot see (an outage starting inside that window) is covered by S3, the book of
 * record, and by `seq`, which the cloud uses to drop a batch it got twice.
 *
 * Payload: the contract's UplinkBatch JSON, gzipped; IoT Core's message limit is 128 KB
 * (docs.aws.amazon.com/general/latest/gr/iot-core.html "Message size").
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Bus } from '../../lib/bus-types';
import type { Clock } from '../../lib/clock';
import { CONTRACT_VERSION, iotTopics, type UplinkStatus } from '../../lib/contract';
import { errorMessage } from '../../lib/errors';
import { iotTargetOf } from '../classes';
import { ExportError, PermanentExportError, type ExportBatch, type Exporter } from './types';

export const IOT_CORE_MAX_MESSAGE_BYTES = 128 * 1024;

export interface IotCoreExporterOptions {
  bus: Bus;
  clock: Clock;
  siteId: string;
  /** The outbox's id: with the batch's seq, the cloud's de-duplication key. */
  outboxId: string;
  probeIntervalMs: number;
  /** The status published as the probe. */
  status: () => UplinkStatus;
}

/** The MQTT payload for a batch: gzip of `UplinkBatch` JSON; items are the NDJSON lines, not re-parsed. */
export function iotPayload(siteId: string, outboxId: string, batch: ExportBatch): Buffer {
  const target = iotTargetOf(siteId, batch.cls);
  if (!target) throw new PermanentExportError('IOT_NO_TOPIC', `class ${batch.cls} has no IoT Core topic`);
  const lines = gunzipSync(batch.body).toString('utf8').split('\n').filter((l) => l.length > 0);
  const head = { schemaVersion: CONTRACT_VERSION, siteId, kind: target.kind, ...(target.interval ? { interval: target.interval } : {}), seq: batch.seq, outboxId, createdAt: batch.createdAt };
  const json = `${JSON.stringify(head).slice(0, -1)},"items":[${lines.join(',')}]}`;
  return gzipSync(json);
}

export function createIotCoreExporter(o: IotCoreExporterOptions): Exporter & { readonly lastProbeOkAt: number } {
  let lastProbeOkAt = -Infinity;
  const probe = async (): Promise<void> => {
    let outcome: string;
    try {
      outcome = await o.bus.publishToIoTCore(iotTopics.uplinkStatus(o.siteId), o.status(), 0);
    } catch (err) {
      lastProbeOkAt = -Infinity;
      throw new ExportError('IOT_OFFLINE', `IoT Core probe refused: ${errorMessage(err)}`, { cause: err });
    }
    if (outcome !== 'sent') throw new ExportError('IPC_DISCONNECTED', 'IoT Core probe not sent: IPC is disconnected');
    lastProbeOkAt = o.clock.now();
  };
  return {
    name: 'iotcore',
    get lastProbeOkAt() {
      return lastProbeOkAt;
    },
    probe,
    async send(batch) {
      const target = iotTargetOf(o.siteId, batch.cls);
      if (!target) throw new PermanentExportError('IOT_NO_TOPIC', `class ${batch.cls} has no IoT Core topic`);
      const payload = iotPayload(o.siteId, o.outboxId, batch);
      if (payload.length > IOT_CORE_MAX_MESSAGE_BYTES) {
        throw new PermanentExportError('IOT_TOO_LARGE', `batch ${batch.seq} is ${payload.length} bytes; IoT Core allows ${IOT_CORE_MAX_MESSAGE_BYTES}`);
      }
      if (o.clock.now() - lastProbeOkAt > o.probeIntervalMs) await probe();
      let outcome: string;
      try {
        outcome = await o.bus.publishToIoTCore(target.topic, payload, 1, { contentType: 'application/gzip' });
      } catch (err) {
        lastProbeOkAt = -Infinity;
        throw new ExportError('IOT_PUBLISH_FAILED', `PublishToIoTCore ${target.topic}: ${errorMessage(err)}`, { cause: err });
      }
      // Queued in the bus while IPC reconnects: it will go, but unconfirmed; the outbox keeps it.
      if (outcome !== 'sent') throw new ExportError('IPC_DISCONNECTED', `PublishToIoTCore ${target.topic} queued: IPC is disconnected`);
    },
    close: () => Promise.resolve(),
  };
}

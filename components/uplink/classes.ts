/**
 * Priority classes of the Uplink (docs/uplink.md "What it subscribes to"): alarms first, then
 * events, 1-minute, 15-minute and daily rollups, health. The index is the priority (0 = most
 * urgent): the outbox sends in (class, age) order and the overflow policy evicts in the reverse
 * order.
 */
import type { AggregateInterval, IotTopic, LocalFamily, UplinkBatch, UplinkKind } from '../lib/contract';
import { iotTopics } from '../lib/contract';

export const CLASSES = ['alarms', 'events', '1m', '15m', '1d', 'health'] as const;
export type RecordClass = (typeof CLASSES)[number];

export const classIndex = (c: RecordClass): number => CLASSES.indexOf(c);
export const classAt = (i: number): RecordClass => {
  const c = CLASSES[i];
  if (c === undefined) throw new RangeError(`no record class ${i}`);
  return c;
};

/** Which class a message of a subscribed family belongs to. */
export function classOf(family: LocalFamily, interval?: AggregateInterval): RecordClass | undefined {
  switch (family) {
    case 'alarms':
      return 'alarms';
    case 'controlResult':
    case 'controlDecision':
    case 'deviceStatus':
    // Analytics results (PR, soiling, tracker deviation...): a few per asset a minute, with the events.
    case 'analytics':
    // MLInference's site forecast (one every 15 minutes); fault and anomaly scores stay local (their alarms travel).
    case 'mlResult':
      return 'events';
    case 'aggregates':
      return interval;
    case 'dailySummary':
      // The site's day summary travels with the daily rollups (specification §5.1 level 4, daily).
      return '1d';
    case 'healthSummary':
      return 'health';
    default:
      return undefined;
  }
}

/** IoT Core kind and topic of a class (health has none: Health publishes its summary itself). */
export function iotTargetOf(siteId: string, c: RecordClass): { kind: UplinkKind; interval?: AggregateInterval; topic: IotTopic<UplinkBatch> } | undefined {
  switch (c) {
    case 'alarms':
      return { kind: 'alarms', topic: iotTopics.alarms(siteId) };
    case 'events':
      return { kind: 'events', topic: iotTopics.events(siteId) };
    case '1m':
    case '15m':
    case '1d':
      return { kind: 'telemetry', interval: c, topic: iotTopics.telemetry(siteId, c) };
    case 'health':
      return undefined;
  }
}

/**
 * What crosses the wire to IoT Core: the message shape of PublishToIoTCore / IoTCoreMessage, its
 * mapping to MQTT packets (MQTT 5 properties only when the connection speaks MQTT 5), the IoT Core topic
 * rules applied before anything leaves the device (nucleus `mqttclient/IotCoreTopicValidator.java`,
 * limits from docs `iot-core.html#limits_iot`), and plain MQTT filter matching for routing what the
 * cloud sends back.
 */
import type { IClientPublishOptions, IPublishPacket } from 'mqtt';

export interface IotMessage {
  topicName: string;
  qos: 0 | 1;
  payload: Buffer;
  retain?: boolean;
  userProperties?: { key: string; value: string }[];
  messageExpiryIntervalSeconds?: number;
  correlationData?: Buffer;
  responseTopic?: string;
  payloadFormat?: '0' | '1';
  contentType?: string;
}

const MAX_SLASHES = 7;
export const MAX_TOPIC_LENGTH = 256;
const MAX_UNKNOWN_RESERVED_LENGTH = 512;
const DIRECT_INGEST = /^\$aws\/rules\/\S+?\//;
const SHARED_SUBSCRIPTION = /^\$share\/\S+?\//;

function effectiveTopicError(topic: string): string | undefined {
  let slashes = 0;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47) slashes++;
  if (slashes > MAX_SLASHES) return `The request topic must have no more than ${MAX_SLASHES} forward slashes (/)`;
  if (Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_LENGTH) {
    return `The topic size must be no larger than ${MAX_TOPIC_LENGTH} bytes of UTF-8 encoded characters`;
  }
  return undefined;
}

/** Why IoT Core would refuse this topic (publish) or filter (subscribe), or undefined if it is fine. */
export function iotTopicError(topic: string, op: 'publish' | 'subscribe', mqtt5: boolean): string | undefined {
  if (typeof topic !== 'string' || topic.length === 0) return 'Topic must not be empty';
  if (op === 'publish' && (topic.includes('#') || topic.includes('+'))) {
    return "Publish topics must not contain wildcard characters of '#' or '+'";
  }
  if (op === 'subscribe') {
    const filterError = mqttFilterError(topic);
    if (filterError) return filterError;
  }
  if (!topic.startsWith('$')) return effectiveTopicError(topic);
  if (mqtt5 && op === 'subscribe' && SHARED_SUBSCRIPTION.test(topic)) {
    const rest = topic.replace(SHARED_SUBSCRIPTION, '');
    return rest.length === 0 ? 'Effective shared subscription topic is empty' : effectiveTopicError(rest);
  }
  if (DIRECT_INGEST.test(topic)) {
    const rest = topic.replace(DIRECT_INGEST, '');
    return rest.length === 0 ? 'Effective direct ingest topic is empty' : effectiveTopicError(rest);
  }
  if (mqtt5) {
    return topic.length > MAX_UNKNOWN_RESERVED_LENGTH ? `Reserved topic is longer than ${MAX_UNKNOWN_RESERVED_LENGTH} bytes` : undefined;
  }
  return effectiveTopicError(topic);
}

/** MQTT 3.1.1 §4.7: '#' only as the whole last level, '+' only as a whole level. */
export function mqttFilterError(filter: string): string | undefined {
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return `'#' must be the whole last level of a filter: ${filter}`;
    if (l.includes('+') && l !== '+') return `'+' must be a whole level of a filter: ${filter}`;
  }
  return undefined;
}

/**
 * Standard MQTT matching (unlike local pub/sub, 'a/#' matches 'a'); wildcards at the first level do not
 * match '$' topics (MQTT 3.1.1 §4.7.2); a `$share/<group>/` prefix is ignored.
 */
export function mqttTopicMatches(filter: string, topic: string): boolean {
  const f = (SHARED_SUBSCRIPTION.test(filter) ? filter.replace(SHARED_SUBSCRIPTION, '') : filter).split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '#' || f[0] === '+')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export function toPublishOptions(msg: IotMessage, protocolVersion: 4 | 5): IClientPublishOptions {
  const options: IClientPublishOptions = { qos: msg.qos, retain: msg.retain === true };
  if (protocolVersion !== 5) return options; // MQTT 3.1.1 has no properties to carry them
  const p: NonNullable<IClientPublishOptions['properties']> = {};
  if (msg.userProperties && msg.userProperties.length > 0) {
    const up: Record<string, string | string[]> = {};
    for (const { key, value } of msg.userProperties) {
      const prev = up[key];
      up[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
    p.userProperties = up;
  }
  if (msg.messageExpiryIntervalSeconds !== undefined) p.messageExpiryInterval = msg.messageExpiryIntervalSeconds;
  if (msg.correlationData !== undefined) p.correlationData = msg.correlationData;
  if (msg.responseTopic !== undefined) p.responseTopic = msg.responseTopic;
  if (msg.payloadFormat !== undefined) p.payloadFormatIndicator = msg.payloadFormat === '1';
  if (msg.contentType !== undefined) p.contentType = msg.contentType;
  if (Object.keys(p).length > 0) options.properties = p;
  return options;
}

export function fromPacket(topic: string, payload: Buffer, packet: IPublishPacket): IotMessage {
  const msg: IotMessage = { topicName: topic, qos: packet.qos === 0 ? 0 : 1, payload: Buffer.from(payload) };
  if (packet.retain) msg.retain = true;
  const p = packet.properties;
  if (!p) return msg;
  if (p.userProperties) {
    msg.userProperties = [];
    for (const [key, v] of Object.entries(p.userProperties)) {
      for (const value of Array.isArray(v) ? v : [v]) msg.userProperties.push({ key, value: String(value) });
    }
  }
  if (p.messageExpiryInterval !== undefined) msg.messageExpiryIntervalSeconds = p.messageExpiryInterval;
  if (p.correlationData !== undefined) msg.correlationData = Buffer.from(p.correlationData);
  if (p.responseTopic !== undefined) msg.responseTopic = p.responseTopic;
  if (p.payloadFormatIndicator !== undefined) msg.payloadFormat = p.payloadFormatIndicator ? '1' : '0';
  if (p.contentType !== undefined) msg.contentType = p.contentType;
  return msg;
}

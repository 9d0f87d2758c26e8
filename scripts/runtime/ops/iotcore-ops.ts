/**
 * PublishToIoTCore and SubscribeToIoTCore (builtin/services/mqttproxy/MqttProxyIPCAgent.java;
 * Greengrass Developer Guide, "Publish/subscribe AWS IoT Core MQTT messages", and its mqttproxy
 * authorization policies).
 */
import type { OperationDef } from '../ipc/types';
import { IpcError } from '../ipc/errors';
import { IotCoreError, IotMessage } from '../iotcore';
import { validateFilter, validatePublishTopic, TopicError } from '../pubsub';
import type { NucleusContext } from './context';
import { OP, invalid, isPlainObject, requireString, serviceError } from './common';

const SERVICE = 'aws.greengrass.ipc.mqttproxy';
const PUBLISH = OP('PublishToIoTCore');
const SUBSCRIBE = OP('SubscribeToIoTCore');
const EVENT = OP('IoTCoreMessage');

/** The mqttproxy agent answers a denial with this short text, unlike pubsub (MqttProxyIPCAgent.java). */
const notAuthorized = (): IpcError => new IpcError('UnauthorizedError', 'Not Authorized');

function parseQos(v: unknown): 0 | 1 {
  // QOS is an enum serialised as the strings "0"/"1" (docs/local-runtime.md "JSON bodies"); the
  // nucleus requires it.
  if (v === '0' || v === 0) return 0;
  if (v === '1' || v === 1) return 1;
  throw invalid('qos is required: "0" (AT_MOST_ONCE) or "1" (AT_LEAST_ONCE)');
}

function base64(v: unknown, what: string): Buffer {
  if (typeof v !== 'string') throw invalid(`${what} must be base64 bytes`);
  return Buffer.from(v, 'base64');
}

function parsePublish(req: Record<string, unknown>): IotMessage {
  const topicName = requireString(req, 'topicName');
  try {
    validatePublishTopic(topicName);
  } catch (e) {
    if (e instanceof TopicError) throw invalid(e.message);
    throw e;
  }
  if (req.payload === undefined) throw invalid('payload is required');
  const msg: IotMessage = { topicName, qos: parseQos(req.qos), payload: base64(req.payload, 'payload') };
  if (typeof req.retain === 'boolean') msg.retain = req.retain;
  if (Array.isArray(req.userProperties)) {
    msg.userProperties = req.userProperties
      .filter(isPlainObject)
      .map((p) => ({ key: String(p.key ?? ''), value: String(p.value ?? '') }));
  }
  if (typeof req.messageExpiryIntervalSeconds === 'number') msg.messageExpiryIntervalSeconds = req.messageExpiryIntervalSeconds;
  if (req.correlationData !== undefined) msg.correlationData = base64(req.correlationData, 'correlationData');
  if (typeof req.responseTopic === 'string') msg.responseTopic = req.responseTopic;
  if (req.payloadFormat === '0' || req.payloadFormat === '1') msg.payloadFormat = req.payloadFormat;
  if (typeof req.contentType === 'string') msg.contentType = req.contentType;
  return msg;
}

function toEvent(msg: IotMessage): Record<string, unknown> {
  const message: Record<string, unknown> = { topicName: msg.topicName, payload: msg.payload.toString('base64') };
  if (msg.retain !== undefined) message.retain = msg.retain;
  if (msg.userProperties) message.userProperties = msg.userProperties;
  if (msg.messageExpiryIntervalSeconds !== undefined) message.messageExpiryIntervalSeconds = msg.messageExpiryIntervalSeconds;
  if (msg.correlationData) message.correlationData = msg.correlationData.toString('base64');
  if (msg.responseTopic) message.responseTopic = msg.responseTopic;
  if (msg.payloadFormat) message.payloadFormat = msg.payloadFormat;
  if (msg.contentType) message.contentType = msg.contentType;
  return { message };
}

export function iotCoreOperations(ctx: NucleusContext): Record<string, OperationDef> {
  return {
    [PUBLISH]: {
      kind: 'unary',
      handler: async (caller, req) => {
        const topicName = requireString(req, 'topicName');
        if (!ctx.authorizer.isAuthorized(caller.componentName, SERVICE, PUBLISH, topicName)) throw notAuthorized();
        const msg = parsePublish(req);
        try {
          await ctx.iotCore.publish(msg);
        } catch (e) {
          if (e instanceof IotCoreError) throw serviceError(e.message);
          throw e;
        }
        ctx.counters.iotPublishes++;
        return {};
      },
    },
    [SUBSCRIBE]: {
      kind: 'stream',
      handler: async (caller, req, stream) => {
        const filter = requireString(req, 'topicName');
        try {
          validateFilter(filter);
        } catch (e) {
          if (e instanceof TopicError) throw invalid(e.message);
          throw e;
        }
        if (!ctx.authorizer.isAuthorized(caller.componentName, SERVICE, SUBSCRIBE, filter)) throw notAuthorized();
        const qos = parseQos(req.qos);
        let unsubscribe: (() => void) | undefined;
        let closed = false;
        stream.onClose(() => {
          closed = true;
          unsubscribe?.();
        });
        try {
          const off = await ctx.iotCore.subscribe(filter, qos, (msg) => stream.send(EVENT, toEvent(msg)));
          if (closed) off();
          else unsubscribe = off;
        } catch (e) {
          if (e instanceof IotCoreError) throw serviceError(e.message);
          throw e;
        }
        return {};
      },
    },
  };
}

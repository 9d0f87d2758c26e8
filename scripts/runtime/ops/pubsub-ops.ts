/**
 * Local publish/subscribe: PublishToTopic and SubscribeToTopic
 * (builtin/services/pubsub/PubSubIPCEventStreamAgent.java; Greengrass Developer Guide,
 * "Publish/subscribe local messages").
 */
import { parseTopic } from '../../../components/lib/contract';
import type { OperationDef } from '../ipc/types';
import { ReceiveMode, TopicError, defaultReceiveMode, validateFilter, validatePublishTopic } from '../pubsub';
import type { NucleusContext } from './context';
import { OP, invalid, isPlainObject, requireString, unauthorized } from './common';

const SERVICE = 'aws.greengrass.ipc.pubsub';
const PUBLISH = OP('PublishToTopic');
const SUBSCRIBE = OP('SubscribeToTopic');
const EVENT = OP('SubscriptionResponseMessage');

/** What travels on the local bus: the publisher's union member, already checked. */
export type LocalMessage = { jsonMessage: Record<string, unknown> } | { binaryMessage: string };

function parseMessage(v: unknown): LocalMessage {
  if (!isPlainObject(v)) throw invalid('publishMessage is required');
  const json = v.jsonMessage;
  const binary = v.binaryMessage;
  if ((json === undefined) === (binary === undefined)) {
    throw invalid('publishMessage must have exactly one of jsonMessage or binaryMessage');
  }
  if (json !== undefined) {
    // The nucleus deserialises jsonMessage.message into a Map<String,Object>: only an object fits.
    if (!isPlainObject(json) || !isPlainObject(json.message)) throw invalid('jsonMessage.message must be a JSON object');
    return { jsonMessage: json.message };
  }
  if (!isPlainObject(binary) || typeof binary.message !== 'string') {
    throw invalid('binaryMessage.message must be base64 bytes');
  }
  return { binaryMessage: binary.message };
}

function parseReceiveMode(v: unknown, filter: string): ReceiveMode {
  if (v === undefined || v === null) return defaultReceiveMode(filter);
  if (v === 'RECEIVE_ALL_MESSAGES' || v === 'RECEIVE_MESSAGES_FROM_OTHERS') return v;
  throw invalid('receiveMode must be RECEIVE_ALL_MESSAGES or RECEIVE_MESSAGES_FROM_OTHERS');
}

export function pubsubOperations(ctx: NucleusContext): Record<string, OperationDef> {
  return {
    [PUBLISH]: {
      kind: 'unary',
      handler: (caller, req) => {
        const topic = requireString(req, 'topic');
        try {
          validatePublishTopic(topic);
        } catch (e) {
          if (e instanceof TopicError) throw invalid(e.message);
          throw e;
        }
        // The dcmms-edge CLI may publish operator requests, and nothing else (docs/local-runtime.md
        // "Differences from a real nucleus": the Greengrass CLI publishes nothing on local pub/sub).
        const cliOperator = caller.componentName === ctx.cliPrincipal && parseTopic(topic)?.family === 'operatorRequest';
        if (!cliOperator && !ctx.authorizer.isAuthorized(caller.componentName, SERVICE, PUBLISH, topic)) {
          throw unauthorized(caller.componentName, SERVICE, PUBLISH, topic);
        }
        const message = parseMessage(req.publishMessage);
        ctx.pubsub.publish(topic, message, caller.componentName);
        ctx.counters.localPublishes++;
        return {};
      },
    },
    [SUBSCRIBE]: {
      kind: 'stream',
      handler: (caller, req, stream) => {
        const filter = requireString(req, 'topic');
        try {
          validateFilter(filter);
        } catch (e) {
          if (e instanceof TopicError) throw invalid(e.message);
          throw e;
        }
        // Policy '+'/'#' are literal for pubsub, so the filter string itself is the resource
        // ("Authorize components to perform IPC operations").
        if (!ctx.authorizer.isAuthorized(caller.componentName, SERVICE, SUBSCRIBE, filter)) {
          throw unauthorized(caller.componentName, SERVICE, SUBSCRIBE, filter);
        }
        const receiveMode = parseReceiveMode(req.receiveMode, filter);
        const unsubscribe = ctx.pubsub.subscribe(filter, {
          component: caller.componentName,
          receiveMode,
          deliver: (topic, message) => {
            const context = { topic };
            stream.send(
              EVENT,
              'jsonMessage' in message
                ? { jsonMessage: { message: message.jsonMessage, context } }
                : { binaryMessage: { message: message.binaryMessage, context } },
            );
          },
        });
        stream.onClose(unsubscribe);
        return {};
      },
    },
  };
}

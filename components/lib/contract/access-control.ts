/**
 * Builds a recipe's `accessControl` (Greengrass Developer Guide, "Use the AWS IoT Device SDK to
 * communicate with the Greengrass nucleus...", section "Authorize components to perform IPC
 * operations") from the COMPONENT_TOPICS table.
 * Policy ids are `<ComponentName>:pubsub:<n>` / `<ComponentName>:mqttproxy:<n>`, unique across
 * components as the docs ask. Publish and subscribe get separate policies so each operation is
 * allowed only on its own resources; empty policies and services are omitted.
 */
import { componentDecl, type ComponentName } from './components';

export const PUBSUB_SERVICE = 'aws.greengrass.ipc.pubsub';
export const MQTTPROXY_SERVICE = 'aws.greengrass.ipc.mqttproxy';

export const OPERATIONS = {
  publishToTopic: 'aws.greengrass#PublishToTopic',
  subscribeToTopic: 'aws.greengrass#SubscribeToTopic',
  publishToIoTCore: 'aws.greengrass#PublishToIoTCore',
  subscribeToIoTCore: 'aws.greengrass#SubscribeToIoTCore',
} as const;

export interface AccessPolicy {
  policyDescription: string;
  operations: string[];
  resources: string[];
}
export type AccessControl = Record<string, Record<string, AccessPolicy>>;

export function accessControlFor(name: ComponentName): AccessControl {
  const { topics } = componentDecl(name);
  const out: AccessControl = {};
  const add = (service: string, kind: 'pubsub' | 'mqttproxy', policies: Array<[string, string, readonly string[]]>): void => {
    const entries: Record<string, AccessPolicy> = {};
    let n = 0;
    for (const [description, operation, resources] of policies) {
      if (resources.length === 0) continue;
      n += 1;
      entries[`${name}:${kind}:${n}`] = { policyDescription: description, operations: [operation], resources: [...resources] };
    }
    if (n > 0) out[service] = entries;
  };
  add(PUBSUB_SERVICE, 'pubsub', [
    [`${name} publishes its local topics`, OPERATIONS.publishToTopic, topics.pubsub.publish],
    [`${name} subscribes to its local topics`, OPERATIONS.subscribeToTopic, topics.pubsub.subscribe],
  ]);
  add(MQTTPROXY_SERVICE, 'mqttproxy', [
    [`${name} publishes to AWS IoT Core`, OPERATIONS.publishToIoTCore, topics.mqttproxy.publish],
    [`${name} subscribes to AWS IoT Core`, OPERATIONS.subscribeToIoTCore, topics.mqttproxy.subscribe],
  ]);
  return out;
}

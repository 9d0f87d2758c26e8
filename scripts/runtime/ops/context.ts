/**
 * What the operation handlers see of the nucleus. Built once by nucleus.ts; handlers hold no
 * state of their own beyond the streams they are given.
 */
import type { Logger } from '../../../components/lib/logger';
import type { Authorizer } from '../authorization';
import type { ConfigStore } from '../config-store';
import type { IotCore } from '../iotcore';
import type { PubSub } from '../pubsub';
import type { ServiceManager } from '../services';
import type { TokenRegistry } from '../tokens';
import type { ComponentUpdates } from '../component-updates';
import type { ConfigValidation } from '../config-validation';
import type { DeploymentEngine } from '../deployments';
import type { LocalMessage } from './pubsub-ops';

export interface NucleusCounters {
  localPublishes: number;
  iotPublishes: number;
}

export interface NucleusContext {
  logger: Logger;
  pubsub: PubSub<LocalMessage>;
  authorizer: Authorizer;
  config: ConfigStore;
  services: ServiceManager;
  iotCore: IotCore;
  tokens: TokenRegistry;
  updates: ComponentUpdates;
  validation: ConfigValidation;
  deployments: DeploymentEngine;
  counters: NucleusCounters;
  /** The identity of `dcmms-edge` CLI clients (the Greengrass CLI's token holders). */
  cliPrincipal: string;
  /** Version of a deployed component, or undefined. */
  componentVersion(name: string): string | undefined;
  now(): number;
}

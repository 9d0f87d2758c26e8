/**
 * The local Greengrass nucleus: the IPC server, the configuration store, pub/sub, authorization,
 * the IoT Core bridge, the service manager and local deployments, wired together under one root
 * folder laid out as the real nucleus lays out its own:
 *
 *   <root>/ipc.socket                   the IPC socket (mode 0666)
 *   <root>/cli_ipc_info/shared_config   socket path and token for CLI clients (mode 0600)
 *   <root>/config/nucleus.json          what is deployed and its configuration (survives restarts)
 *   <root>/packages/{recipes,artifacts,artifacts-unarchived}/   the component store
 *   <root>/work/<component>/            each component's working folder (its cwd)
 *   <root>/logs/greengrass.log, <root>/logs/<component>.log
 */
import fs from 'node:fs';
import path from 'node:path';
import { Logger, LogLevel, createLogger } from '../../components/lib/logger';
import { Authorizer } from './authorization';
import { cliIpcInfoPath } from './cli-ipc-info';
import { ComponentUpdates } from './component-updates';
import { ConfigStore } from './config-store';
import { ConfigValidation } from './config-validation';
import { DeploymentEngine, DeploymentOptions } from './deployments';
import { IotCore, IotCoreOptions, createIotCore } from './iotcore';
import { createIpcServer } from './ipc/server';
import type { IpcServer } from './ipc/types';
import { cliOperations } from './ops/cli-ops';
import { configOperations } from './ops/config-ops';
import type { NucleusContext } from './ops/context';
import { iotCoreOperations } from './ops/iotcore-ops';
import { lifecycleOperations } from './ops/lifecycle-ops';
import { LocalMessage, pubsubOperations } from './ops/pubsub-ops';
import { SecretStore, secretOperations } from './ops/secret-ops';
import { PackageStore } from './packages';
import { PubSub } from './pubsub';
import { Platform, currentPlatform } from './recipe';
import { ServiceManager } from './services';
import { TokenRegistry } from './tokens';
import { STREAM_MANAGER_COMPONENT_NAME, StreamManagerHost, StreamManagerRuntimeOptions } from './stream-manager/component';
import { TES_COMPONENT_NAME, TesOptions, TokenExchangeService, createTes } from './tes';

/** The nucleus version whose IPC semantics this runtime follows (wildcards, receive modes: ≥2.6). */
export const EMULATED_NUCLEUS_VERSION = '2.14.0';
/** sun_path is 108 bytes including the terminating NUL (unix(7); docs/local-runtime.md "Transport"). */
const MAX_SOCKET_PATH = 107;

export interface NucleusOptions {
  rootDir: string;
  thingName?: string;
  region?: string;
  platform?: Platform;
  logger?: Logger;
  logLevel?: LogLevel;
  /** Echo nucleus log lines on stdout as well as logs/greengrass.log (the foreground CLI does). */
  logToStdout?: boolean;
  iot?: Partial<Pick<IotCoreOptions, 'broker' | 'offline'>> & { reachable?: boolean };
  deployment?: Partial<DeploymentOptions>;
  /**
   * Serve a Token Exchange Service (scripts/runtime/tes.ts) with these credentials. Components whose
   * recipe depends on aws.greengrass.TokenExchangeService get AWS_CONTAINER_CREDENTIALS_FULL_URI.
   */
  tes?: TesOptions;
  /** Lifecycle tuning, mostly for tests: error window and stop grace. */
  lifecycle?: { errorResetTimeMs?: number; stopGraceMs?: number };
  /**
   * What the secret manager component would serve (GetSecretValue): secret id or ARN -> string,
   * held in memory only (scripts/runtime/ops/secret-ops.ts; docs/local-runtime.md "Secrets").
   */
  secrets?: Readonly<Record<string, string>>;
  /**
   * The built-in Stream Manager (scripts/runtime/stream-manager; docs/stream-manager.md), which runs
   * while a deployment includes aws.greengrass.StreamManager: exporter endpoint overrides, region.
   */
  streamManager?: StreamManagerRuntimeOptions;
}

export interface Nucleus {
  readonly rootDir: string;
  readonly socketPath: string;
  readonly thingName: string;
  readonly iotCore: IotCore;
  /** The Token Exchange Service, when created with `tes`. */
  readonly tes: TokenExchangeService | undefined;
  /** The built-in Stream Manager's host (its server runs while aws.greengrass.StreamManager is RUNNING). */
  readonly streamManager: StreamManagerHost;
  readonly services: ServiceManager;
  readonly deployments: DeploymentEngine;
  readonly config: ConfigStore;
  readonly logger: Logger;
  /** The token the CLI uses (also written to cli_ipc_info). */
  readonly cliToken: string;
  start(): Promise<void>;
  close(): Promise<void>;
  /** A deployed component's IPC token: what its processes get as SVCUID. */
  tokenFor(component: string): string;
  /**
   * Watch local pub/sub from inside the runtime (the demo's console view, troubleshooting). Not
   * an IPC operation: nothing a component can reach. Returns the unsubscribe function.
   */
  observe(filter: string, onMessage: (topic: string, message: LocalMessage) => void): () => void;
  /** Fault injection: while on, local pub/sub delivers nothing to `component` (PubSub.withholdFrom). */
  withholdDeliveries(component: string, on: boolean): void;
  stats(): Record<string, unknown>;
}

const CLI_PRINCIPAL = 'aws.greengrass.Cli';

interface PersistedState {
  roots: Record<string, string>;
  config: unknown;
}

function fileLogger(rootDir: string, level: LogLevel, toStdout: boolean): Logger {
  const logDir = path.join(rootDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const fd = fs.openSync(path.join(logDir, 'greengrass.log'), 'a');
  return createLogger(
    { component: 'nucleus' },
    {
      level,
      write: (line) => {
        fs.writeSync(fd, line);
        if (toStdout) fs.writeSync(1, line);
      },
    },
  );
}

export function createNucleus(opts: NucleusOptions): Nucleus {
  const rootDir = path.resolve(opts.rootDir);
  fs.mkdirSync(rootDir, { recursive: true });
  const socketPath = path.join(rootDir, 'ipc.socket');
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new Error(
      `the IPC socket path ${socketPath} is ${Buffer.byteLength(socketPath)} bytes; Unix sockets allow at most ${MAX_SOCKET_PATH}: use a shorter --root`,
    );
  }
  const thingName = opts.thingName ?? 'dcmms-local-gateway';
  const region = opts.region ?? 'us-east-1';
  const logger = opts.logger ?? fileLogger(rootDir, opts.logLevel ?? 'info', opts.logToStdout ?? false);
  const statePath = path.join(rootDir, 'config', 'nucleus.json');
  const persisted = loadState(statePath, logger);

  const config = persisted ? ConfigStore.fromJSON(persisted.config) : new ConfigStore();
  const tokens = new TokenRegistry();
  const cliToken = tokens.tokenFor(CLI_PRINCIPAL);
  const authorizer = new Authorizer(logger.child({ part: "authorization" }));
  const pubsub = new PubSub<LocalMessage>();
  const services = new ServiceManager({
    rootDir,
    logger,
    errorResetTimeMs: opts.lifecycle?.errorResetTimeMs,
    stopGraceMs: opts.lifecycle?.stopGraceMs,
  });
  const iotCore = createIotCore({
    broker: opts.iot?.broker ?? { kind: 'embedded' },
    clientId: thingName,
    // The nucleus's spooler defaults: in memory, 2.5 MiB, QoS 0 dropped while offline.
    offline: opts.iot?.offline ?? { behaviour: 'spool', maxSpoolBytes: 2_621_440, keepQos0WhenOffline: false },
    logger: logger.child({ part: 'iotcore' }),
  });
  const updates = new ComponentUpdates(logger);
  const validation = new ConfigValidation(logger);
  const packages = new PackageStore(rootDir);
  let ipc: IpcServer | undefined;

  const tes = opts.tes ? createTes(opts.tes, (token) => tokens.componentFor(token), logger) : undefined;

  const envFor = (name: string, dependencies: readonly string[] = []): Record<string, string> => {
    const token = tokens.tokenFor(name);
    // The TES's endpoint, for components that depend on it (token-exchange-service-component.md).
    const credentials: Record<string, string> = tes && tes.url && dependencies.includes(TES_COMPONENT_NAME) ? { AWS_CONTAINER_CREDENTIALS_FULL_URI: tes.url } : {};
    // What the nucleus sets for every component process (Greengrass Developer Guide, "Component
    // environment variable reference").
    return {
      ...credentials,
      AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT: socketPath,
      AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH: socketPath,
      SVCUID: token,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: token,
      AWS_IOT_THING_NAME: thingName,
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      GGC_VERSION: EMULATED_NUCLEUS_VERSION,
      GG_ROOT_CA_PATH: '',
    };
  };

  const persist = (): void => {
    const state: PersistedState = { roots: Object.fromEntries(deployments.roots), config: config.toJSON() };
    fs.mkdirSync(path.dirname(statePath), { recursive: true });
    const tmp = `${statePath}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(state));
    fs.renameSync(tmp, statePath);
  };

  const deployments: DeploymentEngine = new DeploymentEngine({
    rootDir,
    thingName,
    platform: opts.platform ?? currentPlatform(),
    logger,
    config,
    services,
    authorizer,
    updates,
    validation,
    packages,
    options: {
      componentUpdateTimeoutMs: opts.deployment?.componentUpdateTimeoutMs ?? 60_000,
      configValidationTimeoutMs: opts.deployment?.configValidationTimeoutMs ?? 30_000,
      deploymentTimeoutMs: opts.deployment?.deploymentTimeoutMs ?? 300_000,
      stableMs: opts.deployment?.stableMs ?? 3_000,
    },
    envFor,
    onRemoved: (name) => {
      ipc?.disconnectComponent(name);
      tokens.revoke(name);
    },
    onCommitted: persist,
  });

  const streamManager = new StreamManagerHost({
    rootDir,
    region,
    services,
    config,
    logger,
    // Any deployed component's token (the SVCUID every component process gets as
    // AWS_CONTAINER_AUTHORIZATION_TOKEN), as AWS's Stream Manager accepts.
    validateToken: (token) => tokens.componentFor(token),
    tes: () => (tes?.url ? { url: tes.url, token: tokens.tokenFor(STREAM_MANAGER_COMPONENT_NAME) } : undefined),
    options: opts.streamManager ?? {},
  });

  const secrets = new SecretStore(opts.secrets);
  const counters = { localPublishes: 0, iotPublishes: 0 };
  const ctx: NucleusContext = {
    logger,
    pubsub,
    authorizer,
    config,
    services,
    iotCore,
    tokens,
    updates,
    validation,
    deployments,
    counters,
    cliPrincipal: CLI_PRINCIPAL,
    componentVersion: (name) => deployments.version(name),
    now: Date.now,
  };

  ipc = createIpcServer({
    socketPath,
    logger: logger.child({ part: 'ipc' }),
    authenticate: (token) => tokens.componentFor(token),
    operations: {
      ...pubsubOperations(ctx),
      ...iotCoreOperations(ctx),
      ...configOperations(ctx),
      ...lifecycleOperations(ctx),
      ...cliOperations(ctx),
      ...secretOperations(ctx, secrets),
    },
  });

  let started = false;
  let closing: Promise<void> | undefined;

  return {
    rootDir,
    socketPath,
    thingName,
    iotCore,
    tes,
    streamManager,
    services,
    deployments,
    config,
    logger,
    cliToken,
    tokenFor: (component) => tokens.tokenFor(component),
    observe: (filter, onMessage) =>
      pubsub.subscribe(filter, { component: 'nucleus-observer', receiveMode: 'RECEIVE_ALL_MESSAGES', deliver: onMessage }),
    withholdDeliveries: (component, on) => {
      pubsub.withholdFrom(component, on);
      logger.warn(on ? 'fault injection: local pub/sub deliveries to a component withheld' : 'fault injection ended: deliveries resumed', { component, dropped: pubsub.withheldCount.get(component) ?? 0 });
    },
    async start() {
      if (started) return;
      started = true;
      await iotCore.start();
      if (opts.iot?.reachable === false) iotCore.setReachable(false);
      await tes?.listen();
      await ipc!.listen();
      const infoPath = cliIpcInfoPath(rootDir);
      fs.mkdirSync(path.dirname(infoPath), { recursive: true });
      fs.writeFileSync(infoPath, JSON.stringify({ cli_auth_token: cliToken, socket_path: socketPath }), { mode: 0o600 });
      fs.chmodSync(infoPath, 0o600);
      if (persisted && Object.keys(persisted.roots).length > 0) {
        try {
          deployments.restore(new Map(Object.entries(persisted.roots)));
        } catch (e) {
          logger.error('could not restore the previous deployment; starting empty', { error: e as Error });
        }
      }
      services.start();
      logger.info('nucleus started', { rootDir, socketPath, thingName, broker: iotCore.brokerUrl, secrets: secrets.size });
    },
    close() {
      if (!closing) {
        closing = (async () => {
          deployments.close();
          await services.close();
          await streamManager.close();
          if (started) persist();
          await ipc!.close();
          await iotCore.close();
          await tes?.close();
          fs.rmSync(cliIpcInfoPath(rootDir), { force: true });
          logger.info('nucleus stopped');
        })();
      }
      return closing;
    },
    stats: () => ({ ...counters, ipc: ipc!.stats(), iotCore: iotCore.stats(), services: services.list(), ...(streamManager.running ? { streamManager: streamManager.running.stats() } : {}) }),
  };
}

function loadState(file: string, logger: Logger): PersistedState | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    const data = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<PersistedState>;
    if (typeof data.roots !== 'object' || data.roots === null) throw new Error('roots missing');
    return { roots: data.roots as Record<string, string>, config: data.config };
  } catch (e) {
    logger.error('nucleus state is unreadable; starting with nothing deployed', { file, error: e as Error });
    return undefined;
  }
}

/**
 * aws.greengrass.StreamManager as a built-in of the local runtime (docs/stream-manager.md,
 * docs/local-runtime.md "Stream Manager"): its recipe (no artifacts, no lifecycle steps: the runtime
 * runs it in its own process), its configuration keys, and the host that starts the server when
 * the component starts and stops it when the component stops or leaves the deployment.
 */
import http from 'node:http';
import path from 'node:path';
import { ConfigError } from '../../../components/lib/errors';
import type { Logger } from '../../../components/lib/logger';
import type { ConfigStore } from '../config-store';
import type { Recipe } from '../recipe';
import type { ServiceManager, ServiceState } from '../services';
import { StreamManagerServer } from './server';
import type { ExportEnvironment, ExportKind, ExporterFactory } from './types';

export const STREAM_MANAGER_COMPONENT_NAME = 'aws.greengrass.StreamManager';
export const STREAM_MANAGER_VERSION = '2.2.1';

/** The keys of the Stream Manager component's configuration we honour, with its defaults (Greengrass Developer Guide, "Stream manager"). */
const DEFAULTS = {
  STREAM_MANAGER_STORE_ROOT_DIR: '.',
  STREAM_MANAGER_SERVER_PORT: '8088',
  STREAM_MANAGER_AUTHENTICATE_CLIENT: 'true',
  STREAM_MANAGER_EXPORTER_THREAD_POOL_SIZE: '5',
  LOG_LEVEL: 'INFO',
  JVM_ARGS: '',
};

/**
 * The built-in recipe: found by the component store like any other, with a HARD dependency on the
 * TES like AWS's. Built as an object: the recipe parser keeps the aws.greengrass.* names for AWS.
 */
export function streamManagerRecipe(): Recipe {
  return {
    formatVersion: '2020-01-25',
    name: STREAM_MANAGER_COMPONENT_NAME,
    version: STREAM_MANAGER_VERSION,
    description: 'Stream Manager, built into the local runtime (scripts/runtime/stream-manager)',
    publisher: 'dcmms-edge local runtime',
    defaultConfiguration: { ...DEFAULTS },
    dependencies: { 'aws.greengrass.TokenExchangeService': { versionRequirement: '>=0.0.0', dependencyType: 'HARD' } },
    manifests: [{ platform: { os: '*' }, selections: [], artifacts: [] }],
    source: '<built-in aws.greengrass.StreamManager>',
  };
}

export interface StreamManagerSettings {
  port: number;
  authenticateClient: boolean;
  storeRoot: string;
  threadPoolSize: number;
}

/** Reads the component's configuration; ConfigError naming the key and what is allowed. */
export function readSettings(config: Record<string, unknown>, workDir: string): StreamManagerSettings {
  const get = (key: string): unknown => {
    const hit = Object.keys(config).find((k) => k.toLowerCase() === key.toLowerCase());
    return hit === undefined ? undefined : config[hit];
  };
  const int = (key: string, dflt: number, min: number, max: number): number => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return dflt;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(key, `${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return n;
  };
  const auth = get('STREAM_MANAGER_AUTHENTICATE_CLIENT');
  let authenticateClient = true;
  if (auth !== undefined && auth !== null && auth !== '') {
    const s = String(auth).trim().toLowerCase();
    if (s !== 'true' && s !== 'false') throw new ConfigError('STREAM_MANAGER_AUTHENTICATE_CLIENT', `STREAM_MANAGER_AUTHENTICATE_CLIENT must be true or false, got ${JSON.stringify(auth)}`);
    authenticateClient = s === 'true';
  }
  const dir = get('STREAM_MANAGER_STORE_ROOT_DIR');
  if (dir !== undefined && dir !== null && typeof dir !== 'string') throw new ConfigError('STREAM_MANAGER_STORE_ROOT_DIR', 'STREAM_MANAGER_STORE_ROOT_DIR must be a folder path (absolute, or relative to the work folder)');
  const pool = get('STREAM_MANAGER_EXPORTER_THREAD_POOL_SIZE') ?? get('STREAM_MANAGER_THREAD_POOL_SIZE');
  return {
    port: int('STREAM_MANAGER_SERVER_PORT', 8088, 0, 65535),
    authenticateClient,
    storeRoot: path.resolve(workDir, typeof dir === 'string' && dir !== '' ? dir : '.'),
    threadPoolSize: pool === undefined ? 5 : int(get('STREAM_MANAGER_EXPORTER_THREAD_POOL_SIZE') !== undefined ? 'STREAM_MANAGER_EXPORTER_THREAD_POOL_SIZE' : 'STREAM_MANAGER_THREAD_POOL_SIZE', 5, 1, 64),
  };
}

/** Runtime options (createNucleus `streamManager`, CLI flags). */
export interface StreamManagerRuntimeOptions {
  /** Destination overrides for the exporters (kinesalite, s3rver, a SiteWise file). */
  endpoints?: ExportEnvironment['endpoints'];
  /** Region the exporters use (default: the nucleus's). */
  region?: string;
  /** Exporters by kind; default: the exporters of ./exporters. */
  exporterFactories?: Partial<Record<ExportKind, ExporterFactory>>;
  /** Clock for ingest times and TTL (tests). */
  now?: () => number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  ttlSweepMs?: number;
  maxFrameBytes?: number;
}

export interface StreamManagerHostDeps {
  rootDir: string;
  region: string;
  services: ServiceManager;
  config: ConfigStore;
  logger: Logger;
  validateToken: (token: string) => string | undefined;
  /** The TES's URL and the Stream Manager's own token, when the runtime serves a TES. */
  tes?: () => { url: string; token: string } | undefined;
  options: StreamManagerRuntimeOptions;
}

/** The exporters of ./exporters, loaded when a Stream Manager first starts (the AWS clients are not loaded into a runtime without one). */
function defaultFactories(): Partial<Record<ExportKind, ExporterFactory>> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('./exporters') as typeof import('./exporters')).exporterFactories;
}

/**
 * Credentials the way a component gets them: from the Token Exchange Service with its own token,
 * cached until 5 minutes before they expire (as the AWS SDKs' container provider does).
 */
export function tesCredentials(endpoint: () => { url: string; token: string } | undefined): ExportEnvironment['credentials'] {
  let cached: { value: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }; expires: number } | undefined;
  return async () => {
    if (cached && cached.expires - 300_000 > Date.now()) return cached.value;
    const e = endpoint();
    if (!e || !e.url) throw new Error('no Token Exchange Service: the local runtime was started without TES credentials');
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.get(e.url, { headers: { Authorization: e.token }, timeout: 5000 }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (data += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(data) : reject(new Error(`Token Exchange Service answered ${res.statusCode}: ${data.slice(0, 200)}`))));
      });
      req.on('timeout', () => req.destroy(new Error('Token Exchange Service timed out')));
      req.on('error', reject);
    });
    const j = JSON.parse(body) as { AccessKeyId: string; SecretAccessKey: string; Token?: string; Expiration?: string };
    const value = { accessKeyId: j.AccessKeyId, secretAccessKey: j.SecretAccessKey, ...(j.Token ? { sessionToken: j.Token } : {}) };
    cached = { value, expires: j.Expiration ? Date.parse(j.Expiration) : Date.now() + 3_600_000 };
    return value;
  };
}

/**
 * Runs the server while the component is STARTING/RUNNING: started when the service manager
 * moves it to STARTING (then reported RUNNING, or ERRORED with the reason), stopped when it leaves
 * RUNNING. Starts and stops are serialised. A change of its configuration restarts it.
 */
export class StreamManagerHost {
  private server: StreamManagerServer | undefined;
  private chain: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  private readonly log: Logger;

  constructor(private readonly d: StreamManagerHostDeps) {
    this.log = d.logger.child({ component: STREAM_MANAGER_COMPONENT_NAME });
    d.services.on('state', (name: string, state: ServiceState) => {
      if (name !== STREAM_MANAGER_COMPONENT_NAME) return;
      if (state === 'STARTING') this.enqueue(() => this.start());
      else if (state !== 'RUNNING') this.enqueue(() => this.stop());
    });
  }

  get running(): StreamManagerServer | undefined {
    return this.server;
  }

  /** Resolves when pending starts and stops are done. */
  settled(): Promise<void> {
    return this.chain;
  }

  close(): Promise<void> {
    this.enqueue(() => this.stop());
    return this.chain;
  }

  private enqueue(f: () => Promise<void>): void {
    this.chain = this.chain.then(f).catch((err: unknown) => this.log.error('Stream Manager: start/stop failed', { err: err as Error }));
  }

  private async start(): Promise<void> {
    if (this.server) return;
    const name = STREAM_MANAGER_COMPONENT_NAME;
    if (this.d.services.state(name) !== 'STARTING') return;
    let server: StreamManagerServer;
    try {
      const settings = readSettings(this.d.config.document(name), path.join(this.d.rootDir, 'work', name));
      const o = this.d.options;
      server = new StreamManagerServer({
        storeRoot: settings.storeRoot,
        port: settings.port,
        authenticateClient: settings.authenticateClient,
        validateToken: this.d.validateToken,
        log: this.log,
        now: o.now,
        ttlSweepMs: o.ttlSweepMs,
        maxFrameBytes: o.maxFrameBytes,
        exports: {
          factories: o.exporterFactories ?? defaultFactories(),
          concurrency: settings.threadPoolSize,
          retryInitialMs: o.retryInitialMs,
          retryMaxMs: o.retryMaxMs,
          env: {
            region: o.region ?? this.d.region,
            // The SiteWise recorder writes beside the streams, in the component's store folder.
            endpoints: { sitewiseFile: path.join(settings.storeRoot, 'sitewise-entries.jsonl'), ...o.endpoints },
            ...(this.d.tes?.() ? { credentials: tesCredentials(() => this.d.tes?.()) } : {}),
          },
        },
      });
      await server.start();
    } catch (err) {
      const e = err as Error & { key?: string };
      this.log.error('Stream Manager could not start', { error: e.message, ...(e.key ? { key: e.key } : {}) });
      this.d.services.reportState(name, 'ERRORED', `could not start: ${e.message}`);
      return;
    }
    this.server = server;
    // Like AWS's component: the bound port is written to the configuration key `port`, where
    // clients read it with GetConfiguration when STREAM_MANAGER_SERVER_PORT is 0.
    this.d.config.update(name, [], { port: server.port }, Date.now());
    this.unsubscribe = this.d.config.subscribe(name, [], (changed) => {
      if (changed.length === 0 || changed[0]!.toLowerCase() === 'port') return;
      this.log.info('Stream Manager configuration changed: restarting', { key: changed.join('/') });
      this.d.services.restart(name);
    });
    if (!this.d.services.reportState(name, 'RUNNING', `listening on 127.0.0.1:${server.port}`)) {
      // It was asked to stop while starting: the state handler queued the stop behind us.
      this.log.debug('Stream Manager started after its component left STARTING');
    }
  }

  private async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await s.close();
  }
}

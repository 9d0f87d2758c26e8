/**
 * Shared by the Stream Manager tests: AWS's own client (aws-greengrass-core-sdk 1.7.0,
 * `stream-manager/`, protocol 1.1.0) typed as far as the tests use it, and a connect helper that
 * gives it a token the way a component process has it (AWS_CONTAINER_AUTHORIZATION_TOKEN).
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const sm = require('aws-greengrass-core-sdk/stream-manager') as SmModule;

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface SmClient {
  appendMessage(stream: string, data: Buffer): Promise<number>;
  createMessageStream(def: any): Promise<void>;
  updateMessageStream(def: any): Promise<void>;
  deleteMessageStream(stream: string): Promise<void>;
  readMessages(stream: string, options?: any): Promise<{ streamName: string; sequenceNumber: number; ingestTime: number; payload: Buffer }[]>;
  listStreams(): Promise<string[]>;
  describeMessageStream(stream: string): Promise<any>;
  onConnected(f: () => void): void;
  onError(f: (e: Error) => void): void;
  close(): void;
}

export interface SmModule {
  StreamManagerClient: new (opts: Record<string, unknown>) => SmClient;
  MessageStreamDefinition: new () => any;
  ReadMessagesOptions: new () => any;
  StrategyOnFull: { RejectNewData: any; OverwriteOldestData: any };
  Persistence: { File: any; Memory: any };
  ExportDefinition: new () => any;
  HTTPConfig: new () => any;
  ExportFormat: { RAW_NOT_BATCHED: any; JSON_BATCHED: any };
  KinesisConfig: new () => any;
  IoTAnalyticsConfig: new () => any;
  [exception: string]: any;
}

export const quiet = { error: () => undefined, info: () => undefined, debug: () => undefined, warn: () => undefined };

/**
 * AWS's client starts connecting in its constructor and leaves that promise unhandled, so a refused
 * connection is an unhandled rejection in the client's process (as in any component using it). The
 * tests see the failure through onErrorCb instead.
 */
let Quiet: (new (opts: Record<string, unknown>) => SmClient) | undefined;
function quietClientClass(): new (opts: Record<string, unknown>) => SmClient {
  Quiet ??= class extends (sm.StreamManagerClient as any) {
    __connect(): Promise<void> {
      const p = super.__connect() as Promise<void>;
      p.catch(() => undefined);
      return p;
    }
  } as unknown as new (opts: Record<string, unknown>) => SmClient;
  return Quiet;
}

/** A connected client presenting `token` (undefined: none), or the connect error. */
export function connectClient(port: number, token: string | undefined): Promise<SmClient> {
  const saved = process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
  if (token === undefined) delete process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
  else process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN = token;
  try {
    return new Promise((resolve, reject) => {
      // The client reads the token from the environment in its constructor.
      const C = quietClientClass();
      const c = new C({ port, logger: quiet, onErrorCb: (e: Error) => reject(e) });
      c.onConnected(() => resolve(c));
    });
  } finally {
    if (saved === undefined) delete process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    else process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN = saved;
  }
}

/**
 * A definition the client does not validate before sending (its validation looks for the class's
 * own validation map, which a subclass does not have), to see the server's answer to bad values.
 */
export function uncheckedDefinition(): any {
  class Unchecked extends (sm.MessageStreamDefinition as any) {}
  return new Unchecked();
}

export function definition(name: string, strategy: 'reject' | 'overwrite' = 'overwrite'): any {
  return new sm.MessageStreamDefinition().withName(name).withStrategyOnFull(strategy === 'reject' ? sm.StrategyOnFull.RejectNewData : sm.StrategyOnFull.OverwriteOldestData);
}

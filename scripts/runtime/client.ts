/**
 * The real `aws-iot-device-sdk-v2` IPC client, pointed at a socket with a given token. Used by the
 * `dcmms-edge` CLI (with the token the nucleus writes under cli_ipc_info, as the Greengrass CLI
 * does), by tests and by benchmarks. Components use `greengrasscoreipc.createClient()` with the
 * environment the nucleus gives them instead.
 */
import fs from 'node:fs';
import path from 'node:path';
import { greengrasscoreipc, io } from 'aws-iot-device-sdk-v2';

export type IpcClient = greengrasscoreipc.Client;

export function clientConfig(socketPath: string, token: string): Parameters<typeof greengrasscoreipc.createClient>[0] {
  return {
    hostName: socketPath,
    port: 0,
    socketOptions: new io.SocketOptions(io.SocketType.STREAM, io.SocketDomain.LOCAL),
    connectTransform: async (options) => {
      options.message.payload = JSON.stringify({ authToken: token });
      return options.message;
    },
  };
}

export async function connectIpc(socketPath: string, token: string): Promise<IpcClient> {
  const client = greengrasscoreipc.createClient(clientConfig(socketPath, token));
  await client.connect();
  return client;
}

/** What the nucleus writes for CLI clients: `<root>/cli_ipc_info/shared_config`. */
export interface CliIpcInfo {
  cli_auth_token: string;
  socket_path: string;
}

export function cliIpcInfoPath(root: string): string {
  return path.join(root, 'cli_ipc_info', 'shared_config');
}

export function readCliIpcInfo(root: string): CliIpcInfo {
  const file = cliIpcInfoPath(root);
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch {
    throw new Error(`no nucleus found at ${root} (${file} is missing): start one with 'dcmms-edge nucleus --root ${root}'`);
  }
  const info = JSON.parse(raw) as Partial<CliIpcInfo>;
  if (typeof info.cli_auth_token !== 'string' || typeof info.socket_path !== 'string') {
    throw new Error(`${file} is damaged: restart the nucleus`);
  }
  return info as CliIpcInfo;
}

/**
 * The real `aws-iot-device-sdk-v2` IPC client, pointed at a socket with a given token. Used by the
 * `dcmms-edge` CLI (with the token the nucleus writes under cli_ipc_info, as the Greengrass CLI
 * does), by tests and by benchmarks. Components use `greengrasscoreipc.createClient()` with the
 * environment the nucleus gives them instead.
 */
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

export { cliIpcInfoPath, readCliIpcInfo, type CliIpcInfo } from './cli-ipc-info';

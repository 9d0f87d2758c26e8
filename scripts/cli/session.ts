/** Connects a CLI command to a running nucleus with the token in <root>/cli_ipc_info. */
import { IpcClient, connectIpc, readCliIpcInfo } from '../runtime/client';

export async function withNucleus<T>(root: string, fn: (client: IpcClient) => Promise<T>): Promise<T> {
  const info = readCliIpcInfo(root);
  let client: IpcClient;
  try {
    client = await connectIpc(info.socket_path, info.cli_auth_token);
  } catch (e) {
    throw new Error(`cannot connect to the nucleus at ${info.socket_path}: ${e instanceof Error ? e.message : String(e)}. Is 'dcmms-edge nucleus --root ${root}' running?`);
  }
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** RpcError from the SDK carries the nucleus's message in serviceError. */
export function describeError(e: unknown): string {
  const se = (e as { serviceError?: { message?: string } }).serviceError;
  if (se?.message) return se.message;
  return e instanceof Error ? e.message : String(e);
}

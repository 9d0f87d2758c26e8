/**
 * What the nucleus writes for CLI clients, `<root>/cli_ipc_info/shared_config` (as the Greengrass
 * CLI component does): the socket path and the CLI's token. Kept apart from client.ts so the
 * nucleus does not load the IPC client SDK just to know the file's name.
 */
import fs from 'node:fs';
import path from 'node:path';

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

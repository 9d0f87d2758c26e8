/**
 * The Connect check of the event-stream RPC handshake (docs/local-runtime.md "Connect handshake"),
 * as the Java nucleus does it (`ipc/IPCEventStreamService.java`, `ipc/AuthenticationHandler.java`):
 * `:version` must be `0.1.0`, the payload must parse, and `authToken` must be non-empty and map to
 * a component.
 */
import type { Logger } from '../../../components/lib/logger';
import type { Message } from './codec';
import { H_VERSION, isJsonObject, RPC_VERSION, stringHeader } from './rpc';

export type ConnectVerdict = { ok: true; componentName: string } | { ok: false; reason: string };

export function checkConnect(msg: Message, authenticate: (token: string) => string | undefined, logger: Logger): ConnectVerdict {
  const version = stringHeader(msg, H_VERSION);
  if (version !== RPC_VERSION) return { ok: false, reason: `unsupported or missing ${H_VERSION}: ${String(version)}` };
  let body: unknown;
  try {
    // The JS client sends no payload at all when SVCUID is unset.
    body = msg.payload.length === 0 ? undefined : JSON.parse(msg.payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'Connect payload is not JSON' };
  }
  const token = isJsonObject(body) ? body.authToken : undefined;
  if (typeof token !== 'string' || token === '') return { ok: false, reason: 'no authToken in Connect' };
  let componentName: string | undefined;
  try {
    componentName = authenticate(token);
  } catch (err) {
    logger.error('authenticate threw', { err });
    componentName = undefined;
  }
  // Never put the token in a reason: reasons are logged and the token is the component's credential.
  if (componentName === undefined) return { ok: false, reason: 'unknown authToken' };
  return { ok: true, componentName };
}

/**
 * The link between a benchmark and its observer component (a recipe run by the local runtime with
 * the unmodified SDK client): one JSON line per observed event over loopback TCP. The observer
 * connects to the benchmark's port, opens its IPC client, and leaves when the benchmark closes the
 * connection (exit 0) or when IPC is lost (an `error` line, exit 1). Used by ./control-worker.ts
 * and ./hmi-worker.ts.
 */
import net from 'node:net';
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';

export interface ObserverLink<E> {
  send(e: E): void;
  client: greengrasscoreipc.Client;
}

export async function connectObserver<E>(port: number): Promise<ObserverLink<E>> {
  if (!Number.isInteger(port) || port <= 0) throw new Error(`--port must be the benchmark's TCP port, not ${String(port)}`);
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const send = (e: E): void => void sock.write(`${JSON.stringify(e)}\n`);
  let closing = false;
  const client = greengrasscoreipc.createClient();
  client.on('disconnection', (ev) => {
    if (closing) return;
    sock.write(`${JSON.stringify({ k: 'error', error: `IPC connection lost: ${String(ev?.reason ?? 'no reason')}` })}\n`);
    sock.end(() => process.exit(1));
  });
  // The benchmark is done (or gone): leave.
  sock.on('close', () => {
    closing = true;
    void Promise.race([client.close(), new Promise((r) => setTimeout(r, 2000))]).finally(() => process.exit(0));
  });
  sock.on('error', () => undefined);
  await client.connect();
  return { send, client };
}

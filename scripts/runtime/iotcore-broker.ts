/**
 * The embedded stand-in for AWS IoT Core: an aedes 0.51 broker (MQTT 3.1.1 only) on 127.0.0.1 and a
 * port chosen by the OS, so tests and tools can connect to it as "the cloud".
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import Aedes from 'aedes';
import type { Logger } from '../../components/lib/logger';

export interface EmbeddedBroker {
  /** mqtt://127.0.0.1:<port> */
  readonly url: string;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(log: Logger): Promise<EmbeddedBroker> {
  const broker = new Aedes();
  broker.on('clientError', (client, err) => log.debug('embedded broker client error', { clientId: client.id, err: err.message }));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  log.info('embedded IoT Core broker listening', { port });
  let closing: Promise<void> | undefined;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: () => {
      closing ??= (async () => {
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        // Clients that never finished their handshake are not aedes's yet; drop them too.
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}

import net from 'node:net';

/**
 * A TCP relay on a loopback port in front of a real service, which a test can
 * cut (every connection dropped, new ones refused) and restore, to play a
 * database or Redis going away and coming back. With `cutUpAt` it also plays
 * a flaky network under a long upload: each time the bytes relayed from
 * clients to the service cross one of those totals, every open connection is
 * dropped, while the listener stays up for the client to reconnect.
 */
export interface TcpProxy {
  port: number;
  /** Bytes relayed from clients to the service so far, over every connection. */
  readonly bytesUp: number;
  /** How many `cutUpAt` thresholds have been crossed (and their connections dropped). */
  readonly cuts: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Drop every connection and stop listening. */
  cut(): Promise<void>;
  /** Listen again on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export interface TcpProxyOptions {
  /** Ascending totals of client → service bytes at which every connection is dropped. */
  cutUpAt?: number[];
}

export async function startTcpProxy(target: { host: string; port: number }, options: TcpProxyOptions = {}): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const thresholds = [...(options.cutUpAt ?? [])].sort((a, b) => a - b);
  let bytesUp = 0;
  let cuts = 0;
  let connections = 0;
  const dropAll = (): void => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    // Registered after pipe(): the chunk that crosses a threshold is relayed, then every connection is cut.
    client.pipe(upstream).pipe(client);
    client.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
      if (cuts < thresholds.length && bytesUp >= (thresholds[cuts] as number)) {
        cuts++;
        dropAll();
      }
    });
  });
  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  const port = await listen(0);
  const stop = async (): Promise<void> => {
    dropAll();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    get bytesUp() {
      return bytesUp;
    },
    get cuts() {
      return cuts;
    },
    get connections() {
      return connections;
    },
    cut: stop,
    restore: async () => {
      await listen(port);
    },
    close: stop,
  };
}

/**
 * A TCP proxy in front of a real service, to cut connections and refuse new ones on demand:
 * a network outage the test controls, without touching the shared service.
 */
import net from "node:net";

/** A running proxy and its switches. */
export interface TcpProxy {
  /** The local port to connect to instead of the service's. */
  port: number;
  /** Destroys every open connection (the peers see a reset). */
  cut(): void;
  /** Cuts and refuses new connections until `restore()`. */
  outage(): void;
  /** Stops passing on what the service sends (connections stay open) until `restore()`. */
  stall(): void;
  restore(): void;
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port, forwarding to `host:port`. */
export async function tcpProxy(host: string, port: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const stallable = new Map<net.Socket, net.Socket>(); // upstream → its client
  const stalled = new Set<net.Socket>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host, port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
    stallable.set(upstream, client);
    upstream.on("close", () => stallable.delete(upstream));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const cut = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    cut,
    outage() {
      down = true;
      cut();
    },
    stall() {
      for (const [upstream, client] of stallable) {
        upstream.unpipe(client);
        upstream.pause();
        stalled.add(upstream);
      }
    },
    restore() {
      down = false;
      for (const upstream of stalled) {
        const client = stallable.get(upstream);
        if (client) upstream.pipe(client);
      }
      stalled.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        cut();
        server.close(() => resolve());
      }),
  };
}

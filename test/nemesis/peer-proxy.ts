import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";

/** Longest request head the proxy reads before it decides what kind of connection it carries. */
const HEAD_MAX_BYTES = 16 * 1024;

/**
 * A TCP proxy in front of one node's port, used by exactly one dialling node
 * for its peer link to that node (a directed link `from -> to`).
 *
 * Peer links are the only thing a partition cuts. Nodes advertise their
 * peers' addresses (this proxy's) to clients in `notLeader` and `welcome`, so
 * SDK connections may come through here too: the proxy reads the HTTP request
 * line and forwards anything that is not an upgrade to /v1/peer untouched,
 * whatever the link's state.
 *
 * Cutting a link destroys its open peer connections and refuses new ones (the
 * dialling node sees a dead link and retries with back-off): the `from` node's
 * messages no longer reach `to`. Since each node sends only on the links it
 * dialled, cutting `a -> b` alone is a one-way partition.
 */
export class PeerProxy {
  #cut = false;
  readonly #peerSockets = new Set<Socket>();
  readonly #allSockets = new Set<Socket>();
  /** Peer connections refused or destroyed because the link was cut. */
  dropped = 0;

  private constructor(
    readonly from: string,
    readonly to: string,
    readonly targetPort: number,
    private readonly server: Server,
  ) {}

  static async start(options: { from: string; to: string; targetPort: number }): Promise<PeerProxy> {
    const server = createServer();
    const proxy = new PeerProxy(options.from, options.to, options.targetPort, server);
    server.on("connection", (socket) => proxy.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get isCut(): boolean {
    return this.#cut;
  }

  /** Stops carrying peer traffic: open peer connections are destroyed, new ones refused. */
  cut(): void {
    this.#cut = true;
    for (const s of this.#peerSockets) {
      s.destroy();
      this.dropped++;
    }
  }

  heal(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    for (const s of this.#allSockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.#allSockets.add(client);
    client.on("close", () => this.#allSockets.delete(client));
    client.on("error", () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const lineEnd = head.indexOf("\r\n");
      if (lineEnd < 0 && head.length < HEAD_MAX_BYTES) return; // the request line is not complete yet
      client.off("data", onData);
      client.pause();
      const requestLine = head.subarray(0, Math.max(0, lineEnd)).toString("latin1");
      const isPeer = / \/v1\/peer[ ?]/.test(requestLine);
      if (isPeer && this.#cut) {
        this.dropped++;
        client.destroy();
        return;
      }
      this.#pipe(client, head, isPeer);
    };
    client.on("data", onData);
  }

  #pipe(client: Socket, head: Buffer, isPeer: boolean): void {
    const upstream = connect({ host: "127.0.0.1", port: this.targetPort });
    this.#allSockets.add(upstream);
    if (isPeer) this.#peerSockets.add(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      this.#peerSockets.delete(client);
      this.#allSockets.delete(upstream);
    };
    upstream.on("error", end);
    upstream.on("close", end);
    client.on("close", end);
    upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }
}

import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";

/** Longest request head the proxy reads before it decides what kind of connection it carries. */
const HEAD_MAX_BYTES = 16 * 1024;

/**
 * A TCP proxy in front of one node's port (`to`). Every node advertises its
 * proxy's address, so every peer link to `to` and every client connection
 * that follows a node's address comes through here.
 *
 * Which node dials is read from the peer upgrade's `x-ratequeue-from` header,
 * so each directed link `from -> to` can be cut alone: cutting it destroys
 * the open peer connections from `from` and refuses new ones (the dialling
 * node sees a dead link and retries with back-off), so `from`'s messages no
 * longer reach `to`. Since each node sends only on the links it dialled,
 * cutting `a -> b` alone is a one-way partition. Anything that is not a peer
 * upgrade (clients, the admin API) is forwarded untouched, whatever is cut.
 *
 * The header, not the port, names the link: the cluster replicates one
 * address per member, so every node dials `to` at the same address.
 */
export class PeerProxy {
  readonly #cutFrom = new Set<string>();
  /** Open peer connections by the node that dialled them. */
  readonly #peerSockets = new Map<string, Set<Socket>>();
  readonly #allSockets = new Set<Socket>();
  /** Peer connections refused or destroyed because their link was cut. */
  dropped = 0;

  private constructor(
    readonly to: string,
    readonly targetPort: number,
    private readonly server: Server,
  ) {}

  static async start(options: { to: string; targetPort: number }): Promise<PeerProxy> {
    const server = createServer();
    const proxy = new PeerProxy(options.to, options.targetPort, server);
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

  isCut(from: string): boolean {
    return this.#cutFrom.has(from);
  }

  /** Stops carrying peer traffic from `from`: its open peer connections are destroyed, new ones refused. */
  cut(from: string): void {
    this.#cutFrom.add(from);
    for (const s of this.#peerSockets.get(from) ?? []) {
      s.destroy();
      this.dropped++;
    }
  }

  heal(from: string): void {
    this.#cutFrom.delete(from);
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
      const requestLine = head.subarray(0, Math.max(0, lineEnd)).toString("latin1");
      const isPeer = lineEnd >= 0 && / \/v1\/peer[ ?]/.test(requestLine);
      // A peer upgrade is read to the end of its headers, to learn who dials; anything else to its request line.
      const headEnd = isPeer ? head.indexOf("\r\n\r\n") : lineEnd;
      if (headEnd < 0 && head.length < HEAD_MAX_BYTES) return;
      client.off("data", onData);
      client.pause();
      const from = isPeer ? (/\r\nx-ratequeue-from: *([^\r]*)\r\n/i.exec(head.toString("latin1"))?.[1]?.trim() ?? "") : null;
      if (from !== null && this.#cutFrom.has(from)) {
        this.dropped++;
        client.destroy();
        return;
      }
      this.#pipe(client, head, from);
    };
    client.on("data", onData);
  }

  #pipe(client: Socket, head: Buffer, peerFrom: string | null): void {
    const upstream = connect({ host: "127.0.0.1", port: this.targetPort });
    this.#allSockets.add(upstream);
    if (peerFrom !== null) {
      let set = this.#peerSockets.get(peerFrom);
      if (set === undefined) {
        set = new Set();
        this.#peerSockets.set(peerFrom, set);
      }
      set.add(client);
    }
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      if (peerFrom !== null) this.#peerSockets.get(peerFrom)?.delete(client);
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

/** The directed peer link `from -> to`, cut and healed at `to`'s proxy. */
export class PeerLink {
  constructor(
    readonly from: string,
    private readonly proxy: PeerProxy,
  ) {}

  get to(): string {
    return this.proxy.to;
  }

  get isCut(): boolean {
    return this.proxy.isCut(this.from);
  }

  cut(): void {
    this.proxy.cut(this.from);
  }

  heal(): void {
    this.proxy.heal(this.from);
  }
}

import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";

/** Longest request head the proxy reads before it decides what kind of connection it carries. */
const HEAD_MAX_BYTES = 16 * 1024;
/** The header a dialling node names itself in when it upgrades to /v1/peer (src/peer/handshake.ts). */
const FROM_HEADER = /^x-ratequeue-from:[ \t]*([^\r\n]*?)[ \t]*$/im;

/**
 * One directed peer link `from -> to`, carried by `to`'s PeerProxy. Cutting it destroys its open peer
 * connections and refuses new ones (the dialling node sees a dead link and retries with back-off): `from`'s
 * messages no longer reach `to`. Since each node sends only on the links it dialled, cutting `a -> b` alone is a
 * one-way partition.
 */
export class PeerLink {
  #cut = false;
  readonly #sockets = new Set<Socket>();
  /** Peer connections refused or destroyed because the link was cut. */
  dropped = 0;

  constructor(
    readonly from: string,
    readonly to: string,
  ) {}

  get isCut(): boolean {
    return this.#cut;
  }

  /** Stops carrying peer traffic: open peer connections are destroyed, new ones refused. */
  cut(): void {
    this.#cut = true;
    for (const s of this.#sockets) {
      s.destroy();
      this.dropped++;
    }
  }

  heal(): void {
    this.#cut = false;
  }

  /** Takes a new peer connection on this link: false (and the socket destroyed) while the link is cut. */
  admit(socket: Socket): boolean {
    if (this.#cut) {
      this.dropped++;
      socket.destroy();
      return false;
    }
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    return true;
  }
}

/**
 * A TCP proxy in front of one node's port: the address every other node (and every client) knows that node by.
 * The node advertises it (its --peers entry), so whatever table a node dials from (--peers, the replicated member
 * addresses, a join), peer traffic to `to` passes here.
 *
 * The proxy reads each connection's request head. A peer upgrade (/v1/peer) names the dialling node in its
 * `x-ratequeue-from` header: the connection belongs to the link `from -> to` and is carried only while that link
 * is healed. Anything else (client WebSockets, HTTP) is forwarded untouched, whatever the links' state.
 */
export class PeerProxy {
  readonly #links = new Map<string, PeerLink>();
  readonly #allSockets = new Set<Socket>();

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

  /** The link `from -> to` (created on first use). */
  link(from: string): PeerLink {
    let link = this.#links.get(from);
    if (link === undefined) {
      link = new PeerLink(from, this.to);
      this.#links.set(from, link);
    }
    return link;
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
      const headEnd = head.indexOf("\r\n\r\n");
      if (headEnd < 0 && head.length < HEAD_MAX_BYTES) return; // the request head is not complete yet
      client.off("data", onData);
      client.pause();
      const text = head.subarray(0, headEnd < 0 ? head.length : headEnd).toString("latin1");
      const requestLine = text.slice(0, Math.max(0, text.indexOf("\r\n")));
      if (/ \/v1\/peer[ ?]/.test(requestLine)) {
        // A peer upgrade that names no dialling node is carried on the link from "?" (the node refuses it anyway).
        const from = FROM_HEADER.exec(text)?.[1] ?? "?";
        if (!this.link(from).admit(client)) return;
      }
      this.#pipe(client, head);
    };
    client.on("data", onData);
  }

  #pipe(client: Socket, head: Buffer): void {
    const upstream = connect({ host: "127.0.0.1", port: this.targetPort });
    this.#allSockets.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
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

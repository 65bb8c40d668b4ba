import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type WebSocket from "ws";
import { decodePeerFrame, encodePeerFrame, type PeerMessage } from "@ratequeue/protocol";
import type { Message, NodeId } from "@ratequeue/raft";
import { PeerClocks, type ClockOffset } from "./clock-offset.js";
import { PeerTransport, type PeerAddress } from "./transport.js";

/** Who takes what the peer links bring: the node's Raft core and its client sessions. */
export interface PeerReceiver {
  /** Raft messages from an authenticated peer, in the order they arrived. */
  stepPeer(from: NodeId, messages: Message[]): void;
  /** A send to `peer` was dropped (link down or congested): Raft probes it again. */
  reportUnreachable(peer: NodeId): void;
  /** Our open link to `peer` closed (its process exited or its connection broke). */
  leaderLinkLost(peer: NodeId): void;
  /** Our link to `peer` is open and authenticated. */
  peerLinkOpened(peer: NodeId): void;
}

export interface PeerLinkOptions {
  readonly selfId: NodeId;
  /** The current cluster secret first and, during a rotation, the previous one. */
  readonly clusterSecrets: readonly string[];
  readonly peers: readonly PeerAddress[];
  readonly logger: Logger;
  /** Clock offset above which a peer's clock is reported (PeerClocks). */
  readonly clockWarnMs: number;
  /** Extra options for outbound sockets (our certificate as a client certificate under mutual TLS). */
  readonly clientOptions?: WebSocket.ClientOptions;
}

/**
 * The node's side of its peer links: the authenticated WebSocket transport (transport.ts), the link layer's clock
 * probes (clock-offset.ts), and the routing of every decoded frame: clock readings stay in the link layer, Raft
 * messages go to the receiver, a hello after the handshake is dropped. Frames are encoded and decoded here, never
 * in the caller. A receiver is attached once the node's core exists (`attach`), before `start()` dials anyone;
 * until then nothing can arrive, since no link is open.
 */
export class PeerLink {
  readonly #o: PeerLinkOptions;
  readonly #transport: PeerTransport;
  readonly clocks: PeerClocks;
  #receiver: PeerReceiver | null = null;
  #clusterId: string | null = null;

  constructor(options: PeerLinkOptions) {
    this.#o = options;
    this.#transport = new PeerTransport({
      selfId: options.selfId,
      clusterId: () => this.#clusterId,
      clusterSecrets: options.clusterSecrets,
      peers: options.peers,
      logger: options.logger,
      ...(options.clientOptions === undefined ? {} : { clientOptions: options.clientOptions }),
      onLinkOpen: (peer) => this.#receiver?.peerLinkOpened(peer),
      onFrame: (from, frame) => routeFrame(this, from, frame),
      onUnreachable: (peer) => this.#receiver?.reportUnreachable(peer),
      onLinkClosed: (peer) => this.#receiver?.leaderLinkLost(peer),
    });
    this.clocks = new PeerClocks({
      selfId: options.selfId,
      logger: options.logger,
      warnMs: options.clockWarnMs,
      monotonicNow: () => performance.now(),
      wallNow: () => Date.now(),
      connectedPeers: () => this.#transport.connectedPeers(),
      send: (to, message) => this.#transport.send(to, encodePeerFrame([message])),
    });
  }

  /** Attaches the receiver of everything the links bring; once, before `start()`. */
  attach(receiver: PeerReceiver): void {
    if (this.#receiver !== null) throw new Error("PeerLink.attach: a receiver is attached already");
    this.#receiver = receiver;
  }

  /** Starts dialling every peer and probing their clocks. */
  start(): void {
    if (this.#receiver === null) throw new Error("PeerLink.start: attach a receiver first");
    this.#transport.start();
    this.clocks.start();
  }

  /** The cluster id this node announces in the handshake (handshake.ts, "Cluster identity"), or null. */
  get clusterId(): string | null {
    return this.#clusterId;
  }

  /** This node learned its cluster id: links to nodes of other clusters are dropped. */
  setClusterId(clusterId: string | null): void {
    this.#clusterId = clusterId;
    if (clusterId !== null) this.#transport.clusterIdChanged();
  }

  /** Sends Raft messages to a peer as one frame; a message that cannot be encoded is logged and dropped. */
  send(to: NodeId, messages: readonly Message[]): void {
    let frame: Uint8Array;
    try {
      frame = encodePeerFrame(messages);
    } catch (err) {
      this.#o.logger.error({ err, peer: to }, "a Raft message could not be encoded; dropped");
      return;
    }
    this.#transport.send(to, frame);
  }

  setPeers(peers: readonly PeerAddress[]): void {
    this.#transport.setPeers(peers);
  }

  isConnected(peer: NodeId): boolean {
    return this.#transport.isConnected(peer);
  }

  clockOffset(peer: NodeId): ClockOffset | null {
    return this.clocks.offset(peer);
  }

  /** For the HTTP server's "upgrade" event on the peer path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#transport.handleUpgrade(req, socket, head);
  }

  async close(): Promise<void> {
    this.clocks.stop();
    await this.#transport.close();
  }

  /** Routes one decoded frame's messages (routeFrame). */
  deliver(from: NodeId, messages: readonly PeerMessage[]): void {
    const raft: Message[] = [];
    for (const m of messages) {
      if (m.type === "clockProbe") this.clocks.onProbe(from, m);
      else if (m.type === "clockEcho") this.clocks.onEcho(from, m);
      else if (m.type !== "peerHello") raft.push(m);
    }
    if (raft.length > 0) this.#receiver?.stepPeer(from, raft);
  }

  warnUndecodable(from: NodeId, error: unknown): void {
    this.#o.logger.warn({ peer: from, error }, "undecodable peer frame dropped");
  }
}

/**
 * One frame from an authenticated peer: decoded, then routed by its link. The transport consumed the link's hello;
 * a later one is out of place and dropped. Clock readings belong to the link layer (PeerClocks), never to Raft.
 */
function routeFrame(link: PeerLink, from: NodeId, frame: Uint8Array): void {
  const decoded = decodePeerFrame(frame);
  if (!decoded.ok) return link.warnUndecodable(from, decoded.error);
  link.deliver(from, decoded.messages);
}

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";
import type { Logger } from "pino";
import { decodePeerFrame, encodePeerFrame, PROTOCOL_VERSION } from "@ratequeue/protocol";
import {
  CLUSTER_MISMATCH,
  CLUSTER_SECRETS_MAX,
  clusterMismatchReason,
  clustersDiffer,
  formatProofs,
  newNonce,
  parseClusterHeader,
  parseNonce,
  parseProofs,
  PEER_AUTH_CLOSE_CODE,
  PEER_CLUSTER_CLOSE_CODE,
  PEER_HANDSHAKE_TIMEOUT_MS,
  PEER_HEADER,
  PEER_HELLO_MAX_BYTES,
  peerProof,
  secretProving,
  type LinkNonces,
} from "./handshake.js";

export const PEER_PATH = "/v1/peer";
/** A link whose unsent bytes exceed this drops further frames (Raft retries) instead of growing without bound. */
export const PEER_BUFFER_MAX_BYTES = 32 * 1024 * 1024;
/** Largest frame a peer may send us. Snapshot chunks and append batches are sized well below it. */
export const PEER_FRAME_MAX_BYTES = 64 * 1024 * 1024;
/** Most accepted links still waiting for their hello; more upgrades are refused with 503. */
export const PEER_PENDING_MAX = 32;
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 2_000;

export interface PeerAddress {
  readonly id: string;
  /** e.g. ws://127.0.0.1:7402 or wss://... (no path). */
  readonly url: string;
}

export interface PeerTransportOptions {
  readonly selfId: string;
  /**
   * The cluster secrets this node accepts: the current one first and, during a rotation, the other one
   * (at most CLUSTER_SECRETS_MAX). A link needs one secret both ends hold.
   */
  readonly clusterSecrets: readonly string[];
  readonly peers: readonly PeerAddress[];
  readonly logger: Logger;
  /**
   * The id of the cluster whose data this node holds, or null while it knows none (handshake.ts, "Cluster
   * identity"). Read at every handshake; call `clusterIdChanged()` when it becomes known. Absent: always null.
   */
  readonly clusterId?: () => string | null;
  /** Called for every frame received from an authenticated peer. */
  readonly onFrame: (from: string, frame: Uint8Array) => void;
  /** Called when our link to a peer is open and authenticated. */
  readonly onLinkOpen?: (peerId: string) => void;
  /**
   * Called when our open link to a peer closed: its process exited or its connection broke. A follower takes a
   * closed link to its leader as a sign the leader may be dead (NodeCore.leaderLinkLost).
   */
  readonly onLinkClosed?: (peerId: string) => void;
  /** Called when a send to a peer was dropped (link down or backpressure), so Raft can probe it again. */
  readonly onUnreachable?: (peerId: string) => void;
  /** Extra options for outbound sockets (e.g. a CA for wss://). */
  readonly clientOptions?: WebSocket.ClientOptions;
}

/**
 * Node-to-node links over WebSocket at /v1/peer.
 *
 * Each node dials every other member and sends only on the link it dialled;
 * it receives on the links others dialled to it. Both ends of a link prove
 * they know the cluster secret by challenge and response over two fresh
 * nonces (handshake.ts): no frame of a link reaches `onFrame`, and no frame is
 * sent on it, before both proofs are checked. Sending is best-effort: Raft
 * tolerates loss, so a frame for a down or congested link is dropped and
 * reported, never queued without bound.
 */
export class PeerTransport {
  readonly #options: PeerTransportOptions;
  readonly #links = new Map<string, OutboundLink>();
  readonly #server: WebSocketServer;
  #started = false;
  /** Headers for the upgrade answer being written for each request (the accepting node's nonce and proofs). */
  readonly #answerHeaders = new WeakMap<IncomingMessage, string[]>();
  #pending = 0;
  #closed = false;
  /** Accepted, authenticated links and the cluster id each peer announced (null: none). */
  readonly #inbound = new Map<WebSocket, { readonly peer: string; readonly clusterId: string | null }>();
  /** Peer -> the foreign cluster id already logged as an error for it: a refused node redials every few seconds. */
  readonly #mismatchLogged = new Map<string, string>();

  constructor(options: PeerTransportOptions) {
    if (options.clusterSecrets.length < 1 || options.clusterSecrets.length > CLUSTER_SECRETS_MAX) {
      throw new Error(`a node holds 1 to ${CLUSTER_SECRETS_MAX} cluster secrets, got ${options.clusterSecrets.length}`);
    }
    this.#options = options;
    this.#server = new WebSocketServer({ noServer: true, maxPayload: PEER_FRAME_MAX_BYTES, perMessageDeflate: false });
    this.#server.on("headers", (headers, req) => {
      const extra = this.#answerHeaders.get(req);
      if (extra !== undefined) headers.push(...extra);
    });
    for (const peer of options.peers) {
      if (peer.id !== options.selfId) this.#links.set(peer.id, this.#newLink(peer));
    }
  }

  /**
   * This node learned its cluster id: every link whose other end announced a different one is closed (an accepted
   * link with PEER_CLUSTER_CLOSE_CODE; a dialled one is dialled again, and the handshake refuses it).
   */
  clusterIdChanged(): void {
    const own = this.#ownClusterId();
    for (const [ws, link] of this.#inbound) {
      if (own !== null && clustersDiffer(own, link.clusterId)) this.#refuseCluster(ws, link.peer, own, link.clusterId!);
    }
    for (const link of this.#links.values()) {
      if (own !== null && clustersDiffer(own, link.peerClusterId)) link.redial();
    }
  }

  #ownClusterId(): string | null {
    return this.#options.clusterId?.() ?? null;
  }

  #newLink(peer: PeerAddress): OutboundLink {
    return new OutboundLink(peer, this.#options, (peerId, theirs) => this.#logMismatch(peerId, theirs, "peer link to another cluster dropped"));
  }

  /** Logs a refusal naming both cluster ids: an error the first time for this peer and id, then at debug level. */
  #logMismatch(peer: string, theirs: string, what: string): void {
    const own = this.#ownClusterId() ?? "(none)";
    const fields = { code: CLUSTER_MISMATCH, peer, clusterId: own, peerClusterId: theirs };
    const message = `${what}: ${clusterMismatchReason(own, theirs)} (a data folder of another cluster, with the same node ids and secret; see the node README, "Cluster identity")`;
    if (this.#mismatchLogged.get(peer) === theirs) return void this.#options.logger.debug(fields, message);
    this.#mismatchLogged.set(peer, theirs);
    this.#options.logger.error(fields, message);
  }

  #refuseCluster(ws: WebSocket, peer: string, own: string, theirs: string): void {
    this.#inbound.delete(ws);
    this.#logMismatch(peer, theirs, "peer link from another cluster refused");
    ws.close(PEER_CLUSTER_CLOSE_CODE, clusterMismatchReason(own, theirs).slice(0, 120));
    setTimeout(() => ws.terminate(), 1_000).unref();
  }

  /** Starts dialling every peer. */
  start(): void {
    this.#started = true;
    for (const link of this.#links.values()) link.connect();
  }

  /**
   * Replaces the set of peers this node dials (membership changed): new peers are dialled, links to peers no
   * longer listed are closed, and a peer whose address changed is dialled at the new one.
   */
  setPeers(peers: readonly PeerAddress[]): void {
    if (this.#closed) return;
    const wanted = new Map(peers.filter((p) => p.id !== this.#options.selfId).map((p) => [p.id, p]));
    for (const [id, link] of this.#links) {
      if (wanted.get(id)?.url === link.peer.url) continue;
      link.close();
      this.#links.delete(id);
      this.#options.logger.info({ peer: id }, "peer link dropped (membership changed)");
    }
    for (const [id, peer] of wanted) {
      if (this.#links.has(id)) continue;
      const link = this.#newLink(peer);
      this.#links.set(id, link);
      if (this.#started) link.connect();
    }
  }

  /** Sends one frame to a peer, or drops it (and reports) when the link cannot take it now. */
  send(peerId: string, frame: Uint8Array): void {
    const link = this.#links.get(peerId);
    if (link === undefined || !link.send(frame)) this.#options.onUnreachable?.(peerId);
  }

  /** Whether our link to `peerId` is open (and authenticated) now. */
  isConnected(peerId: string): boolean {
    return this.#links.get(peerId)?.isOpen() ?? false;
  }

  /** Ids of peers whose outbound link is open. */
  connectedPeers(): string[] {
    return [...this.#links.entries()].filter(([, l]) => l.isOpen()).map(([id]) => id);
  }

  /** For the HTTP server's "upgrade" event on PEER_PATH: answers the challenge, then waits for the hello. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { selfId, clusterSecrets, logger } = this.#options;
    const from = req.headers[PEER_HEADER.from];
    const to = req.headers[PEER_HEADER.to];
    const dialNonce = parseNonce(req.headers[PEER_HEADER.nonce]);
    const peerCluster = parseClusterHeader(req.headers[PEER_HEADER.cluster]);
    let refusal: string | null = null;
    if (typeof from !== "string" || typeof to !== "string" || dialNonce === null || peerCluster === undefined) refusal = "missing or malformed peer headers";
    // Any node that proves the cluster secret is heard, even one this node does not know yet: a node restarted with
    // an old membership learns the new members only from a leader it may not know. Raft drops removed nodes' messages.
    else if (from === selfId) refusal = "a peer claiming this node's own id";
    else if (to !== selfId) refusal = `dialled as ${to.slice(0, 64)}, but this node is ${selfId}`;
    if (refusal !== null) {
      logger.warn({ remote: req.socket.remoteAddress, reason: refusal }, "peer link refused");
      socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    if (this.#pending >= PEER_PENDING_MAX) {
      logger.warn({ remote: req.socket.remoteAddress, pending: this.#pending }, "peer link refused: too many links awaiting their hello");
      socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const peer = from as string;
    const nonces: LinkNonces = { dial: dialNonce!, accept: newNonce() };
    const proofs = clusterSecrets.map((secret) => peerProof(secret, "accept", peer, selfId, nonces));
    const ownCluster = this.#ownClusterId();
    this.#answerHeaders.set(req, [
      `${PEER_HEADER.nonce}: ${Buffer.from(nonces.accept).toString("base64url")}`,
      `${PEER_HEADER.proof}: ${formatProofs(proofs)}`,
      ...(ownCluster === null ? [] : [`${PEER_HEADER.cluster}: ${ownCluster}`]),
    ]);
    // Until the hello is proven, count every byte the link sends: an unauthenticated link may not make us buffer a
    // large frame. (The counter is attached once ws reads the socket: attached earlier, it would set the socket
    // flowing and take the bytes that came with the upgrade before ws listens.)
    let unprovenBytes = head.byteLength;
    const countBytes = (chunk: Buffer): void => {
      unprovenBytes += chunk.byteLength;
      if (unprovenBytes > PEER_HELLO_MAX_BYTES) socket.destroy();
    };
    this.#pending++;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      this.#pending--;
      socket.off("data", countBytes);
    };
    socket.once("close", settle);
    this.#server.handleUpgrade(req, socket, head, (ws) => {
      this.#answerHeaders.delete(req);
      if (!settled) socket.on("data", countBytes);
      let proven = false;
      let refused = false;
      const refuse = (reason: string): void => {
        refused = true;
        logger.warn({ peer, remote: req.socket.remoteAddress, reason }, "peer link refused");
        ws.close(PEER_AUTH_CLOSE_CODE, reason.slice(0, 120));
        setTimeout(() => ws.terminate(), 1_000).unref();
      };
      const timer = setTimeout(() => refuse("no peer hello in time"), PEER_HANDSHAKE_TIMEOUT_MS);
      ws.on("message", (data, isBinary) => {
        if (!isBinary) return void ws.close(1003, "peer frames are binary");
        const bytes = toBytes(data);
        if (proven) return void this.#options.onFrame(peer, bytes);
        if (refused) return;
        clearTimeout(timer);
        const reason = checkHello(bytes, peer, selfId, clusterSecrets, nonces);
        if (reason !== null) return void refuse(reason);
        settle();
        // Checked only now that the peer proved the secret: an unauthenticated caller cannot fill the log with errors.
        const own = this.#ownClusterId();
        if (clustersDiffer(own, peerCluster!)) {
          refused = true;
          return void this.#refuseCluster(ws, peer, own!, peerCluster!);
        }
        proven = true;
        this.#inbound.set(ws, { peer, clusterId: peerCluster! });
        logger.info({ peer }, "peer link accepted");
      });
      ws.on("close", () => {
        clearTimeout(timer);
        this.#inbound.delete(ws);
      });
      ws.on("error", () => ws.terminate());
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const link of this.#links.values()) link.close();
    for (const ws of this.#server.clients) ws.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

class OutboundLink {
  #ws: WebSocket | null = null;
  #backoffMs = BACKOFF_MIN_MS;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #wasOpen = false;
  /** The cluster id the peer announced at the last handshake (null: none). */
  peerClusterId: string | null = null;

  constructor(
    readonly peer: PeerAddress,
    readonly options: PeerTransportOptions,
    /** Called when the peer proved the secret but announced another cluster's id; the link is dropped. */
    readonly onClusterMismatch: (peerId: string, theirs: string) => void,
  ) {}

  /** Closes the current connection; the usual backoff dials again (and handshakes again). */
  redial(): void {
    this.#ws?.terminate();
  }

  isOpen(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  send(frame: Uint8Array): boolean {
    const ws = this.#ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > PEER_BUFFER_MAX_BYTES) return false;
    ws.send(frame, { binary: true });
    return true;
  }

  connect(): void {
    if (this.#closed) return;
    const { selfId, clusterSecrets, logger } = this.options;
    const peerId = this.peer.id;
    const dialNonce = newNonce();
    let hello: Uint8Array | null = null;
    const ownCluster = this.options.clusterId?.() ?? null;
    const ws = new WebSocket(`${this.peer.url}${PEER_PATH}`, {
      ...this.options.clientOptions,
      headers: {
        [PEER_HEADER.from]: selfId,
        [PEER_HEADER.to]: peerId,
        [PEER_HEADER.nonce]: dialNonce.toString("base64url"),
        ...(ownCluster === null ? {} : { [PEER_HEADER.cluster]: ownCluster }),
      },
      perMessageDeflate: false,
      maxPayload: PEER_FRAME_MAX_BYTES,
      handshakeTimeout: PEER_HANDSHAKE_TIMEOUT_MS,
    });
    this.#ws = ws;
    ws.on("upgrade", (res) => {
      const acceptNonce = parseNonce(res.headers[PEER_HEADER.nonce]);
      const nonces = acceptNonce === null ? null : { dial: dialNonce, accept: acceptNonce };
      const secret =
        nonces === null
          ? null
          : parseProofs(res.headers[PEER_HEADER.proof])
              .map((proof) => secretProving(clusterSecrets, proof, "accept", selfId, peerId, nonces))
              .find((s) => s !== null) ?? null;
      if (nonces === null || secret === null) {
        logger.error({ peer: peerId }, "peer could not prove the cluster secret; link dropped (check the cluster secret)");
        ws.terminate();
        return;
      }
      const theirs = parseClusterHeader(res.headers[PEER_HEADER.cluster]);
      if (theirs === undefined) {
        logger.error({ peer: peerId }, "peer answered a malformed cluster id; link dropped");
        ws.terminate();
        return;
      }
      this.peerClusterId = theirs;
      if (clustersDiffer(this.options.clusterId?.() ?? null, theirs)) {
        this.onClusterMismatch(peerId, theirs!);
        ws.terminate();
        return;
      }
      hello = encodePeerFrame([
        { type: "peerHello", protocolVersion: PROTOCOL_VERSION, from: selfId, to: peerId, proof: peerProof(secret, "dial", selfId, peerId, nonces) },
      ]);
    });
    ws.on("open", () => {
      if (hello === null) return void ws.terminate();
      ws.send(hello, { binary: true });
      this.#backoffMs = BACKOFF_MIN_MS;
      this.#wasOpen = true;
      logger.info({ peer: peerId, url: this.peer.url }, "peer link open");
      this.options.onLinkOpen?.(peerId);
    });
    // We only send on this link; anything the peer sends here is ignored.
    ws.on("message", () => undefined);
    ws.on("unexpected-response", (_req, res) => {
      logger.error({ peer: peerId, status: res.statusCode }, "peer refused our link (check the cluster secret and peer list)");
      ws.terminate();
    });
    ws.on("error", () => undefined);
    ws.on("close", (code, reason) => {
      if (this.#ws === ws) this.#ws = null;
      const wasOpen = this.#wasOpen;
      this.#wasOpen = false;
      if (code === PEER_AUTH_CLOSE_CODE) logger.error({ peer: peerId, reason: reason.toString() }, "peer refused our hello (check the cluster secret)");
      if (code === PEER_CLUSTER_CLOSE_CODE) logger.error({ peer: peerId, code: CLUSTER_MISMATCH, reason: reason.toString() }, "peer refused our link: it belongs to another cluster");
      if (wasOpen) {
        if (code !== PEER_AUTH_CLOSE_CODE && code !== PEER_CLUSTER_CLOSE_CODE) logger.warn({ peer: peerId }, "peer link closed");
        if (!this.#closed) this.options.onLinkClosed?.(peerId);
      }
      this.#scheduleReconnect();
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#ws?.terminate();
  }

  #scheduleReconnect(): void {
    if (this.#closed) return;
    // Full jitter keeps three nodes from dialling a restarted peer in lockstep.
    const delayMs = Math.floor(Math.random() * this.#backoffMs) + 1;
    this.#backoffMs = Math.min(BACKOFF_MAX_MS, this.#backoffMs * 2);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.connect();
    }, delayMs);
  }
}

/** Why a not yet authenticated link's first frame is not a valid hello for these nonces, or null when it is. */
function checkHello(
  frame: Uint8Array,
  from: string,
  selfId: string,
  secrets: readonly string[],
  nonces: LinkNonces,
): string | null {
  const decoded = decodePeerFrame(frame);
  if (!decoded.ok) return `undecodable hello: ${decoded.error.message}`;
  const hello = decoded.messages[0];
  if (decoded.messages.length !== 1 || hello?.type !== "peerHello") return "the first frame must be a peerHello alone";
  if (hello.protocolVersion !== PROTOCOL_VERSION) return `protocol version ${hello.protocolVersion}, this node speaks ${PROTOCOL_VERSION}`;
  if (hello.from !== from || hello.to !== selfId) return "the hello names other nodes than the upgrade";
  if (secretProving(secrets, hello.proof, "dial", from, selfId, nonces) === null) return "wrong proof (wrong cluster secret, or a replayed hello)";
  return null;
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

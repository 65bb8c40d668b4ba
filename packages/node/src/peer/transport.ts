import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";
import type { Logger } from "pino";

export const PEER_PATH = "/v1/peer";
/** A link whose unsent bytes exceed this drops further frames (Raft retries) instead of growing without bound. */
export const PEER_BUFFER_MAX_BYTES = 32 * 1024 * 1024;
/** Largest frame a peer may send us. Snapshot chunks and append batches are sized well below it. */
export const PEER_FRAME_MAX_BYTES = 64 * 1024 * 1024;
const AUTH_SKEW_MAX_MS = 5 * 60_000;
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 2_000;

export interface PeerAddress {
  readonly id: string;
  /** e.g. ws://127.0.0.1:7402 or wss://... (no path). */
  readonly url: string;
}

export interface PeerTransportOptions {
  readonly selfId: string;
  readonly clusterSecret: string;
  readonly peers: readonly PeerAddress[];
  readonly logger: Logger;
  /** Called for every frame received from an authenticated peer. */
  readonly onFrame: (from: string, frame: Uint8Array) => void;
  /** Called when our link to a peer opens (e.g. to send a hello first). */
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
 * Each node dials every other node and sends only on the link it dialled;
 * it receives on the links others dialled to it. A dialling node proves it
 * knows the cluster secret with an HMAC over (from, to, time) in the upgrade
 * request's headers; a link without a valid proof is refused with 401 before
 * any frame is read. Sending is best-effort: Raft tolerates loss, so a frame
 * for a down or congested link is dropped and reported, never queued without
 * bound.
 */
export class PeerTransport {
  readonly #options: PeerTransportOptions;
  readonly #links = new Map<string, OutboundLink>();
  readonly #server: WebSocketServer;
  #closed = false;

  constructor(options: PeerTransportOptions) {
    this.#options = options;
    this.#server = new WebSocketServer({ noServer: true, maxPayload: PEER_FRAME_MAX_BYTES, perMessageDeflate: false });
    for (const peer of options.peers) {
      if (peer.id !== options.selfId) this.#links.set(peer.id, new OutboundLink(peer, options));
    }
  }

  /** Starts dialling every peer. */
  start(): void {
    for (const link of this.#links.values()) link.connect();
  }

  /** Sends one frame to a peer, or drops it (and reports) when the link cannot take it now. */
  send(peerId: string, frame: Uint8Array): void {
    const link = this.#links.get(peerId);
    if (link === undefined || !link.send(frame)) this.#options.onUnreachable?.(peerId);
  }

  /** Whether our link to `peerId` is open now. */
  isConnected(peerId: string): boolean {
    return this.#links.get(peerId)?.isOpen() ?? false;
  }

  /** Ids of peers whose outbound link is open. */
  connectedPeers(): string[] {
    return [...this.#links.entries()].filter(([, l]) => l.isOpen()).map(([id]) => id);
  }

  /** For the HTTP server's "upgrade" event on PEER_PATH. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const from = verifyPeerHeaders(req, this.#options.selfId, this.#options.clusterSecret, Date.now());
    if (typeof from !== "string" || !this.#links.has(from)) {
      const reason = typeof from === "string" ? `unknown peer ${from}` : from.reason;
      this.#options.logger.warn({ remote: req.socket.remoteAddress, reason }, "peer link refused");
      socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    this.#server.handleUpgrade(req, socket, head, (ws) => {
      this.#options.logger.info({ peer: from }, "peer link accepted");
      ws.on("message", (data, isBinary) => {
        if (!isBinary) return void ws.close(1003, "peer frames are binary");
        this.#options.onFrame(from, toBytes(data));
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

  constructor(
    readonly peer: PeerAddress,
    readonly options: PeerTransportOptions,
  ) {}

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
    const headers = peerHeaders(this.options.selfId, this.peer.id, this.options.clusterSecret, Date.now());
    const ws = new WebSocket(`${this.peer.url}${PEER_PATH}`, {
      ...this.options.clientOptions,
      headers,
      perMessageDeflate: false,
      maxPayload: PEER_FRAME_MAX_BYTES,
      handshakeTimeout: 5_000,
    });
    this.#ws = ws;
    ws.on("open", () => {
      this.#backoffMs = BACKOFF_MIN_MS;
      this.#wasOpen = true;
      this.options.logger.info({ peer: this.peer.id, url: this.peer.url }, "peer link open");
      this.options.onLinkOpen?.(this.peer.id);
    });
    // We only send on this link; anything the peer sends here is ignored.
    ws.on("message", () => undefined);
    ws.on("unexpected-response", (_req, res) => {
      this.options.logger.error({ peer: this.peer.id, status: res.statusCode }, "peer refused our link (check the cluster secret)");
    });
    ws.on("error", () => undefined);
    ws.on("close", () => {
      if (this.#ws === ws) this.#ws = null;
      const wasOpen = this.#wasOpen;
      this.#wasOpen = false;
      if (wasOpen) {
        this.options.logger.warn({ peer: this.peer.id }, "peer link closed");
        if (!this.#closed) this.options.onLinkClosed?.(this.peer.id);
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

/** Headers a dialling node sends to prove it knows the cluster secret. */
export function peerHeaders(from: string, to: string, secret: string, nowMs: number): Record<string, string> {
  return {
    "x-ratequeue-from": from,
    "x-ratequeue-time": String(nowMs),
    "x-ratequeue-proof": peerProof(from, to, nowMs, secret),
  };
}

/** The dialling node's id when its proof is valid, or why it is not. */
export function verifyPeerHeaders(
  req: IncomingMessage,
  selfId: string,
  secret: string,
  nowMs: number,
): string | { reason: string } {
  const from = req.headers["x-ratequeue-from"];
  const time = req.headers["x-ratequeue-time"];
  const proof = req.headers["x-ratequeue-proof"];
  if (typeof from !== "string" || typeof time !== "string" || typeof proof !== "string") {
    return { reason: "missing peer credentials" };
  }
  const timeMs = Number(time);
  if (!Number.isSafeInteger(timeMs) || Math.abs(nowMs - timeMs) > AUTH_SKEW_MAX_MS) {
    return { reason: "peer credentials expired (clock skew over 5 minutes?)" };
  }
  const expected = Buffer.from(peerProof(from, selfId, timeMs, secret), "hex");
  const given = Buffer.from(proof, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { reason: "wrong cluster secret" };
  }
  return from;
}

function peerProof(from: string, to: string, timeMs: number, secret: string): string {
  return createHmac("sha256", secret).update(`ratequeue-peer\n${from}\n${to}\n${timeMs}`).digest("hex");
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

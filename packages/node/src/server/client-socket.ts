import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";
import type { Logger } from "pino";
import {
  checkServerMessage,
  decodeClientFrame,
  encodeServerFrame,
  ErrorCode,
  MAX_FRAME_BYTES,
  MAX_HELLO_FRAME_BYTES,
  MAX_MESSAGES_PER_FRAME,
  type FrameEncoding,
  type ServerMessage,
} from "@ratequeue/protocol";
import type { ClientConnection, ClientSessions } from "../core/client-sessions.js";
import { CloseCode, type ClientLink } from "../core/env.js";

export const CLIENT_PATH = "/v1/client";
/** Most client connections one node holds; more are refused at upgrade with 503. */
export const CLIENT_CONNECTIONS_MAX = 10_000;
/** A client that does not drain what we send beyond this is too slow: its connection is dropped. */
export const CLIENT_BUFFER_MAX_BYTES = 8 * 1024 * 1024;
/** A connection must say hello within this. */
const HELLO_TIMEOUT_MS = 10_000;
/** Ping interval; a connection that missed a whole interval's pong is dead. */
const PING_INTERVAL_MS = 10_000;

const CONN = Symbol("rq.conn");

/**
 * Client messages one turn of the event loop handles before the connections that send more are paused until the
 * next turn. A client that writes thousands of frames at once fills the socket with megabytes that would otherwise
 * be read, decoded and proposed in one turn, holding the Raft heartbeats behind them for longer than an election
 * timeout (test/cluster/burst.test.ts).
 */
const MESSAGES_PER_TURN = 2_048;
let messagesThisTurn = 0;
const pausedSockets = new Set<TrackedSocket>();

function countTurn(ws: TrackedSocket, messages: number): void {
  if (messagesThisTurn === 0) {
    // After this turn's reads: the next turn runs its timers (Raft ticks) before it reads the resumed sockets.
    setImmediate(() => {
      messagesThisTurn = 0;
      for (const s of pausedSockets) if (s.readyState === WebSocket.OPEN) s.resume();
      pausedSockets.clear();
    });
  }
  messagesThisTurn += messages;
  if (messagesThisTurn > MESSAGES_PER_TURN && !pausedSockets.has(ws)) {
    ws.pause();
    pausedSockets.add(ws);
  }
}

type TrackedSocket = WebSocket & { [CONN]?: SocketLink; isAlive?: boolean };

/** A ws connection as the core's ClientLink: one turn's messages go out in one frame. */
class SocketLink implements ClientLink {
  #outbox: ServerMessage[] = [];
  #flushScheduled = false;
  conn: ClientConnection | null = null;
  /**
   * How this client's frames are written, from its hello (docs/protocol.md); null until the first frame is read.
   * Until then the node only ever sends an `error`, which is written plain: both decoders read that frame.
   */
  encoding: FrameEncoding | null = null;

  constructor(
    readonly ws: TrackedSocket,
    readonly sessions: ClientSessions,
  ) {}

  send(message: ServerMessage): void {
    this.#outbox.push(message);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.#flushScheduled = false;
    if (this.#outbox.length === 0 || this.ws.readyState !== WebSocket.OPEN) return;
    const messages = this.#outbox;
    this.#outbox = [];
    if (this.ws.bufferedAmount > CLIENT_BUFFER_MAX_BYTES) {
      this.ws.terminate(); // a reader this slow would make us hold its grants in memory without bound
      return;
    }
    // A frame carries at most MAX_MESSAGES_PER_FRAME messages; one turn may owe a client more answers than that.
    for (let i = 0; i < messages.length; i += MAX_MESSAGES_PER_FRAME) {
      this.ws.send(encodeFrameSafely(messages.slice(i, i + MAX_MESSAGES_PER_FRAME), this.encoding ?? "plain"), { binary: true });
    }
  }

  close(code: number, reason: string): void {
    this.flush();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
  }
}

/**
 * The client WebSocket endpoint (/v1/client): decodes frames with the
 * protocol package and hands messages to ClientSessions. A frame that
 * cannot be decoded gets an error message and closes that connection.
 */
export class ClientSocketServer {
  readonly #wss: WebSocketServer;
  readonly #sessions: ClientSessions;
  readonly #logger: Logger;
  readonly #pinger: NodeJS.Timeout;

  constructor(sessions: ClientSessions, logger: Logger) {
    this.#sessions = sessions;
    this.#logger = logger;
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
    this.#wss.on("connection", (ws: TrackedSocket, req: IncomingMessage) => this.#onConnection(ws, req));
    this.#pinger = setInterval(() => {
      for (const ws of this.#wss.clients as Set<TrackedSocket>) {
        if (ws.isAlive === false) {
          ws.terminate();
          continue;
        }
        ws.isAlive = false;
        ws.ping();
      }
    }, PING_INTERVAL_MS);
    this.#pinger.unref();
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#wss.clients.size >= CLIENT_CONNECTIONS_MAX) {
      socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#wss.emit("connection", ws, req));
  }

  get connectionCount(): number {
    return this.#wss.clients.size;
  }

  /** Resolves once every client connection has closed, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#wss.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  async close(): Promise<void> {
    clearInterval(this.#pinger);
    this.#sessions.closeAll(CloseCode.SHUTTING_DOWN, "the node is shutting down");
    for (const ws of this.#wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  #onConnection(ws: TrackedSocket, req: IncomingMessage): void {
    const link = new SocketLink(ws, this.#sessions);
    ws[CONN] = link;
    ws.isAlive = true;
    const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
    const conn = this.#sessions.connect(link, remote);
    link.conn = conn;
    const helloTimer = setTimeout(() => {
      this.#sessions.helloTimedOut(conn, "no hello within 10 s");
    }, HELLO_TIMEOUT_MS);
    helloTimer.unref();
    ws.on("pong", onPong);
    ws.on("message", onMessage);
    ws.on("close", () => {
      clearTimeout(helloTimer);
      this.#sessions.disconnected(conn);
    });
    ws.on("error", (err) => {
      this.#logger.debug({ err, remote }, "client socket error");
      ws.terminate();
    });
  }
}

/**
 * Encodes a batch; a message the encoder refuses (a bug on our side) is
 * replaced by an error message rather than taking the node down.
 */
function encodeFrameSafely(messages: ServerMessage[], encoding: FrameEncoding): Uint8Array {
  const options = { encoding };
  try {
    return encodeServerFrame(messages, options); // validates every message; the fast path
  } catch {
    const checked = messages.map((m): ServerMessage => {
      const problem = checkServerMessage(m);
      if (problem === null) return m;
      const message = `internal error: could not encode a ${m.type} message (${problem.message})`.slice(0, 1000);
      return { type: "error", code: ErrorCode.RQ_PROTOCOL, message };
    });
    try {
      return encodeServerFrame(checked, options);
    } catch (err) {
      // Never let an encoding bug escape a setImmediate and take the node down.
      const message = `internal error: could not encode a frame (${(err as Error).message})`.slice(0, 1000);
      return encodeServerFrame([{ type: "error", code: ErrorCode.RQ_PROTOCOL, message }], options);
    }
  }
}

const FIRST_FRAME = { maxFrameBytes: MAX_HELLO_FRAME_BYTES, encoding: "plain" } as const;
const PLAIN_FRAME = { encoding: "plain" } as const;
const RECORDS_FRAME = { encoding: "records" } as const;

/** Module-level listeners find their connection through the socket's symbol field: no closure per connection. */
function onMessage(this: TrackedSocket, data: WebSocket.RawData, isBinary: boolean): void {
  const link = this[CONN];
  if (link?.conn == null) return;
  if (!isBinary) {
    link.sessions.refuseFrame(link.conn, { code: ErrorCode.RQ_PROTOCOL, message: "frames must be binary (MessagePack)" }, "text frame");
    return;
  }
  // The first frame (a hello) is unauthenticated: it gets the small cap. It is never table-encoded, so the plain
  // decoder reads it whatever the client's encoding; the hello names the encoding of every later frame.
  const first = link.encoding === null;
  const options = first ? FIRST_FRAME : link.encoding === "plain" ? PLAIN_FRAME : RECORDS_FRAME;
  const result = decodeClientFrame(toBytes(data), options);
  if (first && result.ok) {
    const hello = result.messages[0];
    link.encoding = hello?.type === "hello" ? (hello.encoding ?? "records") : "plain";
  }
  if (!result.ok) return link.sessions.refuseFrame(link.conn, result.error);
  countTurn(this, result.messages.length);
  link.sessions.receive(link.conn, result.messages);
}

function onPong(this: TrackedSocket): void {
  this.isAlive = true;
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

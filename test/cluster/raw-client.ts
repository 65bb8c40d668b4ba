import WebSocket from "ws";
import {
  decodeServerFrame,
  encodeClientFrame,
  PROTOCOL_VERSION,
  type Acquire,
  type ClientMessage,
  type Granted,
  type ServerMessage,
  type Welcome,
} from "@ratequeue/protocol";

/**
 * A minimal protocol client for tests: one WebSocket, frames encoded with the
 * protocol package, every server message kept in order. No retries, no
 * leader following beyond `connectToLeader`: tests see exactly what the node
 * sends.
 */
export class RawClient {
  readonly received: ServerMessage[] = [];
  closeCode: number | null = null;
  closeReason = "";
  #waiters: { match: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[] = [];
  #closedWaiters: (() => void)[] = [];
  #nextRequestId = 1;
  welcome: Welcome | null = null;
  #heartbeatTimer: NodeJS.Timeout | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      const r = decodeServerFrame(new Uint8Array(data));
      if (!r.ok) throw new Error(`node sent an undecodable frame: ${r.error.message}`);
      for (const m of r.messages) {
        this.received.push(m);
        const i = this.#waiters.findIndex((w) => w.match(m));
        if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(m);
      }
    });
    ws.on("close", (code, reason) => {
      if (this.#heartbeatTimer !== null) clearInterval(this.#heartbeatTimer);
      this.closeCode = code;
      this.closeReason = reason.toString();
      for (const w of this.#closedWaiters.splice(0)) w();
    });
    ws.on("error", () => undefined);
  }

  /** Opens a socket without saying hello (for bad-input tests). */
  static async open(url: string): Promise<RawClient> {
    const ws = new WebSocket(`${url}/v1/client`);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new RawClient(ws);
  }

  /**
   * Connects and says hello; resolves with the first answer (welcome, notLeader or error).
   * After a welcome it heartbeats every quarter TTL, as the SDK does, until the socket closes.
   */
  static async connect(url: string, apiKey: string, extra: { resume?: string; ttlMs?: number } = {}): Promise<RawClient> {
    const c = await RawClient.open(url);
    c.send([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey, ...extra }]);
    const first = await c.next((m) => m.type === "welcome" || m.type === "notLeader" || m.type === "error");
    if (first.type === "welcome") {
      c.welcome = first;
      c.#heartbeatTimer = setInterval(() => {
        if (c.ws.readyState === WebSocket.OPEN) c.send([{ type: "heartbeat" }]);
      }, Math.max(100, Math.floor(first.ttlMs / 4)));
    }
    return c;
  }

  /** Connects to whichever of `urls` answers with a welcome, following notLeader answers. */
  static async connectToLeader(urls: readonly string[], apiKey: string, extra: { resume?: string; ttlMs?: number } = {}): Promise<RawClient> {
    const deadline = Date.now() + 20_000;
    let i = 0;
    while (Date.now() < deadline) {
      const url = urls[i++ % urls.length]!;
      try {
        const c = await RawClient.connect(url, apiKey, extra);
        if (c.welcome !== null) return c;
        const first = c.received[0];
        c.ws.terminate();
        if (first?.type === "notLeader" && first.url !== null) {
          const direct = await RawClient.connect(first.url, apiKey, extra);
          if (direct.welcome !== null) return direct;
          direct.ws.terminate();
        }
      } catch {
        // node down: try the next
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("no node welcomed the client within 20 s");
  }

  send(messages: ClientMessage[]): void {
    this.ws.send(encodeClientFrame(messages));
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.ws.send(bytes);
  }

  newRequestId(): number {
    return this.#nextRequestId++;
  }

  /** Sends one acquire under a fresh request id; returns the id. */
  acquire(resource: string, fields: Omit<Acquire, "type" | "requestId" | "resource"> = {}): number {
    const requestId = this.newRequestId();
    this.send([{ type: "acquire", requestId, resource, ...fields }]);
    return requestId;
  }

  /** Sends a release under a fresh request id; returns the id. */
  release(leaseId: string): number {
    const requestId = this.newRequestId();
    this.send([{ type: "release", requestId, leaseId }]);
    return requestId;
  }

  /** Waits for the final answer to an acquire and insists it is a grant. */
  async granted(requestId: number, timeoutMs?: number): Promise<Granted> {
    const m = await this.outcome(requestId, timeoutMs);
    if (m.type !== "granted") throw new Error(`request ${requestId}: expected granted, got ${JSON.stringify(m)}`);
    return m;
  }

  /** Continues request ids after a reconnect (resends reuse the old ids; new requests must not). */
  skipRequestIdsTo(next: number): void {
    this.#nextRequestId = Math.max(this.#nextRequestId, next);
  }

  /** The next message (including ones already received and not yet consumed by `next`) matching `match`. */
  next(match: (m: ServerMessage) => boolean, timeoutMs = 15_000): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.received)}`)), timeoutMs);
      this.#waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
      // Messages that arrived before the wait started count too.
      const earlier = this.received.find(match);
      if (earlier !== undefined) {
        this.#waiters.pop();
        clearTimeout(timer);
        resolve(earlier);
      }
    });
  }

  /** Every answer to one request id (queued, granted, rejected, ack). */
  answersTo(requestId: number): ServerMessage[] {
    return this.received.filter((m) => "requestId" in m && m.requestId === requestId);
  }

  /** The final answer (granted, rejected or ack) to a request. */
  outcome(requestId: number, timeoutMs?: number): Promise<ServerMessage> {
    return this.next((m) => "requestId" in m && m.requestId === requestId && m.type !== "queued", timeoutMs);
  }

  /** Resolves when the socket has closed; rejects if it is still open after `timeoutMs`. */
  closed(timeoutMs = 15_000): Promise<void> {
    if (this.closeCode !== null) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the socket is still open after ${timeoutMs} ms`)), timeoutMs);
      this.#closedWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Drops the connection without a goodbye (as a crashed worker would): no more heartbeats. */
  close(): void {
    if (this.#heartbeatTimer !== null) clearInterval(this.#heartbeatTimer);
    this.ws.terminate();
  }
}

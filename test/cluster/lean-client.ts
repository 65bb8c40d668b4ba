import WebSocket from "ws";
import { decodeServerFrame, encodeClientFrame, PROTOCOL_VERSION, type ClientMessage, type ServerMessage } from "@ratequeue/protocol";

type Answer = { client?: LeanClient; redirect?: string | null };

/**
 * A lean protocol client for measuring (scripts/bench/cluster.ts): answers
 * are matched to request ids through a map, where the test RawClient keeps
 * and searches every message (fine for a test, quadratic over a benchmark
 * run). Each request travels in its own frame. No heartbeats unless `heartbeat()` is called.
 */
export class LeanClient {
  readonly #waiting = new Map<number, (m: ServerMessage) => void>();
  #nextRequestId = 1;
  sessionId = "";
  closed: Promise<void>;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      const r = decodeServerFrame(new Uint8Array(data));
      if (!r.ok) throw new Error(`undecodable frame from the node: ${r.error.message}`);
      for (const m of r.messages) {
        if (!("requestId" in m) || m.type === "queued") continue;
        const resolve = this.#waiting.get(m.requestId);
        if (resolve !== undefined) {
          this.#waiting.delete(m.requestId);
          resolve(m);
        }
      }
    });
    ws.on("error", () => undefined);
    this.closed = new Promise((resolve) => ws.once("close", () => resolve()));
  }

  /** Connects to whichever node welcomes us (following notLeader), resuming `resume` if given. */
  static async connect(urls: readonly string[], apiKey: string, resume?: string, timeoutMs = 20_000): Promise<LeanClient> {
    const deadline = performance.now() + timeoutMs;
    let target: string | null = null;
    for (let i = 0; performance.now() < deadline; i++) {
      const url: string = target ?? urls[i % urls.length]!;
      target = null;
      const answer: Answer | null = await LeanClient.#hello(url, apiKey, resume).catch(() => null);
      if (answer?.client !== undefined) return answer.client;
      if (answer?.redirect != null) target = answer.redirect;
      else await new Promise((r) => setTimeout(r, 10)); // no leader yet: poll again soon
    }
    throw new Error(`no node welcomed the client within ${timeoutMs} ms`);
  }

  static #hello(url: string, apiKey: string, resume?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url}/v1/client`, { perMessageDeflate: false });
      ws.once("error", reject);
      ws.once("close", () => resolve({}));
      ws.once("open", () => {
        ws.send(encodeClientFrame([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey, ...(resume === undefined ? {} : { resume }) }]));
      });
      ws.once("message", (data: Buffer) => {
        const r = decodeServerFrame(new Uint8Array(data));
        const first = r.ok ? r.messages[0] : undefined;
        if (first?.type === "welcome") {
          ws.removeAllListeners();
          const client = new LeanClient(ws);
          client.sessionId = first.sessionId;
          resolve({ client });
        } else {
          ws.terminate();
          resolve({ redirect: first?.type === "notLeader" ? first.url : null });
        }
      });
    });
  }

  request(message: (requestId: number) => ClientMessage, requestId = this.#nextRequestId++): Promise<ServerMessage> {
    return new Promise((resolve) => {
      this.#waiting.set(requestId, resolve);
      this.ws.send(encodeClientFrame([message(requestId)]));
    });
  }

  /** Heartbeats the session every `everyMs` (as the SDK does, a third of its TTL) until closed. */
  heartbeat(everyMs: number): void {
    const timer = setInterval(() => {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeClientFrame([{ type: "heartbeat" }]));
    }, everyMs);
    timer.unref();
    this.ws.once("close", () => clearInterval(timer));
  }

  close(): void {
    this.ws.terminate();
  }
}

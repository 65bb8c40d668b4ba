import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type WebSocket from "ws";
import { WebSocketServer } from "ws";
import { decodeClientFrame, encodeServerFrame, PROTOCOL_VERSION, type ClientMessage, type ServerMessage } from "@ratequeue/protocol";
import { RateQueue } from "./client.js";

/**
 * A scripted node: it speaks the real protocol, and the test decides each
 * answer. For behaviour a real cluster produces only by chance (a repeated
 * grant after a failover), so the test can produce it every time.
 */
class ScriptedNode {
  readonly received: ClientMessage[] = [];
  readonly #wss: WebSocketServer;
  socket: WebSocket | null = null;
  /** Answers a hello instead of the default welcome, when set. */
  onHello: ((ws: WebSocket, node: ScriptedNode) => void) | null = null;

  constructor(readonly onMessage: (m: ClientMessage, node: ScriptedNode) => void) {
    this.#wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    this.#wss.on("connection", (ws) => {
      this.socket = ws;
      ws.on("message", (data: Buffer) => {
        const r = decodeClientFrame(new Uint8Array(data));
        if (!r.ok) throw new Error(r.error.message);
        for (const m of r.messages) {
          this.received.push(m);
          if (m.type === "hello" && this.onHello !== null) this.onHello(ws, this);
          else if (m.type === "hello") {
            this.send({ type: "welcome", protocolVersion: PROTOCOL_VERSION, sessionId: "s1", ttlMs: 10_000, nodeId: "n1", leader: "n1", nodes: [], resumed: false });
          } else if (m.type === "goodbye") ws.close(1000, "goodbye");
          else this.onMessage(m, this);
        }
      });
    });
  }

  static async start(onMessage: (m: ClientMessage, node: ScriptedNode) => void): Promise<ScriptedNode> {
    const node = new ScriptedNode(onMessage);
    await new Promise<void>((r) => node.#wss.once("listening", () => r()));
    nodes.push(node);
    return node;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.#wss.address() as AddressInfo).port}`;
  }

  send(...messages: ServerMessage[]): void {
    this.socket?.send(encodeServerFrame(messages));
  }

  close(): Promise<void> {
    for (const c of this.#wss.clients) c.terminate();
    return new Promise((r) => this.#wss.close(() => r()));
  }
}

const lease = (requestId: number) => ({ id: String(requestId), resource: "r", load: 0, grantedAt: 1 });
const nodes: ScriptedNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close();
});

describe("RateQueue client against a scripted node", () => {
  it("ignores a repeated grant for a lease it already handed out (never releases it behind the caller's back)", async () => {
    const node = await ScriptedNode.start((m, n) => {
      // The cluster answers a resent acquire with its original outcome: the same grant, twice.
      if (m.type === "acquire") n.send({ type: "granted", requestId: m.requestId, lease: lease(m.requestId) }, { type: "granted", requestId: m.requestId, lease: lease(m.requestId) });
      if (m.type === "release") n.send({ type: "ack", requestId: m.requestId });
    });
    const rq = new RateQueue({ url: node.url, apiKey: "k".repeat(20) });
    const held = await rq.acquire("r");
    await new Promise((r) => setTimeout(r, 100));
    expect(node.received.filter((m) => m.type === "release")).toEqual([]);
    await held.release();
    expect(node.received.filter((m) => m.type === "release")).toHaveLength(1);
    await rq.close();
  });

  it("releases a grant that arrives for an acquire the caller aborted", async () => {
    let grantLater: (() => void) | null = null;
    const node = await ScriptedNode.start((m, n) => {
      if (m.type === "acquire") grantLater = () => n.send({ type: "granted", requestId: m.requestId, lease: lease(m.requestId) });
      if (m.type === "release") n.send({ type: "ack", requestId: m.requestId });
    });
    const rq = new RateQueue({ url: node.url, apiKey: "k".repeat(20) });
    const ac = new AbortController();
    const waiting = rq.acquire("r", { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ code: "RQ_CANCELLED" });
    await new Promise((r) => setTimeout(r, 100));
    expect(node.received.some((m) => m.type === "cancel")).toBe(true);
    // The grant won the race with the cancel: the client frees it.
    grantLater!();
    await new Promise((r) => setTimeout(r, 100));
    expect(node.received.filter((m) => m.type === "release")).toHaveLength(1);
    await rq.close();
  });

  it("treats RQ_SESSION_EXPIRED as a lost session: release() resolves, an acquire is sent again in a new session", async () => {
    let acquires = 0;
    const node = await ScriptedNode.start((m, n) => {
      // The session expires on the cluster while these are in flight: the state machine knows no such session.
      if (m.type === "release") n.send({ type: "rejected", requestId: m.requestId, code: "RQ_SESSION_EXPIRED", message: "session s1 is not open" });
      if (m.type === "acquire") {
        if (++acquires === 2) n.send({ type: "rejected", requestId: m.requestId, code: "RQ_SESSION_EXPIRED", message: "session s1 is not open" });
        else n.send({ type: "granted", requestId: m.requestId, lease: lease(m.requestId) });
      }
    });
    const rq = new RateQueue({ url: node.url, apiKey: "k".repeat(20) });
    const held = await rq.acquire("r");
    await expect(held.release()).resolves.toBeUndefined();
    const next = await rq.acquire("r");
    expect(acquires).toBe(3);
    expect(node.received.filter((m) => m.type === "hello")).toHaveLength(3); // each lost session starts a new one
    expect(next.resource).toBe("r");
    await rq.close();
  });

  it("sends every acquire issued in the same tick in one frame", async () => {
    let frames = 0;
    const node = await ScriptedNode.start((m, n) => {
      if (m.type === "acquire") n.send({ type: "granted", requestId: m.requestId, lease: lease(m.requestId) });
    });
    const rq = new RateQueue({ url: node.url, apiKey: "k".repeat(20) });
    await rq.acquire("r"); // connected and welcomed
    node.socket!.on("message", () => frames++);
    await Promise.all(Array.from({ length: 50 }, () => rq.acquire("r")));
    expect(frames).toBe(1);
    await rq.close();
  });

  it("goes to the node a notLeader names at once, without waiting for the old connection to finish closing", async () => {
    const leader = await ScriptedNode.start((m, n) => {
      if (m.type === "acquire") n.send({ type: "granted", requestId: m.requestId, lease: lease(m.requestId) });
    });
    const follower = await ScriptedNode.start(() => undefined);
    // The follower names the leader, then stops reading: the client's close frame is never answered, so a client
    // that waits for the close handshake (30 s in ws) before reconnecting would still be waiting.
    follower.onHello = (ws) => {
      ws.send(encodeServerFrame([{ type: "notLeader", leader: "n2", url: leader.url }]));
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    };
    const rq = new RateQueue({ url: follower.url, apiKey: "k".repeat(20) });
    const granted = await Promise.race([rq.acquire("r"), new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
    expect(granted).not.toBeNull();
    expect(leader.received.filter((m) => m.type === "hello")).toHaveLength(1);
    await rq.close();
  });

  it("after losing its connection, tries another node before the one that was lost", async () => {
    const a = await ScriptedNode.start((m, n) => {
      if (m.type === "acquire") n.send({ type: "granted", requestId: m.requestId, lease: lease(m.requestId) });
    });
    let crashed = false;
    const b = await ScriptedNode.start((m, n) => {
      if (m.type !== "acquire") return;
      if (crashed) return n.send({ type: "granted", requestId: m.requestId, lease: lease(m.requestId) });
      crashed = true;
      n.socket!.terminate(); // the connection drops with the acquire in flight
    });
    // The first node names b as the leader; the client works with b until b's connection drops.
    let redirected = false;
    a.onHello = (ws, n) => {
      if (redirected) return n.send({ type: "welcome", protocolVersion: PROTOCOL_VERSION, sessionId: "s1", ttlMs: 10_000, nodeId: "n1", leader: "n1", nodes: [], resumed: true });
      redirected = true;
      ws.send(encodeServerFrame([{ type: "notLeader", leader: "n2", url: b.url }]));
    };
    const rq = new RateQueue({ url: [a.url, b.url], apiKey: "k".repeat(20) });
    await rq.acquire("r");
    // Round robin alone would dial b again (it is next in the list after a); the lost node is skipped once.
    expect(b.received.filter((m) => m.type === "hello")).toHaveLength(1);
    expect(a.received.filter((m) => m.type === "hello")).toHaveLength(2);
    await rq.close();
  });

  it("sends pending requests right behind the hello, and resends them after the welcome only if the resume failed", async () => {
    let welcome: (() => void) | null = null;
    const node = await ScriptedNode.start(() => undefined);
    // Never resumed: the second connection's resume of s1 fails.
    node.onHello = (_ws, n) => {
      welcome = () => n.send({ type: "welcome", protocolVersion: PROTOCOL_VERSION, sessionId: "s1", ttlMs: 10_000, nodeId: "n1", leader: "n1", nodes: [], resumed: false });
    };
    const rq = new RateQueue({ url: node.url, apiKey: "k".repeat(20) });
    const first = rq.acquire("r");
    const acquires = (): ClientMessage[] => node.received.filter((m) => m.type === "acquire");
    // The acquire reaches the node while its hello is still unanswered.
    await waitUntil(() => acquires().length === 1);
    expect(node.received.map((m) => m.type)).toEqual(["hello", "acquire"]);
    welcome!();
    await new Promise((r) => setTimeout(r, 100));
    expect(acquires()).toHaveLength(1); // handled by the node after the welcome: not sent twice
    node.send({ type: "granted", requestId: 1, lease: lease(1) });
    await first;

    // A new connection resuming s1 with a request pending: sent behind the hello; the resume fails, so it is sent again.
    const second = rq.acquire("r");
    await waitUntil(() => acquires().length === 2);
    node.socket!.terminate();
    await waitUntil(() => node.received.filter((m) => m.type === "hello").length === 2 && acquires().length === 3);
    expect(node.received.at(-2)).toMatchObject({ type: "hello", resume: "s1" });
    welcome!();
    await waitUntil(() => acquires().length === 4);
    node.send({ type: "granted", requestId: 2, lease: lease(2) });
    await second;
    await rq.close();
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

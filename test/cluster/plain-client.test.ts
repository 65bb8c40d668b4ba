/**
 * A client that speaks plain MessagePack only (docs/protocol.md, "Encodings"),
 * against real nodes: every frame it sends is written, and every frame the
 * node sends is read, by the independent standard reader and writer, which
 * refuse any msgpackr extension. The Node SDK's compact encoding is covered by
 * every other test here.
 */
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "@ratequeue/protocol";
import { readStandard, writeStandard } from "@ratequeue/protocol/testing";
import { ADMIN_KEY, Cluster, type NodeProcess } from "./harness.js";

type Wire = Record<string, unknown>;

/** A socket that keeps every decoded message; a frame the strict reader refuses fails the test. */
class PlainSocket {
  readonly received: Wire[] = [];
  readonly errors: string[] = [];
  closed: Promise<{ code: number; reason: string }>;
  #waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      try {
        this.received.push(...(readStandard(new Uint8Array(data)) as Wire[]));
      } catch (err) {
        this.errors.push((err as Error).message);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    ws.on("error", () => undefined);
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async open(url: string): Promise<PlainSocket> {
    const ws = new WebSocket(`${url}/v1/client`);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new PlainSocket(ws);
  }

  send(...records: Wire[]): void {
    this.ws.send(writeStandard(records));
  }

  async next(match: (m: Wire) => boolean, timeoutMs = 15_000): Promise<Wire> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find(match);
      if (found !== undefined) return found;
      if (this.errors.length > 0) throw new Error(`a frame that is not standard MessagePack: ${this.errors[0]}`);
      if (Date.now() > deadline) throw new Error(`no matching message; got ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}

const hello = (extra: Wire = {}): Wire => ({ t: 1, protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY, encoding: "plain", ...extra });

describe("a plain-MessagePack client against a real cluster", () => {
  let cluster: Cluster;
  let leader: NodeProcess;
  beforeAll(async () => {
    cluster = await Cluster.start({ resources: { r: { limits: [{ kind: "concurrency", limit: 1 }] } } });
    leader = await cluster.waitForLeader();
  });
  afterAll(async () => cluster?.stop());

  it("is welcomed, granted, queued, released and acked, every frame standard MessagePack", async () => {
    const c = await PlainSocket.open(leader.url);
    c.send(hello({ ttlMs: 64 * 1000 })); // ttlMs and request ids in 64-89 are what msgpackr's record table would misread
    const welcome = await c.next((m) => m.t === 1);
    expect(welcome).toMatchObject({ protocolVersion: PROTOCOL_VERSION, ttlMs: 64_000, resumed: false, nodeId: leader.id });
    c.send({ t: 2, requestId: 64, resource: "r", load: null, priority: null, lane: null, timeoutMs: null, try: null });
    c.send({ t: 2, requestId: 65, resource: "r" }); // absent optional fields may be left out
    const granted = await c.next((m) => m.t === 2 && m.requestId === 64);
    const lease = granted.lease as Wire;
    expect(lease).toMatchObject({ resource: "r" });
    await c.next((m) => m.t === 3 && m.requestId === 65);
    c.send({ t: 3, requestId: 66, leaseId: lease.id });
    await c.next((m) => m.t === 5 && m.requestId === 66);
    await c.next((m) => m.t === 2 && m.requestId === 65);
    c.send({ t: 2, requestId: 67, resource: "nope" });
    expect(await c.next((m) => m.requestId === 67)).toMatchObject({ t: 4, code: "RQ_UNKNOWN_RESOURCE" });
    c.send({ t: 8 });
    await c.closed;
    expect(c.errors).toEqual([]);
  });

  it("a follower answers notLeader in plain MessagePack", async () => {
    const follower = cluster.nodes.find((n) => n.id !== leader.id)!;
    const c = await PlainSocket.open(follower.url);
    c.send(hello());
    expect(await c.next((m) => m.t === 6)).toMatchObject({ leader: leader.id, url: leader.url });
    expect(c.errors).toEqual([]);
  });

  it("a first frame that cannot be decoded gets an error a plain reader can read, then the close", async () => {
    const c = await PlainSocket.open(leader.url);
    c.send(hello({ encoding: "json" }));
    expect(await c.next((m) => m.t === 7)).toMatchObject({ code: "RQ_PROTOCOL", message: expect.stringContaining("messages[0].encoding") });
    expect((await c.closed).code).toBe(1002); // CloseCode.PROTOCOL
    expect(c.errors).toEqual([]);
  });

  it("a later bad frame is refused as strictly as from the compact encoding, and the node still serves", async () => {
    const c = await PlainSocket.open(leader.url);
    c.send(hello());
    await c.next((m) => m.t === 1);
    c.send({ t: 2, requestId: 70, resource: "r", load: -1 });
    expect(await c.next((m) => m.t === 7)).toMatchObject({ code: "RQ_PROTOCOL", message: expect.stringContaining("messages[0].load") });
    await c.closed;
    const again = await PlainSocket.open(leader.url);
    again.send(hello());
    await again.next((m) => m.t === 1);
    again.ws.close();
  });
});

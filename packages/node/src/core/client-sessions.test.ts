import { randomBytes } from "node:crypto";
import pino from "pino";
import { describe, expect, it, vi } from "vitest";
import { PROTOCOL_VERSION, type ServerMessage } from "@ratequeue/protocol";
import { MemoryStore } from "../storage/memory-store.js";
import { keyFromSecret } from "../state/keys.js";
import { ClientConnection, ClientSessions } from "./client-sessions.js";
import type { ClientLink, NodeEnv } from "./env.js";
import { NodeCore } from "./node-core.js";
import type { Op } from "./ops.js";
import { ANSWER_KINDS, type Answer, type WireAnswer } from "./wire-answers.js";

const ADMIN_KEY = "admin-key-for-this-test";
const logger = pino({ level: "silent" });

const env: NodeEnv = {
  monotonicNow: () => performance.now(),
  wallNow: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
  defer: (fn) => void setImmediate(fn),
  randomId: () => randomBytes(12).toString("base64url"),
  randomSeed: () => randomBytes(4).readUInt32LE(0),
  sendPeer: () => undefined, // one voter: no peers
};

/** A single-voter node on `store` with its client side; resolves once it leads. */
async function startNode(store: MemoryStore, bootstrapOps: Op[] = []): Promise<{ core: NodeCore; sessions: ClientSessions }> {
  const core = new NodeCore({
    id: "n1",
    voters: ["n1"],
    store,
    env,
    logger,
    tickMs: 5,
    electionTicks: 4,
    heartbeatTicks: 1,
    snapshotEntries: 1_000_000,
    bootstrapOps,
    adminSeed: keyFromSecret(ADMIN_KEY, "admin", "admin"),
  });
  const sessions = new ClientSessions({ core, env, logger, sessionTtlMs: 60_000, nodes: [{ id: "n1", url: "ws://n1" }] });
  return { core, sessions };
}

type LinkEvent = { frame: ServerMessage } | { close: { code: number; reason: string } };

/** A client link that keeps what the node sent it (`events`: frames and closes, in order). */
function recordingLink(): ClientLink & { sent: ServerMessage[]; closed: number | null; events: LinkEvent[] } {
  const link = {
    sent: [] as ServerMessage[],
    closed: null as number | null,
    events: [] as LinkEvent[],
    send: (m: ServerMessage) => {
      link.sent.push(m);
      link.events.push({ frame: m });
    },
    close: (code: number, reason: string) => {
      link.closed = code;
      link.events.push({ close: { code, reason } });
    },
  };
  return link;
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
}

describe("ClientSessions on a new leader", () => {
  it("resumes a session opened under the previous leader even when the hello arrives before the new leader applied it", async () => {
    const store = new MemoryStore();
    const first = await startNode(store);
    await first.core.start();
    await until("the first term's leader", () => first.core.isCaughtUpLeader);
    const link = recordingLink();
    first.sessions.receive(first.sessions.connect(link, "first"), [{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]);
    await until("a welcome", () => link.sent.some((m) => m.type === "welcome"));
    const welcome = link.sent.find((m) => m.type === "welcome")!;
    if (welcome.type !== "welcome") throw new Error("unreachable");
    first.core.stop();

    // The same data folder, restarted: the session is in the log but not in the state until the new term's
    // first entry commits and everything before it is applied. A client resuming right as the node takes office
    // (the role change fires before that apply) must get its session back, not a new one.
    const second = await startNode(store);
    const resumed = recordingLink();
    let stateHadSessionAtHello: boolean | null = null;
    second.core.onRoleChange((role) => {
      if (role !== "leader" || stateHadSessionAtHello !== null) return;
      stateHadSessionAtHello = second.core.state.ownerOf(welcome.sessionId) !== undefined;
      second.sessions.receive(second.sessions.connect(resumed, "second"), [
        { type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY, resume: welcome.sessionId },
      ]);
    });
    await second.core.start();
    await until("an answer to the resume", () => resumed.sent.some((m) => m.type === "welcome" || m.type === "error"));
    second.core.stop();

    expect(stateHadSessionAtHello, "the hello came before the session was applied (else this test shows nothing)").toBe(false);
    expect(resumed.sent.find((m) => m.type === "welcome")).toMatchObject({ type: "welcome", sessionId: welcome.sessionId, resumed: true });
  });

  it("welcomes a resume of a live session at once, without a commit round, and renews it in the log", async () => {
    const node = await startNode(new MemoryStore());
    await node.core.start();
    await until("a caught-up leader", () => node.core.isCaughtUpLeader);
    const first = recordingLink();
    node.sessions.receive(node.sessions.connect(first, "first"), [{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]);
    await until("a welcome", () => first.sent.some((m) => m.type === "welcome"));
    const welcome = first.sent.find((m) => m.type === "welcome")!;
    if (welcome.type !== "welcome") throw new Error("unreachable");
    const expiresBefore = node.core.state.limiter.sessionExpiresAt(welcome.sessionId)!;
    await new Promise((r) => setTimeout(r, 20)); // the log clock moves on, so the renewal shows

    const applied = node.core.appliedIndex;
    const again = recordingLink();
    node.sessions.receive(node.sessions.connect(again, "again"), [
      { type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY, resume: welcome.sessionId },
    ]);
    // Answered in the same turn: nothing was committed in between.
    expect(again.sent[0]).toMatchObject({ type: "welcome", sessionId: welcome.sessionId, resumed: true });
    expect(node.core.appliedIndex).toBe(applied);
    await until("the renewing heartbeat to apply", () => node.core.state.limiter.sessionExpiresAt(welcome.sessionId)! > expiresBefore);
    node.core.stop();
  });

  it("keeps a session alive while its client sends requests, without heartbeats", async () => {
    const config = { limits: [{ kind: "concurrency", limit: 1_000_000 }] };
    const node = await startNode(new MemoryStore(), [{ t: "limiter", cmd: { type: "putResource", name: "r", config } }]);
    await node.core.start();
    await until("a caught-up leader", () => node.core.isCaughtUpLeader);
    const link = recordingLink();
    const conn = node.sessions.connect(link, "busy");
    node.sessions.receive(conn, [{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY, ttlMs: 1_000 }]);
    await until("a welcome", () => link.sent.some((m) => m.type === "welcome"));
    const welcome = link.sent.find((m) => m.type === "welcome")!;
    if (welcome.type !== "welcome") throw new Error("unreachable");
    // Four TTLs of requests and no heartbeat: each request shows the client alive.
    const startedAt = node.core.state.limiter.lastAt;
    for (let requestId = 1; requestId <= 400 && node.core.state.limiter.lastAt - startedAt < 4_000; requestId++) {
      node.sessions.receive(conn, [{ type: "acquire", requestId, resource: "r" }]);
      await new Promise((r) => setTimeout(r, 50));
    }
    node.core.stop();
    expect(link.closed).toBeNull();
    expect(link.sent.filter((m) => m.type === "error" || m.type === "rejected")).toEqual([]);
    expect(node.core.state.limiter.sessionExpiresAt(welcome.sessionId)).not.toBeNull();
  });

  it("holds a hello that arrives before any leader is known, and answers it when the election ends (not 'no leader, retry')", async () => {
    const node = await startNode(new MemoryStore());
    const link = recordingLink();
    await node.core.start();
    expect(node.core.leader, "no leader yet: the node has not campaigned").toBeNull();
    node.sessions.receive(node.sessions.connect(link, "early"), [{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]);
    expect(link.sent).toEqual([]); // held, not sent away
    await until("a welcome", () => link.sent.length > 0);
    node.core.stop();
    expect(link.sent[0]).toMatchObject({ type: "welcome", nodeId: "n1" });
    expect(link.closed).toBeNull();
  });

  it("refuses a request out of the bounds table before it reaches the log (a priority of 5000 is never committed)", async () => {
    const node = await startNode(new MemoryStore());
    await node.core.start();
    await until("leadership", () => node.core.isCaughtUpLeader);
    const link = recordingLink();
    const conn = node.sessions.connect(link, "c");
    node.sessions.receive(conn, [{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]);
    await until("a welcome", () => link.sent.some((m) => m.type === "welcome"));
    await until("the session applied", () => node.core.status().applied === node.core.status().lastIndex);
    const before = node.core.status().lastIndex;
    node.sessions.receive(conn, [
      { type: "acquire", requestId: 1, resource: "r", priority: 5000 },
      { type: "acquire", requestId: 2, resource: "r", load: 1.5 },
      { type: "cooldown", requestId: 3, resource: "r", retryAfterMs: 2 ** 31 + 1 },
    ]);
    await new Promise((r) => setTimeout(r, 50));
    node.core.stop();
    expect(link.sent.filter((m) => m.type === "rejected")).toEqual([
      expect.objectContaining({ requestId: 1, code: "RQ_INVALID", message: expect.stringContaining("priority") }),
      expect.objectContaining({ requestId: 2, code: "RQ_INVALID", message: expect.stringContaining("whole number") }),
      expect.objectContaining({ requestId: 3, code: "RQ_INVALID", message: expect.stringContaining("retryAfterMs") }),
    ]);
    expect(node.core.status().lastIndex, "nothing was proposed").toBe(before);
    expect(link.closed).toBeNull();
  });
  it("names a cooldown's reporter in the log: the hello's clientName, else the key", async () => {
    const config = { limits: [{ kind: "rate", limit: 10, windowMs: 60_000 }] };
    const node = await startNode(new MemoryStore(), [{ t: "limiter", cmd: { type: "putResource", name: "r", config } }]);
    const reported: unknown[] = [];
    node.core.onApply((results) => {
      for (const r of results) for (const e of r.effects) if (e.type === "cooldown") reported.push(e);
    });
    await node.core.start();
    await until("leadership", () => node.core.isCaughtUpLeader);
    const named = recordingLink();
    const anonymous = recordingLink();
    const namedConn = node.sessions.connect(named, "a");
    const anonymousConn = node.sessions.connect(anonymous, "b");
    node.sessions.receive(namedConn, [{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY, clientName: "worker-7" }]);
    node.sessions.receive(anonymousConn, [{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]);
    await until("two welcomes", () => named.sent.some((m) => m.type === "welcome") && anonymous.sent.some((m) => m.type === "welcome"));
    node.sessions.receive(namedConn, [{ type: "cooldown", requestId: 1, resource: "r", retryAfterMs: 5_000 }]);
    await until("the first cooldown applied", () => reported.length === 1);
    node.sessions.receive(anonymousConn, [{ type: "cooldown", requestId: 2, resource: "r", retryAfterMs: 9_000 }]);
    await until("the second cooldown applied", () => reported.length === 2);
    node.core.stop();
    expect(reported).toEqual([
      expect.objectContaining({ type: "cooldown", resource: "r", by: "worker-7" }),
      expect.objectContaining({ type: "cooldown", resource: "r", by: expect.stringMatching(/^key \S+$/) }),
    ]);
  });

  it("refuses a load that misses the resource's dimensions before it reaches the log (acquire and settle)", async () => {
    const config = { limits: [{ kind: "load", limit: 1000, windowMs: 60_000, dimension: "input" }, { kind: "load", limit: 1000, windowMs: 60_000, dimension: "output" }] };
    const node = await startNode(new MemoryStore(), [{ t: "limiter", cmd: { type: "putResource", name: "r", config } }]);
    await node.core.start();
    await until("leadership", () => node.core.isCaughtUpLeader);
    const link = recordingLink();
    const conn = node.sessions.connect(link, "c");
    node.sessions.receive(conn, [{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]);
    await until("a welcome", () => link.sent.some((m) => m.type === "welcome"));
    node.sessions.receive(conn, [{ type: "acquire", requestId: 1, resource: "r", load: { input: 10, output: 10 } }]);
    await until("a grant", () => link.sent.some((m) => m.type === "granted"));
    const granted = link.sent.find((m) => m.type === "granted") as Extract<ServerMessage, { type: "granted" }>;
    await until("the grant applied", () => node.core.status().applied === node.core.status().lastIndex);
    const before = node.core.status().lastIndex;
    node.sessions.receive(conn, [
      { type: "acquire", requestId: 2, resource: "r", load: 500 },
      { type: "acquire", requestId: 3, resource: "r" },
      { type: "settle", requestId: 4, leaseId: granted.lease.id, actual: 900 },
    ]);
    await new Promise((r) => setTimeout(r, 50));
    node.core.stop();
    const expected = expect.stringContaining('"input", "output"');
    expect(link.sent.filter((m) => m.type === "rejected")).toEqual([
      expect.objectContaining({ requestId: 2, code: "RQ_INVALID", message: expected }),
      expect.objectContaining({ requestId: 3, code: "RQ_INVALID", message: expected }),
      expect.objectContaining({ requestId: 4, code: "RQ_INVALID", message: expected }),
    ]);
    expect(node.core.status().lastIndex, "nothing was proposed").toBe(before);
  });
});

describe("the one road back to a client", () => {
  it("sends every frame and close through ClientConnection.answer, for every kind of answer, as documented", async () => {
    // The spy lets every call through: it only records what each connection's road was asked and what it sent.
    const road = vi.spyOn(ClientConnection.prototype, "answer");
    const config = { limits: [{ kind: "concurrency", limit: 1 }] };
    const node = await startNode(new MemoryStore(), [{ t: "limiter", cmd: { type: "putResource", name: "r", config } }]);
    const links = new Map<ClientConnection, ReturnType<typeof recordingLink>>();
    const connect = (name: string): ClientConnection => {
      const link = recordingLink();
      const conn = node.sessions.connect(link, name);
      links.set(conn, link);
      return conn;
    };
    const hello = { type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY } as const;
    const frames = (conn: ClientConnection): ServerMessage[] => links.get(conn)!.sent;
    const calls: { conn: ClientConnection; answer: Answer; wire: WireAnswer | null }[] = [];
    try {
      await node.core.start();
      await until("a caught-up leader", () => node.core.isCaughtUpLeader);

      // Answers from the applied state machine, before the log, at apply, and a replay.
      const a = connect("a");
      node.sessions.receive(a, [hello]);
      await until("a welcome", () => frames(a).length === 1);
      node.sessions.receive(a, [
        { type: "acquire", requestId: 1, resource: "r" },
        { type: "acquire", requestId: 2, resource: "r" },
        { type: "acquire", requestId: 3, resource: "nope" },
        { type: "acquire", requestId: 4, resource: "r", try: true },
        { type: "acquire", requestId: 5, resource: "r", priority: 5000 },
        { type: "settle", requestId: 6, leaseId: "999", actual: 1 },
      ]);
      await until("six answers", () => frames(a).length === 7);
      const lease = (frames(a).find((m) => m.type === "granted") as Extract<ServerMessage, { type: "granted" }>).lease;
      node.sessions.receive(a, [{ type: "acquire", requestId: 1, resource: "r" }]); // resent: the same grant
      await until("the replay", () => frames(a).length === 8);
      node.sessions.receive(a, [{ type: "cancel", requestId: 2 }]);
      await until("the cancel", () => frames(a).length === 9);
      node.sessions.receive(a, [{ type: "release", requestId: 7, leaseId: lease.id }]);
      await until("the ack", () => frames(a).length === 10);
      const sent = frames(a);
      expect(sent[0]).toMatchObject({ type: "welcome", nodeId: "n1", resumed: false });
      expect(sent.slice(1, 7)).toEqual(
        expect.arrayContaining([
          { type: "granted", requestId: 1, lease, sentAt: expect.any(Number) },
          { type: "queued", requestId: 2 },
          { type: "rejected", requestId: 3, code: "RQ_UNKNOWN_RESOURCE", message: expect.any(String) },
          { type: "rejected", requestId: 4, code: "RQ_WOULD_WAIT", message: expect.any(String) },
          { type: "rejected", requestId: 5, code: "RQ_INVALID", message: expect.stringContaining("priority") },
          { type: "rejected", requestId: 6, code: "RQ_INVALID", message: expect.stringContaining("not held") },
        ]),
      );
      expect(sent[7]).toEqual({ type: "granted", requestId: 1, lease, sentAt: expect.any(Number) });
      expect(sent[8]).toEqual({ type: "rejected", requestId: 2, code: "RQ_CANCELLED", message: expect.any(String) });
      expect(sent[9]).toEqual({ type: "ack", requestId: 7 });

      // Connection-level answers: a refused hello, a goodbye, an expired session.
      const b = connect("b");
      node.sessions.receive(b, [{ ...hello, protocolVersion: PROTOCOL_VERSION + 1 }]);
      expect(links.get(b)!.events).toEqual([
        { frame: { type: "error", code: "RQ_PROTOCOL_VERSION", message: expect.any(String) } },
        { close: { code: 1002, reason: expect.any(String) } },
      ]);
      const c = connect("c");
      node.sessions.receive(c, [hello]);
      await until("c's welcome", () => frames(c).length === 1);
      node.sessions.receive(c, [{ type: "goodbye" }]);
      await until("c closed", () => links.get(c)!.closed !== null);
      expect(links.get(c)!.events.at(-1)).toEqual({ close: { code: 1000, reason: "session closed" } });
      const d = connect("d");
      node.sessions.receive(d, [{ ...hello, ttlMs: 50 }]);
      await until("d's session to expire", () => links.get(d)!.closed !== null);
      expect(links.get(d)!.events.slice(1)).toEqual([
        { frame: { type: "error", code: "RQ_SESSION_EXPIRED", message: "the session expired: its leases were released" } },
        { close: { code: 4004, reason: "session expired" } },
      ]);

      // A proposal that fails before it applies (the node stops), then redirects and a shutdown.
      const e = connect("e");
      node.sessions.receive(e, [hello]);
      await until("e's welcome", () => frames(e).length === 1);
      node.sessions.receive(e, [{ type: "acquire", requestId: 1, resource: "r" }]);
      node.core.stop();
      await until("e closed", () => links.get(e)!.closed !== null);
      expect(links.get(e)!.events.slice(1)).toEqual([{ close: { code: 4001, reason: "the node is shutting down" } }]);
      node.sessions.goAway();
      expect(links.get(a)!.events.slice(10)).toEqual([
        { frame: { type: "notLeader", leader: null, url: null } },
        { close: { code: 4001, reason: "not the leader" } },
      ]);
      const f = connect("f");
      node.sessions.closeAll(4005, "the node is shutting down");
      expect(links.get(f)!.events).toEqual([{ close: { code: 4005, reason: "the node is shutting down" } }]);
    } finally {
      node.core.stop();
      const { calls: args, contexts, results } = road.mock;
      for (let i = 0; i < args.length; i++) calls.push({ conn: contexts[i] as ClientConnection, answer: args[i]![0], wire: results[i]!.value as WireAnswer | null });
      road.mockRestore();
    }

    // Each link got exactly what its connection's road sent, in order: nothing reached a client another way.
    for (const [conn, link] of links) {
      const viaRoad = calls.flatMap(({ conn: to, wire }): LinkEvent[] => {
        if (to !== conn || wire === null) return [];
        return [...(wire.frame === null ? [] : [{ frame: wire.frame }]), ...(wire.close === null ? [] : [{ close: wire.close }])];
      });
      expect(link.events, conn.remote).toEqual(viaRoad);
    }
    // Every kind of answer was exercised.
    expect(new Set(calls.map((call) => call.answer.kind))).toEqual(new Set(ANSWER_KINDS));
  });
});

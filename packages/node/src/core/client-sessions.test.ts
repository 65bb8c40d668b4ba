import { randomBytes } from "node:crypto";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { PROTOCOL_VERSION, type ServerMessage } from "@ratequeue/protocol";
import { MemoryStore } from "../storage/memory-store.js";
import { keyFromSecret } from "../state/keys.js";
import { ClientSessions } from "./client-sessions.js";
import type { ClientLink, NodeEnv } from "./env.js";
import { NodeCore } from "./node-core.js";
import type { Op } from "./ops.js";

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

/** A client link that keeps what the node sent it. */
function recordingLink(): ClientLink & { sent: ServerMessage[]; closed: number | null } {
  const link = {
    sent: [] as ServerMessage[],
    closed: null as number | null,
    send: (m: ServerMessage) => void link.sent.push(m),
    close: (code: number) => {
      link.closed = code;
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

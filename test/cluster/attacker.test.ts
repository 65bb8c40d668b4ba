import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateQueue, UnauthorizedError } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, httpCall as call, freePorts, sleep, waitFor } from "./harness.js";
import { RawClient } from "./raw-client.js";

// Issue #15, the attacker's suite: what a leaked worker key, a captured peer handshake and a revoked key can do
// against real processes. Every attempt is refused with its specific code, nothing reaches the log or changes the
// state, and every node stays up.
const SCOPE = { acquire: ["team-a-*"], priorityMax: 20, lanes: ["batch"], ttlMsMax: 30_000, loadMax: 100 };

/** A TCP proxy in front of one node that keeps what each peer link sent through it, up to and with its first frame. */
interface RecordingProxy {
  readonly port: number;
  /** Per proxied /v1/peer connection: the upgrade request and the dialler's first WebSocket frame (its hello). */
  readonly handshakes: Buffer[];
  close(): Promise<void>;
}

async function recordingProxy(port: number, targetPort: number): Promise<RecordingProxy> {
  const handshakes: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect({ host: "127.0.0.1", port: targetPort });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => sockets.delete(s));
    }
    let seen = Buffer.alloc(0);
    let done = false;
    inbound.on("data", (chunk: Buffer) => {
      if (done) return;
      seen = Buffer.concat([seen, chunk]);
      if (!seen.subarray(0, 12).toString("latin1").startsWith("GET /v1/peer")) {
        done = true;
        return;
      }
      const frameEnd = firstFrameEnd(seen);
      if (frameEnd !== null) {
        handshakes.push(seen.subarray(0, frameEnd));
        done = true;
      }
    });
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port,
    handshakes,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Where the first client WebSocket frame after the upgrade request ends in `bytes`, or null if it is not all there. */
function firstFrameEnd(bytes: Buffer): number | null {
  const headEnd = bytes.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  let at = headEnd + 4;
  if (bytes.length < at + 2) return null;
  let length = bytes[at + 1]! & 0x7f;
  at += 2;
  if (length === 126) {
    if (bytes.length < at + 2) return null;
    length = bytes.readUInt16BE(at);
    at += 2;
  } else if (length === 127) {
    if (bytes.length < at + 8) return null;
    length = Number(bytes.readBigUInt64BE(at));
    at += 8;
  }
  const end = at + 4 + length; // clients mask: a 4-byte key, then the payload
  return bytes.length >= end ? end : null;
}

/** Sends `bytes` on a fresh TCP connection to `port` and collects the answer until the node closes it. */
async function replay(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: "127.0.0.1", port }, () => s.write(bytes));
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("error", () => undefined);
    s.on("close", () => resolve(Buffer.concat(chunks)));
    s.setTimeout(10_000, () => s.destroy());
  });
}

/** The close code of the first close frame (server frames are unmasked) after a 101 answer, or null. */
function closeCodeAfter101(answer: Buffer): number | null {
  const headEnd = answer.indexOf("\r\n\r\n");
  if (!answer.subarray(0, 12).toString("latin1").startsWith("HTTP/1.1 101") || headEnd < 0) return null;
  for (let at = headEnd + 4; at + 4 <= answer.length; ) {
    const opcode = answer[at]! & 0x0f;
    const length = answer[at + 1]! & 0x7f; // the node's frames here are small
    if (opcode === 0x8) return answer.readUInt16BE(at + 2);
    at += 2 + length;
  }
  return null;
}


describe("an attacker with a leaked worker key, a captured peer handshake and a revoked key", () => {
  let cluster: Cluster;
  let proxy: RecordingProxy;
  let leaked = "";
  let leakedId = "";

  /** Everything an attack must not change: resources (limits, usage, leases, queues), keys, and the leader's log. */
  const snapshot = async () => {
    const leader = await cluster.waitForLeader();
    const s = (await leader.status())!;
    return {
      leader: leader.id,
      term: s.term,
      commitIndex: s.commitIndex,
      resources: (await cluster.admin("GET", "/v1/resources")).json,
      keys: (await cluster.admin("GET", "/v1/keys")).json,
    };
  };
  /** Waits until the leader's commit index stands still (no heartbeats or ticks in flight). */
  const quiet = async (): Promise<void> => {
    let last = -1;
    await waitFor(
      async () => {
        const c = (await (await cluster.waitForLeader()).status())!.commitIndex;
        const still = c === last;
        last = c;
        return still;
      },
      { everyMs: 400, what: "a quiet log" },
    );
  };

  beforeAll(async () => {
    const ports = await freePorts(4);
    // n1 is reached through a recording proxy: the other nodes dial it there, as they would across a network an
    // attacker can read.
    proxy = await recordingProxy(ports[3]!, ports[0]!);
    const peers = `n1=127.0.0.1:${proxy.port},n2=127.0.0.1:${ports[1]},n3=127.0.0.1:${ports[2]}`;
    cluster = await Cluster.start({
      ports: ports.slice(0, 3),
      extraArgs: ["--peers", peers],
      resources: {
        "team-a-chat": { limits: [{ kind: "concurrency", limit: 1 }], lanes: { interactive: { weight: 3 }, batch: { weight: 1 } } },
        "team-b-secret-project": { limits: [{ kind: "concurrency", limit: 5 }] },
      },
    });
    const key = await cluster.admin("POST", "/v1/keys", { name: "leaked worker", scope: SCOPE });
    leaked = key.json.secret;
    leakedId = key.json.id;
  });
  afterAll(async () => {
    await cluster?.stop();
    await proxy?.close();
  });

  it("a leaked worker key: admin requests, out-of-scope requests and other teams' metrics are all refused, nothing changes", async () => {
    // A session of its own, within scope (TTL within ttlMsMax: no heartbeat during the attacks).
    const c = await RawClient.connectToLeader(cluster.urls, leaked, { ttlMs: 30_000 });
    await quiet();
    const before = await snapshot();

    // The hello asking for a day-long session.
    const longSession = await RawClient.connect((await cluster.waitForLeader()).url, leaked, { ttlMs: 86_400_000 });
    expect(longSession.received[0]).toMatchObject({ type: "error", code: "RQ_FORBIDDEN" });
    await longSession.closed();
    // Out of scope: priority, a reserved lane, load, another team's resource (existing or not: the same answer).
    const outcomes = [
      await c.outcome(c.acquire("team-a-chat", { lane: "batch", priority: 1_000 })),
      await c.outcome(c.acquire("team-a-chat", { lane: "interactive" })),
      await c.outcome(c.acquire("team-a-chat", { lane: "batch", load: 101 })),
      await c.outcome(c.acquire("team-b-secret-project")),
      await c.outcome(c.acquire("team-b-no-such-thing")),
    ];
    for (const o of outcomes) expect(o).toMatchObject({ type: "rejected", code: "RQ_FORBIDDEN" });
    const [existing, missing] = outcomes.slice(3).map((o) => (o as { message: string }).message.replace(/"[^"]*"/, "NAME"));
    expect(existing).toBe(missing);
    c.send([{ type: "cooldown", requestId: c.newRequestId(), resource: "team-b-secret-project", retryAfterMs: 60_000 }]);
    expect(await c.next((m) => m.type === "rejected")).toMatchObject({ code: "RQ_FORBIDDEN" });

    // The admin API, on every node (a follower refuses it too, rather than pass it on).
    const adminCalls: [string, string, unknown?][] = [
      ["GET", "/v1/keys"],
      ["POST", "/v1/keys", { name: "mine now", scope: "admin" }],
      ["DELETE", `/v1/keys/${leakedId}`],
      ["GET", "/v1/resources"],
      ["PUT", "/v1/resources/team-a-chat", { limits: [{ kind: "concurrency", limit: 1_000 }] }],
      ["DELETE", "/v1/resources/team-b-secret-project"],
      ["GET", "/v1/members"],
      ["POST", "/v1/members", { id: "n9", address: "127.0.0.1:1" }],
      ["GET", "/v1/debug/grants"],
    ];
    for (const n of cluster.nodes) {
      for (const [method, path, body] of adminCalls) {
        const r = await call(n, leaked, method, path, body);
        expect({ node: n.id, method, path, status: r.status, code: r.json?.error?.code }).toEqual({ node: n.id, method, path, status: 403, code: "RQ_FORBIDDEN" });
      }
      // Metrics: its own team's series only; without a key, no names at all.
      const own = await (await fetch(`${n.httpUrl}/metrics`, { headers: { authorization: `Bearer ${leaked}` } })).text();
      expect(own).not.toContain("team-b");
      expect(await (await fetch(`${n.httpUrl}/metrics`)).text()).not.toMatch(/resource="/);
    }

    await sleep(300); // anything wrongly proposed would have committed by now
    expect(await snapshot()).toEqual(before);
    c.close();
  });

  it("a captured peer handshake, replayed byte for byte, is refused and changes nothing", async () => {
    await waitFor(() => proxy.handshakes.length > 0, { what: "a peer handshake through the proxy" });
    const captured = proxy.handshakes[0]!;
    expect(captured.toString("latin1")).toMatch(/^GET \/v1\/peer HTTP\/1\.1\r\n/);
    const before = await snapshot();
    const n1 = cluster.node("n1");
    const mark = n1.output.length;
    // To the node it was meant for: a fresh challenge, and the old proof does not answer it.
    expect(closeCodeAfter101(await replay(n1.port, captured))).toBe(4401);
    await waitFor(() => /peer link refused/.test(n1.output.slice(mark)), { what: "n1 to log the refusal" });
    // To another node: refused at the upgrade (it was dialled as n1).
    expect((await replay(cluster.node("n3").port, captured)).toString("latin1")).toMatch(/^HTTP\/1\.1 401/);
    expect(await snapshot()).toEqual(before);
    for (const n of cluster.nodes) expect(n.running).toBe(true);
  });

  it("a key revoked mid-session: its lease and waiter are gone, its next acquire refused, nothing granted to it", async () => {
    const victim = await cluster.admin("POST", "/v1/keys", { name: "revoked mid-session", scope: { acquire: ["team-a-*"] } });
    const rq = new RateQueue({ url: cluster.urls, apiKey: victim.json.secret });
    try {
      const lease = await rq.acquire("team-a-chat", { lane: "batch" });
      const waiting = rq.acquire("team-a-chat", { lane: "batch" }).then(
        () => "granted",
        (err: unknown) => err,
      );
      await waitFor(async () => (await cluster.resource("team-a-chat")).queued.batch === 1, { what: "the second acquire to queue" });
      expect((await cluster.admin("DELETE", `/v1/keys/${victim.json.id}`)).status).toBe(204);
      expect(await waiting).toBeInstanceOf(UnauthorizedError);
      await expect(rq.acquire("team-a-chat", { lane: "batch" })).rejects.toBeInstanceOf(UnauthorizedError);
      // Its session ended with the revocation: the slot is free and nothing waits, on every node.
      for (const n of cluster.nodes) {
        await waitFor(async () => {
          const view = await cluster.resource("team-a-chat", n);
          return view.leasesHeld === 0 && view.queued.batch === 0;
        }, { what: `${n.id} to drop the revoked key's lease and waiter` });
      }
      // Releasing it now is refused too (the key is gone), and nothing was granted to the revoked key meanwhile.
      await expect(lease.release()).rejects.toBeInstanceOf(UnauthorizedError);
      expect((await cluster.resource("team-a-chat")).leasesHeld).toBe(0);
    } finally {
      await rq.close();
    }
    // The node is up and serves others.
    const good = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY);
    await good.granted(good.acquire("team-a-chat", { lane: "batch" }));
    good.close();
    for (const n of cluster.nodes) expect(n.running).toBe(true);
  });
});

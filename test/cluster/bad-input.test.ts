import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { encodeClientFrame, encodePeerFrame, PROTOCOL_VERSION } from "@ratequeue/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster, waitFor } from "./harness.js";
import { packPlain } from "./plain-msgpack.js";
import { RawClient } from "./raw-client.js";

// SPEC "Bad input": every surface answers bad input with its specific error; the node stays up, its state does not
// change, and it still serves a good client afterwards.
describe("bad input on every surface", () => {
  let cluster: Cluster;
  let scopedSecret = "";

  /** The replicated state a bad request must not change: every resource (limits, usage, leases, queue) and key. */
  const appState = async (): Promise<unknown> => ({
    resources: (await cluster.admin("GET", "/v1/resources")).json,
    keys: (await cluster.admin("GET", "/v1/keys")).json,
  });
  /** Waits until no session is open and the log stands still, then returns the leader's commit index. */
  const quietCommitIndex = async (): Promise<number> => {
    let last = -1;
    let result = -1;
    await waitFor(
      async () => {
        const s = (await (await cluster.waitForLeader()).status())!;
        const stable = s.sessions === 0 && s.commitIndex === last;
        last = s.commitIndex;
        result = s.commitIndex;
        return stable;
      },
      { everyMs: 300, timeoutMs: 20_000, what: "a quiet cluster (no sessions, no new entries)" },
    );
    return result;
  };
  /** A well-behaved client is still served: it acquires and releases on "ok". */
  const stillServes = async (): Promise<void> => {
    const c = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY);
    const g = await c.granted(c.acquire("ok"));
    expect(await c.outcome(c.release(g.lease.id))).toMatchObject({ type: "ack" });
    c.send([{ type: "goodbye" }]);
    await c.closed();
    for (const n of cluster.nodes) expect(n.running).toBe(true);
  };
  const leaderUrl = async (): Promise<string> => (await cluster.waitForLeader()).url;
  /** Opens a raw socket to the leader, sends `frames`, and waits for the node to close it. */
  const refused = async (frames: (Uint8Array | string)[], hello = false): Promise<RawClient> => {
    const c = hello ? await RawClient.connect(await leaderUrl(), ADMIN_KEY) : await RawClient.open(await leaderUrl());
    if (hello) expect(c.welcome).not.toBeNull();
    for (const f of frames) c.sendRaw(f);
    await c.closed();
    return c;
  };
  const errorOf = (c: RawClient): unknown => c.received.find((m) => m.type === "error");

  beforeAll(async () => {
    cluster = await Cluster.start({
      sessionTtlMs: 1_000, // sessions left behind by refused connections expire quickly, so the cluster goes quiet
      resources: {
        ok: { limits: [{ kind: "concurrency", limit: 100 }] },
        "team-a-1": { limits: [{ kind: "concurrency", limit: 5 }] },
        "team-b-secret": { limits: [{ kind: "concurrency", limit: 5 }] },
      },
    });
    const key = await cluster.admin("POST", "/v1/keys", { name: "team a", scope: { acquire: ["team-a-*"] } });
    expect(key.status).toBe(201);
    scopedSecret = key.json.secret;
  });
  afterAll(async () => cluster?.stop());

  describe("client WebSocket (/v1/client), before the hello: refused, and not one log entry written", () => {
    let commitIndex = 0;
    let state: unknown;
    beforeAll(async () => {
      commitIndex = await quietCommitIndex();
      state = await appState();
    });

    const cases: [string, () => (Uint8Array | string)[], string, number][] = [
      ["undecodable bytes", () => [Uint8Array.of(0xc1, 0xff, 0x00)], "RQ_PROTOCOL", 1002],
      ["a text frame", () => ["{\"type\":\"hello\"}"], "RQ_PROTOCOL", 1002],
      ["an empty batch", () => [packPlain([])], "RQ_PROTOCOL", 1002],
      ["an unknown message type", () => [packPlain([{ t: 99, requestId: 1 }])], "RQ_PROTOCOL", 1002],
      ["a hello with a wrong type (apiKey a number)", () => [packPlain([{ t: 1, protocolVersion: PROTOCOL_VERSION, apiKey: 42 }])], "RQ_PROTOCOL", 1002],
      ["a hello without an API key", () => [packPlain([{ t: 1, protocolVersion: PROTOCOL_VERSION }])], "RQ_PROTOCOL", 1002],
      [
        "a request before the hello",
        () => [encodeClientFrame([{ type: "acquire", requestId: 1, resource: "ok" }])],
        "RQ_PROTOCOL",
        1002,
      ],
      [
        "a wrong API key",
        () => [encodeClientFrame([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: "rq_not-a-real-key-at-all" }])],
        "RQ_UNAUTHORIZED",
        4003,
      ],
      [
        "another protocol version",
        () => [packPlain([{ t: 1, protocolVersion: PROTOCOL_VERSION + 1, apiKey: ADMIN_KEY }])],
        "RQ_PROTOCOL_VERSION",
        1002,
      ],
    ];
    for (const [what, frames, code, closeCode] of cases) {
      it(`${what}: ${code}, close ${closeCode}`, async () => {
        const c = await refused(frames());
        expect(errorOf(c)).toMatchObject({ type: "error", code });
        expect((errorOf(c) as { message: string }).message.length).toBeGreaterThan(10);
        expect(c.closeCode).toBe(closeCode);
        expect(c.received.filter((m) => m.type !== "error")).toEqual([]);
        expect((await (await cluster.waitForLeader()).status())!.commitIndex).toBe(commitIndex);
      });
    }

    it("a frame over 1 MiB: closed with 1009 (message too big) before it is read", async () => {
      const c = await refused([new Uint8Array(1024 * 1024 + 1)]);
      expect(c.closeCode).toBe(1009);
      expect(c.received).toEqual([]);
    });

    it("left no trace: same commit index and state, and a good client is served", async () => {
      expect((await (await cluster.waitForLeader()).status())!.commitIndex).toBe(commitIndex);
      expect(await appState()).toEqual(state);
      await stillServes();
    });
  });

  describe("client WebSocket, after the hello: refused without a change of state", () => {
    let state: unknown;
    beforeAll(async () => {
      state = await appState();
    });

    const cases: [string, () => Uint8Array, string][] = [
      ["undecodable bytes", () => Uint8Array.of(0x92, 0xc1), "RQ_PROTOCOL"],
      ["an acquire with a string request id", () => packPlain([{ t: 2, requestId: "one", resource: "ok" }]), "RQ_PROTOCOL"],
      ["an acquire with a negative load", () => packPlain([{ t: 2, requestId: 1, resource: "ok", load: -5 }]), "RQ_PROTOCOL"],
      ["an acquire with a NaN load", () => packPlain([{ t: 2, requestId: 1, resource: "ok", load: NaN }]), "RQ_PROTOCOL"],
      ["an acquire with a bad resource name", () => packPlain([{ t: 2, requestId: 1, resource: "no spaces allowed" }]), "RQ_PROTOCOL"],
      ["an unknown message type", () => packPlain([{ t: 42 }]), "RQ_PROTOCOL"],
      ["a second hello", () => encodeClientFrame([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]), "RQ_PROTOCOL"],
      [
        "a batch with one bad message after good ones (nothing of it applies)",
        () => packPlain([{ t: 2, requestId: 1, resource: "ok" }, { t: 2, requestId: 2, resource: "ok", priority: 1.5 }]),
        "RQ_PROTOCOL",
      ],
    ];
    for (const [what, frame, code] of cases) {
      it(`${what}: ${code} and the connection closes`, async () => {
        const c = await refused([frame()], true);
        expect(errorOf(c)).toMatchObject({ type: "error", code });
        expect(c.closeCode).toBe(1002);
        expect(c.received.filter((m) => m.type !== "error" && m.type !== "welcome")).toEqual([]);
        expect(await appState()).toEqual(state);
      });
    }

    it("a frame over 1 MiB after the hello: closed with 1009, nothing of it applied", async () => {
      const c = await refused([packPlain([{ t: 2, requestId: 1, resource: "ok", lane: "x".repeat(1024 * 1024) }])], true);
      expect(c.closeCode).toBe(1009);
      expect(c.received.map((m) => m.type)).toEqual(["welcome"]);
      expect(await appState()).toEqual(state);
    });

    it("a text frame after the hello: RQ_PROTOCOL", async () => {
      const c = await refused(["hello?"], true);
      expect(errorOf(c)).toMatchObject({ code: "RQ_PROTOCOL", message: "frames must be binary (MessagePack)" });
    });

    it("requests the state machine refuses are answered, and the connection stays usable", async () => {
      const c = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY);
      const other = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY);
      try {
        const unknown = c.acquire("no-such-resource");
        expect(await c.outcome(unknown)).toMatchObject({ type: "rejected", code: "RQ_UNKNOWN_RESOURCE" });
        // An unknown lane is rejected at once with a message naming it (its code: see the test below).
        const lane = c.acquire("ok", { lane: "fast" });
        expect(await c.outcome(lane)).toMatchObject({ type: "rejected", message: expect.stringMatching(/lane "fast"/) });
        const badLease = c.release("not-a-number");
        expect(await c.outcome(badLease)).toMatchObject({ type: "rejected", code: "RQ_INVALID" });
        // Another session's lease cannot be released from here.
        const theirs = await other.granted(other.acquire("team-a-1"));
        await c.outcome(c.release(theirs.lease.id));
        expect((await cluster.resource("team-a-1")).leasesHeld).toBe(1);
        expect(await other.outcome(other.release(theirs.lease.id))).toMatchObject({ type: "ack" });
        expect((await cluster.resource("team-a-1")).leasesHeld).toBe(0);
        expect(c.closeCode).toBeNull();
      } finally {
        c.close();
        other.close();
      }
    });

    it("an unknown lane is RQ_UNKNOWN_RESOURCE (SPEC: unknown resource or lane)", async () => {
      const c = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY);
      try {
        expect(await c.outcome(c.acquire("ok", { lane: "fast" }))).toMatchObject({ type: "rejected", code: "RQ_UNKNOWN_RESOURCE" });
      } finally {
        c.close();
      }
    });

    it("left no trace, and a good client is served", async () => {
      expect(await appState()).toEqual(state);
      await stillServes();
    });
  });

  describe("API keys and scopes", () => {
    it("a key scoped to other resources gets RQ_FORBIDDEN and learns nothing about what exists", async () => {
      const c = await RawClient.connectToLeader(cluster.urls, scopedSecret);
      expect(c.welcome).not.toBeNull();
      const existing = await c.outcome(c.acquire("team-b-secret"));
      const missing = await c.outcome(c.acquire("team-b-nothing"));
      expect(existing).toMatchObject({ type: "rejected", code: "RQ_FORBIDDEN" });
      expect(missing).toMatchObject({ type: "rejected", code: "RQ_FORBIDDEN" });
      // The same answer whether the resource exists or not (up to its own name).
      const strip = (m: unknown, name: string): string => (m as { message: string }).message.replace(name, "<name>");
      expect(strip(existing, "team-b-secret")).toBe(strip(missing, "team-b-nothing"));
      const cooldown = c.newRequestId();
      c.send([{ type: "cooldown", requestId: cooldown, resource: "team-b-secret", retryAfterMs: 60_000 }]);
      expect(await c.outcome(cooldown)).toMatchObject({ type: "rejected", code: "RQ_FORBIDDEN" });
      expect((await cluster.resource("team-b-secret")).cooldownUntil).toBeNull();
      // In scope: served as usual (and an unknown in-scope name is simply unknown).
      await c.granted(c.acquire("team-a-1"));
      expect(await c.outcome(c.acquire("team-a-2"))).toMatchObject({ type: "rejected", code: "RQ_UNKNOWN_RESOURCE" });
      c.close();
      // The admin API is not for acquire-only keys.
      const res = await fetch(`${(await cluster.waitForLeader()).httpUrl}/v1/resources`, { headers: { authorization: `Bearer ${scopedSecret}` } });
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: { code: "RQ_FORBIDDEN" } });
    });
  });

  describe("peer WebSocket (/v1/peer)", () => {
    const peerUpgrade = async (headers: Record<string, string>): Promise<number> => {
      const ws = new WebSocket(`${await leaderUrl()}/v1/peer`, { headers });
      return new Promise((resolve, reject) => {
        ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.once("open", () => reject(new Error("the node accepted a peer link without the secret")));
        ws.once("error", () => undefined);
      });
    };

    it("without peer headers, from an unknown node, or with a wrong or replayed hello: refused, and nothing changes", async () => {
      const commitIndex = await quietCommitIndex();
      const before = (await (await cluster.waitForLeader()).status())!;
      const leader = await cluster.waitForLeader();
      const nonce = randomBytes(32).toString("base64url");
      expect(await peerUpgrade({})).toBe(401);
      expect(await peerUpgrade({ "x-ratequeue-from": leader.id, "x-ratequeue-to": leader.id, "x-ratequeue-nonce": nonce })).toBe(401);
      expect(await peerUpgrade({ "x-ratequeue-from": "n2", "x-ratequeue-to": "n9", "x-ratequeue-nonce": nonce })).toBe(401);
      // Any other id with a fresh nonce gets the node's challenge (a node it does not know yet may prove itself: see
      // src/peer/transport.ts); a hello whose proof was not made with the secret over this connection's nonces is
      // refused with 4401 and never reaches Raft, from a member's id or an unknown one.
      const member = cluster.nodes.find((n) => n.id !== leader.id)!.id;
      for (const from of [member, "n9"]) {
        const ws = new WebSocket(`${await leaderUrl()}/v1/peer`, { headers: { "x-ratequeue-from": from, "x-ratequeue-to": leader.id, "x-ratequeue-nonce": nonce } });
        ws.on("error", () => undefined);
        await new Promise((resolve) => ws.once("open", resolve));
        const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
        ws.send(encodePeerFrame([{ type: "peerHello", protocolVersion: PROTOCOL_VERSION, from, to: leader.id, proof: randomBytes(32) }]));
        expect(await closed).toBe(4401);
      }
      const after = (await leader.status())!;
      expect(after.commitIndex).toBe(commitIndex);
      expect(after.term).toBe(before.term);
      expect(after.leader).toBe(before.leader);
    });

    it("an upgrade on an unknown path is 404", async () => {
      const ws = new WebSocket(`${await leaderUrl()}/v1/nothing`);
      const status = await new Promise<number>((resolve) => {
        ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.once("error", () => resolve(-1));
      });
      expect(status).toBe(404);
    });
  });

  describe("admin HTTP API", () => {
    let commitIndex = 0;
    let state: unknown;
    beforeAll(async () => {
      commitIndex = await quietCommitIndex();
      state = await appState();
    });

    const call = async (
      method: string,
      path: string,
      init: { body?: string; type?: string; auth?: string | null } = {},
    ): Promise<{ status: number; json: any }> => {
      const leader = await cluster.waitForLeader();
      const headers: Record<string, string> = {};
      if (init.auth !== null) headers.authorization = init.auth ?? `Bearer ${ADMIN_KEY}`;
      if (init.type !== undefined) headers["content-type"] = init.type;
      const res = await fetch(`${leader.httpUrl}${path}`, { method, headers, ...(init.body === undefined ? {} : { body: init.body }) });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, json };
    };
    const json = "application/json";
    const goodBody = JSON.stringify({ limits: [{ kind: "concurrency", limit: 1 }] });

    const cases: [string, () => Promise<{ status: number; json: any }>, number, string, RegExp?][] = [
      ["no Authorization header", () => call("GET", "/v1/resources", { auth: null }), 401, "RQ_UNAUTHORIZED"],
      ["a wrong admin key", () => call("PUT", "/v1/resources/x", { auth: "Bearer wrong-key-0123456789", body: goodBody, type: json }), 401, "RQ_UNAUTHORIZED"],
      ["a malformed Authorization header", () => call("GET", "/v1/keys", { auth: "Basic abc" }), 401, "RQ_UNAUTHORIZED"],
      ["a body that is not JSON", () => call("PUT", "/v1/resources/x", { body: "{limits: [", type: json }), 400, "RQ_INVALID", /not valid JSON/],
      ["a wrong content type", () => call("PUT", "/v1/resources/x", { body: goodBody, type: "text/plain" }), 415, "RQ_INVALID"],
      ["no content type", () => call("PUT", "/v1/resources/x", { body: goodBody }), 415, "RQ_INVALID"],
      [
        "an oversize body",
        () => call("PUT", "/v1/resources/x", { body: JSON.stringify({ limits: [], pad: "x".repeat(300 * 1024) }), type: json }),
        413,
        "RQ_INVALID",
      ],
      [
        "an unknown field",
        () => call("PUT", "/v1/resources/x", { body: JSON.stringify({ limits: [{ kind: "concurrency", limit: 1 }], colour: "red" }), type: json }),
        400,
        "RQ_INVALID",
        /colour/,
      ],
      [
        "a negative limit",
        () => call("PUT", "/v1/resources/x", { body: JSON.stringify({ limits: [{ kind: "rate", limit: -1, windowMs: 1000 }] }), type: json }),
        400,
        "RQ_INVALID",
        /limit/,
      ],
      [
        "a zero window",
        () => call("PUT", "/v1/resources/x", { body: JSON.stringify({ limits: [{ kind: "rate", limit: 5, windowMs: 0 }] }), type: json }),
        400,
        "RQ_INVALID",
        /windowMs/,
      ],
      [
        "an unknown limit kind",
        () => call("PUT", "/v1/resources/x", { body: JSON.stringify({ limits: [{ kind: "vibes", limit: 5 }] }), type: json }),
        400,
        "RQ_INVALID",
        /kind/,
      ],
      ["a JSON array body", () => call("PUT", "/v1/resources/x", { body: "[]", type: json }), 400, "RQ_INVALID"],
      ["a bad resource name", () => call("PUT", "/v1/resources/bad%20name", { body: goodBody, type: json }), 400, "RQ_INVALID"],
      ["malformed percent-encoding", () => call("GET", "/v1/resources/%E0%A4%A"), 400, "RQ_INVALID"],
      ["an unknown route", () => call("GET", "/v1/nothing"), 404, "RQ_NOT_FOUND"],
      ["an unknown resource", () => call("GET", "/v1/resources/missing"), 404, "RQ_UNKNOWN_RESOURCE"],
      ["DELETE of an unknown resource", () => call("DELETE", "/v1/resources/missing"), 404, "RQ_UNKNOWN_RESOURCE"],
      ["DELETE of an unknown key", () => call("DELETE", "/v1/keys/0123456789abcdef"), 404, "RQ_NOT_FOUND"],
      ["a wrong method on a resource", () => call("PATCH", "/v1/resources/ok", { body: goodBody, type: json }), 405, "RQ_INVALID"],
      ["a wrong method on the list", () => call("POST", "/v1/resources", { body: goodBody, type: json }), 405, "RQ_INVALID"],
      ["a wrong method on keys", () => call("PUT", "/v1/keys", { body: "{}", type: json }), 405, "RQ_INVALID"],
      ["POST /v1/status", () => call("POST", "/v1/status", { body: "{}", type: json }), 405, "RQ_INVALID"],
      ["DELETE /healthz", () => call("DELETE", "/healthz"), 405, "RQ_INVALID"],
      ["PUT /metrics", () => call("PUT", "/metrics", { body: "{}", type: json }), 405, "RQ_INVALID"],
      [
        "a key body with an unknown scope",
        () => call("POST", "/v1/keys", { body: JSON.stringify({ name: "k", scope: "everything" }), type: json }),
        400,
        "RQ_INVALID",
      ],
      [
        "a key body with an unknown field",
        () => call("POST", "/v1/keys", { body: JSON.stringify({ name: "k", scope: "admin", secret: "mine" }), type: json }),
        400,
        "RQ_INVALID",
        /secret/,
      ],
    ];
    for (const [what, send, status, code, detail] of cases) {
      it(`${what}: ${status} ${code}`, async () => {
        const r = await send();
        expect(r.status).toBe(status);
        expect(r.json).toMatchObject({ error: { code } });
        expect(typeof r.json.error.message).toBe("string");
        if (detail !== undefined) expect(JSON.stringify(r.json.error)).toMatch(detail);
        expect((await (await cluster.waitForLeader()).status())!.commitIndex).toBe(commitIndex);
      });
    }

    it("left no trace: same commit index and state, and a good client is served", async () => {
      expect((await (await cluster.waitForLeader()).status())!.commitIndex).toBe(commitIndex);
      expect(await appState()).toEqual(state);
      await stillServes();
      for (const n of cluster.nodes) expect((await fetch(`${n.httpUrl}/healthz`)).status).toBe(200);
    });
  });
});

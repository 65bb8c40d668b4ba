import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "@ratequeue/protocol";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, sleep, type NodeProcess } from "./harness.js";
import { RawClient } from "./raw-client.js";

/**
 * docs/protocol.md section 6: a client may send requests right behind its hello, before the welcome (a
 * reconnecting client resends its unanswered requests with the hello, one round trip sooner). The node handles
 * them once it welcomes the client, and drops them with a hello it refuses or a session it cannot resume.
 */
describe("requests sent before the welcome", () => {
  let cluster: Cluster;
  let leader: NodeProcess;
  beforeAll(async () => {
    cluster = await Cluster.start({
      resources: { r: { limits: [{ kind: "concurrency", limit: 100 }] }, one: { limits: [{ kind: "concurrency", limit: 1 }] } },
    });
    leader = await cluster.waitForLeader();
  });
  afterAll(async () => cluster?.stop());

  it("are served after the welcome, in order, on a new session and on a resumed one", async () => {
    const c = await RawClient.open(leader.url);
    c.send([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]);
    c.send([
      { type: "acquire", requestId: 1, resource: "r" },
      { type: "acquire", requestId: 2, resource: "one" },
    ]);
    c.send([{ type: "acquire", requestId: 3, resource: "one" }]);
    const welcome = await c.next((m) => m.type === "welcome");
    expect(welcome).toMatchObject({ type: "welcome", resumed: false });
    await c.granted(1);
    await c.granted(2);
    expect(await c.next((m) => m.type === "queued")).toMatchObject({ requestId: 3 });
    // The welcome comes before any answer to the requests that followed the hello.
    expect(c.received[0]!.type).toBe("welcome");
    const sessionId = (welcome as { sessionId: string }).sessionId;
    c.close();

    // Resumed on a new connection: the resend of request 3 and a new release go behind the hello.
    const lease2 = (c.answersTo(2)[0] as { lease: { id: string } }).lease.id;
    const d = await RawClient.open(leader.url);
    d.send([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY, resume: sessionId }]);
    d.send([
      { type: "acquire", requestId: 3, resource: "one" },
      { type: "release", requestId: 4, leaseId: lease2 },
    ]);
    expect(await d.next((m) => m.type === "welcome")).toMatchObject({ resumed: true, sessionId });
    expect(await d.outcome(4)).toMatchObject({ type: "ack" });
    await d.granted(3);
    d.close();
  });

  it("are dropped with a hello the node refuses, and change nothing", async () => {
    const before = await cluster.resource("one");
    const c = await RawClient.open(leader.url);
    c.send([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: "rq_not-a-real-key-0123456789" }]);
    c.send([{ type: "acquire", requestId: 1, resource: "r" }]);
    expect(await c.next((m) => m.type === "error")).toMatchObject({ code: "RQ_UNAUTHORIZED" });
    await c.closed();
    expect(c.closeCode).toBe(4003);
    expect(c.answersTo(1)).toEqual([]);

    // A request before any hello is still refused, as is a second hello behind the first.
    const d = await RawClient.open(leader.url);
    d.send([{ type: "acquire", requestId: 1, resource: "r" }]);
    expect(await d.next((m) => m.type === "error")).toMatchObject({ code: "RQ_PROTOCOL" });
    await d.closed();
    const e = await RawClient.open(leader.url);
    e.send([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]);
    e.send([{ type: "acquire", requestId: 1, resource: "r" }, { type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]);
    expect(await e.next((m) => m.type === "error")).toMatchObject({ code: "RQ_PROTOCOL" });
    await e.closed();
    expect(e.closeCode).toBe(1002);

    // Nothing any of them sent was applied: no lease is held on r beyond the earlier test's, none on one.
    await sleep(300);
    const after = await cluster.resource("one");
    expect(after.leasesHeld).toBe(before.leasesHeld);
    expect((await cluster.resource("r")).leasesHeld).toBe(1);
  });

  it("are dropped when the session to resume is gone: the client resends them in the new one", async () => {
    const c = await RawClient.open(leader.url);
    c.send([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY, resume: "no-such-session" }]);
    c.send([{ type: "acquire", requestId: 7, resource: "r" }]);
    expect(await c.next((m) => m.type === "welcome")).toMatchObject({ resumed: false });
    await sleep(300);
    expect(c.answersTo(7)).toEqual([]);
    c.send([{ type: "acquire", requestId: 7, resource: "r" }]);
    await c.granted(7);
    c.close();
  });

  it("the SDK sends its pending requests behind the hello after a leader's SIGTERM, none lost or granted twice", async () => {
    const rq = new RateQueue({ url: cluster.urls.join(","), apiKey: ADMIN_KEY });
    try {
      const held = await rq.acquire("one");
      const waiting = rq.acquire("one");
      await sleep(200);
      const old = await cluster.waitForLeader();
      await old.kill("SIGTERM");
      leader = await cluster.waitForLeader(20_000, old.id);
      await held.release();
      const lease = await waiting;
      expect(lease.resource).toBe("one");
      await lease.release();
      expect((await cluster.resource("one")).leasesHeld).toBe(0);
    } finally {
      await rq.close();
    }
  });
});

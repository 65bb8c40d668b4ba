import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CancelledError, RateQueue, TimeoutError, UnknownResourceError, UngrantableError, ForbiddenError, UnauthorizedError } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster } from "../cluster/harness.js";

describe("the SDK against a real three-node cluster", () => {
  let cluster: Cluster;
  let rq: RateQueue;
  beforeAll(async () => {
    cluster = await Cluster.start({
      resources: {
        "openai-gpt4o": {
          limits: [
            { kind: "rate", limit: 1000, windowMs: 60_000 },
            { kind: "load", limit: 200_000, windowMs: 60_000, window: "bucket" },
            { kind: "concurrency", limit: 10 },
          ],
          lanes: { interactive: { weight: 3 }, batch: { weight: 1 } },
          lanePolicy: "shared",
        },
        "anthropic-claude": {
          limits: [
            { kind: "load", dimension: "input", limit: 40_000, windowMs: 60_000 },
            { kind: "load", dimension: "output", limit: 8_000, windowMs: 60_000 },
          ],
        },
        single: { limits: [{ kind: "concurrency", limit: 1 }] },
      },
    });
    rq = new RateQueue({ url: cluster.urls.join(","), apiKey: ADMIN_KEY });
  });
  afterAll(async () => {
    await rq?.close();
    await cluster?.stop();
  });

  it("runs the SPEC sample as written", async () => {
    const signal = new AbortController().signal;
    const client = { chat: { completions: { create: async (_: object) => ({ id: "reply" }) } } };
    const reply = await rq.acquire(
      "openai-gpt4o",
      { load: 1200, priority: 10, lane: "interactive", timeoutMs: 30_000, signal },
      async (_lease) => client.chat.completions.create({ /* ... */ }),
    );
    expect(reply).toEqual({ id: "reply" });
    {
      await using lease = await rq.acquire("anthropic-claude", { load: { input: 1200, output: 1024 } });
      await lease.settle({ output: 312 });
      await lease.release();
    }
    const maybe = await rq.tryAcquire("openai-gpt4o", { load: 50 });
    expect(maybe).not.toBeNull();
    await maybe!.release();
    await rq.reportLimited("openai-gpt4o", { retryAfterMs: 1 });
  });

  it("the callback form returns before its release commits, yet the release is applied before this client's next request", async () => {
    for (let i = 0; i < 20; i++) {
      expect(await rq.acquire("single", {}, () => i)).toBe(i);
      // tryAcquire never waits: it is granted only if the slot is free when it applies, i.e. after the release.
      const next = await rq.tryAcquire("single");
      expect(next, `round ${i}`).not.toBeNull();
      await next!.release();
    }
  });

  it("releases in the callback form when fn throws, and the handle form on dispose", async () => {
    await expect(rq.acquire("single", {}, async () => { throw new Error("boom"); })).rejects.toThrow("boom");
    const lease = await rq.acquire("single", { timeoutMs: 5_000 }); // would time out if the slot were still held
    {
      await using _held = lease;
      expect(await rq.tryAcquire("single")).toBeNull();
    }
    expect(lease.released).toBe(true);
    const again = await rq.tryAcquire("single");
    expect(again).not.toBeNull();
    await again!.release();
  });

  it("cancels a waiter by AbortSignal and the server drops it", async () => {
    const held = await rq.acquire("single");
    const ac = new AbortController();
    const waiting = rq.acquire("single", { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 200));
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    await held.release();
    // Had the cancelled waiter stayed queued it would take the slot now.
    const next = await rq.acquire("single", { timeoutMs: 5_000 });
    const view = (await cluster.admin("GET", "/v1/resources/single")).json;
    expect(view.leasesHeld).toBe(1);
    await next.release();
  });

  it("times out in the queue with RQ_TIMEOUT", async () => {
    const held = await rq.acquire("single");
    const err = await rq.acquire("single", { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).code).toBe("RQ_TIMEOUT");
    // The cluster decided it: the error names the request as the cluster's log does.
    expect((err as TimeoutError).request).toEqual({ sessionId: held.sessionId, requestId: expect.any(Number) });
    await held.release();
  });

  it("errors carry their codes", async () => {
    await expect(rq.acquire("no-such-resource")).rejects.toMatchObject({ code: "RQ_UNKNOWN_RESOURCE" });
    await expect(rq.acquire("no-such-resource")).rejects.toBeInstanceOf(UnknownResourceError);
    await expect(rq.acquire("anthropic-claude", { load: { input: 50_000, output: 0 } })).rejects.toBeInstanceOf(UngrantableError);
    await expect(rq.acquire("openai-gpt4o", { load: -1 })).rejects.toMatchObject({ code: "RQ_INVALID", request: null }); // the SDK refused it
    const bad = new RateQueue({ url: cluster.urls, apiKey: "not-a-real-key-000000" });
    await expect(bad.acquire("openai-gpt4o")).rejects.toBeInstanceOf(UnauthorizedError);
    await bad.close();
    const created = await cluster.admin("POST", "/v1/keys", { name: "scoped", scope: { acquire: ["openai-*"] } });
    const scoped = new RateQueue({ url: cluster.urls, apiKey: created.json.secret });
    await expect(scoped.acquire("anthropic-claude")).rejects.toBeInstanceOf(ForbiddenError);
    const ok = await scoped.acquire("openai-gpt4o", { load: 1 });
    await ok.release();
    await scoped.close();
  });
});

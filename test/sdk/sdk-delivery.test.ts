import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { reportOf } from "@ratequeue/protocol/testing";
import { ADMIN_KEY, Cluster, waitFor, type NodeProcess } from "../cluster/harness.js";
import { packPlain } from "../cluster/plain-msgpack.js";
import { RawClient } from "../cluster/raw-client.js";

/**
 * SPEC guarantee 7: the grant-to-send delay the SDKs observe is visible to operators. Real nodes, the real SDK,
 * its reports on the wire; /metrics and the node's log are read as an operator would.
 */

/** A sample's value in Prometheus text, or null when the series is absent. */
function sample(text: string, series: string): number | null {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return null;
}

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the worker's event loop is blocked: nothing it was sent is handled meanwhile
  }
}

const BLOCK_MS = 700;
const SLOW_MARGIN_MS = 100;

describe("grant-to-send delay: measured by the SDK, exported by the node", () => {
  let cluster: Cluster;
  let leader: NodeProcess;
  const metrics = async (): Promise<string> =>
    (await fetch(`${leader.httpUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();

  beforeAll(async () => {
    cluster = await Cluster.start({
      resources: {
        fast: { limits: [{ kind: "rate", limit: 10_000, windowMs: 60_000 }] },
        // 4 grants per 300 ms: four waiters become grantable at the same tick, so they are granted in one frame.
        slow: { limits: [{ kind: "rate", limit: 4, windowMs: 300, deliveryMarginMs: SLOW_MARGIN_MS }] },
        other: { limits: [{ kind: "concurrency", limit: 5 }] },
      },
    });
    leader = await cluster.waitForLeader();
  });
  afterAll(async () => cluster?.stop());

  it("a worker's delays show up in /metrics for its resource, with the resource's margin", async () => {
    const rq = new RateQueue({ url: cluster.urls.join(","), apiKey: ADMIN_KEY, deliveryReportMs: 200 });
    try {
      for (let i = 0; i < 25; i++) await rq.acquire("fast", {}, () => undefined);
      await waitFor(async () => sample(await metrics(), 'ratequeue_grant_delivery_seconds_count{resource="fast"}') === 25, {
        what: "25 delays of resource fast in /metrics",
      });
      const text = await metrics();
      expect(sample(text, 'ratequeue_grant_delivery_seconds_bucket{resource="fast",le="+Inf"}')).toBe(25);
      expect(sample(text, 'ratequeue_grant_delivery_seconds_sum{resource="fast"}')).toBeGreaterThanOrEqual(0);
      expect(sample(text, 'ratequeue_grant_delivery_max_seconds{resource="fast"}')).not.toBeNull();
      // The default margin of a one-minute window is 1 s; the slow resource's is as configured.
      expect(sample(text, 'ratequeue_delivery_margin_seconds{resource="fast"}')).toBe(1);
      expect(sample(text, 'ratequeue_delivery_margin_seconds{resource="slow"}')).toBe(SLOW_MARGIN_MS / 1000);
      expect(sample(text, 'ratequeue_grant_delivery_seconds_count{resource="slow"}')).toBeNull();
      const status = (await (await fetch(`${leader.httpUrl}/v1/status`)).json()) as { grantDelivery: { grants: number } };
      expect(status.grantDelivery.grants).toBe(25);
    } finally {
      await rq.close();
    }
  });

  it("a worker that blocks its event loop with grants waiting raises the max and the histogram, and the node warns", async () => {
    const rq = new RateQueue({ url: cluster.urls.join(","), apiKey: ADMIN_KEY, deliveryReportMs: 200 });
    try {
      // Four grants at one stamp use the window up; four more wait until those leave it, then are granted together.
      await Promise.all([1, 2, 3, 4].map(() => rq.acquire("slow")));
      let blocked = false;
      const first = rq.acquire("slow", {}, () => {
        // The first of the frame's grants: its worker blocks before sending, with the other three already received.
        busyWait(BLOCK_MS);
        blocked = true;
      });
      const rest = [1, 2, 3].map(() => rq.acquire("slow", {}, () => blocked));
      await first;
      const seenAfterBlock = await Promise.all(rest);
      // Those granted in the same frame as the first ran after its block (a later frame would too).
      expect(seenAfterBlock).toEqual([true, true, true]);
      await waitFor(async () => sample(await metrics(), 'ratequeue_grant_delivery_seconds_count{resource="slow"}') === 8, {
        what: "8 delays of resource slow in /metrics",
      });
      const text = await metrics();
      // Lower bounds only: the three grants handled after the block waited at least the block.
      expect(sample(text, 'ratequeue_grant_delivery_max_seconds{resource="slow"}')).toBeGreaterThanOrEqual(BLOCK_MS / 1000);
      const upTo500ms = sample(text, 'ratequeue_grant_delivery_seconds_bucket{resource="slow",le="0.5"}');
      expect(upTo500ms).not.toBeNull();
      expect(upTo500ms!).toBeLessThanOrEqual(8 - 3);
      expect(sample(text, 'ratequeue_grant_delivery_seconds_sum{resource="slow"}')).toBeGreaterThanOrEqual((3 * BLOCK_MS) / 1000);
      const warning = await leader.waitForOutput(/grant-to-send delay beyond the resource's delivery margin/);
      expect(warning).toContain('"resource":"slow"');
      const status = (await (await fetch(`${leader.httpUrl}/v1/status`)).json()) as { grantDelivery: { recentMaxMs: number; resourcesNearMargin: number } };
      expect(status.grantDelivery.recentMaxMs).toBeGreaterThanOrEqual(BLOCK_MS);
      expect(status.grantDelivery.resourcesNearMargin).toBeGreaterThanOrEqual(1);
    } finally {
      await rq.close();
    }
  });

  it("refuses bad reports with a specific error and changes nothing", async () => {
    const before = await metrics();
    const countOf = (text: string): number | null => sample(text, 'ratequeue_grant_delivery_seconds_count{resource="other"}');
    expect(countOf(before)).toBeNull();

    // Unknown resource: rejected, the connection stays.
    const c = await RawClient.connect(leader.url, ADMIN_KEY);
    const unknown = c.newRequestId();
    c.send([reportOf(unknown, "no-such-resource", [5, 7])]);
    expect(await c.outcome(unknown)).toMatchObject({ type: "rejected", code: "RQ_UNKNOWN_RESOURCE" });

    // A key without scope on the resource: rejected.
    const key = await cluster.admin("POST", "/v1/keys", { name: "fast only", scope: { acquire: ["fast"] } });
    expect(key.status).toBe(201);
    const scoped = await RawClient.connect(leader.url, key.json.secret);
    const forbidden = scoped.newRequestId();
    scoped.send([reportOf(forbidden, "other", [5])]);
    expect(await scoped.outcome(forbidden)).toMatchObject({ type: "rejected", code: "RQ_FORBIDDEN" });
    scoped.close();

    // Fields that contradict each other (buckets adding up to 2, count 3), batched with a good report: the frame is
    // refused whole (RQ_PROTOCOL naming the field, close 1002), so the good report in it is not counted either.
    const good = reportOf(c.newRequestId(), "other", [5, 9]);
    const bad = { ...reportOf(c.newRequestId(), "other", [5, 9]), count: 3, sumMs: 14 };
    c.sendRaw(rawFrame([good, bad]));
    const error = await c.next((m) => m.type === "error");
    expect(error).toMatchObject({ type: "error", code: "RQ_PROTOCOL" });
    expect((error as { message: string }).message).toContain("messages[1].buckets");
    await c.closed();
    expect(c.closeCode).toBe(1002);

    const after = await metrics();
    expect(countOf(after)).toBeNull();
    expect(after).not.toContain("no-such-resource");

    // A good report alone is counted: the refusals above were about the reports, not the resource.
    const ok = await RawClient.connect(leader.url, ADMIN_KEY);
    const id = ok.newRequestId();
    ok.send([reportOf(id, "other", [5, 9])]);
    expect(await ok.outcome(id)).toMatchObject({ type: "ack" });
    expect(countOf(await metrics())).toBe(2);
    ok.close();
  });
});

/** A plain MessagePack frame of report records (small integers only: readable by the records decoder), bypassing the encoder's checks. */
function rawFrame(reports: readonly ReturnType<typeof reportOf>[]): Uint8Array {
  return packPlain(reports.map(({ type: _type, ...fields }) => ({ t: 9, ...fields })));
}

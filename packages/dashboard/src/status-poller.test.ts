import { describe, expect, it } from "vitest";
import { parseStatus, StatusPoller } from "./status-poller.js";

const ok = { id: "n1", role: "leader", term: 3, leader: "n1", commitIndex: 9, appliedIndex: 8, lastIndex: 9, peers: [{ id: "n2", lag: 1, match: 8, url: "x" }] };

describe("parseStatus", () => {
  it("keeps the fields the dashboard shows", () => {
    expect(parseStatus(ok, "n1")).toEqual({ ...ok, peers: [{ id: "n2", lag: 1, match: 8 }] });
  });

  it("refuses answers of the wrong shape or from another node", () => {
    for (const bad of [null, "x", [], { ...ok, id: "n2" }, { ...ok, term: -1 }, { ...ok, commitIndex: 1.5 }, { ...ok, role: 3 }, { ...ok, leader: 7 }]) {
      expect(parseStatus(bad, "n1"), JSON.stringify(bad)).toBeNull();
    }
    // Malformed peers are dropped one by one, not the whole answer.
    expect(parseStatus({ ...ok, peers: [null, { id: 5 }, { id: "n3", lag: "x" }] }, "n1")!.peers).toEqual([{ id: "n3" }]);
    // A clock offset is any finite number (negative when the peer is behind); null or junk means not measured.
    const clocks = [{ id: "n2", clockOffsetMs: -120_004 }, { id: "n3", clockOffsetMs: null }, { id: "n4", clockOffsetMs: "5" }];
    expect(parseStatus({ ...ok, peers: clocks }, "n1")!.peers).toEqual([{ id: "n2", clockOffsetMs: -120_004 }, { id: "n3" }, { id: "n4" }]);
  });
});

describe("StatusPoller", () => {
  it("records each node's answer or the reason it failed, stamped with the poll's clock", async () => {
    let now = 100;
    const poller = new StatusPoller({
      nodeUrls: new Map([
        ["n1", "http://a"],
        ["n2", "http://b"],
        ["n3", "http://c"],
      ]),
      now: () => now,
      fetchStatus: async (url) => {
        if (url === "http://a") return ok;
        if (url === "http://b") throw Object.assign(new Error("aborted"), { name: "TimeoutError" });
        return { nonsense: true };
      },
    });
    expect(poller.latest().map((p) => [p.id, p.status, p.error, p.atMs])).toEqual([
      ["n1", null, null, null],
      ["n2", null, null, null],
      ["n3", null, null, null],
    ]);
    now = 200;
    await poller.pollOnce();
    const [a, b, c] = poller.latest();
    expect(a).toMatchObject({ status: { id: "n1", role: "leader" }, error: null, atMs: 200 });
    expect(b).toMatchObject({ status: null, error: "no answer in time", atMs: 200 });
    expect(c).toMatchObject({ status: null, error: "unexpected /v1/status answer" });
  });

  it("never has more than one request in flight per node, however slow it answers", async () => {
    let calls = 0;
    let answer: (v: unknown) => void = () => undefined;
    const poller = new StatusPoller({
      nodeUrls: new Map([["n1", "http://a"]]),
      now: () => 0,
      fetchStatus: () => {
        calls++;
        return new Promise((r) => (answer = r));
      },
    });
    const first = poller.pollOnce();
    await poller.pollOnce();
    await poller.pollOnce();
    expect(calls).toBe(1);
    answer(ok);
    await first;
    await Promise.race([poller.pollOnce(), Promise.resolve()]);
    expect(calls).toBe(2);
  });
});

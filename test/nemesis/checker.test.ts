import { describe, expect, it } from "vitest";
import type { Effect } from "@ratequeue/limiter";
import { check, checkWindow, type CheckInput } from "./checker.js";
import type { AcquireRecord } from "./history.js";
import type { AppliedEffect, NodeLog } from "./log-dump.js";

// The checker must see what a chaos run can get wrong: each case below breaks one thing in an otherwise clean run.

const S = "sess-a";
const grant = (requestId: number, leaseId: number, at: number, resource = "chat", load = 0): AppliedEffect => ({
  index: requestId,
  at,
  effect: { type: "granted", sessionId: S, requestId: String(requestId), resource, leaseId, load: load > 0 ? { load } : {}, grantedAt: at },
});
const released = (leaseId: number): AppliedEffect => ({ index: 0, at: 0, effect: { type: "released", sessionId: S, leaseId, reason: "released" } });
const record = (op: number, fields: Partial<AcquireRecord>): AcquireRecord => ({
  client: "c1",
  op,
  resource: "chat",
  load: 0,
  timeoutMs: 3_000,
  startMs: 1_000,
  endMs: 1_010 + op * 100,
  outcome: "granted",
  sessionId: S,
  leaseId: String(op + 1),
  grantedAt: 1_000 + op * 100,
  releaseStartMs: 1_015 + op * 100,
  releaseEndMs: 1_020 + op * 100,
  ...fields,
});
const entry = (index: number, term: number, byte: number) => ({ index, term, type: "normal" as const, data: new Uint8Array([byte]) });
const nodeLog = (id: string, commit: number, entries: NodeLog["entries"]): NodeLog => ({ id, commit, snapshotIndex: 0, snapshotData: new Uint8Array(0), entries });

/** Three grants a client saw, all in the log, under every limit. */
function clean(): CheckInput {
  const entries = [entry(1, 1, 1), entry(2, 1, 2), entry(3, 2, 3)];
  return {
    logs: [nodeLog("n1", 3, entries), nodeLog("n2", 3, entries), nodeLog("n3", 2, entries.slice(0, 2))],
    effects: [grant(0, 1, 1_000), released(1), grant(1, 2, 1_100), grant(2, 3, 1_200)],
    histories: [{ client: "c1", records: [record(0, {}), record(1, {}), record(2, {})] }],
    limits: { chat: { rate: { limit: 3, windowMs: 1_000 }, concurrency: 2 } },
    samples: [{ node: "n1", resource: "chat", leasesHeld: 2 }],
    endBoundMs: 5_000,
  };
}

describe("chaos checker", () => {
  it("passes a clean run", () => {
    const r = check(clean());
    expect(r.violations).toEqual([]);
    expect(r.stats).toMatchObject({ logGrants: 3, granted: 3, ops: 3 });
  });

  it("holds a failure the cluster decided to the log: a timeout the log ended as timedOut passes, one it granted fails", () => {
    const input = clean();
    const failed = record(3, { outcome: "failed", code: "RQ_TIMEOUT", message: "waited", failedRequest: { sessionId: S, requestId: 9 } });
    const timedOut: AppliedEffect = {
      index: 9,
      at: 1_400,
      effect: { type: "timedOut", sessionId: S, requestId: "9", resource: "chat", code: "RQ_TIMEOUT", message: "waited" } as Effect,
    };
    const ok = check({ ...input, effects: [...input.effects, timedOut], histories: [{ client: "c1", records: [...input.histories[0]!.records, failed] }] });
    expect(ok.violations).toEqual([]);
    expect(ok.stats.failuresMatchedToLog).toBe(1);
    const lying = check({
      ...input,
      effects: [...input.effects, grant(9, 7, 1_900), released(7)],
      histories: [{ client: "c1", records: [...input.histories[0]!.records, failed] }],
    });
    expect(lying.violations.join("\n")).toMatch(/failed with RQ_TIMEOUT for sess-a\/9, the log ended it with \[granted\]/);
  });

  it("counts a repeated answer (same lease, same stamp) once, not as a second grant", () => {
    const input = clean();
    const r = check({ ...input, effects: [...input.effects, grant(2, 3, 1_200)] });
    expect(r.violations).toEqual([]);
    expect(r.stats.logRepeatAnswers).toBe(1);
  });

  it("finds committed entries that differ between nodes", () => {
    const input = clean();
    const forked = [entry(1, 1, 1), entry(2, 1, 9), entry(3, 2, 3)];
    const r = check({ ...input, logs: [input.logs[0]!, nodeLog("n2", 3, forked)] });
    expect(r.violations).toEqual([expect.stringContaining("committed entry 2 differs")]);
  });

  it("finds a request granted twice with different leases", () => {
    const input = clean();
    const r = check({ ...input, effects: [...input.effects, grant(2, 4, 1_300)] });
    expect(r.violations.join("\n")).toContain("request sess-a/2 granted twice");
  });

  it("finds a rate window exceeded in the log", () => {
    const input = clean();
    const r = check({ ...input, effects: [...input.effects, released(2), grant(3, 4, 1_900)] });
    expect(r.violations.join("\n")).toContain("log: chat rate: 4 charged in the 1000 ms ending at 1900 > limit 3");
  });

  it("finds more leases held at once than the concurrency limit, in the log and in an admin sample", () => {
    const input = clean();
    const noRelease = input.effects.filter((e) => e.effect.type !== "released");
    const r = check({ ...input, effects: noRelease, samples: [{ node: "n2", resource: "chat", leasesHeld: 3 }] });
    expect(r.violations).toEqual([
      expect.stringContaining("chat holds 3 leases > concurrency 2"),
      "admin view on n2: chat holds 3 leases > concurrency 2",
    ]);
  });

  it("finds a client grant that the log does not have, or has with another stamp", () => {
    const input = clean();
    const histories = [{ client: "c1", records: [record(0, {}), record(1, { grantedAt: 1_150 }), record(2, { leaseId: "99" })] }];
    const r = check({ ...input, histories });
    expect(r.violations).toEqual([
      expect.stringContaining("c1#1: lease sess-a/2 differs from the log"),
      expect.stringContaining("c1#2: client holds lease sess-a/99 that the log grants 0 times"),
      expect.stringContaining("1 grants no client heard of"), // lease 3, which the client reported as 99
    ]);
  });

  it("finds a grant no client heard of when no request failed locally", () => {
    const input = clean();
    const histories = [{ client: "c1", records: [record(0, {}), record(1, {}), record(2, { outcome: "failed", code: "RQ_TIMEOUT", message: "timed out in the queue" })] }];
    expect(check({ ...input, histories }).violations).toEqual([expect.stringContaining("1 grants no client heard of")]);
    // The same unseen grant is explained when the SDK gave up on a request itself (it releases the late grant).
    const local = [{ client: "c1", records: [record(0, {}), record(1, {}), record(2, { outcome: "failed", code: "RQ_UNAVAILABLE", message: "no node" })] }];
    expect(check({ ...input, histories: local }).violations).toEqual([]);
  });

  it("finds an acquire that never ended and one that ended too late", () => {
    const input = clean();
    const histories = [{ client: "c1", records: [record(0, {}), record(1, { endMs: null, outcome: null }), record(2, { endMs: 1_000 + 3_000 + 5_001 })] }];
    const r = check({ ...input, histories });
    expect(r.violations).toEqual([
      expect.stringContaining("c1#1: acquire on chat started at 1000 never ended (hang)"),
      expect.stringContaining("c1#2: acquire took 8001 ms"),
      expect.stringContaining("1 grants no client heard of"), // the hung request's grant never reached it
    ]);
  });

  it("finds more leases held at once by clients than the concurrency limit (a slot freed behind its holder)", () => {
    const input = clean();
    // All three held from 1010 until they call release: 3 > concurrency 2, though the log says nothing is wrong.
    const histories = [{ client: "c1", records: [0, 1, 2].map((op) => record(op, { endMs: 1_010, releaseStartMs: 2_000 })) }];
    expect(check({ ...input, histories }).violations).toEqual([expect.stringContaining("clients: 3 leases on chat held at once at 1010")]);
    // A release and a grant in the same ms: the slot was freed first.
    const backToBack = [{ client: "c1", records: [record(0, { endMs: 1_010, releaseStartMs: 1_020 }), record(1, { endMs: 1_020 }), record(2, { endMs: 1_020 })] }];
    expect(check({ ...input, histories: backToBack }).violations).toEqual([]);
  });

  it("checks sliding windows as half-open intervals of windowMs", () => {
    const fails: string[] = [];
    const at = (ms: number) => ({ at: ms, load: 2 });
    expect(checkWindow("w", [at(0), at(999), at(1_000)], { limit: 4, windowMs: 1_000 }, (v) => fails.push(v))).toBe(4);
    expect(fails).toEqual([]);
    checkWindow("w", [at(0), at(500), at(999)], { limit: 4, windowMs: 1_000 }, (v) => fails.push(v));
    expect(fails).toEqual(["w: 6 charged in the 1000 ms ending at 999 > limit 4"]);
  });
});

// Keeps the fixture honest: the Effect shapes above are the limiter's own.
const _typecheck: Effect = grant(0, 1, 0).effect;
void _typecheck;

/**
 * The RawNode contract: config validation, caller misuse, peer garbage, and
 * the persistence contract of Ready (nothing that promises durable state is
 * sent before that state is handed out for persistence).
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { RaftConfigError, RaftError, RaftErrorCode } from "./errors.js";
import { RawNode } from "./raw-node.js";
import { createRng } from "./rng.js";
import { MemoryStorage, bootstrapSnapshot } from "./storage.js";
import { TestCluster, payload } from "./test-cluster.js";
import { checkProperty } from "@ratequeue/testkit";
import type { Message, Ready } from "./types.js";

function fresh(config: Record<string, unknown> = {}): RawNode {
  const storage = new MemoryStorage();
  storage.applySnapshot(bootstrapSnapshot({ voters: ["n1", "n2", "n3"] }));
  return new RawNode({ id: "n1", storage, rng: createRng(1), ...config });
}

describe("RaftConfig validation", () => {
  test.each([
    [{ electionTicks: 0 }, /electionTicks must be a positive integer/],
    [{ electionTicks: 2.5 }, /electionTicks must be a positive integer/],
    [{ heartbeatTicks: 10 }, /heartbeatTicks \(10\) must be below electionTicks \(10\)/],
    [{ maxInflightMsgs: -1 }, /maxInflightMsgs must be a positive integer/],
    [{ maxSizePerMsgBytes: Number.NaN }, /maxSizePerMsgBytes/],
    [{ preVote: "yes" }, /preVote must be a boolean/],
    [{ applied: -1 }, /applied must be an integer >= 0/],
    [{ applied: 50 }, /applied \(50\) is beyond the stored commit index/],
    [{ id: "" }, /id must be a non-empty string/],
    [{ rng: {} }, /rng must implement Rng/],
    [{ storage: null }, /storage must implement Storage/],
  ])("rejects %o with a RaftConfigError naming the field", (bad, message) => {
    let error: unknown;
    try {
      fresh(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RaftConfigError);
    expect((error as RaftConfigError).code).toBe(RaftErrorCode.CONFIG_INVALID);
    expect(String((error as Error).message)).toMatch(message);
  });

  test("applied below the storage snapshot is refused: the application must restore the snapshot", () => {
    const storage = new MemoryStorage();
    storage.applySnapshot({ meta: { index: 20, term: 2, confState: { voters: ["n1"], learners: [], removed: [] } }, data: new Uint8Array() });
    expect(() => new RawNode({ id: "n1", storage, rng: createRng(1), applied: 10 })).toThrow(/below the storage snapshot \(20\)/);
    expect(new RawNode({ id: "n1", storage, rng: createRng(1) }).status()).toMatchObject({ applied: 20, commit: 20 });
  });

  test("fills defaults", () => {
    const n = fresh();
    expect(n.status()).toMatchObject({ id: "n1", role: "follower", term: 1, commit: 1, applied: 1, lastIndex: 1 });
  });
});

describe("caller misuse throws RAFT_MISUSE; nothing changes", () => {
  test("ready() twice without advance(), advance() without ready()", () => {
    const n = fresh();
    expect(() => n.advance()).toThrow(RaftError);
    for (let i = 0; i < 30; i++) n.tick();
    n.ready();
    expect(() => n.ready()).toThrow(/previous Ready was not advanced/);
    expect(n.hasReady()).toBe(false);
    n.advance();
  });

  test("non-bytes payloads are refused", () => {
    const n = fresh();
    expect(() => n.propose("text" as never)).toThrow(/Uint8Array/);
    expect(() => n.readIndex(null as never)).toThrow(/Uint8Array/);
    expect(() => n.transferLeadership(42 as never)).toThrow(/node id/);
  });
});

describe("peer input never crashes a node", () => {
  test("malformed messages are dropped and counted, and change nothing", () => {
    checkProperty(
      { file: "packages/raft/src/raw-node.test.ts", name: "malformed messages are dropped", runs: 300 },
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.record({
            type: fc.constantFrom("append", "vote", "heartbeat", "snapshot", "propose", "bogus"),
            from: fc.constantFrom("n2", "", 3),
            to: fc.constantFrom("n1", "n9"),
            term: fc.oneof(fc.integer({ min: -2, max: 5 }), fc.double()),
            entries: fc.anything(),
            data: fc.anything(),
            commit: fc.anything(),
            prevIndex: fc.anything(),
          }),
        ),
        (garbage) => {
          const n = fresh();
          const before = n.status();
          n.step(garbage as Message);
          const after = n.status();
          expect({ ...after, droppedMessages: 0 }).toEqual({ ...before, droppedMessages: 0 });
        },
      ),
    );
  });

  test("a well-formed append that is stale or inconsistent is answered, not thrown on", () => {
    const n = fresh();
    n.step({ type: "append", from: "n2", to: "n1", term: 3, prevIndex: 40, prevTerm: 3, entries: [], commit: 40 });
    const rd = n.ready();
    expect(rd.messagesAfterPersist).toEqual([
      expect.objectContaining({ type: "appendResponse", reject: true, index: 40, hintIndex: 1, hintTerm: 1 }),
    ]);
    n.advance();
  });
});

describe("the persistence contract", () => {
  test("a vote is handed out for persistence in the same Ready as the response that grants it, with mustSync", () => {
    const n = fresh();
    n.step({ type: "vote", from: "n2", to: "n1", term: 4, lastIndex: 1, lastTerm: 1, transfer: false });
    const rd = n.ready();
    expect(rd.hardState).toEqual({ term: 4, vote: "n2", commit: 1 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messagesNow).toEqual([]);
    expect(rd.messagesAfterPersist).toEqual([expect.objectContaining({ type: "voteResponse", to: "n2", reject: false })]);
    n.advance();
  });

  test("an append's acknowledgement waits for the entries it acknowledges", () => {
    const n = fresh();
    const entries = [{ index: 2, term: 2, type: "normal" as const, data: payload("x") }];
    n.step({ type: "append", from: "n2", to: "n1", term: 2, prevIndex: 1, prevTerm: 1, entries, commit: 1 });
    const rd = n.ready();
    expect(rd.entries).toEqual(entries);
    expect(rd.messagesAfterPersist).toEqual([expect.objectContaining({ type: "appendResponse", reject: false, index: 2 })]);
    expect(rd.messagesNow).toEqual([]);
    n.advance();
  });

  test("the leader's appends go out at once, in the Ready that also hands out the same entries", () => {
    const c = new TestCluster({ voters: ["n1", "n2", "n3"] });
    c.elect("n1");
    c.propose("n1", "p");
    const rd: Ready = c.get("n1").node.ready();
    expect(rd.entries).toHaveLength(1);
    expect(rd.messagesNow.filter((m) => m.type === "append")).toHaveLength(2);
    c.get("n1").node.advance();
  });

  test("in random clusters, every Ready keeps the contract (checked by the harness on every Ready)", () => {
    checkProperty(
      { file: "packages/raft/src/raw-node.test.ts", name: "every Ready keeps the contract", runs: 30 },
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.array(fc.nat({ max: 5 }), { minLength: 20, maxLength: 120 }), (seed, plan) => {
        const c = new TestCluster({ voters: ["n1", "n2", "n3"], seed });
        let n = 0;
        for (const action of plan) {
          if (action === 0) c.tickAll(3);
          else if (action === 1) for (const id of c.leaders()) c.propose(id, `v${n++}`);
          else if (action === 2) c.isolate(`n${(n % 3) + 1}`);
          else if (action === 3) c.heal();
          for (const id of c.ids()) while (c.processReady(id));
          c.deliverAll();
        }
      }),
    );
  });
});

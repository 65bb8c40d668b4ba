/**
 * What a node may do only once its state is durable, and what it must refuse:
 * each test drives RawNodes by hand, so a crash can fall exactly between a
 * Ready being handed out and its writes reaching the disk.
 */
import { describe, expect, test } from "vitest";
import { encodeConfChange } from "./conf-change.js";
import { RawNode } from "./raw-node.js";
import { createRng } from "./rng.js";
import { MemoryStorage, bootstrapSnapshot } from "./storage.js";
import { TestCluster, payload } from "./test-cluster.js";
import type { ConfState, Entry, Message, Ready } from "./types.js";

const text = new TextEncoder();

/** A durable store plus the node running on it; `apply` records applied normal entries. */
interface Proc {
  readonly id: string;
  readonly storage: MemoryStorage;
  node: RawNode;
  readonly applied: Map<number, { term: number; data: string }>;
}

function proc(id: string, conf: ConfState, seed: number, preVote: boolean): Proc {
  const storage = new MemoryStorage();
  storage.applySnapshot({ meta: { index: 1, term: 1, confState: conf }, data: new Uint8Array(0) });
  return { id, storage, node: new RawNode({ id, storage, rng: createRng(seed), preVote }), applied: new Map() };
}

function persist(p: Proc, rd: Ready): void {
  if (rd.snapshot !== null) p.storage.applySnapshot(rd.snapshot);
  p.storage.append(rd.entries);
  if (rd.hardState !== null) p.storage.setHardState(rd.hardState);
}

/** Handles every Ready of `p` in the documented order; returns the messages it sent. */
function drain(p: Proc): Message[] {
  const out: Message[] = [];
  while (p.node.hasReady()) out.push(...handle(p, p.node.ready()));
  return out;
}

/** Persists, applies and advances one Ready; returns its messages. */
function handle(p: Proc, rd: Ready): Message[] {
  persist(p, rd);
  for (const e of rd.committedEntries) applyEntry(p, e);
  p.node.advance();
  return [...rd.messagesNow, ...rd.messagesAfterPersist];
}

function applyEntry(p: Proc, e: Entry): void {
  if (e.type === "normal" && e.data.byteLength > 0) p.applied.set(e.index, { term: e.term, data: new TextDecoder().decode(e.data) });
}

/** Delivers messages among `procs` (each handled at once, in order) until none are left. */
function exchange(procs: readonly Proc[], first: Message[]): void {
  const queue = [...first];
  for (let i = 0; i < 10_000 && queue.length > 0; i++) {
    const m = queue.shift()!;
    const to = procs.find((p) => p.id === m.to);
    if (to === undefined) continue;
    to.node.step(m);
    queue.push(...drain(to));
  }
  expect(queue).toEqual([]);
}

function tickUntil(p: Proc, done: () => boolean, out: Message[]): void {
  for (let i = 0; i < 100 && !done(); i++) {
    p.node.tick();
    out.push(...drain(p));
  }
  expect(done()).toBe(true);
}

describe("a candidate's own vote counts only once durable", () => {
  test.each([true, false])(
    "a sole voter that loses power before its new term is written cannot leave a conflicting entry on a learner (preVote %s)",
    (preVote) => {
      const conf: ConfState = { voters: ["n1"], learners: ["n2"], removed: [] };
      const n1 = proc("n1", conf, 1, preVote);
      const n2 = proc("n2", conf, 2, preVote);

      // n1 leads some term and replicates to the learner.
      const out: Message[] = [];
      tickUntil(n1, () => n1.node.status().role === "leader", out);
      exchange([n1, n2], out);
      const firstTerm = n1.node.status().term;

      // Restart n1 (same term on disk); it campaigns for the next term, proposing X whenever it
      // believes it leads. What it sends from the Ready that carries the new term reaches the
      // learner; then power fails before n1 writes that Ready.
      n1.node = new RawNode({ id: "n1", storage: n1.storage, rng: createRng(3), preVote });
      let lost: Ready | null = null;
      for (let i = 0; i < 100 && lost === null; i++) {
        n1.node.tick();
        while (lost === null && n1.node.hasReady()) {
          n1.node.propose(text.encode("X")); // refused unless n1 already believes it leads
          const rd = n1.node.ready();
          if (rd.hardState !== null && rd.hardState.term > firstTerm) lost = rd;
          else exchange([n1, n2], handle(n1, rd));
        }
      }
      expect(lost).not.toBeNull();
      exchange([n2], lost!.messagesNow.filter((m) => m.to === "n2"));

      // Back up from what its disk kept, n1 wins the same term again and fills the same index.
      n1.node = new RawNode({ id: "n1", storage: n1.storage, rng: createRng(4), preVote });
      const again: Message[] = [];
      tickUntil(n1, () => n1.node.status().role === "leader", again);
      expect(n1.node.status().term).toBe(firstTerm + 1);
      n1.node.propose(text.encode("Y"));
      again.push(...drain(n1));
      exchange([n1, n2], again);
      for (let i = 0; i < 5; i++) {
        n1.node.tick();
        exchange([n1, n2], drain(n1));
      }

      expect([...n1.applied.values()].map((e) => e.data)).toContain("Y");
      expect([...n2.applied.entries()]).toEqual([...n1.applied.entries()]);
      expect([...n2.applied.values()].map((e) => e.data)).not.toContain("X");
    },
  );

  test("a sole voter becomes leader at the advance() of the Ready that carries its vote, not before", () => {
    const storage = new MemoryStorage();
    storage.applySnapshot(bootstrapSnapshot({ voters: ["n1"] }));
    const node = new RawNode({ id: "n1", storage, rng: createRng(1), preVote: false });
    for (let i = 0; i < 100 && !node.hasReady(); i++) node.tick();
    expect(node.status().role).toBe("candidate");
    const rd = node.ready();
    expect(rd.mustSync).toBe(true);
    expect(rd.hardState).toMatchObject({ vote: "n1" });
    expect(rd.messagesNow).toEqual([]);
    storage.setHardState(rd.hardState!);
    node.advance();
    expect(node.status().role).toBe("leader");
  });
});

describe("no campaign while committed conf changes are not applied (as etcd)", () => {
  test("a follower handed a committed conf change to apply does not campaign before advance()", () => {
    const storage = new MemoryStorage();
    storage.applySnapshot(bootstrapSnapshot({ voters: ["n1", "n2", "n3"] }));
    const cc: Entry = { index: 2, term: 1, type: "confChange", data: encodeConfChange({ type: "addLearner", nodeId: "n4" }) };
    storage.append([cc]);
    storage.setHardState({ term: 1, vote: null, commit: 2 });
    const node = new RawNode({ id: "n2", storage, rng: createRng(1) });
    const rd = node.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2]);
    // The RawNode contract allows ticks between ready() and advance(); the leader is silent.
    for (let i = 0; i < 100; i++) node.tick();
    expect(node.status().role).toBe("follower");
    node.advance();
    expect(node.status().confState.learners).toEqual(["n4"]);
    for (let i = 0; i < 100 && node.status().role === "follower"; i++) node.tick();
    expect(node.status().role).toBe("precandidate");
  });
});

describe("a removed node's proposals are refused", () => {
  test("a node that applied its own removal refuses proposals, reads and transfers with NODE_ID_REMOVED", () => {
    const c = new TestCluster({ voters: ["n1", "n2", "n3"] });
    c.elect("n1");
    expect(c.get("n1").node.proposeConfChange({ type: "remove", nodeId: "n3" }).outcome).toBe("accepted");
    c.stabilize();
    c.tickAll(2);
    c.stabilize();
    const n3 = c.get("n3").node;
    expect(n3.status().confState.removed).toContain("n3");
    const result = n3.propose(payload("late"));
    expect(result).toMatchObject({ outcome: "refused", code: "NODE_ID_REMOVED" });
    expect(n3.readIndex(new Uint8Array([1]))).toMatchObject({ outcome: "refused", code: "NODE_ID_REMOVED" });
    expect(n3.transferLeadership("n2")).toMatchObject({ outcome: "refused", code: "NODE_ID_REMOVED" });
    expect(c.queue.filter((m) => m.from === "n3" && m.type === "propose")).toEqual([]);
  });

  test("a removed learner that never learned of its removal stops forwarding once the leader falls silent", () => {
    const c = new TestCluster({ voters: ["n1", "n2", "n3"] });
    c.elect("n1");
    const n1 = c.get("n1").node;
    c.addNode("n4");
    expect(n1.proposeConfChange({ type: "addLearner", nodeId: "n4" }).outcome).toBe("accepted");
    c.stabilize();
    c.tickAll(3);
    c.stabilize();
    expect(c.get("n4").node.status().leader).toBe("n1");
    // n4 is removed while it is cut off: it never hears that the removal committed.
    c.isolate("n4");
    expect(n1.proposeConfChange({ type: "remove", nodeId: "n4" }).outcome).toBe("accepted");
    c.stabilize();
    expect(n1.status().confState.removed).toContain("n4");
    c.heal();
    const n4 = c.get("n4").node;
    expect(n4.propose(payload("lost")).outcome).toBe("forwarded");
    for (let i = 0; i < 30; i++) {
      c.tickAll(1);
      c.stabilize();
    }
    // The leader ignores n4 now; n4 no longer names a leader it cannot reach.
    expect(n4.propose(payload("late"))).toMatchObject({ outcome: "refused", code: "NO_LEADER" });
  });
});


describe("reads after a restart", () => {
  test("a sole voter serves no read before it commits an entry of its term (its stored commit may be behind)", () => {
    const storage = new MemoryStorage();
    storage.applySnapshot(bootstrapSnapshot({ voters: ["n1"] }));
    // Entries 2..4 were committed and acknowledged before a crash; the commit index on disk lags (it need not be synced).
    storage.append([2, 3, 4].map((index) => ({ index, term: 2, type: "normal" as const, data: text.encode(`e${index}`) })));
    storage.setHardState({ term: 2, vote: "n1", commit: 2 });
    const p: Proc = { id: "n1", storage, node: new RawNode({ id: "n1", storage, rng: createRng(1) }), applied: new Map() };
    // The read starts the moment n1 leads, before its first entry of the term commits.
    const reads: number[] = [];
    let asked = false;
    for (let i = 0; i < 100 && reads.length === 0; i++) {
      p.node.tick();
      while (p.node.hasReady()) {
        const rd = p.node.ready();
        reads.push(...rd.readStates.map((r) => r.index));
        handle(p, rd);
        if (!asked && p.node.status().role === "leader") {
          asked = true;
          expect(p.node.readIndex(text.encode("r1")).outcome).toBe("accepted");
        }
      }
    }
    expect(reads.length).toBe(1);
    expect(reads[0]).toBeGreaterThanOrEqual(4);
  });
});

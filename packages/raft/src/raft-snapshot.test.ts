/**
 * Log compaction and InstallSnapshot (Raft paper section 7), with snapshots
 * sent in chunks.
 */
import { describe, expect, test } from "vitest";
import { RawNode } from "./raw-node.js";
import { createRng } from "./rng.js";
import { MemoryStorage, bootstrapSnapshot } from "./storage.js";
import { TestCluster } from "./test-cluster.js";
import type { Message, SnapshotMessage } from "./types.js";

const VOTERS = ["n1", "n2", "n3"];

function snapshotChunks(c: TestCluster, from: string, to: string): SnapshotMessage[] {
  return c
    .get(from)
    .readies.flatMap((rd) => rd.messagesNow)
    .filter((m): m is SnapshotMessage => m.type === "snapshot" && m.to === to);
}

function settle(c: TestCluster, rounds = 10): void {
  for (let i = 0; i < rounds; i++) {
    c.tickAll();
    c.stabilize();
  }
}

describe("7 log compaction", () => {
  test("the leader sends InstallSnapshot in chunks to a follower that is behind the compaction point", () => {
    const c = new TestCluster({ voters: VOTERS, config: { snapshotChunkBytes: 16 } });
    c.elect("n1");
    c.crash("n3");
    for (let i = 0; i < 20; i++) c.propose("n1", `entry-${i}`);
    c.stabilize();
    const snap = c.compact("n1");
    expect(c.get("n1").storage.firstIndex()).toBe(snap.meta.index + 1);
    c.restart("n3");
    settle(c);
    const chunks = snapshotChunks(c, "n1", "n3");
    expect(chunks.length).toBeGreaterThan(snap.data.byteLength / 16 - 1);
    for (const chunk of chunks) expect(chunk.data.byteLength).toBeLessThanOrEqual(16);
    expect(chunks.filter((ch) => ch.last)).toHaveLength(1);
    expect(c.get("n3").state).toEqual(c.get("n1").state);
    expect(c.get("n3").storage.snapshot().meta.index).toBe(snap.meta.index);
    // Replication continues normally after the snapshot.
    c.propose("n1", "after");
    settle(c, 3);
    expect(c.get("n3").state.at(-1)).toBe("after");
  });

  test("a lost chunk is sent again, and the follower assembles the snapshot exactly once", () => {
    const c = new TestCluster({ voters: VOTERS, config: { snapshotChunkBytes: 8 } });
    c.elect("n1");
    c.crash("n3");
    for (let i = 0; i < 10; i++) c.propose("n1", `v${i}`);
    c.stabilize();
    c.compact("n1");
    c.restart("n3");
    let dropped = 0;
    for (let round = 0; round < 40; round++) {
      c.tickAll();
      for (let inner = 0; inner < 50; inner++) {
        for (const id of c.ids()) while (c.processReady(id));
        // Lose the first three chunks after the first one.
        c.queue = c.queue.filter((m: Message) => {
          if (m.type !== "snapshot" || m.offset === 0 || dropped >= 3) return true;
          dropped++;
          return false;
        });
        if (c.deliverAll() === 0) break;
      }
    }
    expect(dropped).toBe(3);
    expect(c.get("n3").state).toEqual(c.get("n1").state);
  });

  test("a follower ignores a snapshot that is older than its commit index", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    for (let i = 0; i < 5; i++) c.propose("n1", `e${i}`);
    settle(c, 2);
    const n2 = c.get("n2").node;
    const { term, commit } = n2.status();
    n2.step({
      type: "snapshot",
      from: "n1",
      to: "n2",
      term,
      meta: { index: 2, term: 2, confState: { voters: VOTERS, learners: [], removed: [] } },
      offset: 0,
      totalBytes: 0,
      data: new Uint8Array(0),
      last: true,
    });
    expect(n2.status().commit).toBe(commit);
    const rd = n2.ready();
    expect(rd.snapshot).toBeNull();
    expect(rd.messagesAfterPersist).toEqual([expect.objectContaining({ type: "appendResponse", reject: false, index: commit })]);
    n2.advance();
  });

  test("a snapshot whose last entry the follower already holds only moves its commit index", () => {
    const storage = new MemoryStorage();
    storage.applySnapshot(bootstrapSnapshot({ voters: VOTERS }));
    // Entries 2..5 of term 2; only 2..3 are what the leader's snapshot covers, 4..5 may diverge.
    storage.append([2, 3, 4, 5].map((index) => ({ index, term: 2, type: "normal" as const, data: new Uint8Array([index]) })));
    storage.setHardState({ term: 2, vote: null, commit: 1 });
    const n2 = new RawNode({ id: "n2", storage, rng: createRng(1) });
    n2.step({
      type: "snapshot",
      from: "n1",
      to: "n2",
      term: 3,
      meta: { index: 3, term: 2, confState: { voters: VOTERS, learners: [], removed: [] } },
      offset: 0,
      totalBytes: 1,
      data: new Uint8Array([42]),
      last: true,
    });
    const rd = n2.ready();
    expect(rd.snapshot).toBeNull();
    expect(rd.hardState).toMatchObject({ commit: 3 });
    // Only the prefix up to 3 is known to match the leader: the answer must not claim 5.
    expect(rd.messagesAfterPersist).toEqual([expect.objectContaining({ type: "appendResponse", reject: false, index: 3 })]);
    n2.advance();
  });

  test("a node restarted after compaction rebuilds its state from the snapshot and the entries after it", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    for (let i = 0; i < 6; i++) c.propose("n1", `e${i}`);
    settle(c, 2);
    c.compact("n2");
    c.propose("n1", "late");
    settle(c, 2);
    c.crash("n2");
    c.restart("n2");
    settle(c, 3);
    expect(c.get("n2").state).toEqual(["e0", "e1", "e2", "e3", "e4", "e5", "late"]);
  });

  test("reportSnapshot(id, false) makes the leader start the snapshot over", () => {
    const c = new TestCluster({ voters: VOTERS, config: { snapshotChunkBytes: 4 } });
    c.elect("n1");
    c.crash("n3");
    for (let i = 0; i < 5; i++) c.propose("n1", `s${i}`);
    c.stabilize();
    c.compact("n1");
    c.restart("n3");
    c.tickAll();
    const leader = c.get("n1").node;
    for (let i = 0; i < 10 && leader.status().progress?.n3?.state !== "snapshot"; i++) {
      for (const id of c.ids()) while (c.processReady(id));
      c.deliverAll();
    }
    expect(leader.status().progress?.n3?.state).toBe("snapshot");
    leader.reportSnapshot("n3", false);
    expect(leader.status().progress?.n3?.state).toBe("probe");
    settle(c, 10);
    expect(c.get("n3").state).toEqual(c.get("n1").state);
  });
});

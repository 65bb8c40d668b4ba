/**
 * Asynchronous storage writes (`asyncStorageWrites`): the caller takes the
 * next Ready while earlier writes are in flight and reports each durable with
 * `persisted()`, in order. A sole voter shows every rule without peers: it
 * wins only once its term and vote are durable, commits only what its own
 * durable log holds, and is handed committed entries only once durable.
 */
import { describe, expect, test } from "vitest";
import { RaftError, RaftErrorCode } from "./errors.js";
import { RawNode } from "./raw-node.js";
import { createRng } from "./rng.js";
import { MemoryStorage, bootstrapSnapshot } from "./storage.js";
import type { Ready } from "./types.js";

function soleVoter(asyncStorageWrites = true): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  storage.applySnapshot(bootstrapSnapshot({ voters: ["n1"] }));
  return { node: new RawNode({ id: "n1", storage, rng: createRng(1), asyncStorageWrites }), storage };
}

/** Takes one Ready and writes it to `storage` (as a caller does when it hands the write to its disk). */
function take(node: RawNode, storage: MemoryStorage): Ready {
  const rd = node.ready();
  if (rd.snapshot !== null) storage.applySnapshot(rd.snapshot);
  if (rd.entries.length > 0) storage.append(rd.entries);
  if (rd.hardState !== null) storage.setHardState(rd.hardState);
  node.advance();
  return rd;
}

function elect(node: RawNode, storage: MemoryStorage): void {
  for (let i = 0; i < 40 && node.status().role !== "leader"; i++) {
    node.tick();
    while (node.hasReady()) node.persisted(take(node, storage).persistId);
  }
  expect(node.status().role).toBe("leader");
  while (node.hasReady()) node.persisted(take(node, storage).persistId);
}

describe("asynchronous storage writes", () => {
  test("a candidate counts its own vote only once its term and vote are persisted", () => {
    const { node, storage } = soleVoter();
    const ids: number[] = [];
    for (let i = 0; i < 40 && node.status().role === "follower"; i++) {
      node.tick();
      while (node.hasReady()) ids.push(take(node, storage).persistId);
    }
    // Pre-vote first: its own pre-vote counts at persisted() too (it promises nothing, but keeps one rule).
    expect(node.status().role).toBe("precandidate");
    for (const id of ids.splice(0)) node.persisted(id);
    expect(node.status().role).toBe("candidate");
    const campaign = take(node, storage);
    expect(campaign.hardState).toMatchObject({ vote: "n1" });
    expect(campaign.mustSync).toBe(true);
    expect(node.status().role).toBe("candidate");
    node.persisted(campaign.persistId);
    expect(node.status().role).toBe("leader");
  });

  test("the next Ready comes while a write is in flight; entries are handed out once and applied only when durable", () => {
    const { node, storage } = soleVoter();
    elect(node, storage);
    const commitBefore = node.status().commit;
    node.propose(new Uint8Array([1]));
    const first = take(node, storage);
    expect(first.entries.map((e) => e.data[0])).toEqual([1]);
    expect(first.mustSync).toBe(true);
    node.propose(new Uint8Array([2]));
    expect(node.hasReady()).toBe(true);
    const second = take(node, storage);
    // Only the new entry: the first is in flight, not handed out again.
    expect(second.entries.map((e) => e.data[0])).toEqual([2]);
    expect(node.writesInFlight).toBe(2);
    // Nothing commits while the leader's own copy is not durable.
    expect(node.status().commit).toBe(commitBefore);
    node.persisted(first.persistId);
    expect(node.status().commit).toBe(commitBefore + 1);
    const applyFirst = take(node, storage);
    expect(applyFirst.committedEntries.map((e) => e.data[0])).toEqual([1]);
    node.persisted(second.persistId);
    node.persisted(applyFirst.persistId);
    const applySecond = take(node, storage);
    expect(applySecond.committedEntries.map((e) => e.data[0])).toEqual([2]);
  });

  test("persisted() out of order, twice, or without asynchronous writes is refused and changes nothing", () => {
    const { node, storage } = soleVoter();
    elect(node, storage);
    node.propose(new Uint8Array([1]));
    const first = take(node, storage);
    node.propose(new Uint8Array([2]));
    const second = take(node, storage);
    const misuse = (fn: () => void): void => {
      let error: unknown;
      try {
        fn();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(RaftError);
      expect((error as RaftError).code).toBe(RaftErrorCode.MISUSE);
    };
    const commit = node.status().commit;
    misuse(() => node.persisted(second.persistId));
    expect(node.status().commit).toBe(commit);
    node.persisted(first.persistId);
    misuse(() => node.persisted(first.persistId));
    const sync = soleVoter(false);
    misuse(() => sync.node.persisted(1));
  });

  test("a synchronous node hands out persistId 0 and needs no persisted()", () => {
    const { node, storage } = soleVoter(false);
    for (let i = 0; i < 40 && node.status().role !== "leader"; i++) {
      node.tick();
      while (node.hasReady()) expect(take(node, storage).persistId).toBe(0);
    }
    expect(node.status().role).toBe("leader");
  });
});

import { describe, expect, it } from "vitest";
import type { Entry, Snapshot } from "@ratequeue/raft";
import type { LogStore } from "./types.js";

/** Opens the same durable store again, as a restarted process would. */
export interface StoreFixture {
  open(): LogStore;
  cleanup(): Promise<void>;
}

const entry = (index: number, term: number, text = `e${index}t${term}`): Entry => ({
  index,
  term,
  type: "normal",
  data: new TextEncoder().encode(text),
});

const snapshotAt = (index: number, term: number): Snapshot => ({
  meta: { index, term, confState: { voters: ["n1", "n2", "n3"], learners: [], removed: [] } },
  data: new TextEncoder().encode(`state@${index}`),
});

/** The conformance suite every LogStore implementation runs (real and in-memory alike). */
export function logStoreConformance(name: string, makeFixture: () => Promise<StoreFixture>): void {
  describe(`LogStore conformance: ${name}`, () => {
    async function withStore(fn: (fixture: StoreFixture) => Promise<void>): Promise<void> {
      const fixture = await makeFixture();
      try {
        await fn(fixture);
      } finally {
        await fixture.cleanup();
      }
    }

    it("a new store loads empty", () =>
      withStore(async (f) => {
        const s = f.open();
        expect(await s.load()).toEqual({ snapshot: null, hardState: null, entries: [] });
        await s.close();
      }));

    it("entries and hard state survive a reopen", () =>
      withStore(async (f) => {
        const s = f.open();
        await s.load();
        await s.write({ entries: [entry(1, 1), entry(2, 1)], hardState: { term: 1, vote: "n1", commit: 1 }, sync: true });
        await s.write({ entries: [entry(3, 2)], hardState: { term: 2, vote: null, commit: 2 }, sync: true });
        await s.close();
        const again = f.open();
        const loaded = await again.load();
        expect(loaded.entries.map((e) => [e.index, e.term])).toEqual([[1, 1], [2, 1], [3, 2]]);
        expect(new TextDecoder().decode(loaded.entries[2]!.data)).toBe("e3t2");
        expect(loaded.hardState).toEqual({ term: 2, vote: null, commit: 2 });
        await again.close();
      }));

    it("an append replaces the stored suffix from its first index", () =>
      withStore(async (f) => {
        const s = f.open();
        await s.load();
        await s.write({ entries: [entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)], sync: true });
        await s.write({ entries: [entry(3, 2)], sync: true });
        await s.close();
        const again = f.open();
        expect((await again.load()).entries.map((e) => [e.index, e.term])).toEqual([[1, 1], [2, 1], [3, 2]]);
        await again.close();
      }));

    it("an append that would leave a gap is refused", () =>
      withStore(async (f) => {
        const s = f.open();
        await s.load();
        await s.write({ entries: [entry(1, 1)], sync: true });
        await expect(s.write({ entries: [entry(3, 1)], sync: true })).rejects.toMatchObject({ code: "RQ_STORAGE_CORRUPT" });
        await s.close();
      }));

    it("compaction keeps the snapshot and the entries after it", () =>
      withStore(async (f) => {
        const s = f.open();
        await s.load();
        await s.write({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1)), sync: true });
        await s.compact(snapshotAt(3, 1));
        await s.write({ entries: [entry(6, 2)], sync: true });
        await s.close();
        const again = f.open();
        const loaded = await again.load();
        expect(loaded.snapshot?.meta.index).toBe(3);
        expect(new TextDecoder().decode(loaded.snapshot!.data)).toBe("state@3");
        expect(loaded.entries.map((e) => e.index)).toEqual([4, 5, 6]);
        await again.close();
      }));

    it("an installed snapshot replaces the whole log", () =>
      withStore(async (f) => {
        const s = f.open();
        await s.load();
        await s.write({ entries: [1, 2, 3].map((i) => entry(i, 1)), sync: true });
        await s.write({ snapshot: snapshotAt(10, 4), entries: [entry(11, 4)], hardState: { term: 4, vote: null, commit: 10 }, sync: true });
        await s.close();
        const again = f.open();
        const loaded = await again.load();
        expect(loaded.snapshot?.meta).toMatchObject({ index: 10, term: 4 });
        expect(loaded.entries.map((e) => e.index)).toEqual([11]);
        expect(loaded.hardState?.commit).toBe(10);
        await again.close();
      }));

    it("writes issued without awaiting land in call order", () =>
      withStore(async (f) => {
        const s = f.open();
        await s.load();
        const writes = [];
        for (let i = 1; i <= 50; i++) writes.push(s.write({ entries: [entry(i, 1)], hardState: { term: 1, vote: null, commit: i - 1 }, sync: i % 10 === 0 }));
        await Promise.all(writes);
        await s.close();
        const again = f.open();
        const loaded = await again.load();
        expect(loaded.entries.length).toBe(50);
        expect(loaded.hardState?.commit).toBe(49);
        await again.close();
      }));

    it("a suffix rewritten while the first write is in flight resolves in order and wins", () =>
      withStore(async (f) => {
        const s = f.open();
        await s.load();
        const resolved: string[] = [];
        const first = s.write({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1)), sync: true }).then(() => resolved.push("first"));
        const rewrite = s.write({ entries: [entry(3, 2), entry(4, 2)], hardState: { term: 2, vote: null, commit: 2 }, sync: true }).then(() => resolved.push("rewrite"));
        const commitOnly = s.write({ hardState: { term: 2, vote: null, commit: 3 }, sync: false }).then(() => resolved.push("commit"));
        await Promise.all([first, rewrite, commitOnly]);
        expect(resolved).toEqual(["first", "rewrite", "commit"]);
        await s.close();
        const again = f.open();
        const loaded = await again.load();
        expect(loaded.entries.map((e) => [e.index, e.term])).toEqual([[1, 1], [2, 1], [3, 2], [4, 2]]);
        expect(loaded.hardState).toEqual({ term: 2, vote: null, commit: 3 });
        await again.close();
      }));
  });
}

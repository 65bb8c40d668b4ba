import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { describe, expect, it, vi } from "vitest";
import { LevelStore } from "./level-store.js";
import { logStoreConformance } from "./log-store.case.js";
import { MemoryStore } from "./memory-store.js";

logStoreConformance("LevelStore (classic-level, fsync)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "rq-store-"));
  return {
    open: () => new LevelStore({ path: dir, nodeId: "n1" }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

logStoreConformance("MemoryStore", async () => {
  const store = new MemoryStore();
  return { open: () => store, cleanup: async () => undefined };
});

describe("LevelStore", () => {
  it("refuses a data folder written by another node", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rq-store-"));
    try {
      const a = new LevelStore({ path: dir, nodeId: "n1" });
      await a.load();
      await a.close();
      const b = new LevelStore({ path: dir, nodeId: "n2" });
      await expect(b.load()).rejects.toMatchObject({ code: "RQ_STORAGE_FOREIGN" });
      await b.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("writes called while a batch is in flight share the next batch (one fsync for all)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rq-store-"));
    const batch = vi.spyOn(ClassicLevel.prototype, "batch");
    try {
      const store = new LevelStore({ path: dir, nodeId: "n1" });
      await store.load();
      const entry = (index: number) => ({ index, term: 1, type: "normal" as const, data: new Uint8Array([index]) });
      const first = store.write({ entries: [entry(1)], sync: true });
      // Let the first batch start, then queue twenty more behind it.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const rest = [];
      for (let i = 2; i <= 21; i++) rest.push(store.write({ entries: [entry(i)], sync: true }));
      await Promise.all([first, ...rest]);
      expect(batch.mock.calls.length).toBeLessThanOrEqual(2);
      await store.close();
      const again = new LevelStore({ path: dir, nodeId: "n1" });
      expect((await again.load()).entries.map((e) => e.index)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
      await again.close();
    } finally {
      batch.mockRestore();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

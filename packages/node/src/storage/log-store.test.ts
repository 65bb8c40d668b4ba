import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
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
});

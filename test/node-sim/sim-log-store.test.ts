import { describe, expect, it } from "vitest";
import { logStoreConformance } from "@ratequeue/node/testing/log-store-suite";
import { Prng } from "@ratequeue/testkit";
import { RELIABLE_DISK, SimDisk } from "../raft-sim/sim-disk.js";
import { SimLogStore } from "./sim-log-store.js";

const immediate = (_delayMs: number, done: () => void): void => queueMicrotask(done);

logStoreConformance("SimLogStore (simulated disk, WAL)", async () => {
  const disk = new SimDisk({ prng: new Prng(1), faults: RELIABLE_DISK });
  return { open: () => new SimLogStore({ disk, schedule: immediate, syncLatencyMs: () => 1 }), cleanup: async () => undefined };
});

describe("SimLogStore on a crashing disk", () => {
  it("keeps synced writes and loses unsynced ones", async () => {
    const disk = new SimDisk({ prng: new Prng(7), faults: RELIABLE_DISK });
    const store = new SimLogStore({ disk, schedule: immediate, syncLatencyMs: () => 1 });
    await store.load();
    const entry = (index: number) => ({ index, term: 1, type: "normal" as const, data: new Uint8Array([index]) });
    await store.write({ entries: [entry(1), entry(2)], sync: true });
    await store.write({ entries: [entry(3)], hardState: { term: 1, vote: null, commit: 2 }, sync: false });
    disk.crash();
    const loaded = await new SimLogStore({ disk, schedule: immediate, syncLatencyMs: () => 1 }).load();
    expect(loaded.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(loaded.hardState).toBeNull();
  });

  it("completes writes in call order and loses every write still in flight in a crash", async () => {
    const disk = new SimDisk({ prng: new Prng(7), faults: RELIABLE_DISK });
    // The fsyncs finish when the test says so, the later one first: completions still keep call order.
    const fsyncs: (() => void)[] = [];
    const store = new SimLogStore({ disk, schedule: (_delayMs, done) => void fsyncs.push(done), syncLatencyMs: () => 1 });
    await store.load();
    const entry = (index: number) => ({ index, term: 1, type: "normal" as const, data: new Uint8Array([index]) });
    const order: number[] = [];
    const first = store.write({ entries: [entry(1)], sync: true }).then(() => order.push(1));
    const second = store.write({ entries: [entry(2)], sync: true }).then(() => order.push(2));
    fsyncs[1]!();
    fsyncs[0]!();
    await Promise.all([first, second]);
    expect(order).toEqual([1, 2]);
    // Two more writes in flight when the power goes: neither fsync ever finishes.
    void store.write({ entries: [entry(3)], sync: true });
    void store.write({ entries: [entry(4)], hardState: { term: 1, vote: null, commit: 3 }, sync: true });
    disk.crash();
    const loaded = await new SimLogStore({ disk, schedule: immediate, syncLatencyMs: () => 1 }).load();
    expect(loaded.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(loaded.hardState).toBeNull();
  });

  it("a refused write changes nothing", async () => {
    const disk = new SimDisk({ prng: new Prng(7), faults: RELIABLE_DISK });
    const store = new SimLogStore({ disk, schedule: immediate, syncLatencyMs: () => 1 });
    await store.load();
    const entry = (index: number) => ({ index, term: 1, type: "normal" as const, data: new Uint8Array([index]) });
    await store.write({ entries: [entry(1)], sync: true });
    await expect(store.write({ entries: [entry(5)], hardState: { term: 9, vote: null, commit: 0 }, sync: true })).rejects.toMatchObject({ code: "RQ_STORAGE_CORRUPT" });
    const loaded = await new SimLogStore({ disk, schedule: immediate, syncLatencyMs: () => 1 }).load();
    expect(loaded.entries.map((e) => e.index)).toEqual([1]);
    expect(loaded.hardState).toBeNull();
  });
});

import fc from "fast-check";
import type { Entry } from "@ratequeue/raft";
import { describe, expect, it } from "vitest";
import { Prng } from "@ratequeue/testkit";
import { RELIABLE_DISK, SimDisk } from "./sim-disk.js";
import { appendRecord, recover, type WalRecord } from "./wal.js";

const enc = new TextEncoder();

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: "normal", data: enc.encode(text) };
}

describe("wal", () => {
  it("replays entries, overwrites, hard state and snapshots", () => {
    const disk = new SimDisk({ prng: new Prng(1), faults: RELIABLE_DISK });
    const snap = { meta: { index: 2, term: 1, confState: { voters: ["a"], learners: [], removed: [] } }, data: enc.encode("s") };
    const records: WalRecord[] = [
      { type: "entries", entries: [entry(1, 1), entry(2, 1), entry(3, 1)] },
      { type: "entries", entries: [entry(3, 2, "x"), entry(4, 2)] },
      { type: "hardState", hardState: { term: 2, vote: "a", commit: 3 } },
      { type: "compact", snapshot: snap },
    ];
    for (const r of records) appendRecord(disk, r);
    disk.sync();
    const got = recover(disk);
    expect(got.discardedBytes).toBe(0);
    expect(got.log.hardState).toEqual({ term: 2, vote: "a", commit: 3 });
    expect(got.log.snapshotMeta?.index).toBe(2);
    expect(new TextDecoder().decode(got.log.snapshot!.data)).toBe("s");
    expect(got.log.entries.map((e) => [e.index, e.term, new TextDecoder().decode(e.data)])).toEqual([
      [3, 2, "x"],
      [4, 2, "e4"],
    ]);
    appendRecord(disk, { type: "installSnapshot", snapshot: { ...snap, meta: { ...snap.meta, index: 9, term: 3 } } });
    disk.sync();
    expect(recover(disk).log.entries).toEqual([]);
  });

  it("refuses to replay a gap", () => {
    const disk = new SimDisk({ prng: new Prng(1), faults: RELIABLE_DISK });
    appendRecord(disk, { type: "entries", entries: [entry(1, 1)] });
    appendRecord(disk, { type: "entries", entries: [entry(3, 1)] });
    expect(() => recover(disk)).toThrow(/gap/);
  });

  it("after any crash recovers exactly a prefix of the writes, at least the synced ones, and cuts the torn tail", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }),
        (seed, syncAfter) => {
          const disk = new SimDisk({ prng: new Prng(seed), faults: { flushRate: 0.5, tornWriteRate: 0.7 } });
          let synced = 0;
          syncAfter.forEach((sync, i) => {
            appendRecord(disk, { type: "entries", entries: [entry(i + 1, 1, "x".repeat(i * 7))] });
            if (sync) {
              disk.sync();
              synced = i + 1;
            }
          });
          disk.crash();
          const got = recover(disk);
          const n = got.log.entries.length;
          expect(n).toBeGreaterThanOrEqual(synced);
          expect(n).toBeLessThanOrEqual(syncAfter.length);
          expect(got.log.entries.map((e) => e.index)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
          // The file is clean again: a second recovery finds nothing to discard and appends land after it.
          expect(recover(disk).discardedBytes).toBe(0);
          appendRecord(disk, { type: "entries", entries: [entry(n + 1, 2)] });
          disk.sync();
          expect(recover(disk).log.entries).toHaveLength(n + 1);
        },
      ),
    );
  });
});

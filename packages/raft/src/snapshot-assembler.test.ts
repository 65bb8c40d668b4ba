import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { SnapshotAssembler } from "./snapshot-assembler.js";
import { checkProperty } from "@ratequeue/testkit";
import type { SnapshotMessage, SnapshotMeta } from "./types.js";

const META: SnapshotMeta = { index: 9, term: 2, confState: { voters: ["n1"], learners: [], removed: [] } };

function chunk(data: Uint8Array, offset: number, size: number, meta = META): SnapshotMessage {
  const end = Math.min(offset + size, data.byteLength);
  return { type: "snapshot", from: "n1", to: "n2", term: 3, meta, offset, totalBytes: data.byteLength, data: data.subarray(offset, end), last: end === data.byteLength };
}

describe("SnapshotAssembler", () => {
  test("reassembles chunks delivered with losses, duplicates and reordering, as the leader resends", () => {
    checkProperty(
      { file: "packages/raft/src/snapshot-assembler.test.ts", name: "reassembles chunks", runs: 300 },
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.nat({ max: 9 }), { maxLength: 200 }),
        (data, size, noise) => {
          const a = new SnapshotAssembler();
          // The leader's loop: send the chunk at `offset`; move to what the follower asks for.
          let offset = 0;
          for (let step = 0; step < 1000; step++) {
            const n = noise[step] ?? 9;
            if (n === 0) continue; // lost
            const sent = n === 1 ? chunk(data, Math.max(0, offset - size), size) : chunk(data, offset, size); // 1: a stale duplicate
            const out = a.accept(sent);
            if (out.kind === "complete") {
              expect(out.snapshot.data).toEqual(data);
              expect(out.snapshot.meta).toEqual(META);
              return;
            }
            offset = out.nextOffset;
          }
          throw new Error("never completed");
        },
      ),
    );
  });

  test("a chunk of another snapshot restarts from offset 0", () => {
    const a = new SnapshotAssembler();
    const data = new Uint8Array([1, 2, 3, 4]);
    expect(a.accept(chunk(data, 0, 2))).toEqual({ kind: "next", nextOffset: 2 });
    expect(a.accept(chunk(data, 2, 2, { ...META, index: 10 }))).toEqual({ kind: "next", nextOffset: 0 });
    expect(a.accept(chunk(data, 0, 2, { ...META, index: 10 }))).toEqual({ kind: "next", nextOffset: 2 });
  });

  test("chunks are copied: reusing the transport buffer does not corrupt the snapshot", () => {
    const a = new SnapshotAssembler();
    const buffer = new Uint8Array([1, 2, 3, 4]);
    a.accept(chunk(buffer, 0, 2));
    buffer.fill(0, 0, 2);
    const out = a.accept(chunk(new Uint8Array([9, 9, 3, 4]), 2, 2));
    expect(out).toEqual({ kind: "complete", snapshot: { meta: META, data: new Uint8Array([1, 2, 3, 4]) } });
  });
});

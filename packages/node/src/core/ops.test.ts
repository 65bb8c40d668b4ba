import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { ClusterState } from "./cluster-state.js";
import { decodePayload, encodePayload, type EntryPayload } from "./ops.js";

/**
 * Grows msgpackr's buffer, which every Packr in the process shares, the way a large client frame does (the answers
 * to a slow reader: about 1.7 MB); every later pack, by any Packr, returns a view into a buffer at least this large.
 */
function growSharedPackBuffer(): number {
  const big = new Packr({ useRecords: false }).pack({ blob: "x".repeat(1_000_000) });
  expect(big.buffer.byteLength, "msgpackr grew its shared buffer").toBeGreaterThan(1_000_000);
  return big.buffer.byteLength;
}

const payload: EntryPayload = { at: 1_700_000_000_000, ops: [{ t: "limiter", cmd: { type: "heartbeat", sessionId: "s1" } }] };

// A log entry's bytes own their buffer: a view into msgpackr's process-wide pack buffer would keep all of it (up to
// megabytes) alive for as long as the entry is in the log.
describe("encoded bytes own their buffer", () => {
  it("an entry payload does not keep msgpackr's shared buffer alive", () => {
    growSharedPackBuffer();
    const bytes = encodePayload(payload);
    expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
    expect(bytes.byteOffset).toBe(0);
    expect(decodePayload(bytes)).toEqual(payload);
  });

  it("consecutive payloads do not share a buffer", () => {
    growSharedPackBuffer();
    const a = encodePayload(payload);
    const b = encodePayload({ ...payload, at: payload.at + 1 });
    expect(a.buffer === b.buffer, "the two payloads share one buffer").toBe(false);
  });

  it("a state snapshot does not keep msgpackr's shared buffer alive", () => {
    growSharedPackBuffer();
    const state = new ClusterState();
    const bytes = state.snapshot();
    expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
    // Compared as plain arrays: msgpackr's unpack leaves a cached DataView property on the bytes it read.
    expect([...ClusterState.restore(bytes).snapshot()]).toEqual([...bytes]);
  });
});

import fc from "fast-check";
import { Packr, Unpackr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { MAX_BIGINT_EXTENSION_BYTES } from "./bigint-guard.js";
import { decodeClientFrame } from "./client.js";
import { checkProperty } from "@ratequeue/testkit";

const FILE = "packages/protocol/src/bigint-guard.test.ts";
const packr = new Packr({ useRecords: false, useBigIntExtension: true });
const unpackr = new Unpackr({ useRecords: false });

/** A frame `[<bigint extension with a payload of `bytes` bytes>]`. */
function bigIntFrame(bytes: number): Uint8Array {
  const frame = new Uint8Array(bytes + 7).fill(0x5a);
  frame.set([0x91, 0xc9, (bytes >>> 24) & 255, (bytes >>> 16) & 255, (bytes >>> 8) & 255, bytes & 255, 0x42]);
  return frame;
}

describe("the bigint extension guard", () => {
  it("leaves msgpackr's bigints up to 512 bits decoding exactly as before (property)", () => {
    const limit = 2n ** 511n;
    checkProperty({ file: FILE, name: "leaves msgpackr's bigints up to 512 bits decoding exactly as before (property)" }, fc.property(fc.oneof(fc.bigInt({ min: -limit, max: limit - 1n }), fc.constantFrom(-limit, limit - 1n, 2n ** 64n, -(2n ** 64n) - 1n)), (value) => {
        expect(unpackr.unpack(packr.pack(value))).toBe(value);
      }));
  });

  it("refuses a longer payload instead of building a huge bigint", () => {
    expect(() => unpackr.unpack(bigIntFrame(MAX_BIGINT_EXTENSION_BYTES + 1).subarray(1))).toThrow(
      "bigint extension of 65 bytes refused (max 64)",
    );
  });

  it("turns a frame made of one huge bigint with trailing bytes into a protocol error", () => {
    // Before the guard msgpackr printed this bigint into its error message, which took seconds.
    const frame = bigIntFrame(1024 * 1024 - 64);
    frame[frame.length - 1] = 0xc0;
    const result = decodeClientFrame(frame.subarray(1));
    expect(result.ok ? null : result.error.message).toContain("bigint extension of 1048512 bytes refused");
  });
});

import { describe, expect, it } from "vitest";
import { decodePayload, encodePayload } from "./payload.js";

describe("payload", () => {
  it("round-trips and tells workload data from anything else", () => {
    expect(decodePayload(encodePayload({ id: "c3.17", attempt: 2 }))).toEqual({ id: "c3.17", attempt: 2 });
    expect(decodePayload(new Uint8Array(0))).toBeNull();
    expect(decodePayload(new TextEncoder().encode("hello"))).toBeNull();
    expect(() => encodePayload({ id: "bad id", attempt: 1 })).toThrow(/payload id/);
  });
});

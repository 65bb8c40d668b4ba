import { describe, expect, it } from "vitest";
import { Reader, Writer } from "./codec.js";

describe("snapshot codec: strings", () => {
  it("writes every string as its UTF-8 bytes after a length, ASCII (written in place) and not, and reads it back", () => {
    const values = ["", "s1", "q-123_x", '{"type":"granted","leaseId":1}', "é", "naïve lane", "日本", "emoji 🚀", "\u007f", "\u0080"];
    const w = new Writer();
    for (const v of values) w.str(v);
    const bytes = w.bytes();
    // The same bytes as a length varint + TextEncoder's UTF-8, value after value.
    const expected: number[] = [];
    for (const v of values) {
      const utf8 = new TextEncoder().encode(v);
      expected.push(utf8.length, ...utf8); // every length here is below 128: one varint byte
    }
    expect([...bytes]).toEqual(expected);
    const r = new Reader(bytes);
    expect(values.map(() => r.str())).toEqual(values);
    expect(r.done()).toBe(true);
  });

  it("grows its buffer for long strings", () => {
    const long = "a".repeat(5_000) + "é".repeat(3_000);
    const w = new Writer();
    w.str(long);
    w.str("tail");
    const r = new Reader(w.bytes());
    expect(r.str()).toBe(long);
    expect(r.str()).toBe("tail");
  });
});

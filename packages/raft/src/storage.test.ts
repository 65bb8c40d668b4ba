import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { RaftError, RaftErrorCode } from "./errors.js";
import { MemoryStorage, bootstrapSnapshot } from "./storage.js";
import { checkProperty } from "@ratequeue/testkit";
import type { ConfState, Entry } from "./types.js";

const CONF: ConfState = { voters: ["n1"], learners: [], removed: [] };

function entry(index: number, term: number, size = 1): Entry {
  return { index, term, type: "normal", data: new Uint8Array(size) };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof RaftError ? error.code : "not a RaftError";
  }
  return undefined;
}

describe("MemoryStorage", () => {
  test("starts empty: first index 1, last index 0, term(0) = 0", () => {
    const s = new MemoryStorage();
    expect([s.firstIndex(), s.lastIndex(), s.term(0)]).toEqual([1, 0, 0]);
    expect(s.entries(1, 1, 100)).toEqual([]);
  });

  test("append overwrites a conflicting suffix", () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    s.append([entry(2, 2)]);
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
    expect(codeOf(() => s.term(3))).toBe(RaftErrorCode.UNAVAILABLE);
    expect(codeOf(() => s.append([entry(5, 2)]))).toBe(RaftErrorCode.INVARIANT);
  });

  test("entries(lo, hi, maxBytes) stops at maxBytes but always returns one entry", () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1, 10), entry(2, 1, 10), entry(3, 1, 10)]);
    expect(s.entries(1, 4, 25).map((e) => e.index)).toEqual([1, 2]);
    expect(s.entries(1, 4, 1).map((e) => e.index)).toEqual([1]);
    expect(codeOf(() => s.entries(1, 5, 100))).toBe(RaftErrorCode.UNAVAILABLE);
  });

  test("createSnapshot then compact: entries before are gone (COMPACTED), the snapshot covers them", () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]);
    expect(codeOf(() => s.compact(2))).toBe(RaftErrorCode.UNAVAILABLE);
    const snap = s.createSnapshot(3, CONF, new Uint8Array([9]));
    expect(snap.meta).toEqual({ index: 3, term: 2, confState: CONF });
    s.compact(2);
    expect([s.firstIndex(), s.lastIndex(), s.term(2)]).toEqual([3, 4, 1]);
    expect(codeOf(() => s.entries(2, 4, 100))).toBe(RaftErrorCode.COMPACTED);
    expect(codeOf(() => s.term(1))).toBe(RaftErrorCode.COMPACTED);
    expect(codeOf(() => s.compact(2))).toBe(RaftErrorCode.SNAPSHOT_OUT_OF_DATE);
    expect(codeOf(() => s.createSnapshot(3, CONF, new Uint8Array()))).toBe(RaftErrorCode.SNAPSHOT_OUT_OF_DATE);
    expect(codeOf(() => s.createSnapshot(9, CONF, new Uint8Array()))).toBe(RaftErrorCode.UNAVAILABLE);
  });

  test("applySnapshot replaces the log and moves the commit index; an older snapshot is refused", () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1), entry(2, 1)]);
    s.applySnapshot({ meta: { index: 10, term: 3, confState: CONF }, data: new Uint8Array() });
    expect([s.firstIndex(), s.lastIndex(), s.term(10)]).toEqual([11, 10, 3]);
    expect(s.initialState()).toEqual({ hardState: { term: 3, vote: null, commit: 10 }, confState: CONF });
    expect(codeOf(() => s.applySnapshot({ meta: { index: 5, term: 3, confState: CONF }, data: new Uint8Array() }))).toBe(
      RaftErrorCode.SNAPSHOT_OUT_OF_DATE,
    );
  });

  test("bootstrapSnapshot: index 1, term 1, the voters; rejects an empty or repeated voter list", () => {
    expect(bootstrapSnapshot({ voters: ["a", "b"] }).meta).toEqual({
      index: 1,
      term: 1,
      confState: { voters: ["a", "b"], learners: [], removed: [] },
    });
    expect(() => bootstrapSnapshot({ voters: [] })).toThrow(/at least one voter/);
    expect(() => bootstrapSnapshot({ voters: ["a", "a"] })).toThrow(/distinct/);
  });

  test("agrees with a plain array model over random appends, snapshots and compactions", () => {
    type Op = { kind: "append"; at: number; count: number; term: number } | { kind: "snapshotAndCompact"; back: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant("append" as const), at: fc.nat({ max: 30 }), count: fc.integer({ min: 1, max: 5 }), term: fc.integer({ min: 1, max: 9 }) }),
      fc.record({ kind: fc.constant("snapshotAndCompact" as const), back: fc.nat({ max: 5 }) }),
    );
    checkProperty(
      { file: "packages/raft/src/storage.test.ts", name: "agrees with a plain array model", runs: 500 },
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const s = new MemoryStorage();
        // Model: terms[i] is the term of entry i (index 0 is the dummy), `first` the first held index.
        let terms: number[] = [0];
        let first = 1;
        for (const o of ops) {
          if (o.kind === "append") {
            const last = terms.length - 1;
            const at = Math.max(first, Math.min(o.at, last + 1));
            const entries = Array.from({ length: o.count }, (_, i) => entry(at + i, o.term));
            s.append(entries);
            terms = terms.slice(0, at).concat(entries.map((e) => e.term));
          } else {
            const last = terms.length - 1;
            const index = last - o.back;
            if (index < first) continue;
            s.createSnapshot(index, CONF, new Uint8Array());
            s.compact(index);
            first = index + 1;
          }
          expect(s.firstIndex()).toBe(first);
          expect(s.lastIndex()).toBe(terms.length - 1);
          for (let i = first - 1; i < terms.length; i++) expect(s.term(i)).toBe(terms[i]);
          if (first <= terms.length - 1) {
            expect(s.entries(first, terms.length, Number.MAX_SAFE_INTEGER).map((e) => e.term)).toEqual(terms.slice(first));
          }
        }
      }),
    );
  });
});

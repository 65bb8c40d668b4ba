import { describe, expect, test } from "vitest";
import { RaftLog } from "./log.js";
import { MemoryStorage } from "./storage.js";
import type { Entry } from "./types.js";

function entry(index: number, term: number, size = 1): Entry {
  return { index, term, type: "normal", data: new Uint8Array(size) };
}

/** A log whose storage holds terms[0..] at indexes 1.. (durable), nothing unstable. */
function logWith(terms: number[]): RaftLog {
  const storage = new MemoryStorage();
  storage.append(terms.map((t, i) => entry(i + 1, t)));
  return new RaftLog(storage);
}

describe("RaftLog", () => {
  test("5.3 log matching: maybeAppend refuses when (prevIndex, prevTerm) does not match", () => {
    const log = logWith([1, 1, 2]);
    expect(log.maybeAppend({ prevIndex: 3, prevTerm: 1, commit: 0, entries: [entry(4, 3)] })).toBeNull();
    expect(log.maybeAppend({ prevIndex: 5, prevTerm: 2, commit: 0, entries: [] })).toBeNull();
    expect(log.maybeAppend({ prevIndex: 3, prevTerm: 2, commit: 2, entries: [entry(4, 3)] })).toBe(4);
    expect([log.lastIndex(), log.committed]).toEqual([4, 2]);
  });

  test("a conflicting entry and all that follow it are replaced; matching entries are kept", () => {
    const log = logWith([1, 1, 2, 2, 2]);
    expect(log.findConflict([entry(2, 1), entry(3, 2)])).toBe(0);
    expect(log.findConflict([entry(3, 2), entry(4, 3)])).toBe(4);
    log.maybeAppend({ prevIndex: 2, prevTerm: 1, commit: 0, entries: [entry(3, 2), entry(4, 3)] });
    expect([log.lastIndex(), log.term(4), log.term(3)]).toEqual([4, 3, 2]);
    // The rewritten tail is unstable: it starts at the first conflicting index.
    expect([log.unstableOffset, log.unstable.map((e) => e.index)]).toEqual([4, [4]]);
  });

  test("a conflict at or below the commit index is a broken invariant, not silently accepted", () => {
    const log = logWith([1, 1, 2]);
    log.commitTo(3);
    expect(() => log.maybeAppend({ prevIndex: 1, prevTerm: 1, commit: 3, entries: [entry(2, 5)] })).toThrow(/invariant/);
  });

  test("findConflictByTerm skips back over every entry with a higher term", () => {
    const log = logWith([1, 1, 2, 2, 4, 4, 4]);
    expect(log.findConflictByTerm(7, 3)).toBe(4);
    expect(log.findConflictByTerm(7, 4)).toBe(7);
    expect(log.findConflictByTerm(7, 1)).toBe(2);
    expect(log.findConflictByTerm(20, 9)).toBe(7);
  });

  test("5.4.1 isUpToDate compares last term, then length", () => {
    const log = logWith([1, 2, 2]);
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });

  test("slice spans durable and unstable entries under one byte budget", () => {
    const log = logWith([1, 1]);
    log.append([entry(3, 1, 10), entry(4, 1, 10)]);
    expect(log.slice(1, 5, 1_000).map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(log.slice(1, 5, 12).map((e) => e.index)).toEqual([1, 2, 3]);
    expect(log.slice(3, 5, 1).map((e) => e.index)).toEqual([3]);
  });

  test("stableTo ignores a report for a tail that was rewritten meanwhile", () => {
    const log = logWith([1]);
    log.append([entry(2, 1), entry(3, 1)]);
    log.append([entry(3, 2)]);
    log.stableTo(3, 1);
    expect(log.unstableOffset).toBe(2);
    log.stableTo(3, 2);
    expect([log.unstableOffset, log.unstable]).toEqual([4, []]);
  });

  test("restore replaces the log by a snapshot", () => {
    const log = logWith([1, 1]);
    log.restore({ meta: { index: 10, term: 3, confState: { voters: [], learners: [], removed: [] } }, data: new Uint8Array() });
    expect([log.firstIndex(), log.lastIndex(), log.committed, log.term(10), log.term(5)]).toEqual([11, 10, 10, 3, undefined]);
  });
});

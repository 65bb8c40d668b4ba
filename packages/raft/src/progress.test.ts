import { describe, expect, test } from "vitest";
import { Inflights, Progress } from "./progress.js";

describe("Inflights", () => {
  test("is full at maxMsgs messages or maxBytes bytes, and frees acknowledged appends", () => {
    const byCount = new Inflights(3, 1_000);
    byCount.add(1, 10);
    byCount.add(2, 10);
    expect(byCount.full()).toBe(false);
    byCount.add(5, 10);
    expect(byCount.full()).toBe(true);
    byCount.freeLE(2);
    expect([byCount.count, byCount.totalBytes, byCount.full()]).toEqual([1, 10, false]);

    const byBytes = new Inflights(100, 25);
    byBytes.add(1, 10);
    byBytes.add(2, 10);
    expect(byBytes.full()).toBe(false);
    byBytes.add(3, 10);
    expect(byBytes.full()).toBe(true);
    expect(() => byBytes.add(4, 1)).toThrow(/add while full/);
    byBytes.freeFirstOne();
    expect(byBytes.count).toBe(2);
  });

  test("stays correct across many add/free cycles (lazy compaction)", () => {
    const inf = new Inflights(8, 1_000_000);
    let next = 1;
    for (let round = 0; round < 1000; round++) {
      while (!inf.full()) inf.add(next++, 3);
      inf.freeLE(next - 5);
      expect(inf.count).toBe(4);
      expect(inf.totalBytes).toBe(12);
    }
  });
});

describe("Progress", () => {
  test("probe: one append at a time; a rejection moves next back to the hint", () => {
    const pr = new Progress({ next: 11, maxInflightMsgs: 4, maxInflightBytes: 100 });
    pr.sentEntries({ lastIndex: 12, count: 2, bytes: 2 });
    expect(pr.isPaused()).toBe(true);
    expect(pr.maybeDecrTo(9, 5)).toBe(false); // stale: not the append we sent
    expect(pr.maybeDecrTo(10, 5)).toBe(true);
    expect([pr.next, pr.isPaused()]).toEqual([6, false]);
  });

  test("replicate: pipelined, and a rejection above match restarts just after match", () => {
    const pr = new Progress({ next: 1, maxInflightMsgs: 2, maxInflightBytes: 100 });
    pr.maybeUpdate(5);
    pr.becomeReplicate();
    pr.sentEntries({ lastIndex: 7, count: 2, bytes: 2 });
    pr.sentEntries({ lastIndex: 9, count: 2, bytes: 2 });
    expect([pr.next, pr.isPaused()]).toEqual([10, true]);
    expect(pr.maybeDecrTo(4, 0)).toBe(false);
    expect(pr.maybeDecrTo(7, 0)).toBe(true);
    expect(pr.next).toBe(6);
  });

  test("snapshot: paused until the snapshot is acknowledged; probe resumes after it", () => {
    const pr = new Progress({ next: 3, maxInflightMsgs: 2, maxInflightBytes: 100 });
    pr.becomeSnapshot(50);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect(pr.next).toBe(51);
  });
});

import { describe, expect, test } from "vitest";
import { ReadIndexQueue } from "./read-index.js";

const ctx = (s: string) => new TextEncoder().encode(s);
const VOTERS = ["n1", "n2", "n3"];

describe("ReadIndexQueue", () => {
  test("a read completes once a quorum answered a heartbeat round sent after it", () => {
    const q = new ReadIndexQueue();
    q.add({ index: 5, context: ctx("a"), requester: "n1", leader: "n1" });
    expect(q.latestSeq()).toBe(1);
    expect(q.takeConfirmed(VOTERS)).toEqual([]);
    q.ack("n2", 1);
    expect(q.takeConfirmed(VOTERS).map((r) => r.index)).toEqual([5]);
    expect(q.latestSeq()).toBe(0);
  });

  test("an answer to an older round does not confirm a newer read; a newer round confirms all before it", () => {
    const q = new ReadIndexQueue();
    q.add({ index: 5, context: ctx("a"), requester: "n1", leader: "n1" });
    q.add({ index: 6, context: ctx("b"), requester: "n3", leader: "n1" });
    q.ack("n2", 1);
    expect(q.takeConfirmed(VOTERS).map((r) => r.index)).toEqual([5]);
    expect(q.takeConfirmed(VOTERS)).toEqual([]);
    q.add({ index: 7, context: ctx("c"), requester: "n1", leader: "n1" });
    q.ack("n3", 3);
    expect(q.takeConfirmed(VOTERS).map((r) => r.requester)).toEqual(["n3", "n1"]);
  });

  test("clear drops everything (leadership lost)", () => {
    const q = new ReadIndexQueue();
    q.add({ index: 5, context: ctx("a"), requester: "n1", leader: "n1" });
    q.clear();
    q.ack("n2", 1);
    expect(q.takeConfirmed(VOTERS)).toEqual([]);
  });
});

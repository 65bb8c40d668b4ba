import { describe, expect, it } from "vitest";
import type { OpResult } from "../core/cluster-state.js";
import { GrantLog } from "./grant-log.js";

const granted = (requestId: string): OpResult => ({
  op: { t: "limiter", cmd: { type: "tick" } },
  effects: [
    { type: "granted", sessionId: "s", requestId, resource: "r", leaseId: Number(requestId), load: {}, grantedAt: 1 },
    { type: "queued", sessionId: "s", requestId: "x", resource: "r" },
  ],
});

describe("GrantLog", () => {
  it("keeps grant-related effects in index order and reads from an index", () => {
    const log = new GrantLog(10);
    for (let i = 1; i <= 5; i++) log.record([granted(String(i))], 100 + i, i);
    const { dropped, records } = log.read(3, 100);
    expect(dropped).toBe(0);
    expect(records.map((r) => [r.index, r.at, r.effect.type])).toEqual([
      [3, 103, "granted"],
      [4, 104, "granted"],
      [5, 105, "granted"],
    ]);
    expect(log.read(0, 2).records.map((r) => r.index)).toEqual([1, 2]);
  });

  it("stays bounded and says how much fell off", () => {
    const log = new GrantLog(3);
    for (let i = 1; i <= 10; i++) log.record([granted(String(i))], i, i);
    const { dropped, records } = log.read(0, 100);
    expect(dropped).toBe(7);
    expect(records.map((r) => r.index)).toEqual([8, 9, 10]);
  });
});

import pino from "pino";
import { describe, expect, it } from "vitest";
import { reportOf } from "@ratequeue/protocol/testing";
import { DeliveryStats } from "./delivery-stats.js";

function setup(marginMs: number | null = 1000) {
  const lines: { msg: string; resource: string; maxMs: number }[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  let now = 0;
  const existing = new Set(["gpt", "claude"]);
  const stats = new DeliveryStats({ logger, now: () => now, exists: (r) => existing.has(r), marginMs: () => marginMs });
  return { stats, lines, existing, advance: (ms: number) => (now += ms) };
}

const who = { session: "s1", client: "worker-1" };

describe("DeliveryStats", () => {
  it("adds reports up per resource: cumulative buckets, sum, count and the recent max", () => {
    const { stats } = setup();
    stats.record(reportOf(1, "gpt", [3, 40, 700]), who);
    stats.record(reportOf(2, "gpt", [12]), who);
    const [v] = stats.views();
    expect(v).toMatchObject({ resource: "gpt", count: 4, sumMs: 755, recentMaxMs: 700 });
    // <= 5, 10, 25, 50, 100, 250, 500, 1000, ...
    expect(v!.cumulative.slice(0, 8)).toEqual([1, 1, 2, 3, 3, 3, 3, 4]);
  });

  it("forgets the max after two quiet minutes but keeps the histogram; drops resources that are gone", () => {
    const { stats, existing, advance } = setup();
    stats.record(reportOf(1, "gpt", [900]), who);
    advance(60_000);
    expect(stats.views()[0]!.recentMaxMs).toBe(900);
    advance(60_001);
    expect(stats.views()[0]).toMatchObject({ count: 1, recentMaxMs: null });
    existing.delete("gpt");
    expect(stats.views()).toEqual([]);
  });

  it("warns near the margin and beyond it, each at most once a minute per resource", () => {
    const { stats, lines, advance } = setup(1000);
    stats.record(reportOf(1, "gpt", [799]), who);
    expect(lines).toEqual([]);
    stats.record(reportOf(2, "gpt", [800]), who);
    stats.record(reportOf(3, "gpt", [900]), who);
    expect(lines.map((l) => l.msg)).toEqual(["grant-to-send delay near the resource's delivery margin"]);
    stats.record(reportOf(4, "gpt", [1001]), who);
    stats.record(reportOf(5, "gpt", [5000]), who);
    stats.record(reportOf(6, "claude", [5000]), who);
    expect(lines.map((l) => [l.resource, l.maxMs])).toEqual([["gpt", 800], ["gpt", 1001], ["claude", 5000]]);
    advance(60_000);
    stats.record(reportOf(7, "gpt", [1500]), who);
    expect(lines).toHaveLength(4);
  });

  it("never warns for a resource without a windowed limit", () => {
    const { stats, lines } = setup(null);
    stats.record(reportOf(1, "gpt", [86_400_000]), who);
    expect(lines).toEqual([]);
    expect(stats.summary()).toEqual({ grants: 1, recentMaxMs: 86_400_000, resourcesNearMargin: 0 });
  });
});

import { describe, expect, it } from "vitest";
import { filterMetrics } from "./metrics.js";

const TEXT = [
  "# HELP ratequeue_grants_total Grants applied, by resource.",
  "# TYPE ratequeue_grants_total counter",
  'ratequeue_grants_total{resource="team-a-chat"} 3',
  'ratequeue_grants_total{resource="team-b-chat"} 5',
  "# HELP ratequeue_queue_depth Requests waiting, by resource and lane.",
  "# TYPE ratequeue_queue_depth gauge",
  'ratequeue_queue_depth{resource="team-b-chat",lane="interactive"} 1',
  'ratequeue_rejections_total{code="RQ_TIMEOUT",resource="team-b-chat"} 2',
  'ratequeue_something{lane="batch"} 1',
  'ratequeue_raft_role{role="leader"} 1',
  "ratequeue_raft_term 4",
  "",
].join("\n");

describe("filterMetrics", () => {
  it("keeps the node's own series and the visible resources' series, and every HELP and TYPE line", () => {
    const out = filterMetrics(TEXT, (r) => r.startsWith("team-a-"));
    expect(out).toContain('ratequeue_grants_total{resource="team-a-chat"} 3');
    expect(out).not.toContain("team-b");
    expect(out).not.toContain('lane="batch"');
    expect(out).toContain('ratequeue_raft_role{role="leader"} 1');
    expect(out).toContain("ratequeue_raft_term 4");
    expect(out).toContain("# TYPE ratequeue_queue_depth gauge");
  });

  it("names no resource or lane to a reader who may see none", () => {
    const out = filterMetrics(TEXT, () => false);
    expect(out).not.toMatch(/resource="|lane="/);
    expect(out.split("\n").filter((l) => l.startsWith("#"))).toHaveLength(4);
  });
});

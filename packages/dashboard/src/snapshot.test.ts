import { describe, expect, it } from "vitest";
import { GrantHistory } from "./grant-history.js";
import { buildShared, forViewer, nodeRows, RESOURCES_PER_PUSH_MAX, resourceRow, type PolledStatus, type ResourceViewLike } from "./snapshot.js";

const polled = (id: string, status: Partial<PolledStatus["status"]> | null, error: string | null = null): PolledStatus => ({
  id,
  url: `http://${id}`,
  status: status === null ? null : { id, role: "follower", term: 2, leader: "n1", commitIndex: 10, appliedIndex: 10, ...status },
  error,
  atMs: 1_000,
});

describe("nodeRows", () => {
  it("takes a follower's lag from the leader's progress, and the leader's own from commit minus applied", () => {
    const rows = nodeRows({
      selfId: "n2",
      nowMs: 1_400,
      polled: [
        polled("n3", { appliedIndex: 7, commitIndex: 9 }),
        polled("n1", { role: "leader", commitIndex: 12, appliedIndex: 11, peers: [{ id: "n2", lag: 0 }, { id: "n3", lag: 5 }] }),
        polled("n2", { appliedIndex: 12, commitIndex: 12 }),
      ],
    });
    expect(rows.map((r) => [r.id, r.role, r.lag, r.self, r.ageMs])).toEqual([
      ["n1", "leader", 1, false, 400],
      ["n2", "follower", 0, true, 400],
      ["n3", "follower", 5, false, 400],
    ]);
  });

  it("without a known leader, counts committed entries a node has not applied; unreachable nodes say why", () => {
    const rows = nodeRows({
      selfId: "n1",
      nowMs: 1_000,
      polled: [polled("n1", { role: "candidate", commitIndex: 10, appliedIndex: 8 }), polled("n2", null, "no answer in time")],
    });
    expect(rows[0]).toMatchObject({ reachable: true, lag: 2 });
    expect(rows[1]).toMatchObject({ reachable: false, role: null, lag: null, error: "no answer in time" });
  });

  it("shows each node's clock against the serving node's, as the serving node measured it (also for a node that is down)", () => {
    const rows = nodeRows({
      selfId: "n2",
      nowMs: 1_000,
      polled: [
        polled("n1", { role: "leader", peers: [{ id: "n2", clockOffsetMs: 5 }] }),
        polled("n2", { peers: [{ id: "n1", clockOffsetMs: -120_004 }, { id: "n3", clockOffsetMs: 340 }] }),
        polled("n3", null, "no answer in time"),
      ],
    });
    expect(rows.map((r) => [r.id, r.clockOffsetMs])).toEqual([
      ["n1", -120_004],
      ["n2", 0],
      ["n3", 340],
    ]);
    expect(nodeRows({ selfId: "n1", nowMs: 0, polled: [polled("n1", {}), polled("n2", {})] })[1]!.clockOffsetMs).toBeNull();
  });

  it("trusts the leader with the highest term when two nodes claim to lead (an old leader cut off)", () => {
    const rows = nodeRows({
      selfId: "n1",
      nowMs: 1_000,
      polled: [
        polled("n1", { role: "leader", term: 2, peers: [{ id: "n3", lag: 50 }] }),
        polled("n2", { role: "leader", term: 3, peers: [{ id: "n3", lag: 1 }] }),
        polled("n3", {}),
      ],
    });
    expect(rows.find((r) => r.id === "n3")!.lag).toBe(1);
  });
});

function view(name: string, extra: Partial<ResourceViewLike> = {}): ResourceViewLike {
  const rate = { kind: "rate", limit: 100, windowMs: 60_000, window: "sliding", reserved: {} } as const;
  const tokens = { kind: "load", limit: 5_000, windowMs: 60_000, window: "bucket", dimension: "input", reserved: {} } as const;
  return {
    name,
    config: { limits: [rate, tokens], lanes: [{ name: "interactive", weight: 3 }, { name: "batch", weight: 1 }], lanePolicy: "strict", defaultLane: "batch" },
    usage: [
      { config: rate, used: 40 },
      { config: tokens, used: 1_234.5 },
    ],
    leasesHeld: 2,
    queued: { interactive: 1, batch: 4 },
    cooldownUntil: 9_000,
    ...extra,
  };
}

describe("resourceRow", () => {
  it("gives the configuration as a PUT body, usage per limit, queue totals and the grant series", () => {
    const history = new GrantHistory({ seconds: 3 });
    history.record("r", 4_100, 2);
    const row = resourceRow(view("r"), history, 5_000);
    expect(row.config).toEqual({
      limits: view("r").config.limits,
      lanes: { interactive: { weight: 3 }, batch: { weight: 1 } },
      lanePolicy: "strict",
      defaultLane: "batch",
    });
    expect(row.usage).toEqual([
      { kind: "rate", limit: 100, used: 40, windowMs: 60_000, window: "sliding", dimension: null },
      { kind: "load", limit: 5_000, used: 1_234.5, windowMs: 60_000, window: "bucket", dimension: "input" },
    ]);
    expect(row.queuedTotal).toBe(5);
    expect(row.grantsPerSecond).toEqual([0, 2, 0]);
    expect(row.grantsTotal).toBe(2);
    // A resource never granted gets zeros of the same length.
    expect(resourceRow(view("other"), history, 5_000).grantsPerSecond).toEqual([0, 0, 0]);
  });

  it("names who reported the active cooldown when this node applied the report, and nobody for an older end", () => {
    const history = new GrantHistory();
    expect(resourceRow(view("r"), history, 5_000).cooldownBy).toBeNull();
    history.recordCooldown("r", 9_000, "worker-7");
    expect(resourceRow(view("r"), history, 5_000)).toMatchObject({ cooldownUntil: 9_000, cooldownBy: "worker-7" });
    // A shorter report under it (no by in the effect) keeps the reporter; a later end without one forgets it.
    history.recordCooldown("r", 9_000, undefined);
    expect(resourceRow(view("r"), history, 5_000).cooldownBy).toBe("worker-7");
    expect(resourceRow(view("r", { cooldownUntil: 12_000 }), history, 5_000).cooldownBy).toBeNull();
    expect(resourceRow(view("r", { cooldownUntil: null }), history, 5_000).cooldownBy).toBeNull();
    history.forget("r");
    expect(resourceRow(view("r"), history, 5_000).cooldownBy).toBeNull();
  });

  it("omits defaultLane for a resource without lanes", () => {
    const row = resourceRow(view("r", { config: { limits: [], lanes: [], lanePolicy: "shared", defaultLane: null } }), new GrantHistory(), 0);
    expect(row.config).toEqual({ limits: [], lanes: {}, lanePolicy: "shared" });
  });
});

describe("forViewer", () => {
  const shared = buildShared({
    nodeId: "n1",
    nowMs: 5_000,
    polled: [],
    views: [view("b"), view("a/1"), view("a/2")],
    history: new GrantHistory(),
  });

  it("sorts resources by name; no key sees none, an admin all, a scoped key its own", () => {
    expect(shared.resources.map((r) => r.name)).toEqual(["a/1", "a/2", "b"]);
    expect(forViewer(shared, null)).toMatchObject({ access: "none", resources: null });
    expect(forViewer(shared, "admin").resources!.map((r) => r.name)).toEqual(["a/1", "a/2", "b"]);
    const scoped = forViewer(shared, { canRead: (r) => r.startsWith("a/") });
    expect(scoped.access).toBe("read");
    expect(scoped.resources!.map((r) => r.name)).toEqual(["a/1", "a/2"]);
  });

  it("caps one push at RESOURCES_PER_PUSH_MAX resources and says how many it left out", () => {
    const many = buildShared({
      nodeId: "n1",
      nowMs: 0,
      polled: [],
      views: Array.from({ length: RESOURCES_PER_PUSH_MAX + 7 }, (_, i) => view(`r${String(i).padStart(4, "0")}`)),
      history: new GrantHistory({ seconds: 1 }),
    });
    const snap = forViewer(many, "admin");
    expect(snap.resources).toHaveLength(RESOURCES_PER_PUSH_MAX);
    expect(snap.resourcesOmitted).toBe(7);
  });
});

import { describe, expect, it } from "vitest";
import { keyFromSecret } from "../state/keys.js";
import { ClusterState, LAST_ADMIN_KEY_MESSAGE } from "./cluster-state.js";
import type { Op } from "./ops.js";

const ADMIN = keyFromSecret("admin-secret-0123456789", "bootstrap admin", "admin");
const OTHER_ADMIN = keyFromSecret("other-admin-secret-0123", "other", "admin");
const WORKER = keyFromSecret("worker-secret-0123456789", "worker", { acquire: ["r"] });

function apply(state: ClusterState, at: number, ...ops: Op[]) {
  return state.apply({ at, ops }).flatMap((r) => r.effects);
}

describe("ClusterState: admin keys in the replicated table", () => {
  it("seeds the bootstrap admin key once: a second seed, with another key, changes nothing", () => {
    const state = new ClusterState();
    apply(state, 1, { t: "adminSeed", key: ADMIN });
    apply(state, 2, { t: "adminSeed", key: OTHER_ADMIN });
    expect(state.keys.list().map((k) => k.id)).toEqual([ADMIN.id]);
    expect(state.keys.verify("admin-secret-0123456789")?.scope).toBe("admin");
    expect(state.keys.verify("other-admin-secret-0123")).toBeNull();
  });

  it("a seed finds the table already holding an admin key (from the config file's bootstrap) and adds nothing", () => {
    const state = new ClusterState();
    apply(state, 1, { t: "bootstrap", ops: [{ t: "keyAdd", key: OTHER_ADMIN }] }, { t: "adminSeed", key: ADMIN });
    expect(state.keys.list().map((k) => k.id)).toEqual([OTHER_ADMIN.id]);
  });

  it("refuses to revoke the last admin key, and revokes one of two", () => {
    const state = new ClusterState();
    apply(state, 1, { t: "adminSeed", key: ADMIN });
    const refused = apply(state, 2, { t: "keyRemove", id: ADMIN.id });
    expect(refused).toEqual([{ type: "error", command: "keyRemove", code: "RQ_INVALID", message: LAST_ADMIN_KEY_MESSAGE }]);
    expect(state.keys.adminCount).toBe(1);
    apply(state, 3, { t: "keyAdd", key: OTHER_ADMIN });
    expect(apply(state, 4, { t: "keyRemove", id: ADMIN.id })).toEqual([]);
    expect(state.keys.list().map((k) => k.id)).toEqual([OTHER_ADMIN.id]);
    // Once a seed has applied, the table is the authority: a seed of a revoked key does not come back.
    apply(state, 5, { t: "adminSeed", key: ADMIN });
    expect(state.keys.verify("admin-secret-0123456789")).toBeNull();
  });

  it("revoking a key ends the sessions it opened: leases released, waiters dropped, others' sessions untouched", () => {
    const state = new ClusterState();
    apply(
      state,
      1,
      { t: "adminSeed", key: ADMIN },
      { t: "keyAdd", key: WORKER },
      { t: "limiter", cmd: { type: "putResource", name: "r", config: { limits: [{ kind: "concurrency", limit: 1 }] } } },
      { t: "limiter", cmd: { type: "openSession", sessionId: "w1", ttlMs: 60_000 }, owner: WORKER.id },
      { t: "limiter", cmd: { type: "openSession", sessionId: "a1", ttlMs: 60_000 }, owner: ADMIN.id },
      { t: "limiter", cmd: { type: "acquire", sessionId: "w1", requestId: "1", resource: "r" } },
      { t: "limiter", cmd: { type: "acquire", sessionId: "w1", requestId: "2", resource: "r" } },
      { t: "limiter", cmd: { type: "acquire", sessionId: "a1", requestId: "1", resource: "r" } },
    );
    expect(state.limiter.resource("r")!.leasesHeld).toBe(1);
    const effects = apply(state, 2, { t: "keyRemove", id: WORKER.id });
    expect(effects).toContainEqual(expect.objectContaining({ type: "sessionEnded", sessionId: "w1", reason: "closed", droppedRequests: ["2"] }));
    // The worker's slot went to the admin session waiting behind it.
    expect(effects).toContainEqual(expect.objectContaining({ type: "granted", sessionId: "a1", requestId: "1" }));
    expect(state.ownerOf("w1")).toBeUndefined();
    expect(state.ownerOf("a1")).toBe(ADMIN.id);
    expect(state.keys.get(WORKER.id)).toBeUndefined();
    // Every node applying the same entries reaches the same bytes, a restored one included.
    expect(ClusterState.restore(state.snapshot()).snapshot()).toEqual(state.snapshot());
  });
});

describe("ClusterState: cluster id", () => {
  it("the first id applied stands; later ones change nothing; snapshots carry it", () => {
    const state = new ClusterState();
    expect(state.clusterId).toBeNull();
    apply(state, 1, { t: "clusterId", id: "00112233aabbccdd" });
    apply(state, 2, { t: "clusterId", id: "ffeeddccbbaa9988" });
    expect(state.clusterId).toBe("00112233aabbccdd");
    expect(ClusterState.restore(state.snapshot()).clusterId).toBe("00112233aabbccdd");
    expect(ClusterState.restore(new ClusterState().snapshot()).clusterId).toBeNull();
  });
});

import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bootstrapSnapshot, encodeConfChange, type Entry } from "@ratequeue/raft";
import { ClusterState } from "../core/cluster-state.js";
import { encodePayload, type Op } from "../core/ops.js";
import { LevelStore } from "../storage/level-store.js";
import { makeBackup, parseBackup } from "./backup-file.js";
import { DataFolderError, forceNewCluster, restoreDataFolder } from "./data-folder.js";

const RESOURCE: Op = { t: "limiter", cmd: { type: "putResource", name: "r", config: { limits: [{ kind: "rate", limit: 5, windowMs: 60_000 }] } } };
const OPEN: Op = { t: "limiter", cmd: { type: "openSession", sessionId: "s1", ttlMs: 60_000 } };
const grant = (i: number): Op => ({ t: "limiter", cmd: { type: "acquire", sessionId: "s1", requestId: `q${i}`, resource: "r", timeoutMs: 0 } });

function normal(index: number, at: number, ops: Op[]): Entry {
  return { index, term: 2, type: "normal", data: encodePayload({ at, ops }) };
}

/** A node's data folder as a three-node cluster leaves it: the bootstrap snapshot, then `entries`, commit `commit`. */
async function folder(dir: string, id: string, entries: Entry[], commit: number): Promise<string> {
  const path = join(dir, id);
  const store = new LevelStore({ path, nodeId: id });
  await store.load();
  await store.write({ snapshot: bootstrapSnapshot({ voters: ["n1", "n2", "n3"] }), sync: true });
  await store.write({ entries, hardState: { term: 2, vote: "n1", commit }, sync: true });
  await store.close();
  return path;
}

async function load(path: string, id: string) {
  const store = new LevelStore({ path, nodeId: id });
  try {
    return { ...(await store.load()), clusterId: store.clusterId };
  } finally {
    await store.close();
  }
}

describe("forceNewCluster", () => {
  let dir: string;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("applies every entry in the log, committed or not, and leaves this node the only voter", async () => {
    dir = await mkdtemp(join(tmpdir(), "rq-recover-"));
    const entries = [
      normal(2, 1_000, [RESOURCE, OPEN, { t: "clusterId", id: "00112233aabbccdd" }]),
      normal(3, 1_010, [grant(1), grant(2)]),
      { index: 4, term: 2, type: "confChange" as const, data: encodeConfChange({ type: "addLearner", nodeId: "n4" }) },
      normal(5, 1_020, [grant(3)]), // beyond the commit index on disk: applied too
    ];
    const path = await folder(dir, "n1", entries, 3);
    const store = new LevelStore({ path, nodeId: "n1" });
    await store.load();
    await store.recordClusterId("00112233aabbccdd");
    await store.close();
    expect((await load(path, "n1")).clusterId).toBe("00112233aabbccdd");
    const r = await forceNewCluster({ dataDir: path, id: "n1" });
    expect(r).toEqual({ index: 5, term: 2, entriesApplied: 4, dropped: ["n2", "n3", "n4"], wasVoter: true });
    const after = await load(path, "n1");
    expect(after.entries).toEqual([]);
    expect(after.snapshot!.meta).toEqual({ index: 5, term: 2, confState: { voters: ["n1"], learners: [], removed: ["n2", "n3", "n4"] } });
    expect(after.hardState).toEqual({ term: 2, vote: "n1", commit: 5 });
    const state = ClusterState.restore(after.snapshot!.data);
    expect(state.limiter.resource("r")!.usage[0]!.used).toBe(3);
    expect(state.limiter.lastAt).toBe(1_020);
    // A new cluster: its first leader gives it a new id; the old one is forgotten in the state and the folder.
    expect(state.clusterId).toBeNull();
    expect(after.clusterId).toBeNull();
  });

  it("refuses a folder with no cluster, another node's folder, a removed node, and a folder in use", async () => {
    dir = await mkdtemp(join(tmpdir(), "rq-recover-"));
    await expect(forceNewCluster({ dataDir: join(dir, "absent"), id: "n1" })).rejects.toMatchObject({ code: "RQ_DATA_EMPTY", message: expect.stringMatching(/does not exist/) });
    expect(existsSync(join(dir, "absent"))).toBe(false);
    const empty = new LevelStore({ path: join(dir, "empty"), nodeId: "n1" });
    await empty.load();
    await empty.close();
    await expect(forceNewCluster({ dataDir: join(dir, "empty"), id: "n1" })).rejects.toMatchObject({ code: "RQ_DATA_EMPTY", message: expect.stringMatching(/holds no cluster/) });
    const path = await folder(dir, "n2", [{ index: 2, term: 2, type: "confChange", data: encodeConfChange({ type: "remove", nodeId: "n2" }) }], 2);
    await expect(forceNewCluster({ dataDir: path, id: "n1" })).rejects.toMatchObject({ code: "RQ_INVALID", message: expect.stringMatching(/belongs to node n2, not n1 \(check --id\)/) });
    await expect(forceNewCluster({ dataDir: path, id: "n2" })).rejects.toMatchObject({ code: "RQ_DATA_REMOVED" });
    const held = new LevelStore({ path, nodeId: "n2" });
    await held.load();
    try {
      await expect(forceNewCluster({ dataDir: path, id: "n2" })).rejects.toBeInstanceOf(DataFolderError);
      await expect(forceNewCluster({ dataDir: path, id: "n2" })).rejects.toMatchObject({ code: "RQ_DATA_IN_USE" });
    } finally {
      await held.close();
    }
  });
});

describe("restoreDataFolder", () => {
  let dir: string;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("writes the same snapshot on every founder: the backup's state, the new members and their addresses", async () => {
    dir = await mkdtemp(join(tmpdir(), "rq-restore-"));
    const state = new ClusterState();
    state.apply({ at: 5_000, ops: [RESOURCE, OPEN, grant(1), { t: "memberAddress", id: "old1", address: "10.0.0.1:7401" }, { t: "clusterId", id: "00112233aabbccdd" }] });
    const backup = parseBackup(JSON.stringify(makeBackup({ state, node: "old1", index: 42, term: 3, createdAt: new Date(0) })), "b.json");
    const members = new Map([["n1", "127.0.0.1:7401"], ["n2", "127.0.0.1:7402"]]);
    const snapshots = [];
    for (const id of ["n1", "n2"]) {
      const path = join(dir, id);
      expect(await restoreDataFolder({ dataDir: path, id, backup, members })).toEqual({ index: 42, voters: ["n1", "n2"] });
      snapshots.push((await load(path, id)).snapshot!);
      await expect(restoreDataFolder({ dataDir: path, id, backup, members })).rejects.toMatchObject({ code: "RQ_DATA_NOT_EMPTY" });
    }
    expect(snapshots[0]).toEqual(snapshots[1]);
    expect(snapshots[0]!.meta).toEqual({ index: 42, term: 1, confState: { voters: ["n1", "n2"], learners: [], removed: [] } });
    const restored = ClusterState.restore(snapshots[0]!.data);
    expect([...restored.memberAddresses]).toEqual([...members]);
    expect(restored.limiter.resource("r")!.usage[0]!.used).toBe(1);
    expect(restored.limiter.lastAt).toBe(5_000);
    expect(backup.state.clusterId).toBe("00112233aabbccdd"); // the backup carries the old id; the restore drops it
    expect(restored.clusterId).toBeNull();
    await expect(restoreDataFolder({ dataDir: join(dir, "n3"), id: "n3", backup, members })).rejects.toMatchObject({ code: "RQ_INVALID" });
  });
});

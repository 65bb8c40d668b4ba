import { existsSync } from "node:fs";
import { decodeConfChange, type ConfState, type NodeId, type Snapshot } from "@ratequeue/raft";
import { ClusterState } from "../core/cluster-state.js";
import { decodePayload } from "../core/ops.js";
import { LevelStore } from "../storage/level-store.js";
import type { PersistedState } from "../storage/types.js";
import type { CheckedBackup } from "./backup-file.js";

/** A data folder that cannot be restored into or recovered, with a stable code. */
export class DataFolderError extends Error {
  override readonly name = "DataFolderError";
  constructor(
    readonly code: "RQ_DATA_NOT_EMPTY" | "RQ_DATA_EMPTY" | "RQ_DATA_IN_USE" | "RQ_DATA_REMOVED" | "RQ_INVALID",
    message: string,
  ) {
    super(message);
  }
}

/** What `restoreDataFolder` wrote. */
export interface Restored {
  readonly index: number;
  readonly voters: readonly NodeId[];
}

/**
 * Seeds an empty data folder of a new cluster with a backup: one Raft snapshot holding the backed-up state, with
 * `members` (id -> host:port) as the voters and their addresses. Run it on every founding node with the same file
 * and the same members: each writes the same snapshot, so they start as one cluster (`ratequeue start` with no
 * --peers needed). The backup's member addresses are dropped; everything else (resources and their usage,
 * leases, sessions, queues, keys) is kept as it was at the backup's index, and log time resumes from there.
 */
export async function restoreDataFolder(options: {
  dataDir: string;
  id: NodeId;
  backup: CheckedBackup;
  members: ReadonlyMap<NodeId, string>;
}): Promise<Restored> {
  const { dataDir, id, backup, members } = options;
  if (!members.has(id)) throw new DataFolderError("RQ_INVALID", `--peers must list this node (${id}) among the new cluster's members`);
  const store = new LevelStore({ path: dataDir, nodeId: id });
  try {
    const persisted = await open(store, dataDir);
    if (persisted.snapshot !== null || persisted.hardState !== null || persisted.entries.length > 0) {
      throw new DataFolderError("RQ_DATA_NOT_EMPTY", `data folder ${dataDir} already holds a cluster: restore only into an empty folder (never over a live node's data)`);
    }
    // A fresh copy: the checked backup stays as it was for the caller.
    const state = ClusterState.restore(backup.bytes);
    state.replaceMemberAddresses(members);
    // A restored cluster is a new cluster: its first leader gives it a new id, so that nodes of the backed-up cluster
    // (same ids, same secret) can never link to it.
    state.forgetClusterId();
    const index = Math.max(1, backup.header.index);
    const voters = [...members.keys()].sort();
    // Term 1, as a bootstrapped folder: the new cluster's first election is term 2. Every founder writes these same
    // bytes (the state snapshot is canonical), so their logs agree at `index`.
    const snapshot: Snapshot = { meta: { index, term: 1, confState: { voters, learners: [], removed: [] } }, data: state.snapshot() };
    await store.write({ snapshot, hardState: { term: 1, vote: null, commit: index }, sync: true });
    return { index, voters };
  } finally {
    await store.close();
  }
}

/** What `forceNewCluster` did. */
export interface Recovered {
  readonly index: number;
  readonly term: number;
  /** Entries after the last snapshot that were applied (every one in the log, committed or not). */
  readonly entriesApplied: number;
  /** The members dropped (now listed as removed: they can never rejoin under these ids). */
  readonly dropped: readonly NodeId[];
  /** Whether this node was a voter before (a learner's log may lack committed entries). */
  readonly wasVoter: boolean;
}

/**
 * Force-recover (etcd's --force-new-cluster): rewrites a stopped node's data folder so that it alone is the
 * cluster, for when a majority of voters is lost for good. Its state becomes its snapshot plus every entry in its
 * log, applied in order, committed or not: the commit index on disk may lag what the cluster had committed, and an
 * acknowledged grant must never be forgotten (applying a grant that was never acknowledged only charges usage
 * nobody got, which delays grants but cannot over-grant). Every other member is listed as removed, so their old
 * data can never take part again. The node then starts as a one-voter cluster with its state; grow it back with
 * `ratequeue members add` / `--join`.
 */
export async function forceNewCluster(options: { dataDir: string; id: NodeId }): Promise<Recovered> {
  const { dataDir, id } = options;
  // Checked before opening: opening creates the folder, and a mistyped path must not leave one behind.
  if (!existsSync(dataDir)) throw new DataFolderError("RQ_DATA_EMPTY", `data folder ${dataDir} does not exist: nothing to recover`);
  const store = new LevelStore({ path: dataDir, nodeId: id });
  try {
    const persisted = await open(store, dataDir);
    if (persisted.snapshot === null && persisted.entries.length === 0) {
      throw new DataFolderError("RQ_DATA_EMPTY", `data folder ${dataDir} holds no cluster: nothing to recover`);
    }
    const snapshot = persisted.snapshot;
    const state = ClusterState.restore(snapshot?.data ?? new Uint8Array(0));
    let conf: ConfState = snapshot?.meta.confState ?? { voters: [], learners: [], removed: [] };
    const seen = new Set<NodeId>([...conf.voters, ...conf.learners, ...conf.removed]);
    let index = snapshot?.meta.index ?? 0;
    let term = snapshot?.meta.term ?? 0;
    let applied = 0;
    for (const entry of persisted.entries) {
      if (entry.type === "confChange") {
        const change = decodeConfChange(entry.data);
        seen.add(change.nodeId);
        conf = applyConfChange(conf, change.type, change.nodeId);
      } else if (entry.data.length > 0) {
        state.apply(decodePayload(entry.data));
      }
      index = entry.index;
      term = entry.term;
      applied++;
    }
    if (conf.removed.includes(id)) {
      throw new DataFolderError("RQ_DATA_REMOVED", `${id} was removed from its cluster: its data is not the cluster's; recover from another node's data`);
    }
    const wasVoter = conf.voters.includes(id);
    const dropped = [...seen].filter((m) => m !== id && !conf.removed.includes(m)).sort();
    const removed = [...new Set([...conf.removed, ...dropped])].sort();
    const self = state.memberAddresses.get(id);
    state.replaceMemberAddresses(self === undefined ? new Map() : new Map([[id, self]]));
    // A new cluster: its first leader (this node) gives it a new id, so the old members' data can never link to it,
    // nor a second node recovered from the same cluster by mistake.
    state.forgetClusterId();
    const hardTerm = Math.max(persisted.hardState?.term ?? 0, term);
    const recovered: Snapshot = { meta: { index, term, confState: { voters: [id], learners: [], removed } }, data: state.snapshot() };
    // The vote stays as it was: in its current term this node has voted for whom it voted (the others are gone).
    await store.write({ snapshot: recovered, hardState: { term: hardTerm, vote: persisted.hardState?.vote ?? null, commit: index }, sync: true });
    await store.recordClusterId(null);
    return { index, term: hardTerm, entriesApplied: applied, dropped, wasVoter };
  } finally {
    await store.close();
  }
}

function applyConfChange(conf: ConfState, type: "addLearner" | "promote" | "remove", nodeId: NodeId): ConfState {
  const voters = conf.voters.filter((v) => v !== nodeId);
  const learners = conf.learners.filter((l) => l !== nodeId);
  if (type === "addLearner") return { voters, learners: [...learners, nodeId], removed: conf.removed };
  if (type === "promote") return { voters: [...voters, nodeId], learners, removed: conf.removed };
  return { voters, learners, removed: [...conf.removed, nodeId] };
}

async function open(store: LevelStore, dataDir: string): Promise<PersistedState> {
  try {
    return await store.load();
  } catch (err) {
    const e = err as { code?: string; message?: string; cause?: { code?: string } };
    if (e.code === "RQ_STORAGE_FOREIGN") throw new DataFolderError("RQ_INVALID", `${e.message ?? ""} (check --id)`);
    if (e.code === "LEVEL_DATABASE_NOT_OPEN" && e.cause?.code === "LEVEL_LOCKED") {
      throw new DataFolderError("RQ_DATA_IN_USE", `data folder ${dataDir} is in use: stop the node running on it first`);
    }
    throw err;
  }
}

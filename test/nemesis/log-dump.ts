/**
 * The applied log of a stopped node, read back from its data folder: the
 * "dump command" the chaos checker uses, since the node has no debug endpoint
 * for its applied entries.
 *
 * Usage (on a stopped node's folder): tsx test/nemesis/log-dump.ts <dataDir> <nodeId>
 * prints one JSON line per effect of every committed entry.
 */
import type { Effect } from "@ratequeue/limiter";
import type { Entry } from "@ratequeue/raft";
import { ClusterState, decodePayload, LevelStore } from "@ratequeue/node/testing";

export interface NodeLog {
  readonly id: string;
  /** The commit index the node last made durable (it may lag the cluster's). */
  readonly commit: number;
  /** The index the stored snapshot covers (0: none), and its state-machine bytes. */
  readonly snapshotIndex: number;
  readonly snapshotData: Uint8Array;
  /** The committed entries it stores, in index order. */
  readonly entries: readonly Entry[];
}

/** One effect of one applied entry, with the entry's index and stamp (the cluster's log time). */
export interface AppliedEffect {
  readonly index: number;
  readonly at: number;
  readonly effect: Effect;
}

/** Reads a stopped node's committed log. The node must not be running (LevelDB allows one opener). */
export async function readNodeLog(options: { dataDir: string; id: string }): Promise<NodeLog> {
  const store = new LevelStore({ path: options.dataDir, nodeId: options.id });
  try {
    const persisted = await store.load();
    const commit = persisted.hardState?.commit ?? 0;
    return {
      id: options.id,
      commit,
      snapshotIndex: persisted.snapshot?.meta.index ?? 0,
      snapshotData: persisted.snapshot?.data ?? new Uint8Array(0),
      entries: persisted.entries.filter((e) => e.index <= commit),
    };
  } finally {
    await store.close();
  }
}

/**
 * Replays committed entries through the node's state machine and returns
 * every effect it produced: the cluster's applied grant log. The log must
 * start at most at index 1 (a new cluster's first snapshot holds only its
 * membership); the chaos cluster never compacts, so nothing is missing.
 */
export function appliedEffects(log: NodeLog): AppliedEffect[] {
  if (log.snapshotIndex > 1) throw new Error(`${log.id}: log compacted at ${log.snapshotIndex}; grants before it cannot be replayed`);
  const state = ClusterState.restore(log.snapshotData);
  const out: AppliedEffect[] = [];
  let expected = log.snapshotIndex + 1;
  for (const entry of log.entries) {
    if (entry.index !== expected) throw new Error(`${log.id}: gap in the log at ${expected} (found ${entry.index})`);
    expected++;
    if (entry.type !== "normal" || entry.data.length === 0) continue;
    const payload = decodePayload(entry.data);
    for (const r of state.apply(payload)) for (const effect of r.effects) out.push({ index: entry.index, at: payload.at, effect });
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dataDir, id] = process.argv.slice(2);
  if (dataDir === undefined || id === undefined) {
    process.stderr.write("usage: tsx test/nemesis/log-dump.ts <dataDir> <nodeId>\n");
    process.exit(2);
  }
  const log = await readNodeLog({ dataDir, id });
  for (const e of appliedEffects(log)) process.stdout.write(`${JSON.stringify(e)}\n`);
}

import type { Logger } from "pino";
import type { NodeCore } from "../core/node-core.js";
import { CLUSTER_MISMATCH, newClusterId } from "../peer/handshake.js";
import type { LevelStore } from "../storage/level-store.js";

export interface ClusterIdentityOptions {
  readonly core: NodeCore;
  readonly store: Pick<LevelStore, "clusterId" | "recordClusterId">;
  readonly logger: Logger;
  /** Called once this node knows its cluster id (the peer transport drops links to other clusters). */
  readonly onKnown: (clusterId: string) => void;
}

/**
 * Which cluster this node's data belongs to (etcd's cluster id). A cluster has one id for its whole life: its first
 * caught-up leader proposes a fresh one (a `clusterId` op) and the first one committed stands. A restore and a
 * force-recover make a new cluster: they clear the id, and the new cluster's first leader proposes a new one. A
 * joining node takes the id of the cluster it joins (`adopt`) before it links to anyone.
 *
 * The id is also kept in the data folder's meta record, because the peer handshake announces it before the log is
 * replayed at start. Each node holds exactly one id from the moment it knows one; it never changes.
 */
export class ClusterIdentity {
  readonly #o: ClusterIdentityOptions;
  #id: string | null;
  #mismatchLogged = false;

  /** After `core.start()`: the id comes from the data folder's record or from the restored state. */
  constructor(options: ClusterIdentityOptions) {
    this.#o = options;
    const { core, store } = options;
    this.#id = store.clusterId ?? core.state.clusterId;
    if (store.clusterId === null && this.#id !== null) this.#record(this.#id);
    this.#checkState();
    core.onApply(() => this.#checkState());
    // A snapshot installed from the leader replaces the state without applying entries.
    core.onMembershipChange(() => this.#checkState());
    core.onRoleChange((role) => {
      if (role === "leader") core.whenCaughtUp(() => this.#proposeIfNone());
    });
  }

  /** The cluster id, or null while this node knows none. */
  get id(): string | null {
    return this.#id;
  }

  /**
   * A joining node takes the id of the cluster it was pointed at. Returns false (and changes nothing) when this
   * node already belongs to another cluster.
   */
  adopt(clusterId: string): boolean {
    if (this.#id === clusterId) return true;
    if (this.#id !== null) return false;
    this.#learn(clusterId, "joined");
    return true;
  }

  #proposeIfNone(): void {
    const { core, logger } = this.#o;
    if (!core.isLeader || core.state.clusterId !== null) return;
    // Normally this node's own id is null here too; a joiner that adopted one and then leads a cluster whose state
    // holds none (impossible short of a hand-edited folder) proposes the one it holds.
    const id = this.#id ?? newClusterId();
    if (core.proposeQuietly({ t: "clusterId", id })) logger.info({ clusterId: id }, "proposed an id for this cluster");
  }

  #checkState(): void {
    const replicated = this.#o.core.state.clusterId;
    if (replicated === null || replicated === this.#id) return;
    if (this.#id === null) return this.#learn(replicated, "committed");
    if (this.#mismatchLogged) return;
    this.#mismatchLogged = true;
    // The handshake keeps nodes of different clusters apart, so the log can only carry this node's own id.
    this.#o.logger.error(
      { code: CLUSTER_MISMATCH, clusterId: this.#id, replicatedClusterId: replicated },
      `${CLUSTER_MISMATCH}: the log holds another cluster id than this data folder; keeping ${this.#id}`,
    );
  }

  #learn(clusterId: string, how: "joined" | "committed"): void {
    this.#id = clusterId;
    this.#record(clusterId);
    this.#o.logger.info({ clusterId, how }, "cluster id known");
    this.#o.onKnown(clusterId);
  }

  #record(clusterId: string): void {
    this.#o.store.recordClusterId(clusterId).catch((err: unknown) => {
      // The log store fails every later write too: the node stops on its own next write.
      this.#o.logger.error({ err, clusterId }, "could not record the cluster id in the data folder");
    });
  }
}

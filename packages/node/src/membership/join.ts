import type { Logger } from "pino";
import type { StatusBody } from "@ratequeue/protocol/http";
import { ConfigError, type NodeConfig } from "../config.js";
import type { NodeCore } from "../core/node-core.js";
import { CLUSTER_MISMATCH, isClusterId } from "../peer/handshake.js";
import type { ClusterIdentity } from "./cluster-id.js";
import { hostPortText, type Membership } from "./membership.js";

/** How often a joining node asks again (learning addresses, asking to be added) until it is a member. */
const JOIN_RETRY_MS = 1_000;
/** How long one add request may wait for this node to catch up and be promoted. */
const JOIN_ADD_TIMEOUT_MS = 120_000;

/**
 * Decides how this node starts, once its data is loaded: founding (an empty folder and --peers: bootstrapped
 * already), joining (an empty folder, or one that never became a member, and --join), or restarting (the data
 * holds the membership in force; --peers and --join are then ignored). Returns true when the node must join.
 */
export function checkStartMode(config: NodeConfig, core: NodeCore, membership: Membership, logger: Logger): boolean {
  const conf = membership.conf;
  const self = config.id;
  if (core.startedEmpty) {
    if (config.peers.size > 0) return false;
    if (config.join.length === 0) {
      throw new ConfigError([
        `data folder ${config.dataDir} holds no cluster: give peers (flag --peers, to found a new cluster) or join (flag --join, to join a running one)`,
      ]);
    }
    return true;
  }
  if (conf.removed.includes(self)) {
    logger.error({ id: self }, "this node was removed from the cluster: stop it (a removed id can never rejoin; start a new node with a new id and an empty data folder)");
    return false;
  }
  const members = membership.members();
  if (config.peers.size > 0) {
    logger.info("--peers is ignored: this data folder holds the membership in force (see /v1/members)");
  }
  return config.join.length > 0 && !members.includes(self);
}

/**
 * A joining node: learns the cluster id and the members' addresses from a running node's /v1/status, and, when it
 * holds an admin key, asks the cluster to add it (`POST /v1/members`), until it is a member. Without an admin key it
 * waits for an operator to run `ratequeue members add`. A node whose data belongs to another cluster than the one
 * it was pointed at stops trying (RQ_CLUSTER_MISMATCH) and links to nobody.
 */
export function startJoining(options: {
  config: NodeConfig;
  membership: Membership;
  identity: ClusterIdentity;
  logger: Logger;
}): { stop(): void } {
  const { config, membership, identity, logger } = options;
  const address = hostPortText(config.advertise);
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let saidWaiting = false;
  const isMember = (): boolean => membership.members().includes(config.id);

  const attempt = async (): Promise<void> => {
    for (const base of config.join) {
      if (stopped || isMember()) return;
      const found = await clusterOf(base);
      if (found === null) continue;
      if (found.clusterId !== null && !identity.adopt(found.clusterId)) {
        logger.error(
          { code: CLUSTER_MISMATCH, via: base, clusterId: identity.id, joinClusterId: found.clusterId },
          `${CLUSTER_MISMATCH}: this data folder belongs to cluster ${identity.id}, but ${base} is a node of cluster ${found.clusterId}; not joining (start with an empty data folder to join it)`,
        );
        stopped = true;
        return;
      }
      membership.learn(found.peers);
      if (config.adminKey === null) {
        if (!saidWaiting) {
          logger.warn({ id: config.id, address }, `waiting to be added: run \`ratequeue members add ${config.id} --address ${address}\` against the cluster`);
          saidWaiting = true;
        }
        return;
      }
      logger.info({ via: base, address }, "asking the cluster to add this node");
      try {
        const res = await fetch(new URL("/v1/members", base), {
          method: "POST",
          headers: { authorization: `Bearer ${config.adminKey}`, "content-type": "application/json" },
          body: JSON.stringify({ id: config.id, address, timeoutMs: JOIN_ADD_TIMEOUT_MS, ...(identity.id === null ? {} : { clusterId: identity.id }) }),
          signal: AbortSignal.timeout(JOIN_ADD_TIMEOUT_MS + 10_000),
        });
        const text = await res.text();
        if (res.ok) return void logger.info({ via: base }, "joined the cluster as a voter");
        logger.warn({ via: base, status: res.status, answer: text.slice(0, 500) }, "the cluster did not add this node yet; retrying");
        return;
      } catch (err) {
        logger.warn({ via: base, err: (err as Error).message }, "join request failed; retrying");
      }
    }
  };
  const loop = async (): Promise<void> => {
    if (stopped || isMember()) return;
    await attempt();
    if (!stopped && !isMember()) timer = setTimeout(() => void loop(), JOIN_RETRY_MS);
  };
  void loop();
  return {
    stop: () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
    },
  };
}

/**
 * The cluster id and the id -> host:port of every member a running node lists in its /v1/status, or null if it does
 * not answer. The id is null when that cluster has not committed one yet.
 */
async function clusterOf(base: string): Promise<{ clusterId: string | null; peers: Map<string, string> } | null> {
  try {
    const res = await fetch(new URL("/v1/status", base), { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) return null;
    const status = (await res.json()) as Partial<Pick<StatusBody, "peers" | "clusterId">>;
    const peers = new Map<string, string>();
    for (const p of status.peers ?? []) {
      if (typeof p.url === "string") peers.set(p.id, new URL(p.url).host);
    }
    return { clusterId: isClusterId(status.clusterId) ? status.clusterId : null, peers };
  } catch {
    return null;
  }
}

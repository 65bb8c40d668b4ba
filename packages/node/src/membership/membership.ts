import type { Logger } from "pino";
import type { NodeInfo } from "@ratequeue/protocol";
import type { ConfState, NodeId } from "@ratequeue/raft";
import type { HostPort } from "../config.js";
import type { NodeCore } from "../core/node-core.js";
import type { PeerAddress } from "../peer/transport.js";

export interface MembershipOptions {
  readonly core: NodeCore;
  readonly logger: Logger;
  /** wss:// and https:// rather than ws:// and http:// (the whole cluster runs TLS or none of it does). */
  readonly secure: boolean;
  /** This node's own address (what it asks to be recorded as). */
  readonly self: HostPort;
  /** Addresses from --peers (founders), a fallback for members the replicated table does not list yet. */
  readonly seed: ReadonlyMap<NodeId, HostPort>;
  /** Where the node's links must go: called with every member but this node, whenever that changes. */
  readonly setPeers: (peers: readonly PeerAddress[]) => void;
  /** Mutated in place: the HTTP base URL of every member (this node included), read by forwarding and the dashboard. */
  readonly httpUrls: Map<NodeId, string>;
  /** Mutated in place: every member's client URL, as hello answers list them. */
  readonly nodes: NodeInfo[];
}

/**
 * Which nodes this node talks to, and at which addresses. Members are the Raft membership in force
 * (`status().confState`); addresses come from the replicated table (`memberAddress` entries), then from the
 * addresses learned while joining, then from --peers. A node restarted without flags rebuilds all of it from its
 * data; --peers only seeds a brand-new cluster (and upgrades clusters whose table predates it: see adoptSeeds).
 */
export class Membership {
  readonly #o: MembershipOptions;
  #conf: ConfState = { voters: [], learners: [], removed: [] };
  /** Addresses learned from a running cluster while joining it. */
  readonly #learned = new Map<NodeId, string>();
  #lastKey = "";

  constructor(options: MembershipOptions) {
    this.#o = options;
    options.core.onMembershipChange((conf) => {
      if (conf.removed.includes(options.core.id) && !this.#conf.removed.includes(options.core.id)) {
        options.logger.error("this node has been removed from the cluster: stop it and delete its data folder");
      }
      this.#conf = conf;
      this.refresh();
    });
    options.core.onApply((results) => {
      if (results.some((r) => r.op.t === "memberAddress")) this.refresh();
    });
    options.core.onRoleChange((role) => {
      if (role === "leader") options.core.whenCaughtUp(() => this.#adoptSeeds());
    });
  }

  get conf(): ConfState {
    return this.#conf;
  }

  /** Voters then learners. */
  members(): NodeId[] {
    return [...this.#conf.voters, ...this.#conf.learners];
  }

  /** A member's host:port, or null when no source knows it. */
  addressOf(id: NodeId): string | null {
    if (id === this.#o.core.id) return hostPortText(this.#o.self);
    const replicated = this.#o.core.state.memberAddresses.get(id);
    if (replicated !== undefined) return replicated;
    const learned = this.#learned.get(id);
    if (learned !== undefined) return learned;
    const seed = this.#o.seed.get(id);
    return seed === undefined ? null : hostPortText(seed);
  }

  /** Addresses of a running cluster's members, learned by a joining node before it holds any state. */
  learn(addresses: ReadonlyMap<NodeId, string>): void {
    for (const [id, address] of addresses) this.#learned.set(id, address);
    this.refresh();
  }

  /** Recomputes links, HTTP URLs and client URLs from the membership and addresses known now. */
  refresh(): void {
    const self = this.#o.core.id;
    // A joining node knows no membership until its first snapshot: it talks to the nodes it learned of.
    const removed = new Set(this.#conf.removed);
    const ids = this.members().length > 0 ? this.members() : [...this.#learned.keys()].filter((id) => !removed.has(id));
    const known = ids.flatMap((id) => {
      const address = this.addressOf(id);
      return address === null ? [] : [{ id, address }];
    });
    if (!known.some((m) => m.id === self)) known.push({ id: self, address: hostPortText(this.#o.self) });
    const key = known.map((m) => `${m.id}=${m.address}`).sort().join(",");
    if (key === this.#lastKey) return;
    this.#lastKey = key;
    const ws = this.#o.secure ? "wss" : "ws";
    const http = this.#o.secure ? "https" : "http";
    this.#o.setPeers(known.filter((m) => m.id !== self).map((m) => ({ id: m.id, url: `${ws}://${m.address}` })));
    this.#o.httpUrls.clear();
    for (const m of known) this.#o.httpUrls.set(m.id, `${http}://${m.address}`);
    this.#o.nodes.splice(0, this.#o.nodes.length, ...known.map((m) => ({ id: m.id, url: `${ws}://${m.address}` })));
    const missing = ids.filter((id) => this.addressOf(id) === null);
    this.#o.logger.info({ members: Object.fromEntries(known.map((m) => [m.id, m.address])), ...(missing.length > 0 ? { noAddress: missing } : {}) }, "membership in force");
  }

  /**
   * On a caught-up leader: record in the replicated table the address of every member it lacks but this node
   * knows (from --peers), so that nodes restarted without flags, and nodes that join later, can find them.
   */
  #adoptSeeds(): void {
    const { core } = this.#o;
    if (!core.isLeader) return;
    for (const id of this.members()) {
      if (core.state.memberAddresses.has(id)) continue;
      const address = this.addressOf(id);
      if (address !== null) core.proposeQuietly({ t: "memberAddress", id, address });
    }
  }
}

export function hostPortText(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

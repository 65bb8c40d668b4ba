import { Limiter, type Effect } from "@ratequeue/limiter";
import { ErrorCode } from "@ratequeue/protocol/codes";
import { KeyTable, type StoredKey } from "../state/keys.js";
import { packPlain, unpackPlain, type EntryPayload, type Op } from "./ops.js";

export const LAST_ADMIN_KEY_MESSAGE =
  "this is the last admin key: create another admin key first (ratequeue keys create --admin), then revoke this one";

/** What applying one op produced: the limiter's effects, or the key table's answer. */
export interface OpResult {
  readonly op: Op;
  readonly effects: readonly Effect[];
}

/**
 * The replicated application state: the limiter, the API keys and the
 * bootstrap flag. Deterministic: every node that applies the same entries
 * reaches the same state and the same snapshot bytes.
 */
export class ClusterState {
  constructor(
    readonly limiter: Limiter = new Limiter(),
    readonly keys: KeyTable = new KeyTable(),
    private bootstrappedFlag = false,
    /** Which API key opened each live session: only that key may resume it. */
    private readonly owners = new Map<string, string>(),
    /** Node id -> host:port, as the membership routes recorded them (removed ids are never dialled: Raft lists them). */
    private readonly addresses = new Map<string, string>(),
    /** The cluster's id (membership/cluster-id.ts), or null until a leader's `clusterId` op applies. */
    private clusterIdValue: string | null = null,
  ) {}

  /** The cluster's id, or null before the first leader's `clusterId` op applied (or after a restore cleared it). */
  get clusterId(): string | null {
    return this.clusterIdValue;
  }

  /**
   * Forgets the cluster id, so that the next leader gives the cluster a new one. Only for offline rewrites of a data
   * folder that make a new cluster (restore, force-recover); a running node never calls it.
   */
  forgetClusterId(): void {
    this.clusterIdValue = null;
  }

  /** The replicated member addresses (id -> host:port). */
  get memberAddresses(): ReadonlyMap<string, string> {
    return this.addresses;
  }

  /**
   * Replaces the member address table (restore and force-recover rewrite the membership of a data folder offline;
   * a running node changes addresses only through `memberAddress` entries).
   */
  replaceMemberAddresses(addresses: ReadonlyMap<string, string>): void {
    this.addresses.clear();
    for (const [id, address] of addresses) this.addresses.set(id, address);
  }

  /** The id of the key that opened a live session, or undefined. */
  ownerOf(sessionId: string): string | undefined {
    return this.owners.get(sessionId);
  }

  get bootstrapped(): boolean {
    return this.bootstrappedFlag;
  }

  /** Applies one entry's operations at its stamp, in order. */
  apply(payload: EntryPayload): OpResult[] {
    return payload.ops.map((op) => ({ op, effects: this.#applyOp(op, payload.at) }));
  }

  #applyOp(op: Op, at: number): readonly Effect[] {
    switch (op.t) {
      case "limiter": {
        const effects = this.limiter.apply({ ...op.cmd, at } as Parameters<Limiter["apply"]>[0]);
        for (const e of effects) {
          if (e.type === "session" && op.cmd.type === "openSession" && op.owner !== undefined) this.owners.set(e.sessionId, op.owner);
          else if (e.type === "sessionEnded") this.owners.delete(e.sessionId);
        }
        return effects;
      }
      case "keyAdd":
        this.keys.add({ ...op.key, createdAt: at });
        return [];
      case "keyRemove":
        return this.#removeKey(op.id, at);
      case "adminSeed":
        if (this.keys.adminCount === 0) this.keys.add({ ...op.key, scope: "admin", createdAt: at });
        return [];
      case "memberAddress":
        this.addresses.set(op.id, op.address);
        return [];
      case "clusterId":
        this.clusterIdValue ??= op.id;
        return [];
      case "bootstrap": {
        if (this.bootstrappedFlag) return [];
        this.bootstrappedFlag = true;
        return op.ops.flatMap((inner) => this.#applyOp(inner, at));
      }
    }
  }

  /** Revokes a key (never the last admin key) and ends every session it opened, in session-id order. */
  #removeKey(id: string, at: number): readonly Effect[] {
    const key = this.keys.get(id);
    if (key === undefined) return [];
    if (key.scope === "admin" && this.keys.adminCount === 1) {
      return [{ type: "error", command: "keyRemove", code: ErrorCode.RQ_INVALID, message: LAST_ADMIN_KEY_MESSAGE }];
    }
    this.keys.remove(id);
    const sessions = [...this.owners].filter(([, owner]) => owner === id).map(([session]) => session).sort();
    return sessions.flatMap((sessionId) => this.#applyOp({ t: "limiter", cmd: { type: "closeSession", sessionId } }, at));
  }

  snapshot(): Uint8Array {
    const owners = [...this.owners].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)); // a stable order: identical bytes on every node
    const addresses = [...this.addresses].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return packPlain({ v: 1, limiter: this.limiter.snapshot(), keys: this.keys.toJSON(), bootstrapped: this.bootstrappedFlag, owners, addresses, clusterId: this.clusterIdValue });
  }

  static restore(bytes: Uint8Array): ClusterState {
    if (bytes.length === 0) return new ClusterState();
    const s = unpackPlain(bytes) as { v: number; limiter: Uint8Array; keys: StoredKey[]; bootstrapped: boolean; owners?: [string, string][]; addresses?: [string, string][]; clusterId?: string | null };
    if (s.v !== 1) throw new Error(`unknown snapshot version ${s.v}`);
    return new ClusterState(Limiter.restore(new Uint8Array(s.limiter)), KeyTable.fromJSON(s.keys), s.bootstrapped, new Map(s.owners ?? []), new Map(s.addresses ?? []), s.clusterId ?? null);
  }
}

import { RaftConfigError } from "./errors.js";
import type { Rng } from "./rng.js";
import type { Storage } from "./storage.js";
import type { NodeId } from "./types.js";

/** How a `RawNode` is set up. Times are in ticks (calls to `tick()`), sizes in bytes. */
export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: Storage;
  /** Source of the randomized election timeouts. */
  readonly rng: Rng;
  /** A follower that hears nothing from a leader for a random [electionTicks, 2 * electionTicks) ticks campaigns. Default 10. */
  readonly electionTicks?: number;
  /** The leader sends heartbeats every heartbeatTicks. Default 1; must be below electionTicks. */
  readonly heartbeatTicks?: number;
  /** Run a pre-vote round before a real election, so a node that rejoins cannot disrupt a live leader. Default true. */
  readonly preVote?: boolean;
  /** A leader that has not heard from a quorum for electionTicks steps down. Default true. */
  readonly checkQuorum?: boolean;
  /** Largest data payload of one append message (at least one entry is always sent). Default 1 MiB. */
  readonly maxSizePerMsgBytes?: number;
  /** Most unacknowledged appends in flight to one follower. Default 256. */
  readonly maxInflightMsgs?: number;
  /** Most unacknowledged payload bytes in flight to one follower. Default 32 MiB. */
  readonly maxInflightBytes?: number;
  /** Proposals are refused while the leader's uncommitted entries exceed this. Default 64 MiB. */
  readonly maxUncommittedEntriesBytes?: number;
  /** Largest snapshot chunk in one message. Default 1 MiB. */
  readonly snapshotChunkBytes?: number;
  /** On restart: the highest index the application has already applied. Default (0): the storage snapshot's index. */
  readonly applied?: number;
  /** A follower forwards proposals to the leader (true) or refuses them with the leader's id (false). Default true. */
  readonly forwardProposals?: boolean;
  /**
   * Asynchronous storage writes (as etcd's raft): the caller may take the next Ready while the writes of earlier
   * ones are in flight, and reports each write durable with `persisted()`. Default false: every Ready is written,
   * synced and applied before `advance()`. See "Asynchronous storage writes" in the package README.
   */
  readonly asyncStorageWrites?: boolean;
}

/** A config with every default filled in. */
export interface ResolvedConfig {
  readonly id: NodeId;
  readonly storage: Storage;
  readonly rng: Rng;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxSizePerMsgBytes: number;
  readonly maxInflightMsgs: number;
  readonly maxInflightBytes: number;
  readonly maxUncommittedEntriesBytes: number;
  readonly snapshotChunkBytes: number;
  readonly applied: number;
  readonly forwardProposals: boolean;
  readonly asyncStorageWrites: boolean;
}

const MiB = 1024 * 1024;

/** Validates `config` and fills defaults; throws `RaftConfigError` naming the bad field. */
export function resolveConfig(config: RaftConfig): ResolvedConfig {
  if (typeof config !== "object" || config === null) throw new RaftConfigError("config must be an object");
  if (typeof config.id !== "string" || config.id.length === 0) throw new RaftConfigError("id must be a non-empty string");
  const storage = config.storage;
  if (typeof storage !== "object" || storage === null || typeof storage.initialState !== "function") {
    throw new RaftConfigError("storage must implement Storage");
  }
  if (typeof config.rng !== "object" || config.rng === null || typeof config.rng.nextInt !== "function") {
    throw new RaftConfigError("rng must implement Rng (use createRng(seed))");
  }
  const electionTicks = positiveInt(config, "electionTicks", 10);
  const heartbeatTicks = positiveInt(config, "heartbeatTicks", 1);
  if (heartbeatTicks >= electionTicks) {
    throw new RaftConfigError(`heartbeatTicks (${heartbeatTicks}) must be below electionTicks (${electionTicks})`);
  }
  const applied = config.applied ?? 0;
  if (!Number.isSafeInteger(applied) || applied < 0) throw new RaftConfigError(`applied must be an integer >= 0, got ${applied}`);
  return {
    id: config.id,
    storage,
    rng: config.rng,
    electionTicks,
    heartbeatTicks,
    preVote: bool(config, "preVote", true),
    checkQuorum: bool(config, "checkQuorum", true),
    maxSizePerMsgBytes: positiveInt(config, "maxSizePerMsgBytes", MiB),
    maxInflightMsgs: positiveInt(config, "maxInflightMsgs", 256),
    maxInflightBytes: positiveInt(config, "maxInflightBytes", 32 * MiB),
    maxUncommittedEntriesBytes: positiveInt(config, "maxUncommittedEntriesBytes", 64 * MiB),
    snapshotChunkBytes: positiveInt(config, "snapshotChunkBytes", MiB),
    applied,
    forwardProposals: bool(config, "forwardProposals", true),
    asyncStorageWrites: bool(config, "asyncStorageWrites", false),
  };
}

type NumberKey = {
  [K in keyof RaftConfig]-?: NonNullable<RaftConfig[K]> extends number ? K : never;
}[keyof RaftConfig];
type BooleanKey = {
  [K in keyof RaftConfig]-?: NonNullable<RaftConfig[K]> extends boolean ? K : never;
}[keyof RaftConfig];

function positiveInt(config: RaftConfig, key: NumberKey, fallback: number): number {
  const value = config[key] ?? fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new RaftConfigError(`${key} must be a positive integer, got ${String(value)}`);
  return value;
}

function bool(config: RaftConfig, key: BooleanKey, fallback: boolean): boolean {
  const value = config[key] ?? fallback;
  if (typeof value !== "boolean") throw new RaftConfigError(`${key} must be a boolean, got ${String(value)}`);
  return value;
}

import type { Entry, Message, NodeId, Role } from "@ratequeue/raft";
import type { LogChange, LogView } from "../log-state.js";
import type { StateMachineImage } from "../state-machine.js";

/**
 * What checkers may see: only what a node reports (its status, its stored
 * log, what it applied) and what clients were told. Nothing of the Raft
 * core's internals, so a checker stays valid whatever the core does inside.
 */
export interface ObservedStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  /** The voters of the configuration the node uses now. */
  readonly voters: readonly NodeId[];
}

export interface NodeView {
  readonly id: NodeId;
  /** False while crashed (its disk keeps only `durableLog`). */
  readonly up: boolean;
  /** The node's status(), or null while it is down. */
  readonly status: ObservedStatus | null;
  /** What the node has handed to storage, synced or not. */
  readonly log: LogView;
  /** What would survive a crash right now. */
  readonly durableLog: LogView;
}

export interface ClusterView {
  readonly nowMs: number;
  readonly nodes: readonly NodeView[];
  /** The voters, or null when the run changes membership (no single fixed majority to check against). */
  readonly voters: readonly NodeId[] | null;
  /** True when some node's durable state may have shrunk since the last step (a crash, an overwrite). */
  readonly durableStateShrank: boolean;
}

export interface LogWriteEvent {
  readonly node: NodeId;
  /** The node's role and term when it produced the write. */
  readonly role: Role;
  readonly term: number;
  /** The node's commit index when it produced the write (absent in hand-made events). */
  readonly commit?: number;
  readonly change: LogChange;
  /** The node's log before the write. */
  readonly before: LogView;
}

export interface ApplyEvent {
  readonly node: NodeId;
  readonly entry: Entry;
  /** The state machine right after applying the entry. */
  readonly image: StateMachineImage;
}

/** The node's state machine was replaced: a snapshot installed, or a restart from disk. */
export interface RestoreEvent {
  readonly node: NodeId;
  readonly image: StateMachineImage;
  readonly cause: "snapshot" | "restart";
}

/** A client was told its proposal committed: the proposing node applied it. */
export interface AckEvent {
  readonly payloadId: string;
  readonly node: NodeId;
  readonly index: number;
  readonly term: number;
}

/** A node hands a message to the network. */
export interface SendEvent {
  readonly message: Message;
  /** The sender's log as it is on disk at that moment, and as the node holds it. */
  readonly durable: LogView;
  readonly log: LogView;
}

/** A ReadIndex answer reached the node that asked. */
export interface ReadEvent {
  readonly node: NodeId;
  readonly index: number;
  /** The highest index acknowledged to any client before the read was issued. */
  readonly ackedBeforeIssue: number;
  readonly readId: string;
}

/** One property, checked from observations. Hooks throw a {@link SafetyViolation}. */
export interface Checker {
  readonly property: string;
  onLogWrite?(event: LogWriteEvent): void;
  onApply?(event: ApplyEvent): void;
  onRestore?(event: RestoreEvent): void;
  onAck?(event: AckEvent): void;
  onSend?(event: SendEvent): void;
  onRead?(event: ReadEvent): void;
  afterStep?(view: ClusterView): void;
}

export class SafetyViolation extends Error {
  override readonly name = "SafetyViolation";
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
  }
}

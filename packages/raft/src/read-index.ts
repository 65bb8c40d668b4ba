import { hasQuorum } from "./quorum.js";
import type { NodeId } from "./types.js";

/** A read waiting for a quorum to confirm that its leader still leads. */
export interface PendingRead {
  readonly seq: number;
  /** The leader's commit index when the read arrived: serve the read once applied >= index. */
  readonly index: number;
  readonly context: Uint8Array;
  /** Who asked: the leader itself, or a follower that forwarded the read. */
  readonly requester: NodeId;
  readonly acks: Set<NodeId>;
}

/**
 * The leader's ReadIndex bookkeeping (thesis 6.4). Each read gets a sequence
 * number; heartbeats carry the latest one and their answers echo it, and an
 * answer for round s confirms every read up to s (the heartbeat was sent after
 * they arrived). Reads therefore complete in arrival order.
 */
export class ReadIndexQueue {
  private seq = 0;
  private reads: PendingRead[] = [];

  /** Registers a read; the caller must then send a heartbeat round carrying `latestSeq()`. */
  add(read: { index: number; context: Uint8Array; requester: NodeId; leader: NodeId }): void {
    this.seq++;
    this.reads.push({ seq: this.seq, index: read.index, context: read.context, requester: read.requester, acks: new Set([read.leader]) });
  }

  /** The round a heartbeat should carry: the latest pending read's, or 0 when none is pending. */
  latestSeq(): number {
    return this.reads[this.reads.length - 1]?.seq ?? 0;
  }

  /** `from` answered a heartbeat of round `readSeq`. */
  ack(from: NodeId, readSeq: number): void {
    for (const read of this.reads) {
      if (read.seq > readSeq) break;
      read.acks.add(from);
    }
  }

  /** Removes and returns, in order, the reads a quorum of `voters` has confirmed. */
  takeConfirmed(voters: readonly NodeId[]): PendingRead[] {
    let done = 0;
    while (done < this.reads.length && hasQuorum(voters, this.reads[done]!.acks)) done++;
    return done === 0 ? [] : this.reads.splice(0, done);
  }

  /** Drops every pending read (leadership lost: callers retry). */
  clear(): void {
    this.reads = [];
  }
}

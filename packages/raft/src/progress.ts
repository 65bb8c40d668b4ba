import { assert } from "./errors.js";

/**
 * The leader's window of appends sent to one follower and not yet
 * acknowledged, bounded both in messages and in bytes so that a slow follower
 * can never make the leader buffer without limit.
 */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  private readonly sizesBytes: number[] = [];
  private start = 0;
  private bytes = 0;

  constructor(
    private readonly maxMsgs: number,
    private readonly maxBytes: number,
  ) {
    assert(maxMsgs >= 1 && maxBytes >= 1, "inflight limits must be positive");
  }

  get count(): number {
    return this.lastIndexes.length - this.start;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  /** True when no further append may be sent until an acknowledgement frees room. */
  full(): boolean {
    return this.count >= this.maxMsgs || this.bytes >= this.maxBytes;
  }

  /** Records an append whose last entry is `lastIndex`; indexes must increase. */
  add(lastIndex: number, sizeBytes: number): void {
    assert(!this.full(), "inflights: add while full");
    const prev = this.lastIndexes[this.lastIndexes.length - 1];
    assert(this.count === 0 || prev === undefined || lastIndex > prev, "inflights: indexes must increase");
    this.lastIndexes.push(lastIndex);
    this.sizesBytes.push(sizeBytes);
    this.bytes += sizeBytes;
  }

  /** Frees every append whose last entry is at or below `index` (acknowledged). */
  freeLE(index: number): void {
    while (this.start < this.lastIndexes.length && this.lastIndexes[this.start]! <= index) {
      this.bytes -= this.sizesBytes[this.start]!;
      this.start++;
    }
    // Compact lazily so that freeing stays O(1) amortised.
    if (this.start > 64 && this.start * 2 > this.lastIndexes.length) {
      this.lastIndexes.splice(0, this.start);
      this.sizesBytes.splice(0, this.start);
      this.start = 0;
    }
    if (this.count === 0) this.bytes = 0;
  }

  /** Frees the oldest append: used when the window is full and its answer was probably lost. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.lastIndexes[this.start]!);
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizesBytes.length = 0;
    this.start = 0;
    this.bytes = 0;
  }
}

/**
 * How the leader replicates to a follower:
 * - `probe`: the follower's log position is unknown; one append at a time,
 *   then wait for the answer (or the next heartbeat answer).
 * - `replicate`: the follower is known to match; appends are pipelined
 *   optimistically, bounded by `Inflights`.
 * - `snapshot`: the follower needs a snapshot; appends stop until it is installed.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** The leader's view of one member's log. */
export class Progress {
  /** Highest index known to be durably replicated on the member. */
  match = 0;
  /** Next index to send. Invariant: match < next. */
  next: number;
  state: ProgressState = "probe";
  /** In `probe`: an append was sent and is unanswered. */
  probeSent = false;
  /** In `snapshot`: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** The member sent something since the last check-quorum round. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(options: { next: number; maxInflightMsgs: number; maxInflightBytes: number }) {
    this.next = options.next;
    this.inflights = new Inflights(options.maxInflightMsgs, options.maxInflightBytes);
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  becomeProbe(): void {
    // After a snapshot, the follower holds at least the snapshot's index.
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** Called for a successful append answer; returns false when it is stale. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** Records that entries up to `lastIndex` were sent (`bytes` of payload). */
  sentEntries(options: { lastIndex: number; count: number; bytes: number }): void {
    if (this.state === "replicate") {
      if (options.count > 0) {
        this.next = options.lastIndex + 1;
        this.inflights.add(options.lastIndex, Math.max(1, options.bytes));
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    } else {
      assert(false, "sentEntries in snapshot state");
    }
  }

  /**
   * Called for a rejected append of `rejected` (the prevIndex the follower
   * refused); `matchHint` is where the follower's and leader's logs may agree.
   * Returns false when the rejection is stale (answers an older append).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      // Pipelined appends after the rejected one will fail too: restart just after match.
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }
}

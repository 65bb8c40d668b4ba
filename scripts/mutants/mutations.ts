/**
 * Deliberate bugs in the Raft core, one at a time, as exact text patches on
 * `packages/raft/src`. Each breaks safety or a rule Raft depends on; the
 * random simulator (test/raft-sim) must find every one from seeds alone. A patch
 * whose text no longer occurs exactly once fails loudly: keep this list in
 * step with the core.
 */
export interface Mutation {
  /** Short kebab-case name, used on the command line. */
  readonly name: string;
  readonly area: "elections" | "log matching" | "commit" | "snapshots" | "membership" | "durability" | "reads";
  /** What the bug does, in one line. */
  readonly what: string;
  /** File under packages/raft/src. */
  readonly file: string;
  readonly from: string;
  readonly to: string;
}

export const MUTATIONS: readonly Mutation[] = [
  // ---- the four of issue #13
  {
    name: "commit-old-term",
    area: "commit",
    what: "a leader commits entries of earlier terms by counting replicas (Raft figure 8)",
    file: "raft.ts",
    from: "if (index <= this.log.committed || this.log.term(index) !== this.term) return false;",
    to: "if (index <= this.log.committed) return false;",
  },
  {
    name: "vote-before-persist",
    area: "durability",
    what: "a vote is granted (answered) before the hard state holding it is saved",
    file: "raft.ts",
    from: '  "vote",\n  "voteResponse",\n',
    to: '  "vote",\n',
  },
  {
    name: "vote-not-saved",
    area: "durability",
    what: "the vote is never put in the hard state (a restart forgets it)",
    file: "raft.ts",
    from: "return { term: this.term, vote: this.vote, commit: this.log.committed };",
    to: "return { term: this.term, vote: null, commit: this.log.committed };",
  },
  {
    name: "prevote-raises-term",
    area: "elections",
    what: "a pre-vote request raises the receiver's real term",
    file: "raft.ts",
    from: 'if (m.type === "preVote") {\n        // A pre-vote does not change our term.',
    to: 'if (false) {\n        // A pre-vote does not change our term.',
  },
  // ---- elections
  {
    name: "vote-twice",
    area: "elections",
    what: "a node votes for any candidate of a term, even after voting for another",
    file: "raft.ts",
    from: "this.vote === m.from || (this.vote === null && this.leader === null)",
    to: "true || (this.vote === null && this.leader === null)",
  },
  {
    name: "any-log-up-to-date",
    area: "elections",
    what: "the election restriction is dropped: any log counts as up to date (5.4.1)",
    file: "log.ts",
    from: "return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());",
    to: "return lastTerm >= ourTerm;",
  },
  {
    name: "candidate-same-term",
    area: "elections",
    what: "a candidate campaigns in its current term instead of the next one",
    file: "raft.ts",
    from: "    this.term += 1;\n    this.vote = this.id;",
    to: "    this.term += this.vote === null ? 1 : 0;\n    this.vote = this.id;",
  },
  {
    name: "self-vote-early",
    area: "durability",
    what: "a candidate counts its own vote before its term and vote are durable",
    file: "raft.ts",
    from: "this.selfVoteUnissued = this.campaignSeq;\n    const lastIndex",
    to: 'this.votes.set(this.id, true);\n    if (this.tally() !== "pending") return;\n    const lastIndex',
  },
  // ---- log matching
  {
    name: "skip-prev-term-check",
    area: "log matching",
    what: "a follower appends after prevIndex without checking prevTerm",
    file: "log.ts",
    from: "if (!this.matchTerm(prevIndex, prevTerm)) return null;",
    to: "if (this.term(prevIndex) === undefined) return null;",
  },
  {
    name: "keep-conflicting-tail",
    area: "log matching",
    what: "a follower keeps its entries after a conflict instead of truncating (only new indexes are appended)",
    file: "log.ts",
    from: "if (!this.matchTerm(entry.index, entry.term)) return entry.index;",
    to: "if (this.term(entry.index) === undefined) return entry.index;",
  },
  // ---- commit
  {
    name: "follower-commit-beyond-match",
    area: "commit",
    what: "a follower commits up to the leader's commit index even past what it verified matches",
    file: "log.ts",
    from: "this.commitTo(Math.min(commit, lastNew));",
    to: "this.commitTo(Math.min(commit, this.lastIndex()));",
  },
  {
    name: "heartbeat-commit-uncapped",
    area: "commit",
    what: "a heartbeat tells a follower the leader's commit index even beyond what the follower is known to hold",
    file: "raft.ts",
    from: "const commit = Math.min(pr.match, this.log.committed);",
    to: "const commit = this.log.committed;",
  },
  {
    name: "leader-counts-unsynced-self",
    area: "durability",
    what: "the leader counts its own unsynced entries towards a quorum",
    file: "raft.ts",
    from: "const index = committedIndex(this.conf.voters, (id) => this.prs.get(id)?.match ?? 0);",
    to: "const index = committedIndex(this.conf.voters, (id) => (id === this.id ? this.log.lastIndex() : (this.prs.get(id)?.match ?? 0)));",
  },
  {
    name: "minority-commit",
    area: "commit",
    what: "the commit index is what the best-placed minority holds (off by one in the quorum)",
    file: "quorum.ts",
    from: "return matches[n >> 1]!;",
    to: "return matches[Math.max(0, (n >> 1) - 1)]!;",
  },
  // ---- snapshots
  {
    name: "snapshot-any-chunk",
    area: "snapshots",
    what: "a follower accepts a snapshot chunk at any offset (duplicates and reordering corrupt it)",
    file: "snapshot-assembler.ts",
    from: "if (m.offset !== this.received) return { kind: \"next\", nextOffset: this.received };",
    to: "",
  },
  {
    name: "snapshot-skip-divergent",
    area: "snapshots",
    what: "a follower that holds any entry at the snapshot's index skips the install, even of another term",
    file: "raft.ts",
    from: "    if (this.log.matchTerm(index, term)) {\n      // We already hold",
    to: "    if (this.log.term(index) !== undefined) {\n      // We already hold",
  },
  // ---- membership
  {
    name: "learners-count",
    area: "membership",
    what: "learners count towards the commit quorum",
    file: "raft.ts",
    from: "const index = committedIndex(this.conf.voters, (id) => this.prs.get(id)?.match ?? 0);",
    to: "const index = committedIndex([...this.conf.voters, ...this.conf.learners], (id) => this.prs.get(id)?.match ?? 0);",
  },
  {
    name: "snapshot-conf-ignored",
    area: "membership",
    what: "a follower installing a snapshot keeps its old membership instead of the snapshot's",
    file: "raft.ts",
    from: "    this.log.restore(snapshot);\n    this.conf = snapshot.meta.confState;\n",
    to: "    this.log.restore(snapshot);\n",
  },
  {
    name: "conf-changes-overlap",
    area: "membership",
    what: "a leader accepts a conf change while an earlier one is not applied yet",
    file: "raft.ts",
    from: "    if (this.pendingConfIndex > this.log.applied) {\n      return this.refuse(\"CONF_CHANGE_PENDING\"",
    to: "    if (false) {\n      return this.refuse(\"CONF_CHANGE_PENDING\"",
  },
  // ---- reads
  {
    name: "read-without-quorum",
    area: "reads",
    what: "a leader answers a ReadIndex at once, without confirming it still leads",
    file: "raft.ts",
    from: "    this.reads.add({ index: this.log.committed, context, requester, leader: this.id });\n    // One heartbeat round, sent at the next Ready, confirms every read started since the last one.\n    this.needsReadHeartbeat = true;",
    to: "    this.deliverRead({ index: this.log.committed, context, requester });",
  },
  // ---- asynchronous storage writes (asyncStorageWrites; the simulator's --async 2)
  {
    name: "async-ack-before-persist",
    area: "durability",
    what: "with asynchronous writes, append answers go out with messagesNow, before the write they promise is durable",
    file: "raw-node.ts",
    from: "      messagesNow: r.msgsNow,\n      messagesAfterPersist: r.msgsAfterPersist,",
    to:
      '      messagesNow: this.async ? [...r.msgsNow, ...r.msgsAfterPersist.filter((m) => m.type === "appendResponse")] : r.msgsNow,\n' +
      '      messagesAfterPersist: this.async ? r.msgsAfterPersist.filter((m) => m.type !== "appendResponse") : r.msgsAfterPersist,',
  },
  {
    name: "async-apply-unsynced",
    area: "durability",
    what: "with asynchronous writes, committed entries are handed out for apply before they are durable locally",
    file: "log.ts",
    from: "return durableOnly ? Math.min(this.committed, this.lastStableIndex()) : this.committed;",
    to: "return this.committed;",
  },
  {
    name: "async-leader-counts-in-flight",
    area: "durability",
    what: "with asynchronous writes, the leader counts its own entries towards a quorum when it hands out their write",
    file: "raw-node.ts",
    from: "      this.writes.push({ ...written, id: ++this.lastPersistId });",
    to: "      this.raft.persisted({ ...written, selfVote: null });\n      this.writes.push({ ...written, id: ++this.lastPersistId });",
  },
];

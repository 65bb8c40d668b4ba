import type { Entry, Message, SnapshotMeta } from "./types.js";

/**
 * Why `m` is not a well-formed peer message, or null when it is. The core
 * drops malformed messages instead of throwing: peer input must never crash
 * a node or change its state. Only shape and ranges are checked here;
 * whether a message is stale is decided by the protocol.
 */
export function messageProblem(m: unknown): string | null {
  if (typeof m !== "object" || m === null) return "not an object";
  const msg = m as Message;
  if (!isId(msg.from) || !isId(msg.to)) return "from/to must be non-empty strings";
  if (!isIndex(msg.term)) return "term must be an integer >= 0";
  const localTerm = msg.type === "propose" || msg.type === "readIndex" || msg.type === "transferLeader";
  if (localTerm !== (msg.term === 0)) return `${String(msg.type)}: term must be ${localTerm ? "0" : "> 0"}`;
  switch (msg.type) {
    case "append":
      if (!isIndex(msg.prevIndex) || !isIndex(msg.prevTerm) || !isIndex(msg.commit)) return "append: bad indexes";
      if (!Array.isArray(msg.entries)) return "append: entries must be an array";
      return entriesProblem(msg.entries, msg.prevIndex, msg.term);
    case "appendResponse":
      return isIndex(msg.index) && isIndex(msg.hintIndex) && isIndex(msg.hintTerm) && typeof msg.reject === "boolean"
        ? null
        : "appendResponse: bad fields";
    case "vote":
    case "preVote":
      return isIndex(msg.lastIndex) && isIndex(msg.lastTerm) && typeof msg.transfer === "boolean" ? null : "vote: bad fields";
    case "voteResponse":
    case "preVoteResponse":
      return typeof msg.reject === "boolean" && isIndex(msg.commit) && isIndex(msg.commitTerm) ? null : "voteResponse: bad fields";
    case "heartbeat":
      return isIndex(msg.commit) && isIndex(msg.readSeq) ? null : "heartbeat: bad fields";
    case "heartbeatResponse":
      return isIndex(msg.readSeq) ? null : "heartbeatResponse: bad fields";
    case "snapshot": {
      if (!metaOk(msg.meta)) return "snapshot: bad meta";
      if (!(msg.data instanceof Uint8Array) || !isIndex(msg.offset) || !isIndex(msg.totalBytes)) return "snapshot: bad chunk";
      if (msg.offset + msg.data.byteLength > msg.totalBytes) return "snapshot: chunk beyond totalBytes";
      if (msg.last !== (msg.offset + msg.data.byteLength === msg.totalBytes)) return "snapshot: last does not match totalBytes";
      return null;
    }
    case "snapshotResponse":
      return isIndex(msg.index) && isIndex(msg.nextOffset) ? null : "snapshotResponse: bad fields";
    case "timeoutNow":
      return null;
    case "propose":
      return Array.isArray(msg.data) && msg.data.length > 0 && msg.data.every((d) => d instanceof Uint8Array)
        ? null
        : "propose: data must be a non-empty array of Uint8Array";
    case "readIndex":
      return msg.context instanceof Uint8Array ? null : "readIndex: bad context";
    case "readIndexResponse":
      return isIndex(msg.index) && msg.context instanceof Uint8Array ? null : "readIndexResponse: bad fields";
    case "transferLeader":
      return isId(msg.transferee) ? null : "transferLeader: bad transferee";
    default:
      return `unknown message type ${String((msg as { type: unknown }).type)}`;
  }
}

function entriesProblem(entries: readonly Entry[], prevIndex: number, term: number): string | null {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (typeof e !== "object" || e === null) return "append: entry is not an object";
    if (e.index !== prevIndex + 1 + i) return "append: entries must follow prevIndex without gaps";
    if (!isIndex(e.term) || e.term < 1 || e.term > term) return "append: entry term must be in [1, message term]";
    if (e.type !== "normal" && e.type !== "confChange") return "append: bad entry type";
    if (!(e.data instanceof Uint8Array)) return "append: entry data must be a Uint8Array";
  }
  return null;
}

function metaOk(meta: SnapshotMeta): boolean {
  if (typeof meta !== "object" || meta === null || !isIndex(meta.index) || !isIndex(meta.term) || meta.index < 1) return false;
  const cs = meta.confState;
  return (
    typeof cs === "object" &&
    cs !== null &&
    Array.isArray(cs.voters) &&
    Array.isArray(cs.learners) &&
    Array.isArray(cs.removed) &&
    cs.voters.every(isId) &&
    cs.learners.every(isId) &&
    cs.removed.every(isId)
  );
}

function isId(x: unknown): boolean {
  return typeof x === "string" && x.length > 0;
}

function isIndex(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

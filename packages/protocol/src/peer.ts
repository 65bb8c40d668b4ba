/**
 * Peer -> peer messages (/v1/peer): the link hello and every Raft message of
 * packages/raft (its `Message` union), validated field by field with caps.
 *
 * The cluster secret never travels in frames. A link is authenticated by
 * challenge and response (packages/node/src/peer/handshake.ts): each side
 * contributes a fresh nonce in the WebSocket upgrade, the accepting node
 * proves the secret in its upgrade response, and the dialling node proves it
 * in the first frame, a `peerHello` whose `proof` covers both nonces, so a
 * captured hello is worthless on any other connection.
 *
 * Besides Raft, the link layer exchanges wall-clock readings (`clockProbe`,
 * answered by a `clockEcho`), so each node can estimate its peers' clock
 * offsets for operators. Nothing a window measures reads them.
 *
 * Client requests are not forwarded at this layer: a follower forwards
 * proposals with Raft's own `propose` message, every node applies the same
 * committed log, and the node holding a client's connection delivers the
 * outcomes it computes itself.
 */
import type {
  AppendMessage,
  AppendResponseMessage,
  ConfState,
  Entry,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  MessageType,
  ProposeMessage,
  ReadIndexMessage,
  ReadIndexResponseMessage,
  SnapshotMessage,
  SnapshotMeta,
  SnapshotResponseMessage,
  TimeoutNowMessage,
  TransferLeaderMessage,
  VoteRequestMessage,
  VoteResponseMessage,
} from "@ratequeue/raft";
import { decodeFrame, defineDirection, encodeFrame, readVersion, type MessageCodec } from "./frame.js";
import {
  checkBytes,
  checkString,
  FieldError,
  nested,
  NODE_ID,
  readArray,
  readBoolean,
  readBytes,
  readInt,
  readRecord,
  readString,
  type ReadContext,
  type Wire,
} from "./fields.js";
import {
  MAX_CHUNK_BYTES,
  MAX_ENTRIES_PER_MESSAGE,
  MAX_ENTRY_BYTES,
  MAX_NODES,
  MAX_PEER_FRAME_BYTES,
  MAX_REMOVED_NODES,
} from "./limits.js";
import type { DecodeResult } from "./types.js";

/** The first frame a dialling node sends on a peer link. */
export interface PeerHello {
  readonly type: "peerHello";
  /** Must equal the receiver's PROTOCOL_VERSION, or it closes the link with RQ_PROTOCOL_VERSION. */
  readonly protocolVersion: number;
  /** The sender; the receiver checks it against the id proven in the upgrade headers. */
  readonly from: string;
  /** The node the sender meant to reach (catches a miswired address list). */
  readonly to: string;
  /** HMAC-SHA256 under the cluster secret over both ends and both nonces of this connection (PEER_PROOF_BYTES). */
  readonly proof: Uint8Array;
}

/** Length of a peer handshake proof (HMAC-SHA256). */
export const PEER_PROOF_BYTES = 32;

/**
 * A wall-clock reading sent on a peer link about once a second. The receiver answers at once with a `clockEcho`
 * (on its own link back), so the sender can estimate the offset between the two wall clocks, NTP-style.
 */
export interface ClockProbe {
  readonly type: "clockProbe";
  readonly from: string;
  readonly to: string;
  /** The sender's wall clock when it sent the probe (ms since the epoch). */
  readonly wallMs: number;
  /** The sender's monotonic clock then (integer microseconds, opaque to the receiver): echoed back to time the round trip. */
  readonly monoUs: number;
}

/** The answer to a `clockProbe`: the probe's readings, and the answering node's wall clock when it read the probe. */
export interface ClockEcho {
  readonly type: "clockEcho";
  readonly from: string;
  readonly to: string;
  /** The probe's `wallMs`. */
  readonly probeWallMs: number;
  /** The probe's `monoUs`. */
  readonly probeMonoUs: number;
  /** The answering node's wall clock when it answered (ms since the epoch). */
  readonly wallMs: number;
}

export type PeerMessage = PeerHello | ClockProbe | ClockEcho | Message;

const MAX_INDEX = Number.MAX_SAFE_INTEGER;

const readIndex = (w: Wire, field: string): number => readInt(w, field, 0, MAX_INDEX);

/** Messages a follower originates without a term (they carry term 0); every other message has term >= 1. */
const TERMLESS: ReadonlySet<MessageType> = new Set<MessageType>(["propose", "readIndex", "transferLeader"]);

/** from, to and term, with the rule that a termless message has term 0 and every other one term >= 1. */
function readBase(w: Wire, type: MessageType): { from: string; to: string; term: number } {
  const from = readString(w, "from", NODE_ID);
  const to = readString(w, "to", NODE_ID);
  const term = TERMLESS.has(type) ? readInt(w, "term", 0, 0) : readInt(w, "term", 1, MAX_INDEX);
  return { from, to, term };
}

/**
 * Entries travel as {term, type, data} records, type 0 for "normal" and 1 for
 * "confChange"; `index` is implied (prevIndex + 1 + position), so the encoder
 * refuses entries that do not follow prevIndex without gaps.
 */
function entriesToWire(m: AppendMessage): Wire[] {
  return m.entries.map((entry, i) => {
    if (entry.index !== m.prevIndex + 1 + i) {
      throw new FieldError(`entries[${i}].index`, `expected ${m.prevIndex + 1 + i} (entries follow prevIndex without gaps), got ${entry.index}`);
    }
    return { term: entry.term, type: entry.type === "normal" ? 0 : entry.type === "confChange" ? 1 : entry.type, data: entry.data };
  });
}

function readEntries(w: Wire, prevIndex: number, term: number, context: ReadContext): Entry[] {
  const items = readArray(w, "entries", MAX_ENTRIES_PER_MESSAGE);
  if (prevIndex + items.length > MAX_INDEX) throw new FieldError("entries", "entry indexes beyond 2^53");
  const entries: Entry[] = new Array<Entry>(items.length);
  // One try around the loop rather than a closure per entry: appends carry thousands.
  let i = 0;
  try {
    for (; i < items.length; i++) {
      const e = readRecord(items[i], "");
      const entryTerm = readInt(e, "term", 1, term);
      const type = readInt(e, "type", 0, 1) === 0 ? "normal" : "confChange";
      entries[i] = { index: prevIndex + 1 + i, term: entryTerm, type, data: readBytes(e, "data", MAX_ENTRY_BYTES, context) };
    }
  } catch (error) {
    if (error instanceof FieldError) throw error.within(`entries[${i}]`);
    throw error;
  }
  return entries;
}

function readNodeList(w: Wire, field: string, maxItems: number): string[] {
  const items = readArray(w, field, maxItems);
  const ids: string[] = new Array<string>(items.length);
  for (let i = 0; i < items.length; i++) ids[i] = checkString(items[i], `${field}[${i}]`, NODE_ID);
  return ids;
}

function readConfState(value: unknown): ConfState {
  const w = readRecord(value, "");
  return {
    voters: readNodeList(w, "voters", MAX_NODES),
    learners: readNodeList(w, "learners", MAX_NODES),
    removed: readNodeList(w, "removed", MAX_REMOVED_NODES),
  };
}

function readMeta(value: unknown): SnapshotMeta {
  const w = readRecord(value, "");
  return {
    index: readInt(w, "index", 1, MAX_INDEX),
    term: readInt(w, "term", 1, MAX_INDEX),
    confState: nested("confState", () => readConfState(w.confState)),
  };
}

const peerHello: MessageCodec<PeerHello> = {
  type: "peerHello",
  tag: 1,
  fields: ["protocolVersion", "from", "to", "proof"],
  handshake: true,
  toWire: (m) => ({ t: 1, protocolVersion: m.protocolVersion, from: m.from, to: m.to, proof: m.proof }),
  read: (w, context) => {
    const protocolVersion = readVersion(w);
    const from = readString(w, "from", NODE_ID);
    const to = readString(w, "to", NODE_ID);
    const proof = readBytes(w, "proof", PEER_PROOF_BYTES, context);
    if (proof.byteLength !== PEER_PROOF_BYTES) throw new FieldError("proof", `expected ${PEER_PROOF_BYTES} bytes, got ${proof.byteLength}`);
    return { type: "peerHello", protocolVersion, from, to, proof };
  },
};

/** Wall-clock milliseconds since the epoch (any non-negative safe integer: a wrong clock is what we measure). */
const readWallMs = (w: Wire, field: string): number => readInt(w, field, 0, Number.MAX_SAFE_INTEGER);
const readMonoUs = (w: Wire, field: string): number => readInt(w, field, 0, Number.MAX_SAFE_INTEGER);

const clockProbe: MessageCodec<ClockProbe> = {
  type: "clockProbe",
  tag: 30,
  fields: ["from", "to", "wallMs", "monoUs"],
  handshake: false,
  toWire: (m) => ({ t: 30, from: m.from, to: m.to, wallMs: m.wallMs, monoUs: m.monoUs }),
  read: (w) => ({
    type: "clockProbe",
    from: readString(w, "from", NODE_ID),
    to: readString(w, "to", NODE_ID),
    wallMs: readWallMs(w, "wallMs"),
    monoUs: readMonoUs(w, "monoUs"),
  }),
};

const clockEcho: MessageCodec<ClockEcho> = {
  type: "clockEcho",
  tag: 31,
  fields: ["from", "to", "probeWallMs", "probeMonoUs", "wallMs"],
  handshake: false,
  toWire: (m) => ({ t: 31, from: m.from, to: m.to, probeWallMs: m.probeWallMs, probeMonoUs: m.probeMonoUs, wallMs: m.wallMs }),
  read: (w) => ({
    type: "clockEcho",
    from: readString(w, "from", NODE_ID),
    to: readString(w, "to", NODE_ID),
    probeWallMs: readWallMs(w, "probeWallMs"),
    probeMonoUs: readMonoUs(w, "probeMonoUs"),
    wallMs: readWallMs(w, "wallMs"),
  }),
};

const append: MessageCodec<AppendMessage> = {
  type: "append",
  tag: 10,
  fields: ["from", "to", "term", "prevIndex", "prevTerm", "entries", "commit"],
  handshake: false,
  toWire: (m) => ({
    t: 10,
    from: m.from,
    to: m.to,
    term: m.term,
    prevIndex: m.prevIndex,
    prevTerm: m.prevTerm,
    entries: entriesToWire(m),
    commit: m.commit,
  }),
  read: (w, context) => {
    const base = readBase(w, "append");
    const prevIndex = readIndex(w, "prevIndex");
    return {
      type: "append",
      ...base,
      prevIndex,
      prevTerm: readInt(w, "prevTerm", 0, base.term),
      entries: readEntries(w, prevIndex, base.term, context),
      commit: readIndex(w, "commit"),
    };
  },
};

const appendResponse: MessageCodec<AppendResponseMessage> = {
  type: "appendResponse",
  tag: 11,
  fields: ["from", "to", "term", "reject", "index", "hintIndex", "hintTerm"],
  handshake: false,
  toWire: (m) => ({ t: 11, from: m.from, to: m.to, term: m.term, reject: m.reject, index: m.index, hintIndex: m.hintIndex, hintTerm: m.hintTerm }),
  read: (w) => ({
    type: "appendResponse",
    ...readBase(w, "appendResponse"),
    reject: readBoolean(w, "reject"),
    index: readIndex(w, "index"),
    hintIndex: readIndex(w, "hintIndex"),
    hintTerm: readIndex(w, "hintTerm"),
  }),
};

function voteRequest(type: "vote" | "preVote", tag: number): MessageCodec<VoteRequestMessage> {
  return {
    type,
    tag,
    fields: ["from", "to", "term", "lastIndex", "lastTerm", "transfer"],
    handshake: false,
    toWire: (m) => ({ t: tag, from: m.from, to: m.to, term: m.term, lastIndex: m.lastIndex, lastTerm: m.lastTerm, transfer: m.transfer }),
    read: (w) => ({
      type,
      ...readBase(w, type),
      lastIndex: readIndex(w, "lastIndex"),
      lastTerm: readIndex(w, "lastTerm"),
      transfer: readBoolean(w, "transfer"),
    }),
  };
}

function voteResponse(type: "voteResponse" | "preVoteResponse", tag: number): MessageCodec<VoteResponseMessage> {
  return {
    type,
    tag,
    fields: ["from", "to", "term", "reject", "commit", "commitTerm"],
    handshake: false,
    toWire: (m) => ({ t: tag, from: m.from, to: m.to, term: m.term, reject: m.reject, commit: m.commit, commitTerm: m.commitTerm }),
    read: (w) => ({
      type,
      ...readBase(w, type),
      reject: readBoolean(w, "reject"),
      commit: readIndex(w, "commit"),
      commitTerm: readIndex(w, "commitTerm"),
    }),
  };
}

const heartbeat: MessageCodec<HeartbeatMessage> = {
  type: "heartbeat",
  tag: 16,
  fields: ["from", "to", "term", "commit", "readSeq"],
  handshake: false,
  toWire: (m) => ({ t: 16, from: m.from, to: m.to, term: m.term, commit: m.commit, readSeq: m.readSeq }),
  read: (w) => ({ type: "heartbeat", ...readBase(w, "heartbeat"), commit: readIndex(w, "commit"), readSeq: readIndex(w, "readSeq") }),
};

const heartbeatResponse: MessageCodec<HeartbeatResponseMessage> = {
  type: "heartbeatResponse",
  tag: 17,
  fields: ["from", "to", "term", "readSeq"],
  handshake: false,
  toWire: (m) => ({ t: 17, from: m.from, to: m.to, term: m.term, readSeq: m.readSeq }),
  read: (w) => ({ type: "heartbeatResponse", ...readBase(w, "heartbeatResponse"), readSeq: readIndex(w, "readSeq") }),
};

const snapshot: MessageCodec<SnapshotMessage> = {
  type: "snapshot",
  tag: 18,
  fields: ["from", "to", "term", "meta", "offset", "totalBytes", "data", "last"],
  handshake: false,
  toWire: (m) => ({
    t: 18,
    from: m.from,
    to: m.to,
    term: m.term,
    meta: {
      index: m.meta.index,
      term: m.meta.term,
      confState: { voters: m.meta.confState.voters, learners: m.meta.confState.learners, removed: m.meta.confState.removed },
    },
    offset: m.offset,
    totalBytes: m.totalBytes,
    data: m.data,
    last: m.last,
  }),
  read: (w, context) => {
    const base = readBase(w, "snapshot");
    const meta = nested("meta", () => readMeta(w.meta));
    const offset = readIndex(w, "offset");
    const totalBytes = readIndex(w, "totalBytes");
    const data = readBytes(w, "data", MAX_CHUNK_BYTES, context);
    const last = readBoolean(w, "last");
    const end = offset + data.byteLength;
    if (end > totalBytes) throw new FieldError("data", `chunk ends at ${end}, beyond totalBytes ${totalBytes}`);
    if (last !== (end === totalBytes)) throw new FieldError("last", `last is ${last} but the chunk ends at ${end} of ${totalBytes}`);
    return { type: "snapshot", ...base, meta, offset, totalBytes, data, last };
  },
};

const snapshotResponse: MessageCodec<SnapshotResponseMessage> = {
  type: "snapshotResponse",
  tag: 19,
  fields: ["from", "to", "term", "index", "nextOffset"],
  handshake: false,
  toWire: (m) => ({ t: 19, from: m.from, to: m.to, term: m.term, index: m.index, nextOffset: m.nextOffset }),
  read: (w) => ({
    type: "snapshotResponse",
    ...readBase(w, "snapshotResponse"),
    index: readIndex(w, "index"),
    nextOffset: readIndex(w, "nextOffset"),
  }),
};

const timeoutNow: MessageCodec<TimeoutNowMessage> = {
  type: "timeoutNow",
  tag: 20,
  fields: ["from", "to", "term"],
  handshake: false,
  toWire: (m) => ({ t: 20, from: m.from, to: m.to, term: m.term }),
  read: (w) => ({ type: "timeoutNow", ...readBase(w, "timeoutNow") }),
};

const propose: MessageCodec<ProposeMessage> = {
  type: "propose",
  tag: 21,
  fields: ["from", "to", "term", "data"],
  handshake: false,
  toWire: (m) => ({ t: 21, from: m.from, to: m.to, term: m.term, data: m.data }),
  read: (w, context) => {
    const base = readBase(w, "propose");
    const items = readArray(w, "data", MAX_ENTRIES_PER_MESSAGE);
    if (items.length === 0) throw new FieldError("data", "expected at least one proposal, got none");
    const data = items.map((item, i) => checkBytes(item, `data[${i}]`, MAX_ENTRY_BYTES, context));
    return { type: "propose", ...base, data };
  },
};

const readIndexRequest: MessageCodec<ReadIndexMessage> = {
  type: "readIndex",
  tag: 22,
  fields: ["from", "to", "term", "context"],
  handshake: false,
  toWire: (m) => ({ t: 22, from: m.from, to: m.to, term: m.term, context: m.context }),
  read: (w, context) => ({ type: "readIndex", ...readBase(w, "readIndex"), context: readBytes(w, "context", MAX_ENTRY_BYTES, context) }),
};

const readIndexResponse: MessageCodec<ReadIndexResponseMessage> = {
  type: "readIndexResponse",
  tag: 23,
  fields: ["from", "to", "term", "index", "context"],
  handshake: false,
  toWire: (m) => ({ t: 23, from: m.from, to: m.to, term: m.term, index: m.index, context: m.context }),
  read: (w, context) => ({
    type: "readIndexResponse",
    ...readBase(w, "readIndexResponse"),
    index: readIndex(w, "index"),
    context: readBytes(w, "context", MAX_ENTRY_BYTES, context),
  }),
};

const transferLeader: MessageCodec<TransferLeaderMessage> = {
  type: "transferLeader",
  tag: 24,
  fields: ["from", "to", "term", "transferee"],
  handshake: false,
  toWire: (m) => ({ t: 24, from: m.from, to: m.to, term: m.term, transferee: m.transferee }),
  read: (w) => ({ type: "transferLeader", ...readBase(w, "transferLeader"), transferee: readString(w, "transferee", NODE_ID) }),
};

/** One codec per Raft message type: a missing type is a compile error here. */
const RAFT_CODECS: { readonly [T in MessageType]: MessageCodec<Extract<Message, { type: T }>> } = {
  append,
  appendResponse,
  vote: voteRequest("vote", 12) as MessageCodec<Extract<Message, { type: "vote" }>>,
  preVote: voteRequest("preVote", 13) as MessageCodec<Extract<Message, { type: "preVote" }>>,
  voteResponse: voteResponse("voteResponse", 14) as MessageCodec<Extract<Message, { type: "voteResponse" }>>,
  preVoteResponse: voteResponse("preVoteResponse", 15) as MessageCodec<Extract<Message, { type: "preVoteResponse" }>>,
  heartbeat,
  heartbeatResponse,
  snapshot,
  snapshotResponse,
  timeoutNow,
  propose,
  readIndex: readIndexRequest,
  readIndexResponse,
  transferLeader,
};

export const peerDirection = defineDirection<PeerMessage>({
  name: "peer",
  maxFrameBytes: MAX_PEER_FRAME_BYTES,
  codecs: [peerHello, clockProbe, clockEcho, ...Object.values(RAFT_CODECS)] as MessageCodec<PeerMessage>[],
  nestedShapes: [
    ["term", "type", "data"],
    ["index", "term", "confState"],
    ["voters", "learners", "removed"],
  ],
});

/**
 * Encodes peer messages (a hello, or a batch of Raft messages) as one frame.
 * Throws ProtocolEncodeError if a message would be refused by the receiver.
 *
 * @example
 * transport.send(to, encodePeerFrame(ready.messagesNow.filter((m) => m.to === to)));
 */
export function encodePeerFrame(messages: readonly PeerMessage[]): Uint8Array {
  return encodeFrame(peerDirection, messages);
}

/** Decodes and validates one peer frame. Never throws. */
export function decodePeerFrame(bytes: Uint8Array): DecodeResult<PeerMessage> {
  return decodeFrame(peerDirection, bytes);
}

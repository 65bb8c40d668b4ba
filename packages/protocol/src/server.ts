/**
 * Node -> client messages (/v1/client): their wire records and readers.
 */
import type { ProtocolError } from "./codes.js";
import { checkMessage, decodeFrame, defineDirection, encodeFrame, readVersion, type DecodeOptions, type EncodeOptions, type MessageCodec } from "./frame.js";
import {
  FieldError,
  ID,
  loadToWire,
  nested,
  NODE_ID,
  readArray,
  readBoolean,
  readErrorCode,
  readErrorMessage,
  readInt,
  readLoad,
  readNullableString,
  readOptionalInt,
  readRecord,
  readRequestId,
  readString,
  RESOURCE_NAME,
  WS_URL,
  type Wire,
} from "./fields.js";
import { MAX_FRAME_BYTES, MAX_NODES, MAX_TTL_MS, MIN_TTL_MS } from "./limits.js";
import type {
  Ack,
  DecodeResult,
  ErrorMessage,
  Granted,
  Lease,
  NodeInfo,
  NotLeader,
  Queued,
  Rejected,
  ServerMessage,
  Welcome,
} from "./types.js";

/** Log times are non-negative integer ms (the leader's clock, never a client's). */
const MAX_TIME_MS = Number.MAX_SAFE_INTEGER;

function readNodes(w: Wire): NodeInfo[] {
  const items = readArray(w, "nodes", MAX_NODES);
  const nodes: NodeInfo[] = new Array<NodeInfo>(items.length);
  const seen = new Set<string>();
  for (let i = 0; i < items.length; i++) {
    nodes[i] = nested(`nodes[${i}]`, () => {
      const node = readRecord(items[i], "");
      const id = readString(node, "id", NODE_ID);
      if (seen.has(id)) throw new FieldError("id", `node ${id} is listed twice`);
      seen.add(id);
      return { id, url: readNullableString(node, "url", WS_URL) };
    });
  }
  return nodes;
}

const welcome: MessageCodec<Welcome> = {
  type: "welcome",
  tag: 1,
  fields: ["protocolVersion", "sessionId", "ttlMs", "nodeId", "leader", "nodes", "resumed"],
  handshake: true,
  toWire: (m) => ({
    t: 1,
    protocolVersion: m.protocolVersion,
    sessionId: m.sessionId,
    ttlMs: m.ttlMs,
    nodeId: m.nodeId,
    leader: m.leader,
    // Node entries are few and only in the handshake, which is self-describing anyway.
    nodes: m.nodes.map((node) => ({ id: node.id, url: node.url })),
    resumed: m.resumed,
  }),
  read: (w) => ({
    type: "welcome",
    protocolVersion: readVersion(w),
    sessionId: readString(w, "sessionId", ID),
    ttlMs: readInt(w, "ttlMs", MIN_TTL_MS, MAX_TTL_MS),
    nodeId: readString(w, "nodeId", NODE_ID),
    leader: readNullableString(w, "leader", NODE_ID),
    nodes: readNodes(w),
    resumed: readBoolean(w, "resumed"),
  }),
};

const LEASE_FIELDS = ["id", "resource", "load", "grantedAt"];

function readLease(value: unknown): Lease {
  const w = readRecord(value, "");
  return {
    id: readString(w, "id", ID),
    resource: readString(w, "resource", RESOURCE_NAME),
    load: readLoad(w, "load"),
    grantedAt: readInt(w, "grantedAt", 0, MAX_TIME_MS),
  };
}

const granted: MessageCodec<Granted> = {
  type: "granted",
  tag: 2,
  fields: ["requestId", "lease", "sentAt"],
  handshake: false,
  toWire: (m) => ({
    t: 2,
    requestId: m.requestId,
    lease: { id: m.lease.id, resource: m.lease.resource, load: loadToWire(m.lease.load), grantedAt: m.lease.grantedAt },
    sentAt: m.sentAt ?? null,
  }),
  read: (w) => {
    const message: { -readonly [K in keyof Granted]: Granted[K] } = {
      type: "granted",
      requestId: readRequestId(w),
      lease: nested("lease", () => readLease(w.lease)),
    };
    const sentAt = readOptionalInt(w, "sentAt", 0, MAX_TIME_MS);
    if (sentAt !== undefined) message.sentAt = sentAt;
    return message;
  },
};

const queued: MessageCodec<Queued> = {
  type: "queued",
  tag: 3,
  fields: ["requestId"],
  handshake: false,
  toWire: (m) => ({ t: 3, requestId: m.requestId }),
  read: (w) => ({ type: "queued", requestId: readRequestId(w) }),
};

const rejected: MessageCodec<Rejected> = {
  type: "rejected",
  tag: 4,
  fields: ["requestId", "code", "message"],
  handshake: false,
  toWire: (m) => ({ t: 4, requestId: m.requestId, code: m.code, message: m.message }),
  read: (w) => ({
    type: "rejected",
    requestId: readRequestId(w),
    code: readErrorCode(w, "code"),
    message: readErrorMessage(w, "message"),
  }),
};

const ack: MessageCodec<Ack> = {
  type: "ack",
  tag: 5,
  fields: ["requestId"],
  handshake: false,
  toWire: (m) => ({ t: 5, requestId: m.requestId }),
  read: (w) => ({ type: "ack", requestId: readRequestId(w) }),
};

const notLeader: MessageCodec<NotLeader> = {
  type: "notLeader",
  tag: 6,
  fields: ["leader", "url"],
  handshake: false,
  toWire: (m) => ({ t: 6, leader: m.leader, url: m.url }),
  read: (w) => ({ type: "notLeader", leader: readNullableString(w, "leader", NODE_ID), url: readNullableString(w, "url", WS_URL) }),
};

const error: MessageCodec<ErrorMessage> = {
  type: "error",
  tag: 7,
  fields: ["code", "message"],
  handshake: true,
  toWire: (m) => ({ t: 7, code: m.code, message: m.message }),
  read: (w) => ({ type: "error", code: readErrorCode(w, "code"), message: readErrorMessage(w, "message") }),
};

export const serverDirection = defineDirection<ServerMessage>({
  name: "server",
  maxFrameBytes: MAX_FRAME_BYTES,
  codecs: [welcome, granted, queued, rejected, ack, notLeader, error] as MessageCodec<ServerMessage>[],
  nestedShapes: [LEASE_FIELDS],
});

/**
 * Encodes node -> client messages as one frame. Throws ProtocolEncodeError
 * if a message would be refused by the client. Pass `{ encoding: "plain" }`
 * to a client whose hello asked for it.
 *
 * @example
 * ws.send(encodeServerFrame([{ type: "ack", requestId: 9 }]));
 */
export function encodeServerFrame(messages: readonly ServerMessage[], options?: EncodeOptions): Uint8Array {
  return encodeFrame(serverDirection, messages, options);
}

/** Decodes and validates one node -> client frame. Never throws. */
export function decodeServerFrame(bytes: Uint8Array, options?: DecodeOptions): DecodeResult<ServerMessage> {
  return decodeFrame(serverDirection, bytes, options);
}

/**
 * Why a client would refuse this message, or null. A node checks each
 * outgoing message before batching it, so one bad message (a bug) is
 * replaced alone instead of making its whole frame unsendable. Never throws.
 */
export function checkServerMessage(message: ServerMessage): ProtocolError | null {
  return checkMessage(serverDirection, message);
}

/**
 * Test-only helpers (not exported from index.ts): fast-check arbitraries for
 * every message. Properties run with @ratequeue/testkit's checkProperty.
 */
import fc from "fast-check";
import { ErrorCode } from "./codes.js";
import { deliveryBucket } from "./client.js";
import {
  DELIVERY_BUCKETS_MS,
  MAX_DELIVERY_MS,
  MAX_LOAD,
  MAX_PRIORITY,
  MAX_REQUEST_ID,
  MAX_RETRY_AFTER_MS,
  MAX_TIMEOUT_MS,
  MAX_TTL_MS,
  MIN_TTL_MS,
  PROTOCOL_VERSION,
} from "./limits.js";
import type { Message } from "@ratequeue/raft";
import type { PeerMessage } from "./peer.js";
import type { ClientMessage, Load, Report, ServerMessage } from "./types.js";

// --- Arbitraries -------------------------------------------------------------

export const arbRequestId = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: MAX_REQUEST_ID }));
export const arbResource = fc.stringMatching(/^[A-Za-z0-9._:/-]{1,128}$/);
export const arbId = fc.stringMatching(/^[A-Za-z0-9._:/-]{1,128}$/);
export const arbNodeId = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
export const arbName = fc.stringMatching(/^[A-Za-z0-9._:/-]{1,128}$/).filter((name) => name !== "__proto__");
const arbUrl = fc.stringMatching(/^wss?:\/\/[\x21-\x7e]{1,100}$/);
const arbAmount = fc.oneof(
  fc.integer({ min: 0, max: 1_000_000 }),
  fc.double({ min: 0, max: MAX_LOAD, noNaN: true, noDefaultInfinity: true }),
);
export const arbLoad: fc.Arbitrary<Load> = fc.oneof(
  arbAmount,
  fc.dictionary(arbName, arbAmount, { minKeys: 1, maxKeys: 16 }),
);
const arbText = fc.string({ maxLength: 100, unit: "grapheme" });
const arbErrorCode = fc.constantFrom(...Object.values(ErrorCode));

export const arbClientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record(
    {
      type: fc.constant("hello" as const),
      protocolVersion: fc.constant(PROTOCOL_VERSION),
      apiKey: fc.stringMatching(/^[\x21-\x7e]{1,256}$/),
      clientName: fc.stringMatching(/^[\x20-\x7e]{1,64}$/),
      clientVersion: fc.stringMatching(/^[\x20-\x7e]{1,64}$/),
      resume: arbId,
      ttlMs: fc.integer({ min: MIN_TTL_MS, max: MAX_TTL_MS }),
      encoding: fc.constantFrom("records" as const, "plain" as const),
    },
    { requiredKeys: ["type", "protocolVersion", "apiKey"] },
  ),
  fc.record(
    {
      type: fc.constant("acquire" as const),
      requestId: arbRequestId,
      resource: arbResource,
      load: arbLoad,
      priority: fc.integer({ min: -MAX_PRIORITY, max: MAX_PRIORITY }),
      lane: arbName,
      timeoutMs: fc.integer({ min: 0, max: MAX_TIMEOUT_MS }),
      try: fc.boolean(),
    },
    { requiredKeys: ["type", "requestId", "resource"] },
  ),
  fc.record({ type: fc.constant("release" as const), requestId: arbRequestId, leaseId: arbId }),
  fc.record({ type: fc.constant("settle" as const), requestId: arbRequestId, leaseId: arbId, actual: arbLoad }),
  fc.record({ type: fc.constant("cancel" as const), requestId: arbRequestId }),
  fc.record({
    type: fc.constant("cooldown" as const),
    requestId: arbRequestId,
    resource: arbResource,
    retryAfterMs: fc.integer({ min: 0, max: MAX_RETRY_AFTER_MS }),
  }),
  fc.constant({ type: "heartbeat" as const }),
  fc.constant({ type: "goodbye" as const }),
  fc
    .record({
      requestId: arbRequestId,
      resource: arbResource,
      delays: fc.array(fc.oneof(fc.integer({ min: 0, max: 12_000 }), fc.integer({ min: 0, max: MAX_DELIVERY_MS })), { minLength: 1, maxLength: 20 }),
    })
    .map(({ requestId, resource, delays }) => reportOf(requestId, resource, delays)),
);

/** The report of a set of whole-ms delays, as a client aggregates them. */
export function reportOf(requestId: number, resource: string, delays: readonly number[]): Report {
  const buckets = new Array<number>(DELIVERY_BUCKETS_MS.length + 1).fill(0);
  for (const ms of delays) buckets[deliveryBucket(ms)]! += 1;
  const sumMs = delays.reduce((a, b) => a + b, 0);
  return { type: "report", requestId, resource, count: delays.length, sumMs, maxMs: Math.max(...delays), buckets };
}

export const arbServerMessage: fc.Arbitrary<ServerMessage> = fc.oneof(
  fc.record({
    type: fc.constant("welcome" as const),
    protocolVersion: fc.constant(PROTOCOL_VERSION),
    sessionId: arbId,
    ttlMs: fc.integer({ min: MIN_TTL_MS, max: MAX_TTL_MS }),
    nodeId: arbNodeId,
    leader: fc.option(arbNodeId, { nil: null }),
    nodes: fc.uniqueArray(fc.record({ id: arbNodeId, url: fc.option(arbUrl, { nil: null }) }), {
      maxLength: 5,
      selector: (node) => node.id,
    }),
    resumed: fc.boolean(),
  }),
  fc.record({
    type: fc.constant("granted" as const),
    requestId: arbRequestId,
    lease: fc.record({
      id: arbId,
      resource: arbResource,
      load: arbLoad,
      grantedAt: fc.oneof(fc.integer({ min: 0, max: 2 ** 31 }), fc.maxSafeNat()),
    }),
    sentAt: fc.oneof(fc.integer({ min: 0, max: 2 ** 31 }), fc.maxSafeNat()),
  }, { requiredKeys: ["type", "requestId", "lease"] }),
  fc.record({ type: fc.constant("queued" as const), requestId: arbRequestId }),
  fc.record({ type: fc.constant("rejected" as const), requestId: arbRequestId, code: arbErrorCode, message: arbText }),
  fc.record({ type: fc.constant("ack" as const), requestId: arbRequestId }),
  fc.record({
    type: fc.constant("notLeader" as const),
    leader: fc.option(arbNodeId, { nil: null }),
    url: fc.option(arbUrl, { nil: null }),
  }),
  fc.record({ type: fc.constant("error" as const), code: arbErrorCode, message: arbText }),
);

/** A frame's worth of messages (a batch). */
export function arbBatch<T>(message: fc.Arbitrary<T>): fc.Arbitrary<T[]> {
  return fc.array(message, { minLength: 1, maxLength: 8 });
}

/** Byte-level damage to a valid frame: flip, insert, delete, truncate. */
export function mutate(bytes: Uint8Array, edits: readonly { kind: number; at: number; byte: number }[]): Uint8Array {
  let out = Array.from(bytes);
  for (const edit of edits) {
    const at = out.length === 0 ? 0 : edit.at % out.length;
    if (edit.kind === 0) out[at] = edit.byte;
    else if (edit.kind === 1) out.splice(at, 0, edit.byte);
    else if (edit.kind === 2) out.splice(at, 1);
    else out = out.slice(0, at);
  }
  return Uint8Array.from(out);
}

export const arbEdits = fc.array(
  fc.record({ kind: fc.integer({ min: 0, max: 3 }), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  { minLength: 1, maxLength: 4 },
);

// --- Peer messages -----------------------------------------------------------

const arbIndex = fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.maxSafeNat());
const arbTerm = fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const arbBytes = fc.uint8Array({ maxLength: 64 });
const arbBase = fc.record({ from: arbNodeId, to: arbNodeId, term: arbTerm });
const arbTermless = fc.record({ from: arbNodeId, to: arbNodeId, term: fc.constant(0) });

const arbAppend: fc.Arbitrary<Message> = fc
  .record({
    base: arbBase,
    prevIndex: fc.integer({ min: 0, max: 1_000_000 }),
    prevTermFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    entries: fc.array(fc.record({ termFraction: fc.double({ min: 0, max: 1, noNaN: true }), type: fc.constantFrom("normal" as const, "confChange" as const), data: arbBytes }), { maxLength: 8 }),
    commit: arbIndex,
  })
  .map(({ base, prevIndex, prevTermFraction, entries, commit }) => ({
    type: "append" as const,
    ...base,
    prevIndex,
    prevTerm: Math.floor(prevTermFraction * base.term),
    entries: entries.map((e, i) => ({ index: prevIndex + 1 + i, term: Math.max(1, Math.ceil(e.termFraction * base.term)), type: e.type, data: e.data })),
    commit,
  }));

const arbNodeList = (max: number) => fc.array(arbNodeId, { maxLength: max });

const arbSnapshotChunk: fc.Arbitrary<Message> = fc
  .record({
    base: arbBase,
    meta: fc.record({
      index: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      term: arbTerm,
      confState: fc.record({ voters: arbNodeList(5), learners: arbNodeList(3), removed: arbNodeList(4) }),
    }),
    offset: fc.integer({ min: 0, max: 1_000_000 }),
    data: arbBytes,
    rest: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1_000_000 })),
  })
  .map(({ base, meta, offset, data, rest }) => ({
    type: "snapshot" as const,
    ...base,
    meta,
    offset,
    totalBytes: offset + data.byteLength + rest,
    data,
    last: rest === 0,
  }));

export const arbRaftMessage: fc.Arbitrary<Message> = fc.oneof(
  arbAppend,
  fc.record({ type: fc.constant("appendResponse" as const), base: arbBase, reject: fc.boolean(), index: arbIndex, hintIndex: arbIndex, hintTerm: arbIndex }),
  fc.record({ type: fc.constantFrom("vote" as const, "preVote" as const), base: arbBase, lastIndex: arbIndex, lastTerm: arbIndex, transfer: fc.boolean() }),
  fc.record({
    type: fc.constantFrom("voteResponse" as const, "preVoteResponse" as const),
    base: arbBase,
    reject: fc.boolean(),
    commit: arbIndex,
    commitTerm: arbIndex,
  }),
  fc.record({ type: fc.constant("heartbeat" as const), base: arbBase, commit: arbIndex, readSeq: arbIndex }),
  fc.record({ type: fc.constant("heartbeatResponse" as const), base: arbBase, readSeq: arbIndex }),
  arbSnapshotChunk,
  fc.record({ type: fc.constant("snapshotResponse" as const), base: arbBase, index: arbIndex, nextOffset: arbIndex }),
  fc.record({ type: fc.constant("timeoutNow" as const), base: arbBase }),
  fc.record({ type: fc.constant("propose" as const), base: arbTermless, data: fc.array(arbBytes, { minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constant("readIndex" as const), base: arbTermless, context: arbBytes }),
  fc.record({ type: fc.constant("readIndexResponse" as const), base: arbBase, index: arbIndex, context: arbBytes }),
  fc.record({ type: fc.constant("transferLeader" as const), base: arbTermless, transferee: arbNodeId }),
).map((m) => {
  if (!("base" in m)) return m;
  const { base, ...rest } = m;
  return { ...rest, ...base } as Message;
});

export const arbPeerMessage: fc.Arbitrary<PeerMessage> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ type: fc.constant("peerHello" as const), protocolVersion: fc.constant(PROTOCOL_VERSION), from: arbNodeId, to: arbNodeId, proof: fc.uint8Array({ minLength: 32, maxLength: 32 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("clockProbe" as const), from: arbNodeId, to: arbNodeId, wallMs: fc.maxSafeNat(), monoUs: fc.maxSafeNat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant("clockEcho" as const), from: arbNodeId, to: arbNodeId, probeWallMs: fc.maxSafeNat(), probeMonoUs: fc.maxSafeNat(), wallMs: fc.maxSafeNat() }),
  },
  { weight: 8, arbitrary: arbRaftMessage },
);

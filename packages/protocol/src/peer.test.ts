import type { Message } from "@ratequeue/raft";
import fc from "fast-check";
import { pack } from "msgpackr";
import { describe, expect, it } from "vitest";
import { MAX_ENTRIES_PER_MESSAGE, MAX_PEER_FRAME_BYTES, PROTOCOL_VERSION } from "./limits.js";
import { decodePeerFrame, encodePeerFrame, type PeerMessage } from "./peer.js";
import { checkProperty } from "@ratequeue/testkit";
import { arbBatch, arbPeerMessage } from "./arbitraries.js";

const FILE = "packages/protocol/src/peer.test.ts";

function roundTrip(messages: PeerMessage[]): PeerMessage[] {
  const result = decodePeerFrame(encodePeerFrame(messages));
  if (!result.ok) throw new Error(result.error.message);
  return result.messages;
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const base = { from: "n1", to: "n2", term: 5 };
const confState = { voters: ["n1", "n2", "n3"], learners: ["n4"], removed: ["n0"] };

const every: PeerMessage[] = [
  { type: "peerHello", protocolVersion: PROTOCOL_VERSION, from: "n1", to: "n2", proof: new Uint8Array(32).fill(7) },
  {
    type: "append",
    ...base,
    prevIndex: 41,
    prevTerm: 4,
    entries: [
      { index: 42, term: 4, type: "normal", data: bytes(1, 2, 3) },
      { index: 43, term: 5, type: "normal", data: bytes() },
      { index: 44, term: 5, type: "confChange", data: bytes(9) },
    ],
    commit: 40,
  },
  { type: "append", ...base, prevIndex: 44, prevTerm: 5, entries: [], commit: 44 },
  { type: "appendResponse", ...base, from: "n2", to: "n1", reject: true, index: 41, hintIndex: 30, hintTerm: 3 },
  { type: "vote", ...base, lastIndex: 44, lastTerm: 5, transfer: false },
  { type: "preVote", ...base, lastIndex: 44, lastTerm: 5, transfer: true },
  { type: "voteResponse", ...base, reject: false, commit: 44, commitTerm: 5 },
  { type: "preVoteResponse", ...base, reject: true, commit: 0, commitTerm: 0 },
  { type: "heartbeat", ...base, commit: 44, readSeq: 7 },
  { type: "heartbeatResponse", ...base, readSeq: 7 },
  { type: "snapshot", ...base, meta: { index: 100, term: 4, confState }, offset: 0, totalBytes: 5, data: bytes(1, 2), last: false },
  { type: "snapshot", ...base, meta: { index: 100, term: 4, confState }, offset: 2, totalBytes: 5, data: bytes(3, 4, 5), last: true },
  { type: "snapshotResponse", ...base, index: 100, nextOffset: 2 },
  { type: "timeoutNow", ...base },
  { type: "propose", from: "n2", to: "n1", term: 0, data: [bytes(1), bytes(2, 2)] },
  { type: "readIndex", from: "n2", to: "n1", term: 0, context: bytes(0xaa) },
  { type: "readIndexResponse", ...base, index: 44, context: bytes(0xaa) },
  { type: "transferLeader", from: "n2", to: "n1", term: 0, transferee: "n3" },
  { type: "clockProbe", from: "n1", to: "n2", wallMs: 1_765_000_000_000, monoUs: 12_345_678 },
  { type: "clockEcho", from: "n2", to: "n1", probeWallMs: 1_765_000_000_000, probeMonoUs: 12_345_678, wallMs: 1_765_000_120_004 },
];

describe("peer frames: round trips", () => {
  for (const message of every) {
    it(`${message.type} (${"entries" in message ? `${message.entries.length} entries` : "fields"})`, () => {
      expect(roundTrip([message])).toEqual([message]);
    });
  }

  it("refuses clock readings that are not non-negative safe integers", () => {
    for (const wallMs of [-1, 1.5, Number.MAX_SAFE_INTEGER + 2, Number.NaN]) {
      expect(() => encodePeerFrame([{ type: "clockProbe", from: "n1", to: "n2", wallMs, monoUs: 0 }])).toThrow("messages[0].wallMs");
    }
    expect(() => encodePeerFrame([{ type: "clockEcho", from: "n2", to: "n1", probeWallMs: 0, probeMonoUs: -5, wallMs: 0 }])).toThrow("messages[0].probeMonoUs");
  });

  it("refuses a hello whose proof is not exactly 32 bytes, or is missing", () => {
    for (const proof of [new Uint8Array(31), new Uint8Array(33), undefined]) {
      const frame = pack([{ t: 1, protocolVersion: PROTOCOL_VERSION, from: "n1", to: "n2", proof }]);
      const result = decodePeerFrame(frame);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.path).toBe("messages[0].proof");
    }
  });

  it("carries a batch of Raft messages in one frame, in order", () => {
    expect(roundTrip(every.slice(1))).toEqual(every.slice(1));
  });

  it("decodes byte fields as copies, so they never pin or alias the frame", () => {
    const frame = encodePeerFrame([every[1] as Message]);
    const result = decodePeerFrame(frame);
    if (!result.ok) throw new Error(result.error.message);
    frame.fill(0);
    const append = result.messages[0];
    expect(append?.type === "append" ? append.entries[0]?.data : null).toEqual(bytes(1, 2, 3));
  });

  it("does not repeat entry indexes on the wire (they follow prevIndex)", () => {
    const one = encodePeerFrame([{ type: "append", ...base, prevIndex: 1_000_000, prevTerm: 5, entries: [], commit: 0 }]).byteLength;
    const entries = Array.from({ length: 100 }, (_, i) => ({ index: 1_000_001 + i, term: 5, type: "normal" as const, data: bytes(7) }));
    const hundred = encodePeerFrame([{ type: "append", ...base, prevIndex: 1_000_000, prevTerm: 5, entries, commit: 0 }]).byteLength;
    // Per entry: a 1-byte record id, term, type, a 2-byte bin header and 1 data byte (plus the
    // array's longer header); an explicit index of 1_000_001 would add 5 bytes more.
    expect((hundred - one) / 100).toBeLessThan(6.1);
  });

  it("round-trips random valid batches (property)", () => {
    checkProperty({ file: FILE, name: "round-trips random valid batches (property)" }, fc.property(arbBatch(arbPeerMessage), (messages) => {
        expect(roundTrip(messages)).toEqual(messages);
      }));
  });
});

describe("peer frames: bad input gets a specific error", () => {
  const append = { t: 10, from: "n1", to: "n2", term: 5, prevIndex: 41, prevTerm: 4, entries: [{ term: 5, type: 0, data: bytes(1) }], commit: 40 };
  const snapshot = {
    t: 18,
    from: "n1",
    to: "n2",
    term: 5,
    meta: { index: 100, term: 4, confState },
    offset: 0,
    totalBytes: 3,
    data: bytes(1, 2, 3),
    last: true,
  };
  const cases: { name: string; record: unknown; code: string; path: string; says: string }[] = [
    { name: "a hello of another version", record: { t: 1, protocolVersion: 0, from: "n1", to: "n2" }, code: "RQ_PROTOCOL", path: "messages[0].protocolVersion", says: "positive integer" },
    { name: "a hello of a newer version", record: { t: 1, protocolVersion: 2, from: "n1", to: "n2" }, code: "RQ_PROTOCOL_VERSION", path: "messages[0].protocolVersion", says: "this side speaks 1" },
    { name: "an empty sender id", record: { ...append, from: "" }, code: "RQ_PROTOCOL", path: "messages[0].from", says: "node id" },
    { name: "term 0 on an append", record: { ...append, term: 0 }, code: "RQ_PROTOCOL", path: "messages[0].term", says: "[1, 9007199254740991], got 0" },
    { name: "a term on a forwarded proposal", record: { t: 21, from: "n2", to: "n1", term: 3, data: [bytes(1)] }, code: "RQ_PROTOCOL", path: "messages[0].term", says: "[0, 0], got 3" },
    { name: "a negative prevIndex", record: { ...append, prevIndex: -1 }, code: "RQ_PROTOCOL", path: "messages[0].prevIndex", says: "got -1" },
    { name: "a prevTerm above the message term", record: { ...append, prevTerm: 6 }, code: "RQ_PROTOCOL", path: "messages[0].prevTerm", says: "[0, 5], got 6" },
    { name: "an entry from a future term", record: { ...append, entries: [{ term: 6, type: 0, data: bytes() }] }, code: "RQ_PROTOCOL", path: "messages[0].entries[0].term", says: "[1, 5], got 6" },
    { name: "an entry of unknown type", record: { ...append, entries: [{ term: 5, type: 2, data: bytes() }] }, code: "RQ_PROTOCOL", path: "messages[0].entries[0].type", says: "[0, 1], got 2" },
    { name: "entry data as a string", record: { ...append, entries: [{ term: 5, type: 0, data: "abc" }] }, code: "RQ_PROTOCOL", path: "messages[0].entries[0].data", says: 'expected bytes, got "abc"' },
    { name: "an entry that is not a record", record: { ...append, entries: [7] }, code: "RQ_PROTOCOL", path: "messages[0].entries[0]", says: "a record, got 7" },
    {
      name: "too many entries",
      record: { ...append, entries: Array.from({ length: MAX_ENTRIES_PER_MESSAGE + 1 }, () => ({ term: 5, type: 0, data: bytes() })) },
      code: "RQ_PROTOCOL",
      path: "messages[0].entries",
      says: "at most 16384 items, got 16385",
    },
    { name: "reject as 0", record: { t: 11, from: "n2", to: "n1", term: 5, reject: 0, index: 1, hintIndex: 0, hintTerm: 0 }, code: "RQ_PROTOCOL", path: "messages[0].reject", says: "a boolean, got 0" },
    { name: "a snapshot chunk beyond its total", record: { ...snapshot, totalBytes: 2, last: false }, code: "RQ_PROTOCOL", path: "messages[0].data", says: "chunk ends at 3, beyond totalBytes 2" },
    { name: "a last chunk that does not reach the end", record: { ...snapshot, totalBytes: 4 }, code: "RQ_PROTOCOL", path: "messages[0].last", says: "last is true but the chunk ends at 3 of 4" },
    { name: "snapshot meta at index 0", record: { ...snapshot, meta: { index: 0, term: 4, confState } }, code: "RQ_PROTOCOL", path: "messages[0].meta.index", says: "got 0" },
    {
      name: "a voter id that is not a string",
      record: { ...snapshot, meta: { index: 1, term: 4, confState: { ...confState, voters: ["n1", 2] } } },
      code: "RQ_PROTOCOL",
      path: "messages[0].meta.confState.voters[1]",
      says: "node id",
    },
    { name: "a proposal with nothing in it", record: { t: 21, from: "n2", to: "n1", term: 0, data: [] }, code: "RQ_PROTOCOL", path: "messages[0].data", says: "at least one proposal" },
    { name: "a proposal that is not bytes", record: { t: 21, from: "n2", to: "n1", term: 0, data: [bytes(1), [1, 2]] }, code: "RQ_PROTOCOL", path: "messages[0].data[1]", says: "expected bytes" },
    { name: "a client message on a peer link", record: { t: 2, requestId: 1, resource: "r" }, code: "RQ_PROTOCOL", path: "messages[0].t", says: "unknown peer message type 2" },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const result = decodePeerFrame(pack([c.record]));
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error).toEqual({ code: c.code, path: c.path, message: expect.stringContaining(c.says) });
    });
  }

  it("refuses a frame over the peer cap before decoding", () => {
    const result = decodePeerFrame(new Uint8Array(MAX_PEER_FRAME_BYTES + 1));
    expect(result.ok ? null : result.error.code).toBe("RQ_FRAME_TOO_LARGE");
  });
});

describe("peer frames: the encoder refuses what the receiver would refuse", () => {
  it("refuses entries with a gap (their indexes are implied on the wire)", () => {
    const gap: Message = {
      type: "append",
      ...base,
      prevIndex: 1,
      prevTerm: 1,
      entries: [{ index: 3, term: 5, type: "normal", data: bytes() }],
      commit: 0,
    };
    expect(() => encodePeerFrame([gap])).toThrow("messages[0].entries[0].index: expected 2 (entries follow prevIndex without gaps), got 3");
  });

  it("refuses a heartbeat with a fractional commit", () => {
    expect(() => encodePeerFrame([{ type: "heartbeat", ...base, commit: 1.5, readSeq: 0 }])).toThrow("messages[0].commit");
  });
});

import fc from "fast-check";
import { pack } from "msgpackr";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "./codes.js";
import { PROTOCOL_VERSION } from "./limits.js";
import { checkServerMessage, decodeServerFrame, encodeServerFrame } from "./server.js";
import { checkProperty } from "@ratequeue/testkit";
import { arbBatch, arbServerMessage } from "./arbitraries.js";
import type { ServerMessage } from "./types.js";

const FILE = "packages/protocol/src/server.test.ts";

function roundTrip(messages: ServerMessage[]): ServerMessage[] {
  const result = decodeServerFrame(encodeServerFrame(messages));
  if (!result.ok) throw new Error(result.error.message);
  return result.messages;
}

const lease = { id: "s-42/7", resource: "openai-gpt4o", load: 1200, grantedAt: 1_764_000_000_000 };
const welcome = {
  t: 1,
  protocolVersion: PROTOCOL_VERSION,
  sessionId: "s-42",
  ttlMs: 10_000,
  nodeId: "n1",
  leader: "n2",
  nodes: [{ id: "n2", url: "ws://127.0.0.1:7402" }],
  resumed: false,
};

describe("server frames: round trips", () => {
  const every: ServerMessage[] = [
    {
      type: "welcome",
      protocolVersion: PROTOCOL_VERSION,
      sessionId: "s-42",
      ttlMs: 10_000,
      nodeId: "n1",
      leader: "n2",
      nodes: [
        { id: "n1", url: "ws://127.0.0.1:7401" },
        { id: "n2", url: "wss://rq-2.internal:7402" },
        { id: "n3", url: null },
      ],
      resumed: true,
    },
    { type: "welcome", protocolVersion: PROTOCOL_VERSION, sessionId: "s-1", ttlMs: 1000, nodeId: "n1", leader: null, nodes: [], resumed: false },
    { type: "granted", requestId: 7, lease },
    { type: "granted", requestId: 8, lease: { ...lease, id: "s-42/8", load: { input: 1200, output: 1024 }, grantedAt: 0 } },
    { type: "queued", requestId: 9 },
    { type: "rejected", requestId: 9, code: ErrorCode.RQ_TIMEOUT, message: "waited 30000 ms" },
    { type: "rejected", requestId: 10, code: ErrorCode.RQ_WOULD_WAIT, message: "no capacity now" },
    { type: "ack", requestId: 11 },
    { type: "notLeader", leader: "n3", url: "ws://127.0.0.1:7403" },
    { type: "notLeader", leader: null, url: null },
    { type: "error", code: ErrorCode.RQ_UNAUTHORIZED, message: "unknown API key" },
  ];

  for (const message of every) {
    it(`${message.type} ${JSON.stringify(message).slice(0, 80)}`, () => {
      expect(roundTrip([message])).toEqual([message]);
    });
  }

  it("carries a whole batch in one frame, in order (handshake messages included)", () => {
    expect(roundTrip(every)).toEqual(every);
  });

  it("writes grants as shared records: no field names on the wire", () => {
    const bytes = encodeServerFrame([{ type: "granted", requestId: 7, lease }]);
    expect(Buffer.from(bytes).toString("latin1")).not.toContain("grantedAt");
  });

  it("round-trips random valid batches (property)", () => {
    checkProperty({ file: FILE, name: "round-trips random valid batches (property)" }, fc.property(arbBatch(arbServerMessage), (messages) => {
        expect(roundTrip(messages)).toEqual(messages);
      }));
  });
});

describe("server frames: bad input gets a specific error", () => {
  const cases: { name: string; record: unknown; code: string; path: string; says: string }[] = [
    { name: "a welcome of another version", record: { ...welcome, protocolVersion: 7 }, code: "RQ_PROTOCOL_VERSION", path: "messages[0].protocolVersion", says: "version 7" },
    { name: "a welcome without a session", record: { ...welcome, sessionId: null }, code: "RQ_PROTOCOL", path: "messages[0].sessionId", says: "got null" },
    { name: "a welcome with a TTL of 0", record: { ...welcome, ttlMs: 0 }, code: "RQ_PROTOCOL", path: "messages[0].ttlMs", says: "[1, 86400000], got 0" },
    { name: "a node id with a dot", record: { ...welcome, nodeId: "n.1" }, code: "RQ_PROTOCOL", path: "messages[0].nodeId", says: "node id" },
    {
      name: "a node listed twice",
      record: { ...welcome, nodes: [{ id: "n2", url: null }, { id: "n2", url: null }] },
      code: "RQ_PROTOCOL",
      path: "messages[0].nodes[1].id",
      says: "node n2 is listed twice",
    },
    {
      name: "a node URL that is not ws",
      record: { ...welcome, nodes: [{ id: "n2", url: "http://x" }] },
      code: "RQ_PROTOCOL",
      path: "messages[0].nodes[0].url",
      says: "ws:// or wss:// URL",
    },
    {
      name: "65 nodes",
      record: { ...welcome, nodes: Array.from({ length: 65 }, (_, i) => ({ id: `n${i}`, url: null })) },
      code: "RQ_PROTOCOL",
      path: "messages[0].nodes",
      says: "at most 64 items, got 65",
    },
    { name: "resumed as a string", record: { ...welcome, resumed: "yes" }, code: "RQ_PROTOCOL", path: "messages[0].resumed", says: "a boolean" },
    { name: "a grant without a lease", record: { t: 2, requestId: 1 }, code: "RQ_PROTOCOL", path: "messages[0].lease", says: "a record, got nothing" },
    {
      name: "a lease with a negative grant time",
      record: { t: 2, requestId: 1, lease: { ...lease, grantedAt: -1 } },
      code: "RQ_PROTOCOL",
      path: "messages[0].lease.grantedAt",
      says: "got -1",
    },
    {
      name: "a lease with a NaN load in a dimension",
      record: { t: 2, requestId: 1, lease: { ...lease, load: ["input", NaN] } },
      code: "RQ_PROTOCOL",
      path: "messages[0].lease.load.input",
      says: "got NaN",
    },
    { name: "an unknown error code", record: { t: 4, requestId: 1, code: "RQ_NOPE", message: "" }, code: "RQ_PROTOCOL", path: "messages[0].code", says: "known RQ_* error code" },
    {
      name: "an error message over 1024 chars",
      record: { t: 7, code: "RQ_INVALID", message: "x".repeat(1025) },
      code: "RQ_PROTOCOL",
      path: "messages[0].message",
      says: "1025 chars (max 1024)",
    },
    { name: "notLeader without fields", record: { t: 6 }, code: "RQ_PROTOCOL", path: "messages[0].leader", says: "node id" },
    { name: "a client message type sent by a node", record: { t: 8 }, code: "RQ_PROTOCOL", path: "messages[0].t", says: "unknown server message type 8" },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const result = decodeServerFrame(pack([c.record]));
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error).toEqual({ code: c.code, path: c.path, message: expect.stringContaining(c.says) });
    });
  }
});

describe("server frames: the encoder refuses what the client would refuse", () => {
  it("refuses a message with a lone surrogate, which UTF-8 would silently replace", () => {
    expect(() => encodeServerFrame([{ type: "error", code: "RQ_INVALID", message: "bad \ud800 text" }])).toThrow(
      "messages[0].message: expected well-formed Unicode text, got a lone surrogate",
    );
  });

  it("refuses an error code outside the table", () => {
    expect(() =>
      encodeServerFrame([{ type: "rejected", requestId: 1, code: "RQ_OOPS" as ErrorCode, message: "" }]),
    ).toThrow(/messages\[0\]\.code: expected a known RQ_\* error code, got "RQ_OOPS"/);
  });
});

describe("checkServerMessage: one message, before batching", () => {
  it("accepts a valid message and names the field of a bad one", () => {
    expect(checkServerMessage({ type: "ack", requestId: 3 })).toBeNull();
    expect(checkServerMessage({ type: "granted", requestId: 3, lease: { ...lease, grantedAt: -5 } })).toEqual({
      code: "RQ_PROTOCOL",
      path: "lease.grantedAt",
      message: "lease.grantedAt: expected an integer in [0, 9007199254740991], got -5",
    });
  });
});

import type { Effect } from "@ratequeue/limiter";
import { describe, expect, it } from "vitest";
import { CloseCode } from "./env.js";
import { NotLeaderError, ProposalLostError } from "./proposals.js";
import { ANSWER_KINDS, answerToWire, endsAcquire, type Answer, type WireAnswer } from "./wire-answers.js";

const base = { sessionId: "s", requestId: "7", resource: "r" } as const;
const applied = (effect: Effect, sentAt: number | null = null): Answer => ({ kind: "applied", effect, sentAt });
const frame = (a: Answer, wasTry = false): WireAnswer["frame"] => answerToWire(a, wasTry).frame;

describe("answerToWire: applied effects", () => {
  it("answers a grant with the lease, its load 0 when nothing was charged, and sentAt never below grantedAt", () => {
    const e: Effect = { type: "granted", ...base, leaseId: 3, load: {}, grantedAt: 100 };
    expect(frame(applied(e, 90))).toEqual({ type: "granted", requestId: 7, lease: { id: "3", resource: "r", load: 0, grantedAt: 100 }, sentAt: 100 });
    expect(frame(applied(e, 120))).toMatchObject({ sentAt: 120 });
    expect(frame(applied(e))).not.toHaveProperty("sentAt");
    expect(frame(applied({ ...e, load: { input: 5 } }), true)).toMatchObject({ lease: { load: { input: 5 } } });
    expect(endsAcquire(e)).toBe(true);
  });

  it("reports queueing except for a tryAcquire", () => {
    const e: Effect = { type: "queued", ...base };
    expect(frame(applied(e))).toEqual({ type: "queued", requestId: 7 });
    expect(answerToWire(applied(e), true)).toEqual({ frame: null, close: null });
    expect(endsAcquire(e)).toBe(false);
  });

  it("turns a tryAcquire's time-out into RQ_WOULD_WAIT and limiter-only codes into wire codes", () => {
    const timedOut: Effect = { type: "timedOut", ...base, code: "RQ_TIMEOUT", message: "m" };
    expect(frame(applied(timedOut))).toEqual({ type: "rejected", requestId: 7, code: "RQ_TIMEOUT", message: "m" });
    expect(frame(applied(timedOut), true)).toEqual({ type: "rejected", requestId: 7, code: "RQ_WOULD_WAIT", message: "m" });
    const noSession: Effect = { type: "rejected", ...base, code: "RQ_UNKNOWN_SESSION", message: "m" };
    expect(frame(applied(noSession))).toMatchObject({ code: "RQ_SESSION_EXPIRED" });
    expect(frame(applied({ type: "cancelled", ...base, code: "RQ_CANCELLED", message: "m" }), true)).toMatchObject({ code: "RQ_CANCELLED" });
  });

  it("closes on the session's end: error RQ_SESSION_EXPIRED and 4004 when it expired, a plain 1000 when closed", () => {
    const ended = { type: "sessionEnded", sessionId: "s", releasedLeases: [], droppedRequests: [] } as const;
    expect(answerToWire(applied({ ...ended, reason: "expired" }), false)).toEqual({
      frame: { type: "error", code: "RQ_SESSION_EXPIRED", message: "the session expired: its leases were released" },
      close: { code: CloseCode.SESSION_EXPIRED, reason: "session expired" },
    });
    expect(answerToWire(applied({ ...ended, reason: "closed" }), false)).toEqual({ frame: null, close: { code: CloseCode.NORMAL, reason: "session closed" } });
  });

  it("sends clients nothing for effects that answer no request", () => {
    const nothing = { frame: null, close: null };
    expect(answerToWire(applied({ type: "session", sessionId: "s", expiresAt: 1 }), false)).toEqual(nothing);
    expect(answerToWire(applied({ type: "released", sessionId: "s", leaseId: 1, reason: "released" }), false)).toEqual(nothing);
  });
});

describe("answerToWire: every kind of answer", () => {
  // One row per kind (the Record makes a new kind without a row a type error): each answer and its documented
  // wire form (docs/protocol.md, sections 4, 6, 7 and 9).
  const rows: Record<Answer["kind"], [Answer, WireAnswer][]> = {
    applied: [[applied({ type: "queued", ...base }), { frame: { type: "queued", requestId: 7 }, close: null }]],
    welcome: [
      [
        { kind: "welcome", sessionId: "s", ttlMs: 10_000, nodeId: "n1", leader: "n1", nodes: [{ id: "n1", url: "ws://a" }], resumed: true },
        {
          frame: { type: "welcome", protocolVersion: 1, sessionId: "s", ttlMs: 10_000, nodeId: "n1", leader: "n1", nodes: [{ id: "n1", url: "ws://a" }], resumed: true },
          close: null,
        },
      ],
    ],
    refused: [
      [
        { kind: "refused", requestId: 4, code: "RQ_FORBIDDEN", message: "no" },
        { frame: { type: "rejected", requestId: 4, code: "RQ_FORBIDDEN", message: "no" }, close: null },
      ],
    ],
    applyRefused: [
      [
        { kind: "applyRefused", requestId: 9, error: { type: "error", command: "settle", code: "RQ_UNKNOWN_LEASE", message: "m" } },
        { frame: { type: "rejected", requestId: 9, code: "RQ_INVALID", message: "m" }, close: null },
      ],
      [
        { kind: "applyRefused", requestId: 9, error: { type: "error", command: "cooldown", code: "RQ_UNKNOWN_RESOURCE", message: "m" } },
        { frame: { type: "rejected", requestId: 9, code: "RQ_UNKNOWN_RESOURCE", message: "m" }, close: null },
      ],
    ],
    ack: [[{ kind: "ack", requestId: 2 }, { frame: { type: "ack", requestId: 2 }, close: null }]],
    notLeader: [
      [
        { kind: "notLeader", leader: "n2", url: "ws://b" },
        { frame: { type: "notLeader", leader: "n2", url: "ws://b" }, close: { code: CloseCode.NOT_LEADER, reason: "not the leader" } },
      ],
    ],
    proposalFailed: [
      [
        { kind: "proposalFailed", error: new NotLeaderError("n2"), leader: "n2", url: "ws://b" },
        { frame: { type: "notLeader", leader: "n2", url: "ws://b" }, close: { code: CloseCode.NOT_LEADER, reason: "not the leader" } },
      ],
      [
        { kind: "proposalFailed", error: new ProposalLostError(`leadership moved${".".repeat(200)}`), leader: null, url: null },
        { frame: null, close: { code: CloseCode.NOT_LEADER, reason: `leadership moved${".".repeat(104)}` } },
      ],
    ],
    connectionError: [
      [
        { kind: "connectionError", code: "RQ_UNAUTHORIZED", message: "x".repeat(200), closeCode: CloseCode.UNAUTHORIZED },
        { frame: { type: "error", code: "RQ_UNAUTHORIZED", message: "x".repeat(200) }, close: { code: CloseCode.UNAUTHORIZED, reason: "x".repeat(120) } },
      ],
      [
        { kind: "connectionError", code: "RQ_PROTOCOL", message: "frames must be binary", closeCode: CloseCode.PROTOCOL, reason: "text frame" },
        { frame: { type: "error", code: "RQ_PROTOCOL", message: "frames must be binary" }, close: { code: CloseCode.PROTOCOL, reason: "text frame" } },
      ],
    ],
    closed: [[{ kind: "closed", closeCode: CloseCode.NORMAL, reason: "goodbye" }, { frame: null, close: { code: CloseCode.NORMAL, reason: "goodbye" } }]],
  };

  it("lists every kind once", () => {
    expect([...ANSWER_KINDS].sort()).toEqual(Object.keys(rows).sort());
  });

  for (const kind of ANSWER_KINDS) {
    it(`translates ${kind}`, () => {
      for (const [answer, wire] of rows[kind]) expect(answerToWire(answer, false)).toEqual(wire);
    });
  }
});

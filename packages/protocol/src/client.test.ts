import fc from "fast-check";
import { pack, Unpackr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { checkClientMessage, decodeClientFrame, encodeClientFrame } from "./client.js";
import { ProtocolEncodeError } from "./codes.js";
import { MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES, MAX_MESSAGES_PER_FRAME, PROTOCOL_VERSION } from "./limits.js";
import { checkProperty } from "@ratequeue/testkit";
import { arbBatch, arbClientMessage } from "./arbitraries.js";
import type { ClientMessage } from "./types.js";

const FILE = "packages/protocol/src/client.test.ts";

function roundTrip(messages: ClientMessage[]): ClientMessage[] {
  const result = decodeClientFrame(encodeClientFrame(messages));
  if (!result.ok) throw new Error(result.error.message);
  return result.messages;
}

/** A frame built by plain msgpackr from wire records, bypassing our encoder's checks. */
function rawFrame(...records: unknown[]): Uint8Array {
  return pack(records);
}

/** `[{ t: 2, requestId: <msgpackr bigint extension of ~1 MiB> }]`, within the frame cap. */
function hugeBigIntRequestId(): Uint8Array {
  const head = pack([{ t: 2, requestId: 0 }]);
  const size = MAX_FRAME_BYTES - 64;
  const ext = new Uint8Array(size + 6).fill(0x5a);
  ext.set([0xc9, (size >>> 24) & 255, (size >>> 16) & 255, (size >>> 8) & 255, size & 255, 0x42]);
  return Buffer.concat([head.subarray(0, head.length - 1), ext]); // the last byte of head is the 0
}

const goodAcquire = { t: 2, requestId: 1, resource: "openai-gpt4o", load: 1200 };

describe("client frames: round trips", () => {
  const every: ClientMessage[] = [
    { type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: "rq_live_abc" },
    {
      type: "hello",
      protocolVersion: PROTOCOL_VERSION,
      apiKey: "rq_live_abc",
      clientName: "@ratequeue/sdk",
      clientVersion: "0.1.0",
      resume: "s-42",
      ttlMs: 10_000,
    },
    { type: "acquire", requestId: 1, resource: "openai-gpt4o" },
    { type: "acquire", requestId: 2, resource: "openai-gpt4o", load: 1200, priority: 20, lane: "interactive", timeoutMs: 30_000 },
    { type: "acquire", requestId: 2, resource: "openai-gpt4o", lane: "batch/low", timeoutMs: 0 },
    { type: "acquire", requestId: 3, resource: "anthropic-claude", load: { input: 1200, output: 1024 }, try: true },
    { type: "release", requestId: 4, leaseId: "s-42/2" },
    { type: "settle", requestId: 5, leaseId: "s-42/3", actual: { output: 312 } },
    { type: "settle", requestId: 6, leaseId: "s-42/2", actual: 0.5 },
    { type: "cancel", requestId: 2 },
    { type: "cooldown", requestId: 7, resource: "openai-gpt4o", retryAfterMs: 2000 },
    { type: "heartbeat" },
    { type: "goodbye" },
  ];

  for (const message of every) {
    it(`${message.type} ${JSON.stringify(message).slice(0, 80)}`, () => {
      expect(roundTrip([message])).toEqual([message]);
    });
  }

  it("carries a whole batch in one frame, in order", () => {
    expect(roundTrip(every.slice(2))).toEqual(every.slice(2));
  });

  it("omits absent optional fields instead of decoding them as undefined", () => {
    const [decoded] = roundTrip([{ type: "acquire", requestId: 1, resource: "r" }]);
    expect(Object.keys(decoded ?? {})).toEqual(["type", "requestId", "resource"]);
  });

  it("writes ordinary messages as shared records: no field names on the wire", () => {
    const bytes = encodeClientFrame([{ type: "acquire", requestId: 9, resource: "r", load: { input: 1 } }]);
    expect(Buffer.from(bytes).toString("latin1")).not.toContain("requestId");
    expect(bytes.byteLength).toBeLessThan(24);
  });

  it("writes a hello self-describing, so a decoder without our record table can read it", () => {
    const bytes = encodeClientFrame([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: "k" }]);
    const plain = new Unpackr({ mapsAsObjects: true }).unpack(bytes) as unknown;
    expect(plain).toEqual([{ t: 1, protocolVersion: PROTOCOL_VERSION, apiKey: "k", clientName: null, clientVersion: null, resume: null, ttlMs: null, encoding: null }]);
  });

  it("round-trips random valid batches (property)", () => {
    checkProperty({ file: FILE, name: "round-trips random valid batches (property)" }, fc.property(arbBatch(arbClientMessage), (messages) => {
        expect(roundTrip(messages)).toEqual(messages);
      }));
  });
});

describe("client frames: bad input gets a specific error", () => {
  const cases: { name: string; frame: Uint8Array; code: string; path?: string; says: string }[] = [
    { name: "a frame that is not an array", frame: pack({ t: 2 }), code: "RQ_PROTOCOL", says: "array of messages" },
    { name: "an empty batch", frame: pack([]), code: "RQ_PROTOCOL", says: "1-4096 messages, not 0" },
    {
      name: "too many messages",
      frame: pack(Array.from({ length: MAX_MESSAGES_PER_FRAME + 1 }, () => ({ t: 7 }))),
      code: "RQ_PROTOCOL",
      says: "not 4097",
    },
    { name: "a message that is not a record", frame: rawFrame(5), code: "RQ_PROTOCOL", path: "messages[0]", says: "expected a message record" },
    { name: "an unknown type tag", frame: rawFrame({ t: 99 }), code: "RQ_PROTOCOL", path: "messages[0].t", says: "unknown client message type 99" },
    { name: "a type given as a string", frame: rawFrame({ t: "acquire" }), code: "RQ_PROTOCOL", path: "messages[0].t", says: 'type "acquire"' },
    {
      name: "a wrong protocol version",
      frame: rawFrame({ t: 1, protocolVersion: 2, apiKey: "k" }),
      code: "RQ_PROTOCOL_VERSION",
      path: "messages[0].protocolVersion",
      says: "protocol version 2 is not spoken here (this side speaks 1)",
    },
    ...badReports(),
    { name: "a hello without a key", frame: rawFrame({ t: 1, protocolVersion: 1 }), code: "RQ_PROTOCOL", path: "messages[0].apiKey", says: "got nothing" },
    {
      name: "an API key with a space",
      frame: rawFrame({ t: 1, protocolVersion: 1, apiKey: "a b" }),
      code: "RQ_PROTOCOL",
      path: "messages[0].apiKey",
      says: "printable ASCII",
    },
    {
      name: "a session TTL over a day",
      frame: rawFrame({ t: 1, protocolVersion: 1, apiKey: "k", ttlMs: 86_400_001 }),
      code: "RQ_PROTOCOL",
      path: "messages[0].ttlMs",
      says: "[1, 86400000], got 86400001",
    },
    { name: "request id 0", frame: rawFrame({ ...goodAcquire, requestId: 0 }), code: "RQ_PROTOCOL", path: "messages[1].requestId".replace("1", "0"), says: "got 0" },
    { name: "a fractional request id", frame: rawFrame({ ...goodAcquire, requestId: 1.5 }), code: "RQ_PROTOCOL", path: "messages[0].requestId", says: "got 1.5" },
    {
      name: "a request id over 2^53",
      frame: rawFrame({ ...goodAcquire, requestId: 2 ** 60 }),
      code: "RQ_PROTOCOL",
      path: "messages[0].requestId",
      says: "an integer in [1, 9007199254740991]",
    },
    { name: "a 64-bit integer request id", frame: rawFrame({ ...goodAcquire, requestId: 5n }), code: "RQ_PROTOCOL", path: "messages[0].requestId", says: "5n (bigint)" },
    {
      name: "a request id that is a bigint of almost a megabyte (refused before it is built)",
      frame: hugeBigIntRequestId(),
      code: "RQ_PROTOCOL",
      says: "bigint extension of 1048512 bytes refused (max 64)",
    },
    { name: "a 64-bit integer request id", frame: rawFrame({ ...goodAcquire, requestId: 2n ** 63n }), code: "RQ_PROTOCOL", path: "messages[0].requestId", says: "9223372036854775808n (bigint)" },
    { name: "an empty resource name", frame: rawFrame({ ...goodAcquire, resource: "" }), code: "RQ_PROTOCOL", path: "messages[0].resource", says: "resource name" },
    {
      name: "a resource name of 129 chars",
      frame: rawFrame({ ...goodAcquire, resource: "r".repeat(129) }),
      code: "RQ_PROTOCOL",
      path: "messages[0].resource",
      says: "129 chars (max 128)",
    },
    {
      name: "a resource name with non-ASCII characters (escaped in the message)",
      frame: rawFrame({ ...goodAcquire, resource: "gpt-\u00e4\u{1f600}" }),
      code: "RQ_PROTOCOL",
      path: "messages[0].resource",
      says: 'got "gpt-\\u00e4\\ud83d\\ude00"',
    },
    { name: "a resource name with a space", frame: rawFrame({ ...goodAcquire, resource: "a b" }), code: "RQ_PROTOCOL", path: "messages[0].resource", says: '"a b"' },
    { name: "a negative load", frame: rawFrame({ ...goodAcquire, load: -1 }), code: "RQ_PROTOCOL", path: "messages[0].load", says: "got -1" },
    { name: "a NaN load", frame: rawFrame({ ...goodAcquire, load: NaN }), code: "RQ_PROTOCOL", path: "messages[0].load", says: "got NaN" },
    { name: "an infinite load", frame: rawFrame({ ...goodAcquire, load: Infinity }), code: "RQ_PROTOCOL", path: "messages[0].load", says: "got Infinity" },
    { name: "a load above 2^53", frame: rawFrame({ ...goodAcquire, load: 2 ** 54 }), code: "RQ_PROTOCOL", path: "messages[0].load", says: "finite load" },
    { name: "a load as a string", frame: rawFrame({ ...goodAcquire, load: "1200" }), code: "RQ_PROTOCOL", path: "messages[0].load", says: "a number or dimension/amount pairs" },
    { name: "dimension pairs of odd length", frame: rawFrame({ ...goodAcquire, load: ["input"] }), code: "RQ_PROTOCOL", path: "messages[0].load", says: "got an array of 1" },
    { name: "no dimensions", frame: rawFrame({ ...goodAcquire, load: [] }), code: "RQ_PROTOCOL", path: "messages[0].load", says: "got an array of 0" },
    {
      name: "17 dimensions",
      frame: rawFrame({ ...goodAcquire, load: Array.from({ length: 17 }, (_, i) => [`d${i}`, 1]).flat() }),
      code: "RQ_PROTOCOL",
      path: "messages[0].load",
      says: "1-16 dimension/amount pairs",
    },
    {
      name: "a negative amount in a dimension",
      frame: rawFrame({ ...goodAcquire, load: ["input", 5, "output", -3] }),
      code: "RQ_PROTOCOL",
      path: "messages[0].load.output",
      says: "got -3",
    },
    {
      name: "a dimension named __proto__",
      frame: rawFrame({ ...goodAcquire, load: ["__proto__", 5] }),
      code: "RQ_PROTOCOL",
      path: "messages[0].load[0]",
      says: 'the dimension name "__proto__" is reserved',
    },
    {
      name: "a dimension name with a space",
      frame: rawFrame({ ...goodAcquire, load: ["in put", 5] }),
      code: "RQ_PROTOCOL",
      path: "messages[0].load[0]",
      says: "a dimension name (1-128 of A-Z a-z 0-9 . _ : / -)",
    },
    {
      name: "a dimension named twice",
      frame: rawFrame({ ...goodAcquire, load: ["input", 5, "input", 6] }),
      code: "RQ_PROTOCOL",
      path: "messages[0].load.input",
      says: 'dimension "input" appears twice',
    },
    { name: "a fractional priority", frame: rawFrame({ ...goodAcquire, priority: 1.5 }), code: "RQ_PROTOCOL", path: "messages[0].priority", says: "got 1.5" },
    { name: "a huge priority", frame: rawFrame({ ...goodAcquire, priority: 1e9 }), code: "RQ_PROTOCOL", path: "messages[0].priority", says: "[-1000000, 1000000]" },
    { name: "a lane that is a number", frame: rawFrame({ ...goodAcquire, lane: 3 }), code: "RQ_PROTOCOL", path: "messages[0].lane", says: "lane name" },
    { name: "a negative timeout", frame: rawFrame({ ...goodAcquire, timeoutMs: -1 }), code: "RQ_PROTOCOL", path: "messages[0].timeoutMs", says: "[0, 2147483648], got -1" },
    { name: "try as a number", frame: rawFrame({ ...goodAcquire, try: 1 }), code: "RQ_PROTOCOL", path: "messages[0].try", says: "a boolean, got 1" },
    { name: "a release without a lease id", frame: rawFrame({ t: 3, requestId: 1 }), code: "RQ_PROTOCOL", path: "messages[0].leaseId", says: "an id" },
    { name: "a settle without actual", frame: rawFrame({ t: 4, requestId: 1, leaseId: "l" }), code: "RQ_PROTOCOL", path: "messages[0].actual", says: "got nothing" },
    {
      name: "a cooldown beyond 2^31 ms",
      frame: rawFrame({ t: 6, requestId: 1, resource: "r", retryAfterMs: 2 ** 31 + 1 }),
      code: "RQ_PROTOCOL",
      path: "messages[0].retryAfterMs",
      says: "got 2147483649",
    },
    {
      name: "a bad message after good ones names its index",
      frame: rawFrame({ t: 7 }, goodAcquire, { t: 5, requestId: -4 }),
      code: "RQ_PROTOCOL",
      path: "messages[2].requestId",
      says: "got -4",
    },
    { name: "a frame cut short", frame: pack([goodAcquire]).subarray(0, 6), code: "RQ_PROTOCOL", says: "not a MessagePack frame" },
    { name: "trailing bytes after the frame", frame: Buffer.concat([pack([goodAcquire]), Buffer.from([0xc0])]), code: "RQ_PROTOCOL", says: "not a MessagePack frame" },
    { name: "an empty frame", frame: new Uint8Array(0), code: "RQ_PROTOCOL", says: "empty frame" },
    { name: "a frame over the byte cap", frame: new Uint8Array(MAX_FRAME_BYTES + 1), code: "RQ_FRAME_TOO_LARGE", says: "1048577 bytes exceeds the 1048576-byte cap" },
  ];

  // The plain decoder (a plain client's frames, every first frame) must refuse exactly what the records decoder does.
  for (const [c, encoding] of cases.flatMap((c) => (["records", "plain"] as const).map((e) => [c, e] as const))) {
    it(`${c.name} (${encoding} decoder)`, () => {
      const result = decodeClientFrame(c.frame, { encoding });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.code).toBe(c.code);
      expect(result.error.path).toBe(c.path);
      expect(result.error.message).toContain(c.says);
    });
  }

  it("holds a first frame to the hello cap when asked, before any decoding", () => {
    const hello = encodeClientFrame([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: "k".repeat(256), clientName: "n".repeat(64), resume: "s".repeat(128) }]);
    expect(hello.byteLength).toBeLessThan(MAX_HELLO_FRAME_BYTES);
    expect(decodeClientFrame(hello, { maxFrameBytes: MAX_HELLO_FRAME_BYTES }).ok).toBe(true);
    const big = new Uint8Array(MAX_HELLO_FRAME_BYTES + 1);
    expect(decodeClientFrame(big, { maxFrameBytes: MAX_HELLO_FRAME_BYTES })).toEqual({
      ok: false,
      error: { code: "RQ_FRAME_TOO_LARGE", message: "frame of 4097 bytes exceeds the 4096-byte cap" },
    });
  });

  it("never raises the cap above MAX_FRAME_BYTES", () => {
    const result = decodeClientFrame(new Uint8Array(MAX_FRAME_BYTES + 1), { maxFrameBytes: 10 * MAX_FRAME_BYTES });
    expect(result.ok ? null : result.error.code).toBe("RQ_FRAME_TOO_LARGE");
  });

  it("refuses a value that is not bytes", () => {
    const result = decodeClientFrame("hello" as unknown as Uint8Array);
    expect(result).toEqual({ ok: false, error: { code: "RQ_PROTOCOL", message: "a frame must be a Uint8Array" } });
  });

  it("ignores fields it does not know (a tolerant reader)", () => {
    const result = decodeClientFrame(rawFrame({ ...goodAcquire, extra: { deep: [1, 2] } }));
    expect(result).toEqual({ ok: true, messages: [{ type: "acquire", requestId: 1, resource: "openai-gpt4o", load: 1200 }] });
  });
});

describe("client frames: the encoder refuses what the node would refuse", () => {
  it("throws ProtocolEncodeError naming the field", () => {
    const bad = { type: "acquire", requestId: 1, resource: "r", load: { input: -1 } } as const;
    expect(() => encodeClientFrame([{ type: "heartbeat" }, bad])).toThrow(ProtocolEncodeError);
    try {
      encodeClientFrame([{ type: "heartbeat" }, bad]);
    } catch (error) {
      expect(error).toMatchObject({ code: "RQ_PROTOCOL", path: "messages[1].load.input" });
    }
  });

  it("throws on an unknown message type and on an empty batch", () => {
    expect(() => encodeClientFrame([{ type: "welcome" } as unknown as ClientMessage])).toThrow('messages[0].type: expected a client message type, got "welcome"');
    expect(() => encodeClientFrame([])).toThrow(/1-4096 messages, not 0/);
  });

  it("throws on a malformed object instead of writing it", () => {
    expect(() => encodeClientFrame([{ type: "settle", requestId: 1, leaseId: "l" } as unknown as ClientMessage])).toThrow(
      /messages\[0\]\.actual/,
    );
  });
});

describe("checkClientMessage: one message, before batching", () => {
  it("accepts a valid message", () => {
    expect(checkClientMessage({ type: "acquire", requestId: 1, resource: "r", load: { input: 5 } })).toBeNull();
  });

  it("names the field of a bad one, relative to the message", () => {
    expect(checkClientMessage({ type: "acquire", requestId: 1, resource: "r", load: -5 })).toEqual({
      code: "RQ_PROTOCOL",
      path: "load",
      message: "load: expected a finite load in [0, 9007199254740991], got -5",
    });
  });

  it("never throws, whatever it is given", () => {
    for (const value of [null, undefined, 5, "acquire", {}, { type: "nope" }, { type: "settle", requestId: 1, leaseId: "l", actual: { x: NaN } }]) {
      expect(checkClientMessage(value as ClientMessage)).toMatchObject({ code: "RQ_PROTOCOL" });
    }
  });
});

/** Reports whose fields are each in range but could not come from any set of delays, and ones out of range. */
function badReports(): { name: string; frame: Uint8Array; code: string; path: string; says: string }[] {
  const good = { t: 9, requestId: 5, resource: "gpt", count: 3, sumMs: 330, maxMs: 300, buckets: [0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0] };
  const bucketsFor = (counts: Record<number, number>): number[] => Array.from({ length: 12 }, (_, i) => counts[i] ?? 0);
  return [
    { name: "a report whose buckets do not add up to its count", frame: rawFrame({ ...good, count: 4, sumMs: 330 }), code: "RQ_PROTOCOL", path: "messages[0].buckets", says: "add up to count 4, got 3" },
    { name: "a report whose sum is below its largest delay", frame: rawFrame({ ...good, sumMs: 299 }), code: "RQ_PROTOCOL", path: "messages[0].sumMs", says: "got 299" },
    { name: "a report whose sum exceeds count times its largest delay", frame: rawFrame({ ...good, sumMs: 901 }), code: "RQ_PROTOCOL", path: "messages[0].sumMs", says: "to 900), got 901" },
    { name: "a report whose largest delay is not in its last bucket", frame: rawFrame({ ...good, maxMs: 20 , sumMs: 30, buckets: bucketsFor({ 2: 1, 6: 1 }), count: 2 }), code: "RQ_PROTOCOL", path: "messages[0].maxMs", says: "20 ms falls in bucket 2" },
    { name: "a report with 11 buckets", frame: rawFrame({ ...good, buckets: good.buckets.slice(1) }), code: "RQ_PROTOCOL", path: "messages[0].buckets", says: "expected 12 counts" },
    { name: "a report with a negative bucket", frame: rawFrame({ ...good, buckets: bucketsFor({ 2: 2, 6: 1, 7: -1 }) }), code: "RQ_PROTOCOL", path: "messages[0].buckets[7]", says: "got -1" },
    { name: "a report of no grants", frame: rawFrame({ ...good, count: 0 }), code: "RQ_PROTOCOL", path: "messages[0].count", says: "[1, 100000000], got 0" },
    { name: "a report of a delay over a day", frame: rawFrame({ ...good, maxMs: 86_400_001 }), code: "RQ_PROTOCOL", path: "messages[0].maxMs", says: "got 86400001" },
    { name: "a report of a fractional sum", frame: rawFrame({ ...good, sumMs: 330.5 }), code: "RQ_PROTOCOL", path: "messages[0].sumMs", says: "got 330.5" },
  ];
}

describe("client frames: reports", () => {
  it("round-trips a report built from delays, and the decoder reads the sample above as good", () => {
    const report: ClientMessage = { type: "report", requestId: 5, resource: "gpt", count: 3, sumMs: 330, maxMs: 300, buckets: [0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0] };
    expect(roundTrip([report])).toEqual([report]);
    expect(decodeClientFrame(rawFrame({ t: 9, requestId: 5, resource: "gpt", count: 3, sumMs: 330, maxMs: 300, buckets: [0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0] })).ok).toBe(true);
  });
});


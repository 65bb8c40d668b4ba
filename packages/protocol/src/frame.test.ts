/**
 * Properties of every direction's frames: fuzzing (random bytes, damaged
 * valid frames, arbitrary values from another encoder, near-valid records)
 * never throws and never yields a message the encoder would refuse; the
 * size cap costs no decoding work; decoding keeps no state between frames.
 */
import fc from "fast-check";
import { Packr, pack, Unpackr } from "msgpackr";
import { afterEach, describe, expect, it, vi } from "vitest";
import { decodeClientFrame, encodeClientFrame } from "./client.js";
import { MAX_FRAME_BYTES } from "./limits.js";
import { decodePeerFrame, encodePeerFrame } from "./peer.js";
import { decodeServerFrame, encodeServerFrame } from "./server.js";
import { RECORD_TABLE } from "./structures.js";
import { checkProperty } from "@ratequeue/testkit";
import { arbBatch, arbClientMessage, arbEdits, arbPeerMessage, arbServerMessage, mutate } from "./arbitraries.js";
import type { DecodeResult } from "./types.js";

const FILE = "packages/protocol/src/frame.test.ts";

interface Side<M> {
  readonly name: string;
  readonly decode: (bytes: Uint8Array) => DecodeResult<M>;
  readonly encode: (messages: M[]) => Uint8Array;
  readonly arbMessage: fc.Arbitrary<M>;
}

const sides: Side<unknown>[] = [
  { name: "client", decode: decodeClientFrame, encode: encodeClientFrame, arbMessage: arbClientMessage } as Side<unknown>,
  { name: "server", decode: decodeServerFrame, encode: encodeServerFrame, arbMessage: arbServerMessage } as Side<unknown>,
  { name: "peer", decode: decodePeerFrame, encode: encodePeerFrame, arbMessage: arbPeerMessage } as Side<unknown>,
];

/**
 * The contract of every decode: it returns (never throws) either an error
 * with a protocol code and a message, or messages that the encoder accepts
 * and that survive a second round trip unchanged.
 */
function expectSoundDecode<M>(side: Side<M>, bytes: Uint8Array): void {
  let result: DecodeResult<M>;
  try {
    result = side.decode(bytes);
  } catch (error) {
    throw new Error(`decode threw: ${String(error)}`);
  }
  if (!result.ok) {
    expect(["RQ_PROTOCOL", "RQ_FRAME_TOO_LARGE", "RQ_PROTOCOL_VERSION"]).toContain(result.error.code);
    // Printable ASCII, so a 120-char prefix fits a WebSocket close reason (123 bytes).
    expect(result.error.message).toMatch(/^[\x20-\x7e]+$/);
    return;
  }
  const again = side.decode(side.encode(result.messages));
  expect(again).toEqual({ ok: true, messages: result.messages });
}

/** Every field name the readers know, to build records that reach deep into them. */
const FIELD_NAMES = [...new Set(RECORD_TABLE.flat().concat(["protocolVersion", "apiKey", "sessionId", "nodes", "resumed", "id", "url", "from", "to"]))];

const arbFieldValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constantFrom(null, true, false, 0, -1, 1, 1.5, NaN, Infinity, -0, 2 ** 53, 1, "", "n1", "r", "input", "ws://x", "RQ_TIMEOUT"),
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 20 }),
    fc.uint8Array({ maxLength: 8 }),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...FIELD_NAMES), tie("value"), { maxKeys: 4 }),
  ),
})).value;

const arbNearValidRecord = fc.record({
  t: fc.integer({ min: 0, max: 26 }),
  fields: fc.dictionary(fc.constantFrom(...FIELD_NAMES), arbFieldValue, { maxKeys: 8 }),
});

describe.each(sides)("$name frames under fuzzing", (side) => {
  it(`${side.name}: random bytes never crash the decoder`, () => {
    checkProperty({ file: FILE, name: `${side.name}: random bytes never crash the decoder` }, fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => expectSoundDecode(side, bytes)));
  });

  it(`${side.name}: damaged valid frames decode to messages or a protocol error`, () => {
    checkProperty({ file: FILE, name: `${side.name}: damaged valid frames decode to messages or a protocol error` }, fc.property(arbBatch(side.arbMessage), arbEdits, (messages, edits) => {
        expectSoundDecode(side, mutate(side.encode(messages), edits));
      }));
  });

  it(`${side.name}: arbitrary values from a plain msgpackr encoder never crash the decoder`, () => {
    const plain = new Packr({ useRecords: false, moreTypes: true });
    checkProperty({ file: FILE, name: `${side.name}: arbitrary values from a plain msgpackr encoder never crash the decoder` }, fc.property(
        fc.oneof(
          fc.anything({ maxDepth: 3, withBigInt: true, withMap: true, withSet: true, withDate: true, withTypedArray: true }),
          fc.array(fc.anything({ maxDepth: 2, withBigInt: true, withTypedArray: true }), { maxLength: 4 }),
        ),
        (value) => {
          let bytes: Uint8Array;
          try {
            bytes = plain.pack(value);
          } catch {
            return; // not encodable at all: nothing to decode
          }
          expectSoundDecode(side, bytes);
        },
      ));
  });

  it(`${side.name}: near-valid records (known tags, known field names, hostile values) never crash the decoder`, () => {
    checkProperty({ file: FILE, name: `${side.name}: near-valid records (known tags, known field names, hostile values) never crash the decoder` }, fc.property(fc.array(arbNearValidRecord, { minLength: 1, maxLength: 4 }), (records) => {
        let bytes: Uint8Array;
        try {
          bytes = pack(records.map((r) => ({ t: r.t, ...r.fields })));
        } catch {
          return; // e.g. a bigint beyond 64 bits: msgpack cannot carry it, so no peer can send it
        }
        expectSoundDecode(side, bytes);
      }));
  });
});

describe("frame limits and state", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("refuses a frame over the cap before any decoding work", () => {
    const unpack = vi.spyOn(Unpackr.prototype, "unpack");
    const result = decodeClientFrame(new Uint8Array(MAX_FRAME_BYTES + 1).fill(0x91));
    expect(result.ok ? null : result.error.code).toBe("RQ_FRAME_TOO_LARGE");
    expect(unpack).not.toHaveBeenCalled();
    decodeClientFrame(encodeClientFrame([{ type: "heartbeat" }]));
    expect(unpack).toHaveBeenCalledTimes(1); // the spy does see ordinary decodes
  });

  it("survives hostile structure inside the cap: deep nesting, huge claimed lengths", () => {
    const deep = new Uint8Array(MAX_FRAME_BYTES).fill(0x91); // an array in an array in ... a million deep
    const hugeArray = Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]);
    const hugeString = Uint8Array.from([0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]);
    for (const bytes of [deep, hugeArray, hugeString]) {
      const result = decodeClientFrame(bytes);
      expect(result.ok ? null : result.error.code).toBe("RQ_PROTOCOL");
    }
  });

  it("a frame that defines records inline under our ids does not change how later frames decode", () => {
    // A self-describing encoder numbers its records from the first id: the same ids as our table.
    const hostile = new Packr({ useRecords: true }).pack(
      Array.from({ length: RECORD_TABLE.length + 2 }, (_, i) => ({ [`k${i}`]: i, t: 99 })),
    );
    expect(decodeClientFrame(hostile).ok).toBe(false);
    const acquire = { type: "acquire", requestId: 3, resource: "r", load: 5 } as const;
    expect(decodeClientFrame(encodeClientFrame([acquire]))).toEqual({ ok: true, messages: [acquire] });
    expect(decodeServerFrame(encodeServerFrame([{ type: "queued", requestId: 3 }]))).toEqual({
      ok: true,
      messages: [{ type: "queued", requestId: 3 }],
    });
  });

  it("never reuses the memory of a frame it returned (a socket may still be sending it)", () => {
    const first = encodeClientFrame([{ type: "acquire", requestId: 1, resource: "first", load: 1 }]);
    const copy = Uint8Array.from(first);
    for (let i = 0; i < 5000; i++) encodeClientFrame([{ type: "acquire", requestId: i + 2, resource: "later-frames", load: i }]);
    expect(Uint8Array.from(first)).toEqual(copy);
  });

  it("returns frames that own their bytes, not views into a shared pack buffer (a queued frame would keep it alive)", () => {
    // Grow msgpackr's shared buffer first, as a large answer does on a busy node.
    encodeServerFrame(Array.from({ length: 2000 }, (_, i) => ({ type: "ack" as const, requestId: i + 1 })));
    for (const side of sides) {
      const frame = side.encode(fc.sample(side.arbMessage, { seed: 7, numRuns: 1 }));
      expect(frame.byteOffset, side.name).toBe(0);
      expect(frame.buffer.byteLength, side.name).toBe(frame.byteLength);
    }
  });

  it("decodes frames in any order: no per-connection state", () => {
    const frames = [
      encodeClientFrame([{ type: "hello", protocolVersion: 1, apiKey: "k" }]),
      encodeClientFrame([{ type: "acquire", requestId: 1, resource: "a" }]),
      encodeClientFrame([{ type: "release", requestId: 2, leaseId: "l" }]),
    ];
    const forward = frames.map((f) => decodeClientFrame(f));
    const backward = [...frames].reverse().map((f) => decodeClientFrame(f)).reverse();
    expect(backward).toEqual(forward);
    expect(forward.every((r) => r.ok)).toBe(true);
  });
});

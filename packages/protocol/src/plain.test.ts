/**
 * The plain encoding (docs/protocol.md): what a client without msgpackr (the
 * Python SDK, any language with a standard MessagePack library) writes and
 * reads, checked with the independent reader and writer of standard-msgpack.ts.
 */
import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { decodeClientFrame, encodeClientFrame } from "./client.js";
import { MAX_HELLO_FRAME_BYTES, PROTOCOL_VERSION } from "./limits.js";
import { decodeServerFrame, encodeServerFrame } from "./server.js";
import { readStandard, writeStandard } from "./standard-msgpack.js";
import { checkProperty } from "@ratequeue/testkit";
import { arbBatch, arbClientMessage, arbServerMessage } from "./arbitraries.js";
import type { ClientMessage, ServerMessage } from "./types.js";

const FILE = "packages/protocol/src/plain.test.ts";

describe("the plain encoding", () => {
  it("round-trips random client batches, and every frame is standard MessagePack (property)", () => {
    checkProperty({ file: FILE, name: "plain client batches" }, fc.property(arbBatch(arbClientMessage), (messages: ClientMessage[]) => {
        const bytes = encodeClientFrame(messages, { encoding: "plain" });
        expect(() => readStandard(bytes)).not.toThrow();
        expect(decodeClientFrame(bytes, { encoding: "plain" })).toEqual({ ok: true, messages });
      }));
  });

  it("round-trips random server batches, and every frame is standard MessagePack (property)", () => {
    checkProperty({ file: FILE, name: "plain server batches" }, fc.property(arbBatch(arbServerMessage), (messages: ServerMessage[]) => {
        const bytes = encodeServerFrame(messages, { encoding: "plain" });
        expect(() => readStandard(bytes)).not.toThrow();
        expect(decodeServerFrame(bytes, { encoding: "plain" })).toEqual({ ok: true, messages });
      }));
  });

  it("reads what another MessagePack writer sends, including the fixints 64-89 that msgpackr's records claim", () => {
    const frame = writeStandard([
      { t: 1, protocolVersion: PROTOCOL_VERSION, apiKey: "k", ttlMs: 64, encoding: "plain" },
      { t: 2, requestId: 64, resource: "r", load: ["input", 89, "output", 127], priority: 70, lane: null, timeoutMs: 80, try: null },
      { t: 4, requestId: 65, leaseId: "s/1", actual: 66 },
    ]);
    expect(decodeClientFrame(frame, { encoding: "plain", maxFrameBytes: MAX_HELLO_FRAME_BYTES })).toEqual({
      ok: true,
      messages: [
        { type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: "k", ttlMs: 64, encoding: "plain" },
        { type: "acquire", requestId: 64, resource: "r", load: { input: 89, output: 127 }, priority: 70, timeoutMs: 80 },
        { type: "settle", requestId: 65, leaseId: "s/1", actual: 66 },
      ],
    });
    // Why the two encodings are decoded apart: the records decoder reads 0x40 as a record reference.
    expect(decodeClientFrame(frame)).not.toEqual(decodeClientFrame(frame, { encoding: "plain" }));
  });

  it("reads the Node SDK's hello (self-describing records) with the plain decoder: every first frame is decoded plain", () => {
    const hello: ClientMessage = { type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: "k", clientName: "n", ttlMs: 64 };
    const bytes = encodeClientFrame([hello]);
    expect(decodeClientFrame(bytes, { encoding: "plain", maxFrameBytes: MAX_HELLO_FRAME_BYTES })).toEqual({ ok: true, messages: [hello] });
  });

  it("writes an error frame that both decoders read (the answer to a first frame that cannot be decoded)", () => {
    const error: ServerMessage = { type: "error", code: "RQ_PROTOCOL", message: "messages[0].apiKey: expected an API key" };
    const bytes = encodeServerFrame([error], { encoding: "plain" });
    expect(readStandard(bytes)).toEqual([{ t: 7, code: "RQ_PROTOCOL", message: error.message }]);
    expect(decodeServerFrame(bytes)).toEqual({ ok: true, messages: [error] });
  });

  it("refuses a hello encoding it does not know, naming the field", () => {
    const result = decodeClientFrame(writeStandard([{ t: 1, protocolVersion: PROTOCOL_VERSION, apiKey: "k", encoding: "json" }]), { encoding: "plain" });
    expect(result).toEqual({
      ok: false,
      error: { code: "RQ_PROTOCOL", path: "messages[0].encoding", message: 'messages[0].encoding: expected an encoding ("records" or "plain"), got "json"' },
    });
  });

  it("a frame that defines records inline does not change how later plain frames decode", () => {
    const hostile = new Packr({ useRecords: true }).pack(Array.from({ length: 40 }, (_, i) => ({ [`k${i}`]: i, t: 99 })));
    expect(decodeClientFrame(hostile, { encoding: "plain" }).ok).toBe(false);
    const frame = writeStandard([{ t: 5, requestId: 64 }]);
    expect(decodeClientFrame(frame, { encoding: "plain" })).toEqual({ ok: true, messages: [{ type: "cancel", requestId: 64 }] });
  });

  it("refuses 64-bit integers, as the records decoder does (clients write integers above 2^32-1 as float64)", () => {
    const bytes = Uint8Array.from([0x91, 0x82, 0xa1, 0x74, 0x05, 0xa9, ...new TextEncoder().encode("requestId"), 0xcf, 0, 0, 0, 1, 0, 0, 0, 0]);
    const result = decodeClientFrame(bytes, { encoding: "plain" });
    expect(result.ok ? null : result.error.path).toBe("messages[0].requestId");
    expect(decodeClientFrame(writeStandard([{ t: 5, requestId: 2 ** 32 }]), { encoding: "plain" }).ok).toBe(true);
  });
});

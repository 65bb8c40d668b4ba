/**
 * Codec benchmark: our frames (msgpackr records on the fixed table, with full
 * validation both ways) against the same records without validation, plain
 * msgpackr maps and JSON, for the frames that dominate traffic: client
 * batches of acquires, node batches of grants, and a Raft append (counted per
 * entry). Prints medians of several runs; asserts nothing about time.
 *
 *   npx tsx packages/protocol/src/codec.bench.ts
 */
import { Packr, Unpackr } from "msgpackr";
import { decodeClientFrame, encodeClientFrame } from "./client.js";
import type { Message } from "@ratequeue/raft";
import { decodePeerFrame, encodePeerFrame } from "./peer.js";
import { decodeServerFrame, encodeServerFrame } from "./server.js";
import { RECORD_TABLE } from "./structures.js";
import type { ClientMessage, ServerMessage } from "./types.js";

export interface CodecBenchRow {
  readonly frame: string;
  readonly codec: string;
  /** Bytes per message on the wire. */
  readonly bytesPerMessage: number;
  /** Median ns per message to encode, and to decode. */
  readonly encodeNs: number;
  readonly decodeNs: number;
}

interface Codec {
  readonly name: string;
  encode(messages: unknown[]): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

const plainPackr = new Packr({ useRecords: false });
const plainUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const recordPackr = new Packr({
  structures: RECORD_TABLE.map((shape) => shape.slice()),
  maxSharedStructures: RECORD_TABLE.length,
  shouldShareStructure: () => false,
});
const recordUnpackr = new Unpackr({ structures: RECORD_TABLE.map((shape) => shape.slice()), maxSharedStructures: RECORD_TABLE.length });
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

type Kind = "client" | "server" | "peer";

function ourCodec(kind: Kind): Codec {
  const name = "ours (records + validation)";
  if (kind === "client") return { name, encode: (m) => encodeClientFrame(m as ClientMessage[]), decode: decodeClientFrame };
  if (kind === "server") return { name, encode: (m) => encodeServerFrame(m as ServerMessage[]), decode: decodeServerFrame };
  return { name, encode: (m) => encodePeerFrame(m as Message[]), decode: decodePeerFrame };
}

function codecs(kind: Kind): Codec[] {
  const ours = ourCodec(kind);
  // The same wire records as ours, minus validation and conversion: what validation costs.
  const wire = (messages: unknown[]): unknown[] => {
    return recordUnpackr.unpack(ours.encode(messages)) as unknown[];
  };
  let cachedWire: { of: unknown[]; wire: unknown[] } | null = null;
  return [
    ours,
    {
      name: "same records, no validation",
      encode: (m) => {
        if (cachedWire?.of !== m) cachedWire = { of: m, wire: wire(m) };
        return recordPackr.pack(cachedWire.wire);
      },
      decode: (b) => recordUnpackr.unpack(b),
    },
    { name: "plain msgpackr maps, no validation", encode: (m) => plainPackr.pack(m), decode: (b) => plainUnpackr.unpack(b) },
    // JSON cannot carry bytes without a base64 detour, so it sits out the peer frame.
    ...(kind === "peer"
      ? []
      : [{ name: "JSON, no validation", encode: (m: unknown[]) => textEncoder.encode(JSON.stringify(m)), decode: (b: Uint8Array) => JSON.parse(textDecoder.decode(b)) as unknown }]),
  ];
}

function acquires(count: number): ClientMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    type: "acquire",
    requestId: 1000 + i,
    resource: "anthropic-claude",
    load: { input: 1200 + i, output: 1024 },
    priority: 10,
    lane: "interactive",
    timeoutMs: 30_000,
  }));
}

function grants(count: number): ServerMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    type: "granted",
    requestId: 1000 + i,
    lease: { id: `s-8f3a/${1000 + i}`, resource: "anthropic-claude", load: { input: 1200 + i, output: 1024 }, grantedAt: 1_764_000_000_000 + i },
  }));
}

/** One Raft append of `count` entries of 100 bytes each, as a leader batches them. */
function appendOf(count: number): Message[] {
  return [
    {
      type: "append",
      from: "n1",
      to: "n2",
      term: 7,
      prevIndex: 1_000_000,
      prevTerm: 7,
      entries: Array.from({ length: count }, (_, i) => ({ index: 1_000_001 + i, term: 7, type: "normal" as const, data: new Uint8Array(100).fill(i) })),
      commit: 999_990,
    },
  ];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** ns per message of one timed run of `work` lasting at least `minRunMs`. */
function timeRun(work: () => unknown, messagesPerCall: number, minRunMs: number): number {
  let calls = 0;
  let sink: unknown;
  const start = performance.now();
  let elapsedMs = 0;
  while (elapsedMs < minRunMs) {
    for (let i = 0; i < 32; i++) sink = work();
    calls += 32;
    elapsedMs = performance.now() - start;
  }
  if (sink === undefined) throw new Error("benchmark work returned nothing");
  return (elapsedMs * 1e6) / (calls * messagesPerCall);
}

/**
 * Runs the codecs of one frame in interleaved rounds (every codec once per
 * round), so a burst of load from other processes on this shared machine
 * hits all of them alike, and keeps the median of the rounds.
 */
function measureFrame(codecList: readonly Codec[], messages: unknown[], perMessage: number, runs: number, minRunMs: number): { encodeNs: number; decodeNs: number }[] {
  const frames = codecList.map((codec) => codec.encode(messages));
  const encodeSamples = codecList.map((): number[] => []);
  const decodeSamples = codecList.map((): number[] => []);
  for (let round = -1; round < runs; round++) {
    codecList.forEach((codec, i) => {
      const frame = frames[i] ?? new Uint8Array(0);
      const encodeNs = timeRun(() => codec.encode(messages), perMessage, minRunMs);
      const decodeNs = timeRun(() => codec.decode(frame), perMessage, minRunMs);
      if (round >= 0) {
        encodeSamples[i]?.push(encodeNs);
        decodeSamples[i]?.push(decodeNs);
      }
    });
  }
  return codecList.map((_, i) => ({ encodeNs: median(encodeSamples[i] ?? []), decodeNs: median(decodeSamples[i] ?? []) }));
}

export function runProtocolBench(options: { runs?: number; minRunMs?: number } = {}): CodecBenchRow[] {
  const runs = options.runs ?? 7;
  const minRunMs = options.minRunMs ?? 50;
  const frames: { frame: string; kind: Kind; messages: unknown[]; perMessage: number }[] = [
    { frame: "1 acquire", kind: "client", messages: acquires(1), perMessage: 1 },
    { frame: "64 acquires", kind: "client", messages: acquires(64), perMessage: 64 },
    { frame: "64 grants", kind: "server", messages: grants(64), perMessage: 64 },
    // Counted per entry: one append message carrying 64 entries.
    { frame: "append 64x100B", kind: "peer", messages: appendOf(64), perMessage: 64 },
  ];
  const rows: CodecBenchRow[] = [];
  for (const { frame, kind, messages, perMessage } of frames) {
    const codecList = codecs(kind);
    const timings = measureFrame(codecList, messages, perMessage, runs, minRunMs);
    codecList.forEach((codec, i) => {
      const timing = timings[i];
      if (timing === undefined) throw new Error("missing timing");
      rows.push({ frame, codec: codec.name, bytesPerMessage: codec.encode(messages).byteLength / perMessage, ...timing });
    });
  }
  return rows;
}

function print(rows: readonly CodecBenchRow[]): void {
  console.log("frame          | codec                               | bytes/msg | encode ns/msg | decode ns/msg");
  for (const row of rows) {
    console.log(
      [
        row.frame.padEnd(14),
        row.codec.padEnd(35),
        row.bytesPerMessage.toFixed(1).padStart(9),
        row.encodeNs.toFixed(0).padStart(13),
        row.decodeNs.toFixed(0).padStart(13),
      ].join(" | "),
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) print(runProtocolBench());

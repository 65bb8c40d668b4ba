/**
 * Codec benchmark: our frames (msgpackr records on the fixed table, with full
 * validation both ways) against plain msgpackr maps and JSON, for the two
 * frames that dominate traffic: a client batch of acquires and a node batch
 * of grants. Prints medians of several runs; asserts nothing about time.
 *
 *   npx tsx packages/protocol/src/codec.bench.ts
 */
import { Packr, Unpackr } from "msgpackr";
import { decodeClientFrame, encodeClientFrame } from "./client.js";
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

function codecs(kind: "client" | "server"): Codec[] {
  const ours: Codec =
    kind === "client"
      ? { name: "ours (records + validation)", encode: (m) => encodeClientFrame(m as ClientMessage[]), decode: decodeClientFrame }
      : { name: "ours (records + validation)", encode: (m) => encodeServerFrame(m as ServerMessage[]), decode: decodeServerFrame };
  // The same wire records as ours, minus validation and conversion: what validation costs.
  const wire = (messages: unknown[]): unknown[] => {
    const result = (kind === "client" ? decodeClientFrame : decodeServerFrame)(ours.encode(messages));
    if (!result.ok) throw new Error(result.error.message);
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
    { name: "JSON, no validation", encode: (m) => textEncoder.encode(JSON.stringify(m)), decode: (b) => JSON.parse(textDecoder.decode(b)) },
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** ns per message of `work(batch)`, median of `runs` timed runs after a warm-up. */
function measure(work: () => unknown, messagesPerCall: number, runs: number, minRunMs: number): number {
  let sink: unknown;
  const samples: number[] = [];
  for (let run = -2; run < runs; run++) {
    let calls = 0;
    const start = performance.now();
    let elapsedMs = 0;
    while (elapsedMs < minRunMs) {
      for (let i = 0; i < 32; i++) sink = work();
      calls += 32;
      elapsedMs = performance.now() - start;
    }
    if (run >= 0) samples.push((elapsedMs * 1e6) / (calls * messagesPerCall));
  }
  if (sink === undefined) throw new Error("benchmark work returned nothing");
  return median(samples);
}

export function runProtocolBench(options: { runs?: number; minRunMs?: number } = {}): CodecBenchRow[] {
  const runs = options.runs ?? 7;
  const minRunMs = options.minRunMs ?? 100;
  const frames: { frame: string; kind: "client" | "server"; messages: unknown[] }[] = [
    { frame: "1 acquire", kind: "client", messages: acquires(1) },
    { frame: "64 acquires", kind: "client", messages: acquires(64) },
    { frame: "64 grants", kind: "server", messages: grants(64) },
  ];
  const rows: CodecBenchRow[] = [];
  for (const { frame, kind, messages } of frames) {
    for (const codec of codecs(kind)) {
      const bytes = codec.encode(messages);
      rows.push({
        frame,
        codec: codec.name,
        bytesPerMessage: bytes.byteLength / messages.length,
        encodeNs: measure(() => codec.encode(messages), messages.length, runs, minRunMs),
        decodeNs: measure(() => codec.decode(bytes), messages.length, runs, minRunMs),
      });
    }
  }
  return rows;
}

function print(rows: readonly CodecBenchRow[]): void {
  console.log("frame        | codec                               | bytes/msg | encode ns/msg | decode ns/msg");
  for (const row of rows) {
    console.log(
      [
        row.frame.padEnd(12),
        row.codec.padEnd(35),
        row.bytesPerMessage.toFixed(1).padStart(9),
        row.encodeNs.toFixed(0).padStart(13),
        row.decodeNs.toFixed(0).padStart(13),
      ].join(" | "),
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) print(runProtocolBench());

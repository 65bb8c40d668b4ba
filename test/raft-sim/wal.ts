import type { ConfState, EntryType, HardState } from "@ratequeue/raft";
import { crc32 } from "./crc32.js";
import { LogState, type LogChange } from "./log-state.js";
import type { SimDisk } from "./sim-disk.js";

/**
 * A node's write-ahead log on a {@link SimDisk}: checksummed frames of Raft
 * records, and the recovery that replays them after a crash, discarding a
 * torn tail the way a real WAL does (the first frame that is short or fails
 * its checksum ends the log, and the file is cut there).
 *
 * Frame: u32 payload length, u32 crc32(payload), payload (UTF-8 JSON).
 */
export type WalRecord = LogChange;

/** What a node finds on its disk at start. */
export interface RecoveredState {
  readonly log: LogState;
  /** Bytes discarded from the end of the file (a torn or partial frame). */
  readonly discardedBytes: number;
}

const HEADER_BYTES = 8;

export function appendRecord(disk: SimDisk, record: WalRecord): void {
  const payload = new TextEncoder().encode(JSON.stringify(toJson(record)));
  const frame = new Uint8Array(HEADER_BYTES + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, payload.length);
  view.setUint32(4, crc32(payload));
  frame.set(payload, HEADER_BYTES);
  disk.append(frame);
}

/** Replays the disk's records, cutting any torn tail off the file. */
export function recover(disk: SimDisk): RecoveredState {
  const bytes = disk.read();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const log = new LogState();
  let at = 0;
  while (at + HEADER_BYTES <= bytes.length) {
    const length = view.getUint32(at);
    const sum = view.getUint32(at + 4);
    const end = at + HEADER_BYTES + length;
    if (end > bytes.length) break;
    const payload = bytes.subarray(at + HEADER_BYTES, end);
    if (crc32(payload) !== sum) break;
    log.apply(fromJson(JSON.parse(new TextDecoder().decode(payload)) as JsonRecord));
    at = end;
  }
  const discardedBytes = bytes.length - at;
  if (discardedBytes > 0) disk.truncate(at);
  return { log, discardedBytes };
}

type JsonEntry = [index: number, term: number, type: EntryType, data: string];
interface JsonSnapshot {
  index: number;
  term: number;
  confState: ConfState;
  data: string;
}
type JsonRecord =
  | { type: "entries"; entries: JsonEntry[] }
  | { type: "hardState"; hardState: HardState }
  | { type: "installSnapshot" | "compact"; snapshot: JsonSnapshot };

function toJson(record: WalRecord): JsonRecord {
  switch (record.type) {
    case "entries":
      return { type: "entries", entries: record.entries.map((e) => [e.index, e.term, e.type, b64(e.data)]) };
    case "hardState":
      return { type: "hardState", hardState: { term: record.hardState.term, vote: record.hardState.vote, commit: record.hardState.commit } };
    case "installSnapshot":
    case "compact": {
      const { meta, data } = record.snapshot;
      return { type: record.type, snapshot: { index: meta.index, term: meta.term, confState: meta.confState, data: b64(data) } };
    }
  }
}

function fromJson(json: JsonRecord): WalRecord {
  switch (json.type) {
    case "entries":
      return { type: "entries", entries: json.entries.map(([index, term, type, data]) => ({ index, term, type, data: unb64(data) })) };
    case "hardState":
      return json;
    case "installSnapshot":
    case "compact": {
      const s = json.snapshot;
      return { type: json.type, snapshot: { meta: { index: s.index, term: s.term, confState: s.confState }, data: unb64(s.data) } };
    }
  }
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function unb64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64"));
}

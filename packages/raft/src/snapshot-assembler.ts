import { assert } from "./errors.js";
import type { Snapshot, SnapshotMessage, SnapshotMeta } from "./types.js";

/** What to do after a chunk: ask for the chunk at `nextOffset`, or install the complete snapshot. */
export type ChunkOutcome = { readonly kind: "next"; readonly nextOffset: number } | { readonly kind: "complete"; readonly snapshot: Snapshot };

/**
 * A follower's reassembly of a snapshot sent in chunks. Chunks must arrive in
 * order; a duplicate or a gap is answered with the offset expected next, and
 * a chunk of another snapshot restarts from offset 0. Chunks are copied on
 * arrival (the message's bytes may be a view into a transport buffer), so
 * memory grows with what arrived, not with the size a peer announced.
 */
export class SnapshotAssembler {
  private meta: SnapshotMeta | null = null;
  private totalBytes = 0;
  private chunks: Uint8Array[] = [];
  private received = 0;

  accept(m: SnapshotMessage): ChunkOutcome {
    const same = this.meta !== null && this.meta.index === m.meta.index && this.meta.term === m.meta.term && this.totalBytes === m.totalBytes;
    if (!same) {
      if (m.offset !== 0) return { kind: "next", nextOffset: 0 };
      this.reset();
      this.meta = m.meta;
      this.totalBytes = m.totalBytes;
    }
    if (m.offset !== this.received) return { kind: "next", nextOffset: this.received };
    this.chunks.push(m.data.slice());
    this.received += m.data.byteLength;
    if (this.received < this.totalBytes) return { kind: "next", nextOffset: this.received };
    const snapshot: Snapshot = { meta: m.meta, data: concat(this.chunks, this.totalBytes) };
    this.reset();
    return { kind: "complete", snapshot };
  }

  reset(): void {
    this.meta = null;
    this.totalBytes = 0;
    this.chunks = [];
    this.received = 0;
  }
}

function concat(chunks: readonly Uint8Array[], totalBytes: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(totalBytes);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  assert(offset === totalBytes, "snapshot chunks add up to totalBytes");
  return out;
}

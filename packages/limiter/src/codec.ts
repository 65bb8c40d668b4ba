/**
 * A tiny byte-deterministic binary codec for snapshots: unsigned varints,
 * float64 (for the few non-integer values, e.g. lane virtual times), and
 * length-prefixed UTF-8 strings. No dependency, no Map/Set ordering surprises:
 * callers write fields in a fixed order.
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export class SnapshotError extends Error {
  override readonly name = "SnapshotError";
}

export class Writer {
  #buf = new Uint8Array(1024);
  #len = 0;
  readonly #f64 = new Float64Array(1);
  readonly #f64Bytes = new Uint8Array(this.#f64.buffer);

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /** A non-negative safe integer as a base-128 varint. */
  uint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new SnapshotError(`uint out of range: ${value}`);
    this.#reserve(8);
    let v = value;
    while (v >= 0x80) {
      this.#buf[this.#len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.#buf[this.#len++] = v;
  }

  /** A number that may be absent: 0 encodes null, n + 1 encodes n. */
  optUint(value: number | null): void {
    this.uint(value === null ? 0 : value + 1);
  }

  f64le(value: number): void {
    this.#reserve(8);
    this.#f64[0] = value;
    // Float64Array uses platform endianness; all platforms Node runs on are little-endian,
    // and the decoder reads it back the same way.
    this.#buf.set(this.#f64Bytes, this.#len);
    this.#len += 8;
  }

  str(value: string): void {
    // Ids, names and JSON are almost always ASCII: those bytes are the UTF-8 encoding, written in place. A snapshot
    // holds several strings per lease and per request, and allocating each one through TextEncoder cost most of
    // the time of a snapshot with many leases held.
    const n = value.length;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (value.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      this.uint(n);
      this.#reserve(n);
      const buf = this.#buf;
      let at = this.#len;
      for (let i = 0; i < n; i++) buf[at++] = value.charCodeAt(i);
      this.#len = at;
      return;
    }
    const bytes = encoder.encode(value);
    this.uint(bytes.length);
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  bytes(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

export class Reader {
  #pos = 0;
  readonly #f64 = new Float64Array(1);
  readonly #f64Bytes = new Uint8Array(this.#f64.buffer);
  readonly #buf: Uint8Array;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  #need(n: number): void {
    if (this.#pos + n > this.#buf.length) throw new SnapshotError("snapshot is truncated");
  }

  uint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      this.#need(1);
      const byte = this.#buf[this.#pos++] as number;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 56) throw new SnapshotError("varint too long");
    }
    if (!Number.isSafeInteger(value)) throw new SnapshotError("varint out of range");
    return value;
  }

  optUint(): number | null {
    const v = this.uint();
    return v === 0 ? null : v - 1;
  }

  f64le(): number {
    this.#need(8);
    this.#f64Bytes.set(this.#buf.subarray(this.#pos, this.#pos + 8));
    this.#pos += 8;
    return this.#f64[0] as number;
  }

  str(): string {
    const n = this.uint();
    this.#need(n);
    const s = decoder.decode(this.#buf.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return s;
  }

  /** A count of items to follow, bounded by the bytes left (each item takes at least one byte). */
  count(): number {
    const n = this.uint();
    if (n > this.#buf.length - this.#pos) throw new SnapshotError("count exceeds snapshot size");
    return n;
  }

  done(): boolean {
    return this.#pos === this.#buf.length;
  }
}

import type { Prng } from "@ratequeue/testkit";

export interface DiskFaults {
  /**
   * On a crash, the probability that the OS had already flushed some of the
   * unsynced writes (a random prefix of them survives). Unsynced data may or
   * may not survive on a real disk; the caller must cope with both.
   */
  readonly flushRate: number;
  /** On a crash, the probability that the first lost write is torn: partly on disk. */
  readonly tornWriteRate: number;
}

export const RELIABLE_DISK: DiskFaults = { flushRate: 0, tornWriteRate: 0 };

/** What a crash did, for transcripts and tests. */
export interface CrashOutcome {
  readonly lostWrites: number;
  readonly survivedUnsyncedWrites: number;
  readonly torn: boolean;
}

/**
 * A simulated disk holding one append-only file (a write-ahead log). Appends
 * go to a volatile buffer; `sync()` makes them durable; `crash()` loses what
 * was not synced and may leave a torn write at the end of the file, exactly
 * the failures a WAL on a real disk must survive. Torn data is garbage after
 * a prefix, so only a checksum can tell it apart.
 */
export class SimDisk {
  readonly #prng: Prng;
  #faults: DiskFaults;
  /** Synced bytes, as a list of chunks (joined on read). */
  #durable: Uint8Array[] = [];
  #durableBytes = 0;
  #pending: Uint8Array[] = [];
  #syncs = 0;

  constructor(options: { prng: Prng; faults: DiskFaults }) {
    this.#prng = options.prng;
    this.#faults = checkFaults(options.faults);
  }

  setFaults(faults: DiskFaults): void {
    this.#faults = checkFaults(faults);
  }

  append(bytes: Uint8Array): void {
    if (bytes.length === 0) throw new RangeError("empty write");
    // Copy: the caller may reuse its buffer, a disk would not notice.
    this.#pending.push(bytes.slice());
  }

  sync(): void {
    for (const chunk of this.#pending) this.#pushDurable(chunk);
    this.#pending = [];
    this.#syncs++;
  }

  get syncCount(): number {
    return this.#syncs;
  }

  get unsyncedWrites(): number {
    return this.#pending.length;
  }

  /** The file as a reader sees it: durable bytes followed by unsynced ones (the page cache). */
  read(): Uint8Array {
    return concat([...this.#durable, ...this.#pending]);
  }

  /** Cuts the file to `length` bytes, durably (how recovery discards a torn tail). */
  truncate(length: number): void {
    const all = this.read();
    if (!Number.isInteger(length) || length < 0 || length > all.length) {
      throw new RangeError(`truncate to ${length} outside 0..${all.length}`);
    }
    this.#durable = [all.slice(0, length)];
    this.#durableBytes = length;
    this.#pending = [];
  }

  /** Power loss: unsynced writes are lost, except what the faults let survive. */
  crash(): CrashOutcome {
    const pending = this.#pending;
    this.#pending = [];
    let survived = 0;
    if (pending.length > 0 && this.#prng.chance(this.#faults.flushRate)) survived = this.#prng.int(1, pending.length);
    for (let i = 0; i < survived; i++) this.#pushDurable(pending[i]!);
    const firstLost = pending[survived];
    let torn = false;
    if (firstLost !== undefined && firstLost.length > 1 && this.#prng.chance(this.#faults.tornWriteRate)) {
      torn = true;
      const keep = this.#prng.int(1, firstLost.length - 1);
      const partial = firstLost.slice(0, this.#prng.chance(0.5) ? keep : firstLost.length);
      // The sectors after the tear hold garbage, not zeros or the real bytes.
      for (let i = keep; i < partial.length; i++) partial[i] = this.#prng.int(0, 255);
      this.#pushDurable(partial);
    }
    return { lostWrites: pending.length - survived, survivedUnsyncedWrites: survived, torn };
  }

  get durableBytes(): number {
    return this.#durableBytes;
  }

  #pushDurable(chunk: Uint8Array): void {
    this.#durable.push(chunk);
    this.#durableBytes += chunk.length;
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const c of chunks) length += c.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function checkFaults(f: DiskFaults): DiskFaults {
  for (const [name, rate] of [
    ["flushRate", f.flushRate],
    ["tornWriteRate", f.tornWriteRate],
  ] as const) {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`${name} must be in [0, 1], got ${rate}`);
  }
  return f;
}

import { EventQueue } from "./event-queue.js";
import type { Prng } from "@ratequeue/testkit";

/** Anything with a sender and a receiver; the network never looks further. */
export interface Addressed {
  readonly from: string;
  readonly to: string;
}

/** Per-message fault rates. Every rate is a probability in [0, 1]. */
export interface NetworkFaults {
  readonly dropRate: number;
  readonly duplicateRate: number;
  /** A message takes a uniform delay in [minDelayMs, maxDelayMs]. */
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  /**
   * Links are FIFO by default (like a TCP connection); with this probability
   * a message ignores the link's order and may overtake or be overtaken.
   */
  readonly reorderRate: number;
  /**
   * Of the messages that keep no order (reordered or duplicated), this share
   * arrives very late: up to `lateMaxMs` (a stale copy of an append or a
   * vote that surfaces after the cluster moved on).
   */
  readonly lateRate?: number;
  readonly lateMaxMs?: number;
}

export const CALM_NETWORK: NetworkFaults = { dropRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 3, reorderRate: 0 };

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  /** Lost because the link was cut when sent or when due. */
  cut: number;
  /** Dropped by a script's rule (see `dropWhere`). */
  ruled: number;
}

/**
 * A simulated network: per-link FIFO queues with delay, drop, duplicate and
 * reorder faults, and one-way link cuts from which full partitions and
 * isolation are built. Messages are opaque and treated as immutable (a
 * duplicate delivers the same object twice).
 */
export class SimNetwork<M extends Addressed> {
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, cut: 0, ruled: 0 };
  readonly #prng: Prng;
  #faults: NetworkFaults;
  readonly #inFlight = new EventQueue<M>();
  /** Links that carry nothing, keyed `from>to`. */
  readonly #cutLinks = new Set<string>();
  /** The latest delivery time per link, to keep links FIFO. */
  readonly #linkTailMs = new Map<string, number>();
  readonly #dropRules = new Set<(message: M) => boolean>();

  constructor(options: { prng: Prng; faults: NetworkFaults }) {
    this.#prng = options.prng;
    this.#faults = checkFaults(options.faults);
  }

  get faults(): NetworkFaults {
    return this.#faults;
  }

  setFaults(faults: NetworkFaults): void {
    this.#faults = checkFaults(faults);
  }

  send(message: M, nowMs: number): void {
    this.stats.sent++;
    if (message.from === message.to) throw new Error(`message from ${message.from} to itself`);
    if (this.isCut(message.from, message.to)) {
      this.stats.cut++;
      return;
    }
    for (const rule of this.#dropRules) {
      if (rule(message)) {
        this.stats.ruled++;
        return;
      }
    }
    if (this.#prng.chance(this.#faults.dropRate)) {
      this.stats.dropped++;
      return;
    }
    this.#enqueue(message, nowMs, this.#prng.chance(this.#faults.reorderRate));
    if (this.#prng.chance(this.#faults.duplicateRate)) {
      this.stats.duplicated++;
      // A duplicate is a retransmission on another path: it keeps no order.
      this.#enqueue(message, nowMs, true);
    }
  }

  /** The time the next message is due, or Infinity. */
  nextDeliveryMs(): number {
    return this.#inFlight.peekTimeMs();
  }

  /** Removes and returns the next message due at or before `nowMs`, skipping ones whose link was cut meanwhile. */
  takeDue(nowMs: number): M | undefined {
    while (this.#inFlight.peekTimeMs() <= nowMs) {
      const message = this.#inFlight.pop()!.item;
      if (this.isCut(message.from, message.to)) {
        this.stats.cut++;
        continue;
      }
      this.stats.delivered++;
      return message;
    }
    return undefined;
  }

  /**
   * Drops every message `rule` holds for, from now until the returned
   * function is called: how a scripted test loses exactly the messages its
   * story needs. Rules combine: a message any rule names is dropped.
   */
  dropWhere(rule: (message: M) => boolean): () => void {
    const own = (message: M): boolean => rule(message);
    this.#dropRules.add(own);
    return () => this.#dropRules.delete(own);
  }

  /** Blocks the one-way link from -> to. */
  cut(from: string, to: string): void {
    this.#cutLinks.add(linkKey(from, to));
  }

  heal(from: string, to: string): void {
    this.#cutLinks.delete(linkKey(from, to));
  }

  isCut(from: string, to: string): boolean {
    return this.#cutLinks.has(linkKey(from, to));
  }

  /** Cuts every link, both ways, between a node in `a` and a node in `b`. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        if (x === y) continue;
        this.cut(x, y);
        this.cut(y, x);
      }
    }
  }

  /** Cuts `node` off from every other node in `all`, both ways. */
  isolate(node: string, all: readonly string[]): void {
    this.partition([node], all);
  }

  /** Reconnects `node` with every node in `all`, both ways. */
  reconnect(node: string, all: readonly string[]): void {
    for (const x of all) {
      if (x === node) continue;
      this.heal(node, x);
      this.heal(x, node);
    }
  }

  healAll(): void {
    this.#cutLinks.clear();
  }

  /** The one-way cuts now in force, as `from>to` strings (for transcripts). */
  cutLinks(): string[] {
    return [...this.#cutLinks].sort();
  }

  #enqueue(message: M, nowMs: number, unordered: boolean): void {
    const key = linkKey(message.from, message.to);
    let atMs = nowMs + this.#prng.int(this.#faults.minDelayMs, this.#faults.maxDelayMs);
    const late = this.#faults.lateRate ?? 0;
    if (unordered && late > 0 && this.#prng.chance(late)) atMs = nowMs + this.#prng.int(this.#faults.maxDelayMs, Math.max(this.#faults.maxDelayMs, this.#faults.lateMaxMs ?? 0));
    if (!unordered) {
      atMs = Math.max(atMs, this.#linkTailMs.get(key) ?? 0);
      this.#linkTailMs.set(key, atMs);
    }
    this.#inFlight.push(atMs, message);
  }
}

function linkKey(from: string, to: string): string {
  return `${from}>${to}`;
}

function checkFaults(f: NetworkFaults): NetworkFaults {
  for (const [name, rate] of [
    ["dropRate", f.dropRate],
    ["duplicateRate", f.duplicateRate],
    ["reorderRate", f.reorderRate],
    ["lateRate", f.lateRate ?? 0],
  ] as const) {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`${name} must be in [0, 1], got ${rate}`);
  }
  if (!Number.isInteger(f.minDelayMs) || !Number.isInteger(f.maxDelayMs) || f.minDelayMs < 0 || f.maxDelayMs < f.minDelayMs) {
    throw new RangeError(`delay must be integers 0 <= minDelayMs <= maxDelayMs, got ${f.minDelayMs}..${f.maxDelayMs}`);
  }
  return f;
}

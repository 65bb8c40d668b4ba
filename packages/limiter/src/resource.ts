/**
 * The live state of one resource: its limits (with their windows), its lanes
 * (each a waiting line) and the leases it has granted. The scheduling rules
 * live in admission.ts; this file holds the data and the per-limit arithmetic.
 */
import type { History } from "./history.js";
import type { LaneQueue, Queued } from "./lane-queue.js";
import type { Effect, LimitConfig, LoadVector, ResourceConfig } from "./types.js";
import { BucketWindow } from "./windows/bucket.js";
import { FixedWindow } from "./windows/fixed.js";
import { SlidingWindow } from "./windows/sliding.js";
import type { Window } from "./windows/window.js";

export interface SessionRef {
  readonly id: string;
}

/** What the machine remembers of one (session, request id), for exactly-once answers. */
export interface RequestRecord {
  readonly requestId: string;
  state: "waiting" | "granted" | "done";
  waiter: Waiter | null;
  lease: Lease | null;
  /** The final outcome a repeat of the acquire answers; null while waiting (a repeat then answers "queued"). */
  outcome: Effect | null;
}

export interface Waiter extends Queued {
  readonly record: RequestRecord;
  alive: boolean;
  /** Arrival order, unique across the machine. */
  readonly seq: number;
  readonly session: SessionRef;
  readonly requestId: string;
  /** The lane the request named, or null for the resource's default lane. */
  readonly laneRequested: string | null;
  laneIdx: number;
  readonly priority: number;
  readonly load: LoadVector;
  readonly enqueuedAt: number;
  /** Log time at which it times out; Infinity when it has no timeout. */
  readonly deadline: number;
  resource: Resource;
}

export interface Lease {
  readonly record: RequestRecord;
  /** The lease id, which is also the grant's sequence number (it orders window logs). */
  readonly id: number;
  readonly session: SessionRef;
  readonly requestId: string;
  /** The lane it was granted in (null on a resource without lanes). */
  readonly laneName: string | null;
  laneIdx: number;
  load: LoadVector;
  readonly grantedAt: number;
  readonly resource: Resource;
}

export interface LimitRuntime {
  readonly config: LimitConfig;
  /** Limits with the same key keep their window state across a config change. */
  readonly key: string;
  /** Null for concurrency limits. */
  readonly window: Window | null;
  /** Per-lane windows under the strict policy (aligned with lanes), else null. */
  readonly laneWindows: Window[] | null;
  /** Grants older than this seq are not in these windows (created by a config change). */
  readonly sinceSeq: number;
  /** Concurrency slots held (concurrency limits only). */
  held: number;
  /** Per-lane slots held under the strict policy. */
  readonly laneHeld: number[] | null;
  /** What a request of lane i may fill up to: limit minus what is reserved for other lanes. */
  readonly capByLane: readonly number[];
  /** Under the strict policy: each lane's share, floor(limit * weight / total weight). */
  readonly laneShare: readonly number[] | null;
}

export interface LaneRuntime {
  readonly name: string;
  readonly weight: number;
  readonly queue: LaneQueue<Waiter>;
  /** Weighted-fair virtual time: grants served / weight. */
  vt: number;
}

export interface Resource {
  readonly name: string;
  /** Creation order, unique: breaks ties in the wake-up heap. */
  readonly seq: number;
  config: ResourceConfig;
  limits: LimitRuntime[];
  /** At least one lane: a resource without lanes has one implicit lane. */
  lanes: LaneRuntime[];
  implicitLane: boolean;
  strict: boolean;
  defaultLaneIdx: number;
  /** Load dimensions counted by some limit. */
  dimensions: Set<string>;
  cooldownUntil: number;
  readonly leases: Map<number, Lease>;
  waiting: number;
  /** When time alone will let a waiting head in; null when nothing waits on time. */
  wakeAt: number | null;
  /** The virtual time of the latest grant: a lane that becomes busy starts here. */
  vtFloor: number;
  /** What it has charged, replayed into a limit whose definition changes. */
  history: History;
}

export const IMPLICIT_LANE = "default";

/**
 * Limits with the same key count the same usage the same way, so a config
 * change keeps their window as it is. A bucket's level depends on its size
 * too (it refills at limit / windowMs); sliding and fixed counts do not.
 */
export function limitKey(config: LimitConfig): string {
  if (config.kind === "concurrency") return "concurrency";
  const dim = config.kind === "load" ? config.dimension : "";
  const size = config.window === "bucket" ? `|${config.limit}` : "";
  // A new delivery margin rebuilds the window from the history, as if it had always had that margin.
  return `${config.kind}|${dim}|${config.window}|${config.windowMs}|${config.deliveryMarginMs}${size}`;
}

/** A fresh window for `config` that has counted every charge of `history` (see history.ts). */
export function replayedWindow(config: LimitConfig, limit: number, history: History): Window | null {
  const window = newWindow(config, limit);
  if (window === null || config.kind === "concurrency") return window;
  for (const e of history) {
    const amount = config.kind === "rate" ? e.count : Object.hasOwn(e.load, config.dimension) ? (e.load[config.dimension] as number) : 0;
    if (amount > 0) window.charge(e.at, amount, 0);
  }
  return window;
}

export function newWindow(config: LimitConfig, limit: number): Window | null {
  if (config.kind === "concurrency") return null;
  switch (config.window) {
    case "sliding":
      return new SlidingWindow(config.windowMs, config.deliveryMarginMs);
    case "fixed":
      return new FixedWindow(config.windowMs, config.deliveryMarginMs);
    case "bucket":
      return new BucketWindow(config.windowMs, limit, config.deliveryMarginMs);
  }
}

/** Units a request costs in a limit: 1 for rate and concurrency, its load in the limit's dimension. */
export function amountFor(config: LimitConfig, load: LoadVector): number {
  // hasOwn: a dimension may be called "constructor" or "toString".
  return config.kind === "load" ? (Object.hasOwn(load, config.dimension) ? (load[config.dimension] as number) : 0) : 1;
}

/** Caps per lane: the limit minus units reserved for every other lane. */
export function capsByLane(config: LimitConfig, laneNames: readonly string[]): number[] {
  let total = 0;
  for (const units of Object.values(config.reserved)) total += units;
  if (laneNames.length === 0) return [config.limit - total];
  return laneNames.map((name) => config.limit - (total - (Object.hasOwn(config.reserved, name) ? (config.reserved[name] as number) : 0)));
}

/** floor(limit * weight / totalWeight), exact even when the product passes 2^53. */
export function shareOf(limit: number, weight: number, totalWeight: number): number {
  return Number((BigInt(limit) * BigInt(weight)) / BigInt(totalWeight));
}

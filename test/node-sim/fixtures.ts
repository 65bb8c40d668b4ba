/**
 * The fixtures every node-simulator run shares: the resources the cluster is configured with (and the checkers
 * read), the clients' workload on them, and the API keys.
 */
import type { Load } from "@ratequeue/protocol";
import { keyFromSecret } from "@ratequeue/node/testing";
import type { ResourceSpec } from "./checkers/limits.js";
import { EXTRA_RESOURCE } from "./operator.js";
import type { ClientWorkload } from "./sim-client.js";

export const ADMIN_KEY = "node-sim-admin-key";
/**
 * Half the clients use a worker key whose scope bounds priority (issue #15); the clients draw priorities up to 20,
 * so some of their acquires are out of scope. The scope checker reads the log: no acquire of a session this key
 * opened may ask for more than `priorityMax` (an out-of-scope request is refused before the log).
 */
export const WORKER_KEY = "node-sim-worker-key";
export const WORKER_SCOPE = { acquire: ["*"], priorityMax: 12 } as const;
export const WORKER_KEY_ID = keyFromSecret(WORKER_KEY, "sim worker", WORKER_SCOPE).id;

/**
 * The resources every run configures (bootstrap ops). The independent checker reads their limits; lanes and
 * reserved capacity only decide which waiter goes first, so they are configuration the checker does not need.
 */
export const RESOURCES: readonly (ResourceSpec & { readonly lanes?: Record<string, { weight: number }>; readonly lanePolicy?: "shared" | "strict"; readonly reserved?: Record<string, Record<string, number>> })[] = [
  {
    name: "chat",
    limits: [
      { kind: "rate", limit: 6, windowMs: 1000, window: "sliding" },
      { kind: "load", limit: 120, windowMs: 1000, window: "bucket", dimension: "load" },
      { kind: "concurrency", limit: 3 },
    ],
  },
  {
    name: "embed",
    limits: [
      { kind: "rate", limit: 8, windowMs: 500, window: "fixed" },
      { kind: "load", limit: 200, windowMs: 1000, window: "sliding", dimension: "input" },
      { kind: "load", limit: 150, windowMs: 2000, window: "fixed", dimension: "output" },
      { kind: "rate", limit: 5, windowMs: 400, window: "bucket" },
    ],
  },
  {
    // Weighted lanes sharing capacity, with some of it reserved for the interactive lane.
    name: "tiers",
    limits: [
      { kind: "rate", limit: 10, windowMs: 1000, window: "sliding" },
      { kind: "load", limit: 60, windowMs: 1000, window: "sliding", dimension: "load" },
      { kind: "concurrency", limit: 4 },
    ],
    reserved: { rate: { interactive: 3 }, concurrency: { interactive: 1 } },
    lanes: { interactive: { weight: 3 }, batch: { weight: 1 } },
    lanePolicy: "shared",
  },
  {
    // Strict lanes: each lane capped at its share even when the other is idle.
    name: "split",
    limits: [
      { kind: "rate", limit: 8, windowMs: 500, window: "fixed" },
      { kind: "load", limit: 100, windowMs: 1000, window: "bucket", dimension: "load" },
    ],
    lanes: { a: { weight: 1 }, b: { weight: 1 } },
    lanePolicy: "strict",
  },
];

/**
 * SPEC (limiter README, strict lanes): lane i of a `strict` resource may use at most floor(limit * weight_i /
 * total weight) of every limit, even when the other lanes are idle. So each such lane is checked as a resource of
 * its own, `resource#lane`, with those limits, by a second independent checker fed the lane's grants.
 */
export const STRICT_LANES: readonly ResourceSpec[] = RESOURCES.flatMap((r) => {
  if (r.lanePolicy !== "strict" || r.lanes === undefined) return [];
  const lanes = Object.entries(r.lanes);
  const total = lanes.reduce((sum, [, l]) => sum + l.weight, 0);
  return lanes.map(([lane, { weight }]) => ({
    name: `${r.name}#${lane}`,
    limits: r.limits.map((l) => ({ ...l, limit: Math.floor((l.limit * weight) / total) })),
  }));
});

/**
 * Per limit of `resource`, the units reserved for lanes other than `lane` (limiter README: a grant for lane L
 * must leave at least the units reserved for the other lanes unused).
 */
export function reservedForOthers(resource: string, lane: string | undefined): number[] {
  const r = RESOURCES.find((x) => x.name === resource);
  if (r?.reserved === undefined) return [];
  return r.limits.map((l) => Object.entries(r.reserved![l.kind] ?? {}).reduce((sum, [other, units]) => (other === lane ? sum : sum + units), 0));
}

/** The lane a request without one goes to: the first declared (limiter README). */
export const DEFAULT_LANE = new Map(RESOURCES.flatMap((r) => (r.lanes === undefined ? [] : [[r.name, Object.keys(r.lanes)[0]!] as const])));

export const WORKLOAD_RESOURCES: ClientWorkload["resources"] = [
  {
    name: "chat",
    load: (p) => p.int(1, 50),
    tooLarge: 121,
    // The lease carries the load in object form ({ load: n }) whatever form the acquire used.
    settle: (p, load) => Math.round(amountOf(load, "load") * p.int(0, 130) / 100),
  },
  {
    name: "embed",
    load: (p) => ({ input: p.int(1, 90), output: p.int(0, 70) }),
    tooLarge: { input: 10, output: 151 },
    settle: (p, load) => ({ input: amountOf(load, "input"), output: Math.round(amountOf(load, "output") * p.int(0, 120) / 100) }),
  },
  { name: "tiers", load: (p) => p.int(1, 20), tooLarge: 61, settle: (p, load) => Math.round(amountOf(load, "load") * p.int(0, 100) / 100), lanes: ["interactive", "batch"] },
  // Created, changed, deleted and created again by the operator (absent at bootstrap: RQ_UNKNOWN_RESOURCE then).
  { name: EXTRA_RESOURCE, load: (p) => p.int(1, 40), tooLarge: 1e6, settle: (p, load) => Math.round(amountOf(load, "load") * p.int(0, 100) / 100) },
  // A lane may use at most half of each strict limit: a load of 51 can never be granted in either lane.
  { name: "split", load: (p) => p.int(1, 30), tooLarge: 51, settle: (p, load) => Math.round(amountOf(load, "load") * p.int(0, 110) / 100), lanes: ["a", "b"] },
];

function amountOf(load: Load, dimension: string): number {
  return typeof load === "number" ? (dimension === "load" ? load : 0) : (load[dimension] ?? 0);
}

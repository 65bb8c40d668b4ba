import { Prng } from "@ratequeue/testkit";

/**
 * The knobs of one full-node simulation run. A seed picks them all
 * (`scenarioFromSeed`), fast-check picks them itself and shrinks them, and
 * every scenario prints as one replay command. The seed also drives every
 * random choice inside the run (delays, drops, fault times, client actions).
 */
export interface Knobs {
  readonly nodes: number;
  readonly clients: number;
  /** Peer-message fault rates, per mille (client links are TCP-like: they break, they do not drop). */
  readonly dropPermille: number;
  readonly dupPermille: number;
  readonly reorderPermille: number;
  /** Message delay is uniform in 1..maxDelayMs (peer and client links). */
  readonly maxDelayMs: number;
  /** fsync latency is uniform in 1..syncMaxMs. */
  readonly syncMaxMs: number;
  /** On a power loss: chance (per mille) that some unsynced writes survive, and that the first lost one is torn. */
  readonly flushPermille: number;
  readonly tornPermille: number;
  /** Node crashes (power loss, restart later) during the faulty phase. */
  readonly crashes: number;
  /** Partitions (one node isolated, or a minority cut off) during the faulty phase. */
  readonly partitions: number;
  /** Wall-clock skew: each node's wall clock is offset by up to this many ms, and jumps by as much up to three times. */
  readonly skewMs: number;
  /** Clock drift: each node's clock runs at 1 ± up to this per mille. */
  readonly driftPermille: number;
  /** Client connections broken per client per second, per mille of client actions. */
  readonly breakPermille: number;
  /** Clients that die (never come back; their sessions must expire). */
  readonly deaths: number;
  /** Applied entries between two snapshots. */
  readonly snapshotEvery: number;
  /** Length of the faulty phase in simulated ms. */
  readonly safetyMs: number;
  /** Process stalls (a long GC or a stopped VM): the node runs nothing for a while, then resumes where it was. */
  readonly pauses: number;
  /** Admin changes through the log during the faulty phase (resource put/delete, key create/revoke; operator.ts). */
  readonly adminChanges: number;
  /**
   * Membership changes during the faulty phase (a node added as a learner, caught up and promoted; a member
   * removed, the leader after handing over; or both, a replacement), through the admin API's own procedures.
   */
  readonly memberChanges: number;
}

export interface Scenario {
  readonly seed: number;
  readonly knobs: Knobs;
}

export const MAX_SEED = 0xffffffff;

/** Flag name, knob, allowed range (inclusive). */
export const KNOB_FLAGS: readonly (readonly [flag: string, knob: keyof Knobs, min: number, max: number])[] = [
  ["nodes", "nodes", 3, 5],
  ["clients", "clients", 1, 8],
  ["drop", "dropPermille", 0, 500],
  ["dup", "dupPermille", 0, 500],
  ["reorder", "reorderPermille", 0, 1000],
  ["delay", "maxDelayMs", 1, 100],
  ["sync", "syncMaxMs", 1, 50],
  ["flush", "flushPermille", 0, 1000],
  ["torn", "tornPermille", 0, 1000],
  ["crashes", "crashes", 0, 10],
  ["partitions", "partitions", 0, 10],
  ["skew", "skewMs", 0, 3_600_000],
  ["drift", "driftPermille", 0, 100],
  ["breaks", "breakPermille", 0, 500],
  ["deaths", "deaths", 0, 8],
  ["snapshot-every", "snapshotEvery", 2, 10_000],
  ["safety-ms", "safetyMs", 100, 600_000],
  ["pauses", "pauses", 0, 10],
  ["admin", "adminChanges", 0, 100],
  ["members", "memberChanges", 0, 20],
];

/** A scenario chosen entirely by `seed`: the soak's unit of work. */
export function scenarioFromSeed(seed: number): Scenario {
  checkSeed(seed);
  // A stream of its own, so the run's internal randomness does not depend on how the knobs were drawn.
  const r = new Prng((seed ^ 0x2c1b3c6d) >>> 0);
  const calm = r.chance(0.1);
  const nodes = r.chance(0.6) ? 3 : 5;
  const knobs: Knobs = {
    nodes,
    clients: r.int(1, 4),
    dropPermille: calm ? 0 : r.pick([0, 10, 50, 150]),
    dupPermille: calm ? 0 : r.pick([0, 10, 50]),
    reorderPermille: calm ? 0 : r.pick([0, 50, 200]),
    maxDelayMs: r.pick([2, 5, 15]),
    syncMaxMs: r.pick([1, 3, 10]),
    flushPermille: r.pick([0, 300, 700]),
    tornPermille: r.pick([0, 300, 800]),
    crashes: calm ? 0 : r.int(0, 3),
    partitions: calm ? 0 : r.int(0, 2),
    skewMs: r.pick([0, 20, 200, 1000, 120_000]),
    driftPermille: r.pick([0, 1, 20]),
    breakPermille: calm ? 0 : r.pick([0, 10, 40]),
    deaths: r.chance(0.2) ? 1 : 0,
    snapshotEvery: r.pick([5, 20, 100]),
    safetyMs: r.int(1500, 3000),
    // Drawn last, so adding it left every earlier seed's other knobs as they were.
    pauses: calm ? 0 : r.int(0, 2),
    // Drawn after pauses, for the same reason.
    adminChanges: r.int(0, 8),
    // Drawn after admin, for the same reason.
    memberChanges: r.chance(0.5) ? r.int(1, 4) : 0,
  };
  return { seed, knobs };
}

/** The one-line command that replays `scenario` exactly. */
export function replayCommand(scenario: Scenario): string {
  const flags = KNOB_FLAGS.map(([flag, knob]) => `--${flag} ${scenario.knobs[knob]}`).join(" ");
  return `npx tsx scripts/node-sim.ts --seed ${scenario.seed} ${flags}`;
}

/** `base` with the knobs named in `flags` (flag name -> decimal text) replaced; throws a clear error on a bad value. */
export function applyOverrides(base: Scenario, flags: ReadonlyMap<string, string>): Scenario {
  const knobs: Record<string, number> = { ...base.knobs };
  for (const [flag, text] of flags) {
    const spec = KNOB_FLAGS.find(([f]) => f === flag);
    if (spec === undefined) throw new Error(`unknown knob --${flag} (known: ${KNOB_FLAGS.map(([f]) => f).join(", ")})`);
    const [, knob, min, max] = spec;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) throw new Error(`--${flag} must be an integer in ${min}..${max}, got "${text}"`);
    knobs[knob] = value;
  }
  return { seed: base.seed, knobs: knobs as unknown as Knobs };
}

export function checkScenario(s: Scenario): void {
  checkSeed(s.seed);
  for (const [flag, knob, min, max] of KNOB_FLAGS) {
    const v = s.knobs[knob];
    if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`--${flag} must be an integer in ${min}..${max}, got ${v}`);
  }
  if (s.knobs.deaths > s.knobs.clients) throw new RangeError(`--deaths (${s.knobs.deaths}) exceeds --clients (${s.knobs.clients})`);
}

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new RangeError(`seed must be an integer in 0..${MAX_SEED}, got ${seed}`);
}

import { Prng } from "@ratequeue/testkit";

/**
 * Everything a randomized run is made of: a seed (which drives every random
 * choice inside the run: delays, drops, election timeouts, client timing),
 * fault-rate knobs, and an explicit schedule of discrete faults. A scenario
 * can be derived from a seed alone, or chosen (and shrunk) by fast-check,
 * and always prints as one replay command.
 */
export interface Knobs {
  readonly nodes: number;
  /** Per-message fault rates, in per mille. */
  readonly dropPermille: number;
  readonly dupPermille: number;
  readonly reorderPermille: number;
  readonly maxDelayMs: number;
  /** On a crash: chance (per mille) that some unsynced writes survive, and that the first lost one is torn. */
  readonly flushPermille: number;
  readonly tornPermille: number;
  readonly syncMaxMs: number;
  /** Applied entries between two local snapshots (each followed by compaction). */
  readonly snapshotEvery: number;
  readonly clients: number;
  /** Length of the safety phase (faults on); the liveness phase follows. */
  readonly safetyMs: number;
  /** Raft options, as 0/1: pre-vote and check-quorum. */
  readonly preVote: number;
  readonly checkQuorum: number;
  /** Raft's maxSizePerMsgBytes: small values split appends into one entry each. */
  readonly msgBytes: number;
  /** Each node's tick period differs from 10 ms by up to this (clock drift), 0..9. */
  readonly driftMs: number;
  /**
   * How the drivers' loops meet the disk. 0: the loop waits for each fsync; 1: it steps messages and ticks while an
   * fsync is in flight; 2: asynchronous storage writes (RawNode's `asyncStorageWrites`), several writes in flight.
   */
  readonly asyncSync: number;
  /** Per mille: a node is crashed right after a Ready that votes, raises its term or wins, around its fsync. */
  readonly electionCrashPermille: number;
  /** Per mille: a new leader is cut off (alone or with one follower) or crashed soon after it wins. */
  readonly leaderCutPermille: number;
  /** Clients issuing ReadIndex reads. */
  readonly readers: number;
  /** Raft's snapshotChunkBytes. */
  readonly chunkBytes: number;
  /** Each tick comes up to this many ms early or late (tick skew on top of drift), 0..9. */
  readonly jitterMs: number;
  /** Per mille of unordered (reordered or duplicated) messages that arrive up to 600 ms late. */
  readonly latePermille: number;
}

/** One discrete fault. Nodes are numbered 1..9 (n1..n9); times are ms from the start. */
export type Fault =
  | { readonly kind: "crash"; readonly atMs: number; readonly node: number; readonly downMs: number }
  | { readonly kind: "pause"; readonly atMs: number; readonly node: number; readonly forMs: number }
  | { readonly kind: "isolate"; readonly atMs: number; readonly node: number; readonly forMs: number }
  /** A full partition: `side` against everyone else. */
  | { readonly kind: "partition"; readonly atMs: number; readonly side: readonly number[]; readonly forMs: number }
  | { readonly kind: "oneWay"; readonly atMs: number; readonly from: number; readonly to: number; readonly forMs: number }
  /** The current leader is asked to hand leadership to `to`. */
  | { readonly kind: "transfer"; readonly atMs: number; readonly to: number }
  /** A new node is started and added (learner, then promoted). */
  | { readonly kind: "addNode"; readonly atMs: number }
  | { readonly kind: "removeNode"; readonly atMs: number; readonly node: number };

export interface Scenario {
  readonly seed: number;
  readonly knobs: Knobs;
  readonly faults: readonly Fault[];
}

export const MAX_SEED = 0xffffffff;

/** Fault kinds a seed may enable (swarm testing: each seed enables its own subset). */
const FAULT_KINDS = ["crash", "pause", "isolate", "partition", "oneWay", "transfer", "addNode", "removeNode"] as const;

/**
 * A scenario chosen entirely by `seed`: the soak's unit of work. Swarm
 * testing (Groce et al. 2012): each seed enables its own subset of fault
 * kinds and draws its own rates, so some runs are dominated by one kind of
 * trouble instead of every run getting an even, diluted mix.
 */
export function scenarioFromSeed(seed: number, options: { membership: boolean } = { membership: true }): Scenario {
  // A stream of its own, so the run's internal randomness is not shifted by how many faults were drawn.
  const r = new Prng((seed ^ 0x5bd1e995) >>> 0);
  const calm = r.chance(0.1);
  const kinds = FAULT_KINDS.filter((k) => (options.membership || (k !== "addNode" && k !== "removeNode")) && r.chance(0.5));
  const nodes = options.membership && r.chance(0.08) ? 1 : r.chance(0.6) ? 3 : 5;
  // A lone voter is only interesting with members joining it.
  if (nodes === 1 && !kinds.includes("addNode")) kinds.push("addNode");
  const long = r.chance(0.12);
  const knobs: Knobs = {
    nodes,
    dropPermille: calm ? 0 : r.pick([0, 10, 50, 150, 300]),
    dupPermille: calm ? 0 : r.pick([0, 10, 50]),
    reorderPermille: calm ? 0 : r.pick([0, 50, 200]),
    maxDelayMs: r.pick([2, 5, 15, 40]),
    flushPermille: r.pick([0, 300, 700]),
    tornPermille: r.pick([0, 300, 800]),
    syncMaxMs: r.pick([1, 3, 10, 25]),
    snapshotEvery: r.pick([3, 5, 20, 60]),
    clients: r.int(1, 4),
    safetyMs: long ? r.int(5000, 8000) : r.int(1500, 4000),
    preVote: r.chance(0.7) ? 1 : 0,
    checkQuorum: r.chance(0.5) ? 1 : 0,
    msgBytes: r.pick([1, 1, 64, 4096]),
    driftMs: r.pick([0, 1, 3, 6]),
    // One draw, as before this knob had a third value: the other knobs of a seed stay as they were.
    asyncSync: r.pick([0, 1, 2, 2]),
    electionCrashPermille: calm ? 0 : r.pick([0, 0, 30, 100, 300]),
    leaderCutPermille: calm ? 0 : r.pick([0, 0, 100, 300, 600]),
    readers: r.pick([0, 1, 2]),
    chunkBytes: r.pick([8, 64, 1 << 20]),
    jitterMs: r.pick([0, 0, 2, 5]),
    latePermille: calm ? 0 : r.pick([0, 0, 100, 500]),
  };
  const faults: Fault[] = [];
  const count = calm || kinds.length === 0 ? 0 : r.int(1, long ? 24 : 12);
  const node = (): number => r.int(1, knobs.nodes);
  // Faults aimed at whoever leads at the time (node 0) hit where it hurts most.
  const target = (): number => (r.chance(0.4) ? 0 : node());
  for (let i = 0; i < count; i++) {
    const atMs = r.int(0, knobs.safetyMs);
    const lengthMs = r.int(50, 800);
    switch (r.pick(kinds)) {
      case "crash":
        faults.push({ kind: "crash", atMs, node: target(), downMs: lengthMs });
        break;
      case "pause":
        faults.push({ kind: "pause", atMs, node: target(), forMs: lengthMs });
        break;
      case "isolate":
        faults.push({ kind: "isolate", atMs, node: target(), forMs: lengthMs });
        break;
      case "partition": {
        const side = [...new Set([target(), node()])].sort();
        faults.push({ kind: "partition", atMs, side, forMs: lengthMs });
        break;
      }
      case "oneWay": {
        const from = node();
        const to = (from % knobs.nodes) + 1;
        faults.push({ kind: "oneWay", atMs, from, to, forMs: lengthMs });
        break;
      }
      case "transfer":
        faults.push({ kind: "transfer", atMs, to: node() });
        break;
      case "addNode":
        faults.push({ kind: "addNode", atMs });
        break;
      case "removeNode":
        faults.push({ kind: "removeNode", atMs, node: node() });
        break;
    }
  }
  faults.sort((a, b) => a.atMs - b.atMs);
  return { seed, knobs, faults };
}

// ---- The replay command ----------------------------------------------------

const KNOB_FLAGS: readonly [keyof Knobs, string][] = [
  ["nodes", "nodes"],
  ["dropPermille", "drop"],
  ["dupPermille", "dup"],
  ["reorderPermille", "reorder"],
  ["maxDelayMs", "delay"],
  ["flushPermille", "flush"],
  ["tornPermille", "torn"],
  ["syncMaxMs", "sync"],
  ["snapshotEvery", "snapshot-every"],
  ["clients", "clients"],
  ["safetyMs", "safety-ms"],
  ["preVote", "prevote"],
  ["checkQuorum", "check-quorum"],
  ["msgBytes", "msg-bytes"],
  ["driftMs", "drift"],
  ["asyncSync", "async"],
  ["electionCrashPermille", "election-crash"],
  ["leaderCutPermille", "leader-cut"],
  ["readers", "readers"],
  ["chunkBytes", "chunk-bytes"],
  ["jitterMs", "jitter"],
  ["latePermille", "late"],
];

/** The one-line command that replays `scenario` exactly. */
export function replayCommand(scenario: Scenario): string {
  const knobs = KNOB_FLAGS.map(([key, flag]) => `--${flag} ${scenario.knobs[key]}`).join(" ");
  return `npx tsx scripts/sim.ts --seed ${scenario.seed} ${knobs} --faults "${encodeFaults(scenario.faults)}"`;
}

/** Reads knob flags (and --faults) over the scenario derived from the seed. */
export function applyOverrides(base: Scenario, flags: ReadonlyMap<string, string>): Scenario {
  const knobs: Record<string, number> = { ...base.knobs };
  for (const [key, flag] of KNOB_FLAGS) {
    const raw = flags.get(flag);
    if (raw === undefined) continue;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`--${flag} must be an integer >= 0, got ${JSON.stringify(raw)}`);
    knobs[key] = value;
  }
  const faultText = flags.get("faults");
  const scenario = { seed: base.seed, knobs: knobs as unknown as Knobs, faults: faultText === undefined ? base.faults : decodeFaults(faultText) };
  checkScenario(scenario);
  return scenario;
}

export function checkScenario(s: Scenario): void {
  const k = s.knobs;
  if (!Number.isInteger(s.seed) || s.seed < 0 || s.seed > MAX_SEED) throw new RangeError(`seed must be an integer in 0..${MAX_SEED}`);
  if (k.nodes < 1 || k.nodes > 9) throw new RangeError(`--nodes must be 1..9, got ${k.nodes}`);
  for (const [name, v] of [
    ["drop", k.dropPermille],
    ["dup", k.dupPermille],
    ["reorder", k.reorderPermille],
    ["flush", k.flushPermille],
    ["torn", k.tornPermille],
  ] as const) {
    if (v > 1000) throw new RangeError(`--${name} is per mille: 0..1000, got ${v}`);
  }
  if (k.snapshotEvery < 1) throw new RangeError(`--snapshot-every must be at least 1`);
  if (k.maxDelayMs < 1) throw new RangeError(`--delay must be at least 1`);
  if (k.syncMaxMs < 1) throw new RangeError(`--sync must be at least 1`);
  if (k.msgBytes < 1) throw new RangeError(`--msg-bytes must be at least 1`);
  if (k.driftMs > 9) throw new RangeError(`--drift must be 0..9 (ms around a 10 ms tick), got ${k.driftMs}`);
  if (k.electionCrashPermille > 1000 || k.leaderCutPermille > 1000) throw new RangeError(`--election-crash and --leader-cut are per mille: 0..1000`);
  if (k.latePermille > 1000) throw new RangeError(`--late is per mille: 0..1000`);
  if (k.asyncSync > 2) throw new RangeError(`--async is 0, 1 or 2`);
  if (k.chunkBytes < 1) throw new RangeError(`--chunk-bytes must be at least 1`);
  if (k.jitterMs > 9) throw new RangeError(`--jitter must be 0..9 ms, got ${k.jitterMs}`);
  if (k.preVote > 1 || k.checkQuorum > 1) throw new RangeError(`--prevote and --check-quorum are 0 or 1`);
}

/** `c2@120+300` crash n2 at 120 ms for 300 ms; `p` pause, `i` isolate, `s13` partition {n1,n3}, `o12` one-way n1->n2, `t2` transfer to n2, `a` add a node, `r2` remove n2. */
export function encodeFaults(faults: readonly Fault[]): string {
  return faults
    .map((f) => {
      switch (f.kind) {
        case "crash":
          return `c${f.node}@${f.atMs}+${f.downMs}`;
        case "pause":
          return `p${f.node}@${f.atMs}+${f.forMs}`;
        case "isolate":
          return `i${f.node}@${f.atMs}+${f.forMs}`;
        case "partition":
          return `s${f.side.join("")}@${f.atMs}+${f.forMs}`;
        case "oneWay":
          return `o${f.from}${f.to}@${f.atMs}+${f.forMs}`;
        case "transfer":
          return `t${f.to}@${f.atMs}`;
        case "addNode":
          return `a@${f.atMs}`;
        case "removeNode":
          return `r${f.node}@${f.atMs}`;
      }
    })
    .join(",");
}

export function decodeFaults(text: string): Fault[] {
  if (text.trim() === "") return [];
  return text.split(",").map((part) => {
    const m = /^([cpisotar])(\d*)@(\d+)(?:\+(\d+))?$/.exec(part.trim());
    if (m === null) throw new RangeError(`bad fault ${JSON.stringify(part)}: expected e.g. c2@120+300 (see encodeFaults)`);
    const [, kind, digits = "", at, len] = m;
    const atMs = Number(at);
    const forMs = Number(len ?? "0");
    const nodes = [...digits].map(Number);
    const one = (): number => {
      if (nodes.length !== 1) throw new RangeError(`fault ${part} needs one node number 1..9 (0: the leader at the time)`);
      return nodes[0]!;
    };
    const needLength = (): void => {
      if (len === undefined) throw new RangeError(`fault ${part} needs a duration (+ms)`);
    };
    switch (kind) {
      case "c":
        needLength();
        return { kind: "crash", atMs, node: one(), downMs: forMs };
      case "p":
        needLength();
        return { kind: "pause", atMs, node: one(), forMs };
      case "i":
        needLength();
        return { kind: "isolate", atMs, node: one(), forMs };
      case "s":
        needLength();
        if (nodes.length === 0) throw new RangeError(`fault ${part} needs the nodes of one side`);
        return { kind: "partition", atMs, side: nodes, forMs };
      case "o":
        needLength();
        if (nodes.length !== 2) throw new RangeError(`fault ${part} needs two node numbers (from, to)`);
        return { kind: "oneWay", atMs, from: nodes[0]!, to: nodes[1]!, forMs };
      case "t":
        return { kind: "transfer", atMs, to: one() };
      case "a":
        return { kind: "addNode", atMs };
      default:
        return { kind: "removeNode", atMs, node: one() };
    }
  });
}

/** The fault schedule in words, for failure reports. */
export function describeFaults(faults: readonly Fault[]): string {
  if (faults.length === 0) return "no scheduled faults";
  const n = (x: number): string => (x === 0 ? "the leader" : `n${x}`);
  return faults
    .map((f) => {
      switch (f.kind) {
        case "crash":
          return `at ${f.atMs} ms crash ${n(f.node)} for ${f.downMs} ms`;
        case "pause":
          return `at ${f.atMs} ms pause ${n(f.node)} for ${f.forMs} ms`;
        case "isolate":
          return `at ${f.atMs} ms isolate ${n(f.node)} for ${f.forMs} ms`;
        case "partition":
          return `at ${f.atMs} ms partition {${f.side.map(n).join(",")}} from the rest for ${f.forMs} ms`;
        case "oneWay":
          return `at ${f.atMs} ms cut n${f.from}->n${f.to} for ${f.forMs} ms`;
        case "transfer":
          return `at ${f.atMs} ms the leader transfers leadership to n${f.to}`;
        case "addNode":
          return `at ${f.atMs} ms a new node joins`;
        case "removeNode":
          return `at ${f.atMs} ms n${f.node} is removed`;
      }
    })
    .join("; ");
}

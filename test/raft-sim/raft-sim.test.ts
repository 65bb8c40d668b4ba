import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkProperty } from "@ratequeue/testkit";
import { MAX_SEED, decodeFaults, encodeFaults, replayCommand, runScenario, scenarioFromSeed, type Fault, type Knobs, type Scenario } from "./index.js";

// The randomized cluster simulation of packages/raft (see test/raft-sim/README.md).
// RQ_SIM_SEEDS scales the seed sweep, RQ_PROPERTY_RUNS the fast-check search.
const SEEDS = Number(process.env.RQ_SIM_SEEDS ?? 300);

function failureReport(scenario: Scenario, sabotage?: "sendBeforeSync"): string | null {
  const result = runScenario(scenario, sabotage === undefined ? {} : { sabotage });
  if (result.ok) return null;
  return [
    `${result.failure} failure: ${result.message}`,
    `schedule: ${result.schedule}`,
    `replay: ${result.replay}`,
    ...result.transcript.slice(-30),
  ].join("\n");
}

const knobsArb: fc.Arbitrary<Knobs> = fc.record({
  nodes: fc.constantFrom(3, 5),
  // Integers shrink towards 0: a shrunk failure names only the faults it needs.
  dropPermille: fc.integer({ min: 0, max: 200 }),
  dupPermille: fc.integer({ min: 0, max: 100 }),
  reorderPermille: fc.integer({ min: 0, max: 300 }),
  maxDelayMs: fc.integer({ min: 1, max: 40 }),
  flushPermille: fc.integer({ min: 0, max: 1000 }),
  tornPermille: fc.integer({ min: 0, max: 1000 }),
  syncMaxMs: fc.integer({ min: 1, max: 10 }),
  snapshotEvery: fc.integer({ min: 3, max: 60 }),
  clients: fc.integer({ min: 1, max: 4 }),
  safetyMs: fc.integer({ min: 500, max: 3000 }),
  preVote: fc.constantFrom(1, 0),
  checkQuorum: fc.constantFrom(1, 0),
  msgBytes: fc.constantFrom(4096, 64, 1),
  driftMs: fc.integer({ min: 0, max: 3 }),
  asyncSync: fc.constantFrom(0, 1, 2),
  electionCrashPermille: fc.constantFrom(0, 100, 300),
  leaderCutPermille: fc.constantFrom(0, 100, 300),
  readers: fc.integer({ min: 0, max: 2 }),
  chunkBytes: fc.constantFrom(1 << 20, 64, 8),
  jitterMs: fc.integer({ min: 0, max: 3 }),
  latePermille: fc.constantFrom(0, 100, 500),
});

const node = fc.integer({ min: 1, max: 5 });
const atMs = fc.integer({ min: 0, max: 3000 });
const forMs = fc.integer({ min: 20, max: 800 });
const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({ kind: fc.constant("crash" as const), atMs, node, downMs: forMs }),
  fc.record({ kind: fc.constant("pause" as const), atMs, node, forMs }),
  fc.record({ kind: fc.constant("isolate" as const), atMs, node, forMs }),
  fc.record({ kind: fc.constant("partition" as const), atMs, side: fc.uniqueArray(node, { minLength: 1, maxLength: 2 }), forMs }),
  fc
    .record({ kind: fc.constant("oneWay" as const), atMs, from: node, to: node, forMs })
    .filter((f) => f.from !== f.to),
  fc.record({ kind: fc.constant("transfer" as const), atMs, to: node }),
  fc.record({ kind: fc.constant("addNode" as const), atMs }),
  fc.record({ kind: fc.constant("removeNode" as const), atMs, node }),
);

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  seed: fc.integer({ min: 0, max: MAX_SEED }),
  knobs: knobsArb,
  faults: fc.array(faultArb, { maxLength: 10 }).map((fs) => [...fs].sort((a, b) => a.atMs - b.atMs)),
});

describe("raft cluster simulation", () => {
  it(`keeps every safety property and recovers liveness for ${SEEDS} seed-chosen scenarios`, () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= SEEDS && failures.length < 3; seed++) {
      const report = failureReport(scenarioFromSeed(seed));
      if (report !== null) failures.push(`seed ${seed}: ${report}`);
    }
    expect(failures.join("\n\n")).toBe("");
    // CPU-bound and deterministic: ~40 s on an idle 2-core machine, several times that on a busy one. The timeout
    // only catches a hang, so it is generous.
  }, 900_000);

  it("keeps every safety property and recovers liveness under fault schedules chosen (and shrunk) by fast-check", () => {
    const name = "keeps every safety property and recovers liveness under fault schedules chosen (and shrunk) by fast-check";
    checkProperty(
      { file: "test/raft-sim/raft-sim.test.ts", name, runs: 100 },
      fc.property(scenarioArb, (scenario) => {
        const report = failureReport(scenario);
        if (report !== null) throw new Error(report);
      }),
    );
  });

  it("finds, shrinks and prints a replay line for a broken driver (the search is not blind)", () => {
    // The driver sends append acks and votes before their fsync; crashes then lose acknowledged
    // entries. fast-check must find such a schedule and shrink it to a handful of faults.
    const crashy: fc.Arbitrary<Scenario> = fc.record({
      seed: fc.integer({ min: 0, max: MAX_SEED }),
      knobs: knobsArb.map((k) => ({ ...k, nodes: 3, safetyMs: Math.min(k.safetyMs, 1200) })),
      faults: fc
        .array(fc.record({ kind: fc.constant("crash" as const), atMs: fc.integer({ min: 0, max: 1200 }), node: fc.integer({ min: 1, max: 3 }), downMs: forMs }), {
          minLength: 1,
          maxLength: 4,
        })
        .map((fs) => [...fs].sort((a, b) => a.atMs - b.atMs)),
    });
    const details = fc.check(
      fc.property(crashy, (scenario) => {
        const report = failureReport({ ...scenario, knobs: { ...scenario.knobs, syncMaxMs: Math.max(5, scenario.knobs.syncMaxMs) } }, "sendBeforeSync");
        if (report !== null) throw new Error(report);
      }),
      { numRuns: 200, seed: 42 },
    );
    expect(details.failed).toBe(true);
    if (process.env.RQ_SIM_VERBOSE) console.log(String(details.errorInstance));
    const shrunk = details.counterexample![0];
    expect(shrunk.faults.length).toBeLessThanOrEqual(3);
    expect(String(details.errorInstance)).toMatch(/replay: npx tsx scripts\/sim.ts --seed \d+ .* --faults "/);
  });

  it("replays a scenario exactly from its command line", () => {
    const scenario = scenarioFromSeed(11);
    const a = runScenario(scenario);
    const b = runScenario(scenario);
    expect(b.stats).toEqual(a.stats);
    expect(replayCommand(scenario)).toContain(`--seed 11 `);
    expect(decodeFaults(encodeFaults(scenario.faults))).toEqual(scenario.faults);
  });

  it("actually injects what it claims: crashes, torn writes, snapshots, leader changes, retries", () => {
    const totals = { crashes: 0, snapshotsInstalled: 0, leadersElected: 0, retries: 0, acked: 0, reads: 0 };
    for (let seed = 1; seed <= 40; seed++) {
      const r = runScenario(scenarioFromSeed(seed));
      totals.crashes += r.stats.crashes;
      totals.snapshotsInstalled += r.stats.snapshotsInstalled;
      totals.leadersElected += r.stats.leadersElected;
      totals.retries += r.stats.attempts - r.stats.issued;
      totals.acked += r.stats.acked;
      totals.reads += r.stats.readsAnswered;
    }
    // Without these the sweep above would pass vacuously.
    expect(totals.crashes).toBeGreaterThan(10);
    expect(totals.snapshotsInstalled).toBeGreaterThan(5);
    expect(totals.leadersElected).toBeGreaterThan(60);
    expect(totals.retries).toBeGreaterThan(50);
    expect(totals.acked).toBeGreaterThan(1000);
    expect(totals.reads).toBeGreaterThan(100);
  });
});

import { afterAll, describe, expect, it } from "vitest";
import { MUTATIONS } from "../../scripts/mutants/mutations.js";
import { hunt, prepareMutant, removeMutant } from "../../scripts/mutants/hunt.js";

// A quick subset of `pnpm sim:mutants` (scripts/sim-mutants.ts): bugs put
// into a copy of the Raft core on purpose must be found by the random
// simulator alone within a few seeds. If one stops being found, the
// simulator has gone blind to that class of bug.
const QUICK: readonly { name: string; maxSeeds: number }[] = [
  { name: "commit-old-term", maxSeeds: 8 },
  { name: "vote-before-persist", maxSeeds: 8 },
  { name: "vote-not-saved", maxSeeds: 8 },
  { name: "prevote-raises-term", maxSeeds: 8 },
  { name: "leader-counts-unsynced-self", maxSeeds: 8 },
  { name: "minority-commit", maxSeeds: 8 },
  { name: "async-ack-before-persist", maxSeeds: 8 },
  { name: "async-apply-unsynced", maxSeeds: 8 },
];

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) removeMutant(dir);
});

describe("the random simulator finds bugs put into the core", () => {
  it("runs the unmutated copy clean (the copying itself breaks nothing)", async () => {
    const dir = prepareMutant(null);
    dirs.push(dir);
    const r = await hunt(dir, "original", { fromSeed: 1, maxSeeds: 3 });
    expect(r.failure).toBeNull();
  }, 120_000);

  it.each(QUICK)("finds $name within $maxSeeds seeds", async ({ name, maxSeeds }) => {
    const mutation = MUTATIONS.find((m) => m.name === name)!;
    const dir = prepareMutant(mutation);
    dirs.push(dir);
    const r = await hunt(dir, name, { fromSeed: 1, maxSeeds });
    expect(r.found, `${name} not found in ${r.seedsRun} seeds`).toBe(true);
  }, 120_000);
});

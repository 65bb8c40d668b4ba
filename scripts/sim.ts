/**
 * The deterministic cluster simulator, from the command line.
 *
 *   npx tsx scripts/sim.ts --seeds 1000            run seeds 1..1000
 *   npx tsx scripts/sim.ts --seeds 1000 --from 5000
 *   npx tsx scripts/sim.ts --minutes 10            soak: new seeds until time is up
 *   npx tsx scripts/sim.ts --seed 42 [knobs] [--faults "..."]   replay one run, with its transcript
 *
 * Knob flags (override what the seed chose): --nodes --drop --dup --reorder
 * (per mille) --delay (ms) --flush --torn (per mille) --sync (ms)
 * --snapshot-every --clients --safety-ms. --no-membership leaves membership
 * changes out of seed-chosen schedules. Exit code 1 when any run failed.
 */
import { runSoak, sourceFingerprint } from "./lib/soak.js";
import { MAX_SEED, applyOverrides, replayCommand, runScenario, scenarioFromSeed, type RunResult } from "../test/raft-sim/index.js";

const USAGE = "usage: sim.ts --seeds N [--from S] | --minutes M [--from S] | --seed N [knob flags] [--faults LIST] [--no-membership]";

function parseArgs(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(arg)}\n${USAGE}`);
    const name = arg.slice(2);
    if (name === "no-membership" || name === "help") {
      flags.set(name, "true");
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`--${name} needs a value\n${USAGE}`);
    flags.set(name, value);
    i++;
  }
  return flags;
}

function intFlag(flags: Map<string, string>, name: string, fallback: number, max = MAX_SEED): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > max) throw new Error(`--${name} must be an integer in 0..${max}, got ${JSON.stringify(raw)}`);
  return value;
}

/**
 * A fingerprint of the Raft core under test: a failure found in a soak
 * replays only against the same core, and the core changes while we work.
 */
function coreFingerprint(): string {
  return sourceFingerprint(["packages/raft/src"]);
}

function printFailure(seed: number, result: Extract<RunResult, { ok: false }>): void {
  console.log(`\nFAIL seed ${seed} (${result.failure}): ${result.message}`);
  console.log(`  schedule: ${result.schedule}`);
  console.log(`  replay:   ${result.replay}`);
}

function replayOne(flags: Map<string, string>): number {
  const seed = intFlag(flags, "seed", 0);
  console.log(`seed ${seed} (raft core sources ${coreFingerprint()})`);
  const scenario = applyOverrides(scenarioFromSeed(seed, { membership: !flags.has("no-membership") }), flags);
  const startMs = Date.now();
  const result = runScenario(scenario);
  const wallMs = Math.max(1, Date.now() - startMs);
  if (!result.ok) {
    console.log(result.transcript.join("\n"));
    printFailure(seed, result);
  } else {
    console.log(`ok: ${JSON.stringify(result.stats)}`);
    console.log(`replay: ${replayCommand(scenario)}`);
  }
  console.log(`simulated ${(result.stats.simulatedMs / 1000).toFixed(1)} s in ${wallMs} ms wall`);
  return result.ok ? 0 : 1;
}

function soak(flags: Map<string, string>): Promise<number> {
  const minutes = flags.has("minutes") ? Number(flags.get("minutes")) : null;
  if (minutes !== null && !(minutes > 0)) throw new Error(`--minutes must be a positive number`);
  const count = minutes === null ? intFlag(flags, "seeds", 100) : Infinity;
  // A soak explores new seeds each time unless told where to start; the start is printed first.
  const from = intFlag(flags, "from", minutes === null ? 1 : Date.now() % 1_000_000_000);
  const membership = !flags.has("no-membership");
  console.log(
    `seeds from ${from}${minutes === null ? `, ${count} of them` : `, for ${minutes} min`}${membership ? "" : ", no membership changes"} (raft core sources ${coreFingerprint()})`,
  );
  return runSoak({
    from,
    count,
    deadlineMs: minutes === null ? Infinity : Date.now() + minutes * 60_000,
    maxSeed: MAX_SEED,
    run: (seed) => runScenario(scenarioFromSeed(seed, { membership })),
    onFailure: (seed, result) => {
      if (!result.ok) printFailure(seed, result);
    },
  });
}

async function main(): Promise<number> {
  const flags = parseArgs(process.argv.slice(2));
  if (flags.has("help")) {
    console.log(USAGE);
    return 0;
  }

  return flags.has("seed") ? replayOne(flags) : soak(flags);
}

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 2;
  },
);

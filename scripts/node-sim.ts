/**
 * The full-node simulator (test/node-sim), from the command line.
 *
 *   npx tsx scripts/node-sim.ts --seeds 200            run seeds 1..200
 *   npx tsx scripts/node-sim.ts --seeds 200 --from 5000
 *   npx tsx scripts/node-sim.ts --minutes 10           soak: new seeds until time is up (start seed printed first)
 *   npx tsx scripts/node-sim.ts --seed 42 [knobs]      replay one run, with its transcript
 *
 * Knob flags override what the seed chose (see test/node-sim/README.md):
 * --nodes --clients --drop --dup --reorder --delay --sync --flush --torn
 * --crashes --partitions --skew --drift --breaks --deaths --snapshot-every
 * --safety-ms --pauses --admin. Exit code 1 when any run failed, 2 on bad arguments.
 */
import { runSoak, sourceFingerprint } from "./lib/soak.js";
import { KNOB_FLAGS, MAX_SEED, applyOverrides, checkScenario, runNodeSim, scenarioFromSeed, type RunResult } from "../test/node-sim/index.js";

const USAGE = `usage: node-sim.ts (--seeds N [--from S] | --minutes M [--from S] | --seed N) [${KNOB_FLAGS.map(([f]) => `--${f} V`).join(" ")}]`;

function parseArgs(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(arg)}\n${USAGE}`);
    const name = arg.slice(2);
    if (name === "help") {
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

function intFlag(flags: Map<string, string>, name: string, fallback: number): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value > MAX_SEED) throw new Error(`--${name} must be an integer in 0..${MAX_SEED}, got ${JSON.stringify(raw)}`);
  return value;
}

/** A fingerprint of the code under test (node core, limiter, raft): a failure replays only against the same code. */
function nodeSourcesFingerprint(): string {
  return sourceFingerprint(["packages/node/src/core", "packages/limiter/src", "packages/limiter/src/windows", "packages/raft/src"]);
}

function printFailure(seed: number, result: Extract<RunResult, { ok: false }>): void {
  console.log(`\nFAIL seed ${seed} (${result.failure}): ${result.message}`);
  console.log(`  replay: ${result.replay}`);
}

const KNOB_NAMES = new Set(KNOB_FLAGS.map(([f]) => f));

/** The knob flags among `flags`; any flag that is neither a knob nor one of `others` is an error. */
function knobFlags(flags: Map<string, string>, others: readonly string[]): Map<string, string> {
  const unknown = [...flags.keys()].filter((name) => !others.includes(name) && !KNOB_NAMES.has(name));
  if (unknown.length > 0) throw new Error(`unknown flag --${unknown[0]}\n${USAGE}`);
  return new Map([...flags].filter(([name]) => KNOB_NAMES.has(name)));
}

async function replayOne(flags: Map<string, string>): Promise<number> {
  const seed = intFlag(flags, "seed", 0);
  console.log(`seed ${seed} (sources ${nodeSourcesFingerprint()})`);
  const knobs = knobFlags(flags, ["seed"]);
  const scenario = applyOverrides(scenarioFromSeed(seed), knobs);
  checkScenario(scenario);
  const result = await runNodeSim(scenario);
  console.log(result.transcript.join("\n"));
  if (!result.ok) {
    printFailure(seed, result);
  } else {
    console.log(`ok: ${JSON.stringify(result.stats)}`);
  }
  console.log(`simulated ${(result.stats.simulatedMs / 1000).toFixed(1)} s in ${result.stats.wallMs.toFixed(0)} ms wall`);
  return result.ok ? 0 : 1;
}

async function soak(flags: Map<string, string>): Promise<number> {
  const minutes = flags.has("minutes") ? Number(flags.get("minutes")) : null;
  if (minutes !== null && !(minutes > 0)) throw new Error(`--minutes must be a positive number`);
  const count = minutes === null ? intFlag(flags, "seeds", 100) : Infinity;
  // A soak explores new seeds each time unless told where to start; the start is printed first.
  const from = intFlag(flags, "from", minutes === null ? 1 : Date.now() % 1_000_000_000);
  // Knob flags apply to every seed of a soak too (e.g. a harsher soak: --crashes 6 --safety-ms 10000).
  const knobs = knobFlags(flags, ["seeds", "from", "minutes"]);
  console.log(`seeds from ${from}${minutes === null ? `, ${count} of them` : `, for ${minutes} min`} (sources ${nodeSourcesFingerprint()})`);
  return runSoak({
    from,
    count,
    deadlineMs: minutes === null ? Infinity : Date.now() + minutes * 60_000,
    maxSeed: MAX_SEED,
    run: (seed) => {
      const scenario = applyOverrides(scenarioFromSeed(seed), knobs);
      checkScenario(scenario);
      return runNodeSim(scenario);
    },
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

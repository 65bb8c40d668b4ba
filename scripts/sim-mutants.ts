/**
 * Mutation testing of the random cluster simulator: applies each mutation of
 * scripts/mutants/mutations.ts to a copy of packages/raft/src, one at a time,
 * and runs seed-chosen simulator runs (no scripted scenario) until one fails.
 * A mutation not found within --seeds seeds means the simulator is blind to
 * that bug.
 *
 *   pnpm sim:mutants                          every mutation, up to 2,000 seeds each
 *   pnpm sim:mutants -- --seeds 300 --only commit-old-term,vote-twice
 *   pnpm sim:mutants -- --list
 *
 * Exit code 1 when some mutation was not found.
 */
import { MUTATIONS, type Mutation } from "./mutants/mutations.js";
import { hunt, prepareMutant, removeMutant, type HuntResult } from "./mutants/hunt.js";

const USAGE = "usage: sim-mutants.ts [--seeds N (default 2000)] [--from S (default 1)] [--only name,name] [--list] [--keep]";

function parseArgs(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") continue;
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(arg)}\n${USAGE}`);
    const name = arg.slice(2);
    if (name === "list" || name === "help" || name === "keep") {
      flags.set(name, "true");
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`--${name} needs a value\n${USAGE}`);
    if (!["seeds", "from", "only"].includes(name)) throw new Error(`unknown flag --${name}\n${USAGE}`);
    flags.set(name, value);
    i++;
  }
  return flags;
}

function positiveInt(flags: Map<string, string>, name: string, fallback: number): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

function selected(flags: Map<string, string>): Mutation[] {
  const only = flags.get("only");
  if (only === undefined) return [...MUTATIONS];
  return only.split(",").map((name) => {
    const m = MUTATIONS.find((x) => x.name === name.trim());
    if (m === undefined) throw new Error(`no mutation named ${JSON.stringify(name)}; --list shows them`);
    return m;
  });
}

async function main(): Promise<number> {
  const flags = parseArgs(process.argv.slice(2));
  if (flags.has("help")) {
    console.log(USAGE);
    return 0;
  }
  if (flags.has("list")) {
    for (const m of MUTATIONS) console.log(`${m.name.padEnd(30)} ${m.area.padEnd(14)} ${m.what}`);
    return 0;
  }
  const seeds = positiveInt(flags, "seeds", 2000);
  const from = positiveInt(flags, "from", 1);
  const mutations = selected(flags);
  console.log(`${mutations.length} mutations, seeds ${from}..${from + seeds - 1} each (random simulator only)`);
  const results: HuntResult[] = [];
  for (const m of mutations) {
    const dir = prepareMutant(m);
    try {
      const r = await hunt(dir, m.name, { fromSeed: from, maxSeeds: seeds });
      results.push(r);
      const verdict = r.found ? `found at seed ${r.seed} (${r.seedsRun} seeds)` : `NOT FOUND in ${r.seedsRun} seeds`;
      console.log(`${m.name.padEnd(30)} ${verdict.padEnd(32)} ${(r.wallMs / 1000).toFixed(1).padStart(7)} s  ${r.failure ?? ""}`);
      if (r.found) console.log(`${"".padEnd(30)} replay: npx tsx scripts/sim-mutants.ts --only ${m.name} --from ${r.seed} --seeds 1 --keep`);
    } finally {
      if (flags.has("keep")) console.log(`${"".padEnd(30)} mutated copy kept in ${dir}`);
      else removeMutant(dir);
    }
  }
  const found = results.filter((r) => r.found);
  const seedsToFind = found.map((r) => r.seedsRun).sort((a, b) => a - b);
  const median = seedsToFind.length === 0 ? 0 : seedsToFind[Math.floor((seedsToFind.length - 1) / 2)]!;
  console.log(
    `found ${found.length} of ${results.length}; seeds to find: median ${median}, max ${seedsToFind[seedsToFind.length - 1] ?? 0}` +
      (found.length < results.length ? `; not found: ${results.filter((r) => !r.found).map((r) => r.mutation).join(", ")}` : ""),
  );
  return found.length === results.length ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 2;
  },
);

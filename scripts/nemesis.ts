/**
 * The chaos run against real processes (test/nemesis), from the command line.
 *
 *   npx tsx scripts/nemesis.ts --minutes 10            a longer run (seed chosen and printed first)
 *   npx tsx scripts/nemesis.ts --seed 42 --minutes 2   replay a fault schedule
 *   [--clients 3] [--concurrency 3] [--sdk /abs/path/to/sdk/index.ts]   (check another SDK build)
 *
 * A seed fixes the nemesis's and the workload's choices; the processes' own
 * timing is not seeded, so a replay repeats the schedule, not every
 * interleaving. Exit code 1 on any violation, 2 on bad arguments.
 */
import { randomInt } from "node:crypto";
import { runChaos } from "../test/nemesis/run-chaos.js";

const USAGE = "usage: nemesis.ts [--minutes M] [--seed N] [--clients C] [--concurrency K] [--sdk PATH]";

let sdkModule: string | undefined;

function parse(argv: readonly string[]): Map<string, number> {
  const flags = new Map<string, number>();
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]?.replace(/^--/, "") ?? "";
    if (name === "sdk" && argv[i + 1] !== undefined) {
      sdkModule = argv[i + 1];
      continue;
    }
    const value = Number(argv[i + 1]);
    if (!["minutes", "seed", "clients", "concurrency"].includes(name) || !Number.isFinite(value) || value < 0) {
      throw new Error(`bad argument ${JSON.stringify(argv[i])} ${JSON.stringify(argv[i + 1])}\n${USAGE}`);
    }
    flags.set(name, value);
  }
  const minutes = flags.get("minutes");
  if (minutes !== undefined && (minutes < 0.5 || minutes > 24 * 60)) throw new Error(`--minutes must be from 0.5 to 1440\n${USAGE}`);
  const seed = flags.get("seed");
  if (seed !== undefined && (!Number.isInteger(seed) || seed > 0xffffffff)) throw new Error(`--seed must be an integer in 0..4294967295\n${USAGE}`);
  return flags;
}

let flags: Map<string, number>;
try {
  flags = parse(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}
const result = await runChaos({
  durationMs: Math.round((flags.get("minutes") ?? 2) * 60_000),
  seed: flags.get("seed") ?? randomInt(0, 2 ** 32),
  ...(flags.has("clients") ? { clients: flags.get("clients")! } : {}),
  ...(flags.has("concurrency") ? { concurrency: flags.get("concurrency")! } : {}),
  ...(sdkModule === undefined ? {} : { sdkModule }),
});
process.exit(result.violations.length === 0 ? 0 : 1);

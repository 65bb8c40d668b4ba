/**
 * What the two simulators' soak scripts (scripts/sim.ts, scripts/node-sim.ts)
 * share: a fingerprint of the sources under test, and the seed loop with its
 * progress line and exit code.
 */
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * A short hash of the non-test sources in `folders` (relative to the
 * repository root): a failing seed replays only against the same code.
 */
export function sourceFingerprint(folders: readonly string[]): string {
  const hash = createHash("sha256");
  for (const folder of folders) {
    const dir = fileURLToPath(new URL(`../../${folder.replace(/\/?$/, "/")}`, import.meta.url));
    for (const name of readdirSync(dir).filter((n) => n.endsWith(".ts") && !n.endsWith(".test.ts")).sort()) {
      hash.update(name).update(readFileSync(dir + name));
    }
  }
  return hash.digest("hex").slice(0, 12);
}

export interface SoakOptions<R extends { readonly ok: boolean; readonly stats: { readonly simulatedMs: number } }> {
  readonly from: number;
  /** Seeds to run (Infinity with a deadline). */
  readonly count: number;
  readonly deadlineMs: number;
  readonly maxSeed: number;
  run(seed: number): R | Promise<R>;
  onFailure(seed: number, result: R): void;
}

/** Runs seeds from `from` until `count` ran or the deadline passed; prints progress; 0 if none failed, else 1. */
export async function runSoak<R extends { readonly ok: boolean; readonly stats: { readonly simulatedMs: number } }>(
  options: SoakOptions<R>,
): Promise<number> {
  const startMs = Date.now();
  let run = 0;
  let failed = 0;
  let simulatedMs = 0;
  let lastProgressMs = startMs;
  const progress = (final: boolean): void => {
    const wallS = Math.max(0.001, (Date.now() - startMs) / 1000);
    const line = `seeds run ${run}, violations ${failed}, simulated ${(simulatedMs / 1000).toFixed(0)} s in ${wallS.toFixed(1)} s wall, ${(simulatedMs / 1000 / wallS).toFixed(1)} simulated s per wall s`;
    if (final) console.log(line);
    else process.stderr.write(`${line}\r`);
  };
  for (let seed = options.from; run < options.count && Date.now() < options.deadlineMs && seed <= options.maxSeed; seed++) {
    const result = await options.run(seed);
    run++;
    simulatedMs += result.stats.simulatedMs;
    if (!result.ok) {
      failed++;
      process.stderr.write("\n");
      options.onFailure(seed, result);
    }
    if (Date.now() - lastProgressMs > 2000) {
      lastProgressMs = Date.now();
      progress(false);
    }
  }
  process.stderr.write("\n");
  progress(true);
  return failed === 0 ? 0 : 1;
}

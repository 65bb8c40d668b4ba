/**
 * Runs a fast-check property with a seed that is printed on failure as a
 * one-line replay command. Test support only.
 *
 * RQ_PROPERTY_RUNS scales the number of runs; RQ_SEED and RQ_PATH replay a failure.
 */
import fc from "fast-check";

export function checkProperty<Ts extends [unknown, ...unknown[]]>(
  options: { file: string; name: string; runs: number },
  property: fc.IProperty<Ts>,
): void {
  const scale = Number(process.env.RQ_PROPERTY_RUNS ?? "") || 0;
  const numRuns = scale > 0 ? scale : options.runs;
  // Without RQ_SEED fast-check draws a fresh seed each run (and reports it): more cases over time.
  const seed = process.env.RQ_SEED !== undefined ? { seed: Number(process.env.RQ_SEED) } : {};
  const path = process.env.RQ_PATH;
  const result = fc.check(property, { numRuns, ...seed, ...(path !== undefined ? { path, endOnFailure: true } : {}) });
  if (result.failed) {
    const replay = `RQ_SEED=${result.seed} RQ_PATH=${result.counterexamplePath ?? ""} npx vitest run ${options.file} -t "${options.name}"`;
    console.error(`property failed; replay with:\n${replay}`);
    throw new Error(
      `property "${options.name}" failed after ${result.numRuns} runs (seed ${result.seed}), shrunk counterexample:\n` +
        `${fc.stringify(result.counterexample)}\n${String(result.errorInstance)}\nreplay: ${replay}`,
    );
  }
}

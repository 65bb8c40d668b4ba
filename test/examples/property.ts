import fc from "fast-check";

/**
 * Runs a fast-check property with shrinking. RQ_PROPERTY_RUNS scales the runs
 * (default 200); a failure throws with a one-line command that replays it
 * (RQ_SEED and RQ_PATH), the convention of the other packages.
 */
export function checkProperty<T>(options: { file: string; name: string }, arb: fc.Arbitrary<T>, predicate: (value: T) => void): void {
  const numRuns = Number(process.env.RQ_PROPERTY_RUNS ?? "") || 200;
  const seed = process.env.RQ_SEED === undefined ? {} : { seed: Number(process.env.RQ_SEED), path: process.env.RQ_PATH ?? "" };
  const result = fc.check(fc.property(arb, predicate), { numRuns, ...seed });
  if (!result.failed) return;
  const replay = `RQ_SEED=${result.seed} RQ_PATH=${result.counterexamplePath ?? ""} npx vitest run ${options.file} -t "${options.name}"`;
  throw new Error(
    `property failed after ${result.numRuns} runs, shrunk ${result.numShrinks} times\n` +
      `counterexample: ${fc.stringify(result.counterexample)}\n` +
      `error: ${result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance)}\n` +
      `replay: ${replay}`,
  );
}

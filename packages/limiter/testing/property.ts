/**
 * fast-check runner for our properties: run count from RQ_PROPERTY_RUNS,
 * replay from RQ_SEED / RQ_PATH, and on failure a one-line command that
 * replays exactly the failing case (shrunk).
 */
import fc from "fast-check";

export const PROPERTY_RUNS = Number(process.env.RQ_PROPERTY_RUNS ?? 150);

export function checkProperty<T>(file: string, name: string, arb: fc.Arbitrary<T>, predicate: (value: T) => void, runsScale = 1): void {
  const seed = process.env.RQ_SEED === undefined ? undefined : Number(process.env.RQ_SEED);
  const path = process.env.RQ_PATH;
  const details = fc.check(fc.property(arb, predicate), {
    numRuns: Math.max(1, Math.round(PROPERTY_RUNS * runsScale)),
    ...(seed === undefined ? {} : { seed }),
    ...(path === undefined ? {} : { path }),
  });
  if (details.failed) {
    const replay = `RQ_SEED=${details.seed} RQ_PATH=${details.counterexamplePath ?? ""} npx vitest run ${file} -t ${JSON.stringify(name)}`;
    console.error(`property failed; replay with:\n  ${replay}`);
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`${fc.defaultReportMessage(details) ?? "property failed"}\ncause: ${cause}\nreplay: ${replay}`);
  }
}

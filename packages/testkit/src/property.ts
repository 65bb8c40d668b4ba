/**
 * The one fast-check runner of every package's properties (`checkProperty`,
 * and `checkAsyncProperty` for asynchronous ones). A property runs
 * `runs` times (default 200); RQ_PROPERTY_RUNS=N scales every property's count
 * by N/200 (so N is the default count). RQ_SEED and RQ_PATH replay one case;
 * a failure throws fast-check's report with the shrunk counterexample and a
 * one-line command that replays exactly that case.
 */
import fc from "fast-check";

/** The default run count, which RQ_PROPERTY_RUNS replaces. */
export const DEFAULT_RUNS = 200;

export interface PropertyOptions {
  /** The test file, as `npx vitest run <file>` takes it, for the replay command. */
  readonly file: string;
  /** The test's name, as `-t <name>` takes it. */
  readonly name: string;
  /** Runs without RQ_PROPERTY_RUNS (default 200). */
  readonly runs?: number;
}

/** How many times a property of `runs` runs under the environment's RQ_PROPERTY_RUNS. */
export function propertyRuns(runs = DEFAULT_RUNS): number {
  const scale = Number(process.env.RQ_PROPERTY_RUNS ?? "") || 0;
  return scale > 0 ? Math.max(1, Math.round((runs * scale) / DEFAULT_RUNS)) : runs;
}

/**
 * Checks `property` (see the module comment).
 *
 * @example
 * checkProperty({ file: "packages/raft/src/quorum.test.ts", name: "commit index" }, fc.property(arb, (x) => { ... }));
 */
export function checkProperty<Ts>(options: PropertyOptions, property: fc.IProperty<Ts>): void {
  report(options, fc.check(property, parameters<Ts>(options)));
}

/**
 * Checks an asynchronous `property` with the same run counts, replay variables and failure report as
 * `checkProperty`; the runs are awaited one after another.
 *
 * @example
 * await checkAsyncProperty({ file: "test/node-sim/node-sim.test.ts", name: "every guarantee holds", runs: 30 },
 *   fc.asyncProperty(arb, async (x) => { ... }));
 */
export async function checkAsyncProperty<Ts>(options: PropertyOptions, property: fc.IAsyncProperty<Ts>): Promise<void> {
  report(options, await fc.check(property, parameters<Ts>(options)));
}

function parameters<Ts>(options: PropertyOptions): fc.Parameters<Ts> {
  const params: fc.Parameters<Ts> = { numRuns: propertyRuns(options.runs) };
  if (process.env.RQ_SEED !== undefined) params.seed = Number(process.env.RQ_SEED);
  if (process.env.RQ_PATH !== undefined) params.path = process.env.RQ_PATH;
  return params;
}

/** Returns when `details` passed; otherwise prints the replay command and throws the shrunk counterexample with it. */
function report<Ts>(options: PropertyOptions, details: fc.RunDetails<Ts>): void {
  if (!details.failed) return;
  const replay = `RQ_SEED=${details.seed} RQ_PATH=${details.counterexamplePath ?? ""} npx vitest run ${options.file} -t ${JSON.stringify(options.name)}`;
  console.error(`property failed; replay with:\n  ${replay}`);
  throw new Error(`${fc.defaultReportMessage(details) ?? `property "${options.name}" failed`}\nreplay: ${replay}`);
}

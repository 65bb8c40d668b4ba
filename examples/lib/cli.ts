import { pathToFileURL } from "node:url";

/** True when the module at `moduleUrl` is the script node (or tsx) was started with. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(script).href === moduleUrl;
}

/** A command-line error: the CLI prints its message and exits 2, without a stack trace. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parses an integer flag; undefined when absent. Throws UsageError naming the flag when it is not an integer in range. */
export function numberFlag(
  text: string | undefined,
  flag: string,
  range: { min: number; max?: number },
): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (text.trim() === "" || !Number.isInteger(value) || value < range.min || value > max) {
    throw new UsageError(`${flag} must be an integer from ${range.min} to ${max}, got "${text}"`);
  }
  return value;
}

/** parseArgs option specs for flags that take a value: `stringFlags(["seed"])` is `{ seed: { type: "string" } }`. */
export function stringFlags<const N extends string>(names: readonly N[]): Record<N, { type: "string" }> {
  return Object.fromEntries(names.map((name) => [name, { type: "string" }])) as Record<N, { type: "string" }>;
}

/** The provider-limit flags a script takes, such as --rpm or --itpm (integers from 1). */
export type LimitFlag = "rpm" | "tpm" | "itpm" | "otpm" | "concurrency";

/**
 * Parses the limit flags `keys` and --window-ms into provider limits; a flag
 * that is absent stays absent (the caller's defaults apply). Throws UsageError
 * naming the flag when one is not an integer from 1.
 */
export function limitFlags<K extends LimitFlag>(
  values: { readonly [key in K | "window-ms"]?: string | undefined },
  keys: readonly K[],
): Partial<Record<K | "windowMs", number>> {
  const limits: Partial<Record<K | "windowMs", number>> = {};
  for (const key of keys) {
    const v = numberFlag(values[key], `--${key}`, { min: 1 });
    if (v !== undefined) limits[key] = v;
  }
  const windowMs = numberFlag(values["window-ms"], "--window-ms", { min: 1 });
  if (windowMs !== undefined) limits.windowMs = windowMs;
  return limits;
}

/** Runs a CLI's main: a UsageError or a RangeError prints one line and exits 2; anything else prints its stack and exits 1. */
export function runCli(name: string, main: () => Promise<void>): void {
  // Ctrl-C or kill: exit through process.exit so "exit" handlers run (a local cluster stops its nodes and removes its data).
  process.once("SIGINT", () => process.exit(130));
  process.once("SIGTERM", () => process.exit(143));
  main().catch((err: unknown) => {
    const usage = err instanceof UsageError || err instanceof RangeError || String((err as { code?: unknown })?.code).startsWith("ERR_PARSE_ARGS");
    process.stderr.write(`${name}: ${usage ? (err as Error).message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    if (usage) process.stderr.write(`(run with --help for usage)\n`);
    process.exit(usage ? 2 : 1);
  });
}

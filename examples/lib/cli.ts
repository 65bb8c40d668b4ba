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

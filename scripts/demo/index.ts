/**
 * The demo's command line: npx tsx --conditions=source scripts/demo/index.ts --help
 * (or `pnpm demo`). See scripts/demo/README.md.
 */
import { parseArgs } from "node:util";
import { limitFlags, numberFlag, runCli, stringFlags, UsageError } from "../../examples/lib/cli.js";
import { algorithmFlag } from "../../examples/lib/example-run.js";
import { DEFAULT_MARGIN_MS, DEMO_LIMITS, tpmBudget, ELECTION_TICKS, ELECTION_TIMEOUT_MS, MODE_TITLES, runDemo, TICK_MS, type DemoResult, type ModeResult } from "./demo.js";
import { MODES, type Mode } from "./gates.js";

const HELP = `Usage: npx tsx --conditions=source scripts/demo/index.ts [options]   (or: pnpm demo [options])

One OpenAI-style quota on a local provider simulator (RPM, TPM counted as
prompt + max_tokens at arrival, concurrency; a continuously refilling bucket;
429 with retry-after beyond them), shared by a fleet of worker processes, run
three ways on the same workload: no coordination, rate-limiter-flexible +
Redis, and RateQueue on a local three-node cluster whose leader is killed
(kill -9) halfway through. Prints requests completed, 429s, share of the TPM
limit used and the wait before sending (p50/p99) for each.

Options:
  --seconds <n>       length of each run (default 20)
  --workers <n>       concurrent workers in all (default 16)
  --processes <n>     worker processes they are spread over (default 4)
  --modes <list>      which runs, comma-separated (default ${MODES.join(",")})
  --rpm <n>           provider requests per window (default ${DEMO_LIMITS.rpm})
  --tpm <n>           provider tokens per window (default ${DEMO_LIMITS.tpm})
  --concurrency <n>   provider requests in flight (default ${DEMO_LIMITS.concurrency})
  --window-ms <n>     the limits' window (default ${DEMO_LIMITS.windowMs}: a minute compressed, so a short run is refill-bound)
  --latency-ms <n>    provider reply latency (default 200)
  --latency-jitter-ms <n>  plus a seeded uniform 0..n ms (default 0)
  --algorithm <a>     how the provider counts RPM and TPM, and so the RateQueue resource:
                      bucket | sliding | fixed (default bucket)
  --network-delay-ms <n>   provider's one-way network delay (default 0)
  --network-jitter-ms <n>  plus a seeded uniform 0..n ms each way (default 0)
  --margin-ms <n>     the RateQueue resource's deliveryMarginMs: how late after its grant a request
                      may reach the provider (default ${DEFAULT_MARGIN_MS})
  --seed <n>          seeds prompts and replies (default 1)
  --no-kill           do not kill the leader during the RateQueue run
  --help              this text
`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...stringFlags([
        "seconds", "workers", "processes", "modes", "rpm", "tpm", "concurrency", "window-ms", "latency-ms", "latency-jitter-ms",
        "algorithm", "network-delay-ms", "network-jitter-ms", "margin-ms", "seed",
      ]),
      "no-kill": { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help === true) return void process.stdout.write(HELP);
  const limits = limitFlags(values, ["rpm", "tpm", "concurrency"]);
  const tty = process.stdout.isTTY === true;
  let lastProgressMs = 0;
  const result = await runDemo({
    secondsPerMode: numberFlag(values.seconds, "--seconds", { min: 1, max: 3_600 }),
    workers: numberFlag(values.workers, "--workers", { min: 1, max: 1_000 }),
    processes: numberFlag(values.processes, "--processes", { min: 1, max: 64 }),
    modes: values.modes === undefined ? undefined : parseModes(values.modes),
    limits,
    latencyMs: numberFlag(values["latency-ms"], "--latency-ms", { min: 0 }),
    latencyJitterMs: numberFlag(values["latency-jitter-ms"], "--latency-jitter-ms", { min: 0 }),
    algorithm: algorithmFlag(values.algorithm),
    networkDelayMs: numberFlag(values["network-delay-ms"], "--network-delay-ms", { min: 0 }),
    networkJitterMs: numberFlag(values["network-jitter-ms"], "--network-jitter-ms", { min: 0 }),
    marginMs: numberFlag(values["margin-ms"], "--margin-ms", { min: 0 }),
    seed: numberFlag(values.seed, "--seed", { min: 0 }),
    killLeader: values["no-kill"] !== true,
    log: (line) => process.stdout.write(`${tty ? "\r\x1b[K" : ""}${line}\n`),
    // On a terminal one line, rewritten each second; in a log, a line every 5 s.
    progress: (line) => {
      if (tty) return void process.stdout.write(`\r\x1b[K${line}`);
      const now = Date.now();
      if (now - lastProgressMs < 5_000) return;
      lastProgressMs = now;
      process.stdout.write(`${line}\n`);
    },
  });
  if (tty) process.stdout.write("\r\x1b[K");
  process.stdout.write(`\n${formatDemo(result)}\n`);
}

/** " (tpm 40, concurrency 3)": which provider limits answered the 429s. */
function byLimit(limitedBy: Readonly<Record<string, number>>): string {
  const parts = Object.entries(limitedBy).filter(([, count]) => count > 0);
  return parts.length === 0 ? "" : ` (${parts.map(([limit, count]) => `${limit} ${count}`).join(", ")})`;
}

function parseModes(text: string): Mode[] {
  const modes = text.split(",").map((m) => m.trim());
  for (const m of modes) if (!(MODES as readonly string[]).includes(m)) throw new UsageError(`--modes takes some of ${MODES.join(", ")}, got "${m}"`);
  return modes as Mode[];
}

/** The printout: one column per run, then the leader kill. */
export function formatDemo(r: DemoResult): string {
  const n = (x: number): string => Math.round(x).toLocaleString("en-US");
  const ms = (x: number): string => (Number.isNaN(x) ? "-" : `${n(x)} ms`);
  const l = r.limits;
  const rows: [string, (m: ModeResult) => string][] = [
    ["requests completed", (m) => n(m.requests)],
    ["429s received", (m) => n(m.limited) + byLimit(m.provider.limitedBy)],
    ["share of TPM used", (m) => `${(m.tpmShare * 100).toFixed(1)}%`],
    ["wait before sending p50", (m) => ms(m.waitP50Ms)],
    ["wait before sending p99", (m) => ms(m.waitP99Ms)],
    ["errors (not 429)", (m) => n(m.errors)],
  ];
  const header = ["", ...r.runs.map((m) => MODE_TITLES[m.mode])];
  const table = [header, ...rows.map(([label, cell]) => [label, ...r.runs.map(cell)])];
  const widths = header.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  const lines = [
    `${r.workers} workers in ${r.processes} processes, ${r.secondsPerMode} s per run, one quota: ${n(l.rpm)} requests and ${n(l.tpm)} tokens ` +
      `per ${n(l.windowMs)} ms window (RPM and TPM, a minute compressed), ${l.concurrency} in flight; every limit counted at arrival (${r.algorithm})`,
    `share of TPM used = tokens the provider charged / the most its TPM limit admits in the run ` +
      `(${n(tpmBudget(r.algorithm, l, r.secondsPerMode * 1000))} tokens in ${r.secondsPerMode} s)`,
    "",
    ...table.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("   ")),
  ];
  for (const m of r.runs) {
    if (m.errorMessages.length > 0) lines.push(`${MODE_TITLES[m.mode]} errors: ${m.errorMessages.join(" | ")}`);
    const k = m.leaderKill;
    if (k === null) continue;
    const limitMs = 2 * ELECTION_TIMEOUT_MS;
    lines.push(
      "",
      `leader kill (RateQueue run): kill -9 of ${k.killedId} at ${(k.atMs / 1000).toFixed(1)} s; ${k.newLeaderId} seen leading ${n(k.newLeaderAfterMs)} ms later (by /v1/status polling)`,
      `election timeout: ${ELECTION_TICKS} ticks x ${TICK_MS} ms = ${ELECTION_TIMEOUT_MS} ms (each node randomizes it up to 2x); target: no pause over 2 election timeouts = ${limitMs} ms`,
      `longest gap between consecutive grants from ${n(k.gapWindow.beforeMs)} ms before to ${n(k.gapWindow.afterMs)} ms after the kill: ` +
        `${n(k.gap.longestGapMs)} ms (${k.gap.longestGapMs <= limitMs ? "within" : "OVER"} the target); ` +
        `longest in the ${n(k.gapWindow.beforeMs + k.gapWindow.afterMs)} ms before that: ${n(k.gap.longestGapBeforeMs)} ms`,
      `workers that sent again after the kill: ${k.loopsSentAfterKill} of ${k.loops}`,
    );
  }
  return lines.join("\n");
}

// `pnpm demo -- --seconds 5` passes the "--" through; options come after it either way.
runCli("demo", () => main(process.argv.slice(process.argv[2] === "--" ? 3 : 2)));

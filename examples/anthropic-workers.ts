/**
 * N concurrent workers call an Anthropic-style API through the real
 * `@anthropic-ai/sdk` client and share one quota through RateQueue, with
 * input and output tokens limited separately (Anthropic's ITPM and OTPM):
 * each asks for `load: { input, output: max_tokens }`, settles
 * `{ input, output }` from the reply's usage, and when a 429 does happen
 * reports it with `rq.reportLimited(resource, { retryAfterMs })`, so the
 * whole fleet pauses until the provider's `retry-after`.
 *
 * `--squeeze-pct 30` makes the simulator's limits 30% tighter than the
 * resource says (as when another application spends from the same API key),
 * so 429s happen and the reportLimited path runs.
 *
 * Run: npx tsx --conditions=source examples/anthropic-workers.ts --help
 */
import { parseArgs } from "node:util";
import Anthropic from "@anthropic-ai/sdk";
import { CancelledError, RateQueue } from "@ratequeue/sdk";
import { isMain, numberFlag, runCli, stringFlags } from "./lib/cli.js";
import { clusterFromEnv } from "./lib/environment.js";
import { bucketShare, EXAMPLE_FLAGS, exampleFlags, exampleFlagsHelp, exampleSettings, withProviderAndCluster, type ExampleOptions, type ExampleResult } from "./lib/example-run.js";
import { emptyFigures, formatCount, formatRows, formatSeconds, retryAfterMsOf, runWorkers, type WorkerFigures } from "./lib/figures.js";
import { randomInt, seededRandom } from "./lib/prng.js";
import { randomPrompt } from "./lib/prompts.js";
import { marginField, providerLimit, type ResourceConfig } from "./lib/resource.js";
import type { ProviderAlgorithm } from "./lib/windows.js";
import { countChatTokens } from "./lib/tokens.js";
import { DEFAULT_LIMITS, type ProviderLimits } from "./provider-sim.js";

const MODEL = "claude-sonnet-5-5";

/** The RateQueue resource for an Anthropic-style quota: requests, input tokens, output tokens and concurrency. */
export function anthropicResource(limits: ProviderLimits, marginMs?: number, algorithm: ProviderAlgorithm = "bucket"): ResourceConfig {
  const { windowMs } = limits;
  return {
    limits: [
      providerLimit({ kind: "rate", limit: limits.rpm, windowMs, algorithm }),
      providerLimit({ kind: "load", limit: limits.itpm, windowMs, algorithm, dimension: "input" }),
      providerLimit({ kind: "load", limit: limits.otpm, windowMs, algorithm, dimension: "output" }),
      { kind: "concurrency", limit: limits.concurrency },
    ],
    ...marginField(marginMs),
  };
}

export interface AnthropicWorkerOptions {
  readonly client: Anthropic;
  readonly rq: RateQueue;
  readonly resource: string;
  /** Aborted when the run ends. */
  readonly signal: AbortSignal;
  readonly random: () => number;
  readonly maxTokens: { readonly min: number; readonly max: number };
}

/** One worker: ask, send, settle, until `signal` aborts; a 429 is reported (the fleet cools down) and the request retried. */
export async function anthropicWorker(options: AnthropicWorkerOptions): Promise<WorkerFigures> {
  const { client, rq, resource, signal, random } = options;
  const figures = emptyFigures();
  while (!signal.aborted) {
    const { system, user } = randomPrompt(random);
    const messages = [{ role: "user" as const, content: user }];
    const maxTokens = randomInt(random, options.maxTokens.min, options.maxTokens.max);
    // What Anthropic counts at arrival: the input against ITPM, max_tokens against OTPM (corrected at the end).
    const load = { input: countChatTokens(messages, system), output: maxTokens };
    let done = false;
    while (!done && !signal.aborted) {
      try {
        await rq.acquire(resource, { load, signal }, async (lease) => {
          try {
            const reply = await client.messages.create({ model: MODEL, max_tokens: maxTokens, system, messages });
            await lease.settle({ input: reply.usage.input_tokens, output: reply.usage.output_tokens });
            figures.requests++;
            figures.inputTokens += reply.usage.input_tokens;
            figures.outputTokens += reply.usage.output_tokens;
            done = true;
          } catch (err) {
            if (!(err instanceof Anthropic.RateLimitError)) throw err;
            figures.limited++;
            await lease.settle({ input: 0, output: 0 }); // a 429 charged nothing at the provider
            // Every worker on every node now waits until the provider's retry-after, not only this one.
            await rq.reportLimited(resource, { retryAfterMs: retryAfterMsOf(err.headers) });
            figures.cooldownsReported++;
          }
        });
      } catch (err) {
        if (err instanceof CancelledError) break; // the run ended while we waited in line
        throw err;
      }
    }
  }
  return figures;
}

export interface AnthropicExampleOptions extends ExampleOptions {
  /** Concurrent workers (default 16). */
  readonly workers?: number;
  /** The limits RateQueue is told about (DEFAULT_LIMITS for the rest). */
  readonly limits?: Partial<ProviderLimits>;
  /** Percent by which the simulator's rpm, itpm and otpm are tighter than `limits` (default 0). */
  readonly squeezePct?: number;
}

export interface AnthropicExampleResult extends ExampleResult {
  readonly workers: number;
  /** The simulator's limits (tighter than the resource's by squeezePct). */
  readonly providerLimits: ProviderLimits;
  /** Tokens charged over the most the simulator's ITPM / OTPM buckets could admit in elapsedMs from full (0..1). */
  readonly itpmShare: number;
  readonly otpmShare: number;
}

/** Starts what it needs (cluster unless given, simulator, resource), runs the workers for `durationMs`, stops everything. */
export async function run(options: AnthropicExampleOptions = {}): Promise<AnthropicExampleResult> {
  const settings = exampleSettings(options, { resource: "anthropic-sim" });
  const { limits, resource, seed } = settings;
  const workers = options.workers ?? 16;
  const squeezePct = options.squeezePct ?? 0;
  if (!(squeezePct >= 0 && squeezePct < 100)) throw new RangeError(`squeezePct must be from 0 to below 100, got ${squeezePct}`);
  const squeeze = (n: number): number => Math.max(1, Math.floor((n * (100 - squeezePct)) / 100));
  const p: ProviderLimits = { ...limits, rpm: squeeze(limits.rpm), itpm: squeeze(limits.itpm), otpm: squeeze(limits.otpm) };
  const config = anthropicResource(limits, settings.marginMs, settings.algorithm);
  const setup = {
    settings,
    simLimits: p,
    simSummary: `${p.rpm} requests, ${p.itpm} input and ${p.otpm} output tokens per ${p.windowMs} ms, ${p.concurrency} in flight`,
    simNotes: squeezePct > 0 ? [`  ${squeezePct}% tighter than the RateQueue resource believes: expect 429s, each reported with reportLimited`] : [],
    config,
    cluster: options.cluster ?? clusterFromEnv(),
  };
  return withProviderAndCluster(setup, async ({ sim, env }) => {
    const rq = new RateQueue({ url: env.url, apiKey: env.workerKey, clientName: "anthropic-workers" });
    try {
      const client = new Anthropic({ apiKey: "sk-ant-simulator", baseURL: sim.url, maxRetries: 0 });
      const { figures, elapsedMs } = await runWorkers({
        workers,
        durationMs: settings.durationMs,
        worker: (i, signal) => anthropicWorker({ client, rq, resource, signal, random: seededRandom(seed * 1_000 + i), maxTokens: settings.maxTokens }),
      });
      const provider = sim.stats().anthropic;
      return {
        ...figures,
        workers,
        elapsedMs,
        providerLimits: p,
        itpmShare: bucketShare({ tokens: provider.inputTokens, limit: p.itpm, windowMs: p.windowMs, elapsedMs }),
        otpmShare: bucketShare({ tokens: provider.outputTokens, limit: p.otpm, windowMs: p.windowMs, elapsedMs }),
        provider,
      };
    } finally {
      await rq.close();
    }
  });
}

export function formatResult(r: AnthropicExampleResult): string {
  const n = formatCount;
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  return formatRows([
    ["requests done", n(r.requests)],
    ["429s received", n(r.limited)],
    ["cooldowns reported", `${n(r.cooldownsReported)} (rq.reportLimited with the provider's retry-after)`],
    ["tokens", `${n(r.inputTokens)} input + ${n(r.outputTokens)} output`],
    ["share of ITPM used", `${pct(r.itpmShare)}, of OTPM: ${pct(r.otpmShare)} (of the most the provider's buckets admit in ${formatSeconds(r.elapsedMs)} from full)`],
    ["elapsed", formatSeconds(r.elapsedMs)],
  ]);
}

const HELP = `Usage: npx tsx --conditions=source examples/anthropic-workers.ts [options]

N workers share one Anthropic-style quota (input and output tokens limited
separately) through RateQueue, using the real @anthropic-ai/sdk client against
a local provider simulator; a 429 is reported with rq.reportLimited so the
whole fleet cools down. Starts a local three-node cluster unless RATEQUEUE_URL
and RATEQUEUE_API_KEY (an admin key) are set.

Options:
  --workers <n>        concurrent workers (default 16)
  --duration-ms <n>    how long to run (default 15000)
  --rpm <n>            requests per minute (default ${DEFAULT_LIMITS.rpm})
  --itpm <n>           input tokens per minute (default ${DEFAULT_LIMITS.itpm})
  --otpm <n>           output tokens per minute (default ${DEFAULT_LIMITS.otpm})
  --concurrency <n>    requests in flight (default ${DEFAULT_LIMITS.concurrency})
  --window-ms <n>      the limits' window (default ${DEFAULT_LIMITS.windowMs})
  --squeeze-pct <n>    make the simulator this many percent tighter than the
                       resource (default 0; try 30 to see reportLimited work)
${exampleFlagsHelp({ resource: "anthropic-sim" })}
  --help               this text
`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { ...EXAMPLE_FLAGS, ...stringFlags(["workers", "rpm", "itpm", "otpm", "concurrency", "squeeze-pct"]), help: { type: "boolean" } },
  });
  if (values.help === true) return void process.stdout.write(HELP);
  const result = await run({
    ...exampleFlags(values, ["rpm", "itpm", "otpm", "concurrency"]),
    workers: numberFlag(values.workers, "--workers", { min: 1, max: 1_000 }),
    squeezePct: numberFlag(values["squeeze-pct"], "--squeeze-pct", { min: 0, max: 99 }),
  });
  process.stdout.write(`\n${formatResult(result)}\n`);
}

if (isMain(import.meta.url)) runCli("anthropic-workers", () => main(process.argv.slice(2)));

/**
 * N concurrent workers call an OpenAI-style API through the real `openai`
 * client and share one quota through RateQueue: each asks for
 * `prompt tokens + max_tokens` (counted with js-tiktoken, cl100k_base), sends
 * once granted, and settles the lease with the `usage.total_tokens` the reply
 * reports. Against the local provider simulator (same RPM, TPM and
 * concurrency) no request gets a 429.
 *
 * Run: npx tsx --conditions=source examples/openai-workers.ts --help
 */
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import OpenAI from "openai";
import { CancelledError, RateQueue } from "@ratequeue/sdk";
import { isMain, numberFlag, runCli, stringFlags } from "./lib/cli.js";
import { clusterFromEnv } from "./lib/environment.js";
import { describeOpenAiLimits, EXAMPLE_FLAGS, exampleFlags, exampleFlagsHelp, exampleSettings, tpmExampleResult, withProviderAndCluster, type ExampleOptions, type TpmExampleResult } from "./lib/example-run.js";
import { emptyFigures, formatCount, formatRows, formatSeconds, retryAfterMsOf, runWorkers, type WorkerFigures } from "./lib/figures.js";
import { seededRandom } from "./lib/prng.js";
import { randomOpenAiRequest } from "./lib/prompts.js";
import { marginField, providerLimit, type ResourceConfig } from "./lib/resource.js";
import type { ProviderAlgorithm } from "./lib/windows.js";
import { DEFAULT_LIMITS, bucketBudget, type ProviderLimits } from "./provider-sim.js";

const MODEL = "gpt-4o-mini";

/** The RateQueue resource for an OpenAI-style quota: requests, tokens (prompt + max_tokens) and concurrency. */
export function openAiResource(limits: ProviderLimits, marginMs?: number, algorithm: ProviderAlgorithm = "bucket"): ResourceConfig {
  const { windowMs } = limits;
  return {
    limits: [
      providerLimit({ kind: "rate", limit: limits.rpm, windowMs, algorithm }),
      providerLimit({ kind: "load", limit: limits.tpm, windowMs, algorithm }),
      { kind: "concurrency", limit: limits.concurrency },
    ],
    ...marginField(marginMs),
  };
}

export interface OpenAiWorkerOptions {
  readonly client: OpenAI;
  /** A RateQueue client (or the env-configured `ratequeue`); null sends without asking, to see the 429s RateQueue prevents. */
  readonly rq: Pick<RateQueue, "acquire" | "reportLimited"> | null;
  readonly resource: string;
  /** Aborted when the run ends: no new request starts, a wait in the queue is cancelled. */
  readonly signal: AbortSignal;
  readonly random: () => number;
  /** Each request's max_tokens is drawn from this range. */
  readonly maxTokens: { readonly min: number; readonly max: number };
}

/** One worker: ask, send, settle, until `signal` aborts. A 429 is reported to RateQueue and the request retried. */
export async function openAiWorker(options: OpenAiWorkerOptions): Promise<WorkerFigures> {
  const { client, rq, resource, signal, random } = options;
  const figures = emptyFigures();
  while (!signal.aborted) {
    // reserveTokens: what OpenAI counts against TPM when the request arrives, prompt tokens + max_tokens.
    const { messages, maxTokens, reserveTokens } = randomOpenAiRequest(random, options.maxTokens);
    let done = false;
    while (!done && !signal.aborted) {
      const send = async (settle: (tokens: number) => Promise<void>): Promise<void> => {
        try {
          const reply = await client.chat.completions.create({ model: MODEL, messages, max_tokens: maxTokens });
          const usage = reply.usage;
          if (usage === undefined) throw new Error("the reply has no usage block");
          await settle(usage.total_tokens);
          figures.requests++;
          figures.inputTokens += usage.prompt_tokens;
          figures.outputTokens += usage.completion_tokens;
          done = true;
        } catch (err) {
          if (!(err instanceof OpenAI.RateLimitError)) throw err;
          figures.limited++;
          const retryAfterMs = retryAfterMsOf(err.headers);
          await settle(0); // a 429 charged nothing at the provider
          if (rq !== null) {
            // The whole fleet pauses, not only this worker.
            await rq.reportLimited(resource, { retryAfterMs });
            figures.cooldownsReported++;
          } else {
            await sleep(retryAfterMs, undefined, { signal }).catch(() => undefined);
          }
        }
      };
      if (rq === null) {
        await send(async () => undefined);
        continue;
      }
      try {
        await rq.acquire(resource, { load: reserveTokens, signal }, (lease) => send((tokens) => lease.settle(tokens)));
      } catch (err) {
        if (err instanceof CancelledError) break; // the run ended while we waited in line
        throw err;
      }
    }
  }
  return figures;
}

export interface OpenAiExampleOptions extends ExampleOptions {
  /** Concurrent workers (default 16). */
  readonly workers?: number;
  /** false: the workers send without RateQueue (default true). */
  readonly coordinate?: boolean;
}

export interface OpenAiExampleResult extends TpmExampleResult {
  readonly workers: number;
}

/** Starts what it needs (cluster unless given, simulator, resource), runs the workers for `durationMs`, stops everything. */
export async function run(options: OpenAiExampleOptions = {}): Promise<OpenAiExampleResult> {
  const settings = exampleSettings(options, { resource: "openai-sim" });
  const { limits, resource, seed } = settings;
  const workers = options.workers ?? 16;
  const config = openAiResource(limits, settings.marginMs, settings.algorithm);
  const cluster = (options.coordinate ?? true) ? (options.cluster ?? clusterFromEnv()) : null;
  return withProviderAndCluster({ settings, simLimits: limits, simSummary: describeOpenAiLimits(limits), config, cluster }, async ({ sim, env }) => {
    const rq = env === null ? null : new RateQueue({ url: env.url, apiKey: env.workerKey, clientName: "openai-workers" });
    try {
      const client = new OpenAI({ apiKey: "sk-simulator", baseURL: `${sim.url}/v1`, maxRetries: 0 });
      const { figures, elapsedMs } = await runWorkers({
        workers,
        durationMs: settings.durationMs,
        worker: (i, signal) => openAiWorker({ client, rq, resource, signal, random: seededRandom(seed * 1_000 + i), maxTokens: settings.maxTokens }),
      });
      return { ...tpmExampleResult({ figures, elapsedMs, limits, provider: sim.stats().openai }), workers };
    } finally {
      await rq?.close();
    }
  });
}

/** The printout: the figures the README promises. */
export function formatResult(r: OpenAiExampleResult): string {
  const n = formatCount;
  const budget = bucketBudget({ limit: r.limits.tpm, windowMs: r.limits.windowMs, elapsedMs: r.elapsedMs });
  return formatRows([
    ["requests done", n(r.requests)],
    ["429s received", `${n(r.limited)}${r.cooldownsReported > 0 ? ` (cooldowns reported: ${n(r.cooldownsReported)})` : ""}`],
    ["tokens", `${n(r.inputTokens)} prompt + ${n(r.outputTokens)} completion = ${n(r.inputTokens + r.outputTokens)}`],
    [
      "share of TPM used",
      `${(r.tpmShare * 100).toFixed(1)}% (of ${n(Math.floor(budget))} tokens, the most a ${n(r.limits.tpm)} TPM bucket admits in ${formatSeconds(r.elapsedMs)} from full)`,
    ],
    ["elapsed", formatSeconds(r.elapsedMs)],
  ]);
}

const HELP = `Usage: npx tsx --conditions=source examples/openai-workers.ts [options]

N workers share one OpenAI-style quota through RateQueue, using the real
openai client against a local provider simulator. Starts a local three-node
cluster unless RATEQUEUE_URL and RATEQUEUE_API_KEY (an admin key) are set.

Options:
  --workers <n>        concurrent workers (default 16)
  --duration-ms <n>    how long to run (default 15000)
  --rpm <n>            provider requests per minute (default ${DEFAULT_LIMITS.rpm})
  --tpm <n>            provider tokens per minute (default ${DEFAULT_LIMITS.tpm})
  --concurrency <n>    provider requests in flight (default ${DEFAULT_LIMITS.concurrency})
  --window-ms <n>      the limits' window (default ${DEFAULT_LIMITS.windowMs})
${exampleFlagsHelp({ resource: "openai-sim" })}
  --no-ratequeue       send without RateQueue, to see the 429s it prevents
  --help               this text
`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...EXAMPLE_FLAGS,
      ...stringFlags(["workers", "rpm", "tpm", "concurrency"]),
      "no-ratequeue": { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help === true) return void process.stdout.write(HELP);
  const result = await run({
    ...exampleFlags(values, ["rpm", "tpm", "concurrency"]),
    workers: numberFlag(values.workers, "--workers", { min: 1, max: 1_000 }),
    coordinate: values["no-ratequeue"] !== true,
  });
  process.stdout.write(`\n${formatResult(result)}\n`);
}

if (isMain(import.meta.url)) runCli("openai-workers", () => main(process.argv.slice(2)));

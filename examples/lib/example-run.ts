/**
 * The plumbing the simulator examples share (openai-workers, anthropic-workers,
 * fleet): their common options and defaults, their common flags, and the
 * setup around a run: the provider simulator, then the RateQueue cluster with
 * the example's resource and a worker key, all stopped at the end. The SDK
 * calls stay in the examples.
 */
import { PROVIDER_ALGORITHMS, type ProviderAlgorithm } from "./windows.js";
import { DEFAULT_LIMITS, bucketBudget, startProviderSim, type ApiStats, type ProviderLimits, type ProviderSim } from "../provider-sim.js";
import { limitFlags, numberFlag, stringFlags, type LimitFlag } from "./cli.js";
import { prepareEnvironment, type ClusterTarget, type Environment } from "./environment.js";
import type { WorkerFigures } from "./figures.js";
import { describeLimit, type ResourceConfig } from "./resource.js";

/** Options every simulator example takes. */
export interface ExampleOptions {
  /** How long workers start new requests (default 15 s). */
  readonly durationMs?: number;
  /** The simulator's limits (DEFAULT_LIMITS for the rest). */
  readonly limits?: Partial<ProviderLimits>;
  /** The simulator's reply latency (default 200 ms). */
  readonly latencyMs?: number;
  /** Seeds prompts and replies (default 1). */
  readonly seed?: number;
  /** The resource's deliveryMarginMs (default RateQueue's: 1 s on a minute, at most 1/40 of the window; see lib/resource.ts). */
  readonly marginMs?: number;
  /** How the simulated provider counts its limits, and so the resource (default "bucket"). */
  readonly algorithm?: ProviderAlgorithm;
  /** The simulator's one-way network delay and its seeded jitter (default 0 and 0). */
  readonly networkDelayMs?: number;
  readonly networkJitterMs?: number;
  /** max_tokens range of requests (default 64 to 512). */
  readonly maxTokens?: { readonly min: number; readonly max: number };
  readonly resource?: string;
  /** A running cluster (admin key); default RATEQUEUE_URL / RATEQUEUE_API_KEY, else a local one. */
  readonly cluster?: ClusterTarget;
  readonly log?: (line: string) => void;
}

/** ExampleOptions with every default filled in (`cluster` stays optional: the example decides). */
export interface ExampleSettings {
  readonly durationMs: number;
  readonly limits: ProviderLimits;
  readonly latencyMs: number;
  readonly seed: number;
  readonly marginMs: number | undefined;
  readonly algorithm: ProviderAlgorithm;
  readonly networkDelayMs: number;
  readonly networkJitterMs: number;
  readonly maxTokens: { readonly min: number; readonly max: number };
  readonly resource: string;
  readonly log: (line: string) => void;
}

export function exampleSettings(options: ExampleOptions, defaults: { readonly resource: string }): ExampleSettings {
  return {
    durationMs: options.durationMs ?? 15_000,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    latencyMs: options.latencyMs ?? 200,
    seed: options.seed ?? 1,
    marginMs: options.marginMs,
    algorithm: options.algorithm ?? "bucket",
    networkDelayMs: options.networkDelayMs ?? 0,
    networkJitterMs: options.networkJitterMs ?? 0,
    maxTokens: options.maxTokens ?? { min: 64, max: 512 },
    resource: options.resource ?? defaults.resource,
    log: options.log ?? (() => undefined),
  };
}

/** What every simulator example returns: its workers' figures, and the simulator's. */
export interface ExampleResult extends WorkerFigures {
  readonly elapsedMs: number;
  /** The simulator's own counters (its 429 count must equal `limited`). */
  readonly provider: ApiStats;
}

/** An OpenAI-style example's result: also the limits and how much of the TPM the run used. */
export interface TpmExampleResult extends ExampleResult {
  readonly limits: ProviderLimits;
  /** Tokens the provider charged over the most its TPM bucket could admit in elapsedMs from full (0..1). */
  readonly tpmShare: number;
}

/** `tokens` over the most a bucket of `limit` per `windowMs` admits in `elapsedMs` from full. */
export function bucketShare(options: { readonly tokens: number; readonly limit: number; readonly windowMs: number; readonly elapsedMs: number }): number {
  const { tokens, ...bucket } = options;
  return tokens / bucketBudget(bucket);
}

/** An OpenAI-style run's result from its figures and the simulator's OpenAI counters. */
export function tpmExampleResult(options: {
  readonly figures: WorkerFigures;
  readonly elapsedMs: number;
  readonly limits: ProviderLimits;
  readonly provider: ApiStats;
}): TpmExampleResult {
  const { figures, elapsedMs, limits, provider } = options;
  const tpmShare = bucketShare({ tokens: provider.totalTokens, limit: limits.tpm, windowMs: limits.windowMs, elapsedMs });
  return { ...figures, elapsedMs, limits, tpmShare, provider };
}

interface SetupOptions {
  readonly settings: ExampleSettings;
  /** The simulator's limits (settings.limits unless the example makes the provider differ). */
  readonly simLimits: ProviderLimits;
  /** What the simulator's limits are, for the first log line. */
  readonly simSummary: string;
  /** Log lines after the simulator's. */
  readonly simNotes?: readonly string[];
  /** The resource body for settings.resource. */
  readonly config: ResourceConfig;
}

/**
 * Starts the provider simulator, then prepares the cluster (`cluster`, or a
 * local one when undefined; null uses no RateQueue), logs what runs, calls
 * `body`, and stops all it started, whatever `body` does.
 */
export async function withProviderAndCluster<T, C extends ClusterTarget | undefined | null>(
  options: SetupOptions & { readonly cluster: C },
  // `env` is null only when `cluster` may be null.
  body: (setup: { readonly sim: ProviderSim; readonly env: C extends null ? null : Environment }) => Promise<T>,
): Promise<T> {
  const { settings, config } = options;
  const { resource, log } = settings;
  // The simulator first: it is cheap, and whatever fails later, the finally below stops everything started.
  const sim = await startProviderSim({
    limits: options.simLimits,
    algorithm: settings.algorithm,
    latencyMs: settings.latencyMs,
    networkDelayMs: settings.networkDelayMs,
    networkJitterMs: settings.networkJitterMs,
    seed: settings.seed,
  });
  let env: Environment | null = null;
  try {
    if (options.cluster !== null) env = await prepareEnvironment({ resource, config, cluster: options.cluster, log });
    log(`provider simulator: ${sim.url} (${options.simSummary})`);
    for (const note of options.simNotes ?? []) log(note);
    if (env !== null) log(`RateQueue: ${env.origin}, resource "${resource}": ${config.limits.map((l) => describeLimit(l)).join(", ")}`);
    else log("RateQueue: not used (--no-ratequeue): every worker sends as soon as it can");
    return await body({ sim, env: env as C extends null ? null : Environment });
  } finally {
    await env?.close();
    await sim.close();
  }
}

/** The simulator's OpenAI-style limits, for the log. */
export function describeOpenAiLimits(limits: ProviderLimits): string {
  return `${limits.rpm} requests and ${limits.tpm} tokens per ${limits.windowMs} ms, ${limits.concurrency} in flight`;
}

/** The --help lines of the common flags that end every example's option list (see EXAMPLE_FLAGS). */
export function exampleFlagsHelp(defaults: { readonly resource: string }): string {
  return `  --latency-ms <n>     provider reply latency (default 200)
  --margin-ms <n>      the resource's deliveryMarginMs: how late after its grant a request may
                       reach the provider (default RateQueue's: min(1000, window / 40))
  --algorithm <a>      how the provider counts, and so the resource: bucket | sliding | fixed
                       (default bucket)
  --network-delay-ms <n>   the simulator's one-way network delay (default 0)
  --network-jitter-ms <n>  plus a seeded uniform 0..n ms each way (default 0)
  --resource <name>    RateQueue resource (default ${defaults.resource})
  --seed <n>           seeds prompts and replies (default 1)`;
}

/** The flags every example takes besides --workers, its limit flags and --help (see exampleFlags). */
export const EXAMPLE_FLAGS = stringFlags(["duration-ms", "window-ms", "latency-ms", "margin-ms", "algorithm", "network-delay-ms", "network-jitter-ms", "resource", "seed"]);

/** Parses EXAMPLE_FLAGS and the limit flags `limitKeys` into ExampleOptions that print their log to stdout. */
export function exampleFlags<K extends LimitFlag>(
  values: { readonly [key in K | keyof typeof EXAMPLE_FLAGS]?: string | undefined },
  limitKeys: readonly K[],
): ExampleOptions {
  return {
    limits: limitFlags(values, limitKeys),
    durationMs: numberFlag(values["duration-ms"], "--duration-ms", { min: 1 }),
    latencyMs: numberFlag(values["latency-ms"], "--latency-ms", { min: 0 }),
    marginMs: numberFlag(values["margin-ms"], "--margin-ms", { min: 0 }),
    algorithm: algorithmFlag(values.algorithm),
    networkDelayMs: numberFlag(values["network-delay-ms"], "--network-delay-ms", { min: 0 }),
    networkJitterMs: numberFlag(values["network-jitter-ms"], "--network-jitter-ms", { min: 0 }),
    resource: values.resource,
    seed: numberFlag(values.seed, "--seed", { min: 0 }),
    log: (line) => process.stdout.write(`${line}\n`),
  };
}

/** --algorithm: bucket (default), sliding or fixed. */
export function algorithmFlag(value: string | undefined): ProviderAlgorithm | undefined {
  if (value === undefined) return undefined;
  if (!(PROVIDER_ALGORITHMS as readonly string[]).includes(value)) throw new RangeError(`--algorithm must be one of ${PROVIDER_ALGORITHMS.join(", ")}, got ${value}`);
  return value as ProviderAlgorithm;
}

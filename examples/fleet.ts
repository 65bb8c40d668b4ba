/**
 * A fleet: several worker PROCESSES (fleet-worker.ts, forked) share one
 * OpenAI-style quota through one RateQueue cluster. Each process runs a few
 * workers with its own RateQueue session; the cluster orders them all, so the
 * fleet as a whole stays under the provider's RPM, TPM and concurrency and
 * receives no 429.
 *
 * Run: npx tsx --conditions=source examples/fleet.ts --help
 */
import { fork, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { FleetMessage, FleetWorkerConfig } from "./fleet-worker.js";
import { isMain, numberFlag, runCli } from "./lib/cli.js";
import { clusterFromEnv, prepareEnvironment, type ClusterTarget, type Environment } from "./lib/environment.js";
import { addFigures, emptyFigures, type WorkerFigures } from "./lib/figures.js";
import { describeLimit } from "./lib/resource.js";
import { openAiResource } from "./openai-workers.js";
import { DEFAULT_LIMITS, bucketBudget, startProviderSim, type ApiStats, type ProviderLimits } from "./provider-sim.js";

const WORKER_SCRIPT = fileURLToPath(new URL("./fleet-worker.ts", import.meta.url));
// Children run TypeScript through tsx's loader, found from here (the workspace's tsx), whatever the parent runs under.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const READY_TIMEOUT_MS = 60_000;

export interface FleetOptions {
  /** Worker processes (default 4). */
  readonly processes?: number;
  /** Concurrent workers in each process (default 4). */
  readonly workersPerProcess?: number;
  /** How long workers start new requests (default 15 s). */
  readonly durationMs?: number;
  readonly limits?: Partial<ProviderLimits>;
  readonly latencyMs?: number;
  readonly seed?: number;
  readonly marginMs?: number;
  readonly maxTokens?: { readonly min: number; readonly max: number };
  readonly resource?: string;
  /** A running cluster (admin key); default RATEQUEUE_URL / RATEQUEUE_API_KEY, else a local one. */
  readonly cluster?: ClusterTarget;
  readonly log?: (line: string) => void;
}

export interface FleetResult extends WorkerFigures {
  readonly processes: number;
  readonly workersPerProcess: number;
  readonly elapsedMs: number;
  readonly limits: ProviderLimits;
  /** Tokens the provider charged over the most its TPM bucket could admit in elapsedMs from full (0..1). */
  readonly tpmShare: number;
  readonly provider: ApiStats;
}

export async function run(options: FleetOptions = {}): Promise<FleetResult> {
  const log = options.log ?? (() => undefined);
  const processes = options.processes ?? 4;
  const workersPerProcess = options.workersPerProcess ?? 4;
  const durationMs = options.durationMs ?? 15_000;
  const limits: ProviderLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const resource = options.resource ?? "fleet-sim";
  const seed = options.seed ?? 1;
  const config = openAiResource(limits, options.marginMs ?? 1_000);
  const cluster = options.cluster ?? clusterFromEnv();
  // The simulator first: it is cheap, and whatever fails later, the finally below stops everything started.
  const sim = await startProviderSim({ limits, latencyMs: options.latencyMs ?? 200, seed });
  const children: ChildProcess[] = [];
  let env: Environment | null = null;
  try {
    env = await prepareEnvironment({ resource, config, cluster, log });
    log(`provider simulator: ${sim.url} (${limits.rpm} requests and ${limits.tpm} tokens per ${limits.windowMs} ms, ${limits.concurrency} in flight)`);
    log(`RateQueue: ${env.origin}, resource "${resource}": ${config.limits.map((l) => describeLimit(l)).join(", ")}`);
    log(`starting ${processes} worker processes of ${workersPerProcess} workers each...`);
    const done: Promise<WorkerFigures>[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 0; index < processes; index++) {
      const workerConfig: FleetWorkerConfig = {
        index,
        simUrl: sim.url,
        resource,
        workers: workersPerProcess,
        seed,
        maxTokens: options.maxTokens ?? { min: 64, max: 512 },
      };
      const child = fork(WORKER_SCRIPT, [JSON.stringify(workerConfig)], {
        execArgv: ["--conditions=source", "--import", TSX_LOADER],
        env: { ...process.env, RATEQUEUE_URL: env.url, RATEQUEUE_API_KEY: env.workerKey },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      children.push(child);
      const exitedEarly = new Promise<never>((_, reject) =>
        child.once("exit", (code, signal) => reject(new Error(`worker process ${index} exited (code ${code}, signal ${signal}) before it reported`))),
      );
      exitedEarly.catch(() => undefined); // raced below; unhandled only if the process exits after reporting
      ready.push(Promise.race([waitForMessage(child, "ready"), exitedEarly]).then(() => undefined));
      done.push(Promise.race([waitForMessage(child, "done"), exitedEarly]).then((m) => (m as Extract<FleetMessage, { type: "done" }>).figures));
    }
    await withTimeout(Promise.all(ready), READY_TIMEOUT_MS, `the worker processes were not ready within ${READY_TIMEOUT_MS} ms`);
    const startedAt = performance.now();
    for (const child of children) child.send({ type: "go", durationMs } satisfies FleetMessage);
    const figures = (await Promise.all(done)).reduce(addFigures, emptyFigures());
    const elapsedMs = performance.now() - startedAt;
    const provider = sim.stats().openai;
    return {
      ...figures,
      processes,
      workersPerProcess,
      elapsedMs,
      limits,
      tpmShare: provider.totalTokens / bucketBudget({ limit: limits.tpm, windowMs: limits.windowMs, elapsedMs }),
      provider,
    };
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await env?.close();
    await sim.close();
  }
}

function waitForMessage(child: ChildProcess, type: FleetMessage["type"]): Promise<FleetMessage> {
  return new Promise((resolve) => {
    const onMessage = (m: FleetMessage): void => {
      if (m.type !== type) return;
      child.off("message", onMessage);
      resolve(m);
    };
    child.on("message", onMessage);
  });
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), timeoutMs)))]);
  } finally {
    clearTimeout(timer);
  }
}

export function formatResult(r: FleetResult): string {
  const n = (x: number): string => x.toLocaleString("en-US");
  return [
    `processes:          ${r.processes} x ${r.workersPerProcess} workers`,
    `requests done:      ${n(r.requests)}`,
    `429s received:      ${n(r.limited)}`,
    `tokens:             ${n(r.inputTokens)} prompt + ${n(r.outputTokens)} completion = ${n(r.inputTokens + r.outputTokens)}`,
    `share of TPM used:  ${(r.tpmShare * 100).toFixed(1)}% (of the most a ${n(r.limits.tpm)} TPM bucket admits in ${(r.elapsedMs / 1000).toFixed(1)} s from full)`,
    `elapsed:            ${(r.elapsedMs / 1000).toFixed(1)} s`,
  ].join("\n");
}

const HELP = `Usage: npx tsx --conditions=source examples/fleet.ts [options]

Several worker processes share one OpenAI-style quota through one RateQueue
cluster, against a local provider simulator. Starts a local three-node cluster
unless RATEQUEUE_URL and RATEQUEUE_API_KEY (an admin key) are set.

Options:
  --processes <n>      worker processes (default 4)
  --workers <n>        concurrent workers per process (default 4)
  --duration-ms <n>    how long to run (default 15000)
  --rpm <n>            provider requests per minute (default ${DEFAULT_LIMITS.rpm})
  --tpm <n>            provider tokens per minute (default ${DEFAULT_LIMITS.tpm})
  --concurrency <n>    provider requests in flight (default ${DEFAULT_LIMITS.concurrency})
  --window-ms <n>      the limits' window (default ${DEFAULT_LIMITS.windowMs})
  --latency-ms <n>     provider reply latency (default 200)
  --margin-ms <n>      refill kept in reserve against delivery jitter (default 1000)
  --resource <name>    RateQueue resource (default fleet-sim)
  --seed <n>           seeds prompts and replies (default 1)
  --help               this text
`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      processes: { type: "string" },
      workers: { type: "string" },
      "duration-ms": { type: "string" },
      rpm: { type: "string" },
      tpm: { type: "string" },
      concurrency: { type: "string" },
      "window-ms": { type: "string" },
      "latency-ms": { type: "string" },
      "margin-ms": { type: "string" },
      resource: { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help === true) return void process.stdout.write(HELP);
  const limits: Partial<Record<keyof ProviderLimits, number>> = {};
  for (const key of ["rpm", "tpm", "concurrency"] as const) {
    const v = numberFlag(values[key], `--${key}`, { min: 1 });
    if (v !== undefined) limits[key] = v;
  }
  const windowMs = numberFlag(values["window-ms"], "--window-ms", { min: 1 });
  if (windowMs !== undefined) limits.windowMs = windowMs;
  const result = await run({
    processes: numberFlag(values.processes, "--processes", { min: 1, max: 64 }),
    workersPerProcess: numberFlag(values.workers, "--workers", { min: 1, max: 1_000 }),
    durationMs: numberFlag(values["duration-ms"], "--duration-ms", { min: 1 }),
    limits,
    latencyMs: numberFlag(values["latency-ms"], "--latency-ms", { min: 0 }),
    marginMs: numberFlag(values["margin-ms"], "--margin-ms", { min: 0 }),
    resource: values.resource,
    seed: numberFlag(values.seed, "--seed", { min: 0 }),
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`\n${formatResult(result)}\n`);
}

if (isMain(import.meta.url)) runCli("fleet", () => main(process.argv.slice(2)));

/**
 * A fleet: several worker PROCESSES (fleet-worker.ts, forked) share one
 * OpenAI-style quota through one RateQueue cluster. Each process runs a few
 * workers with its own RateQueue session; the cluster orders them all, so the
 * fleet as a whole stays under the provider's RPM, TPM and concurrency and
 * receives no 429.
 *
 * Run: npx tsx --conditions=source examples/fleet.ts --help
 */
import type { ChildProcess } from "node:child_process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import type { FleetMessage, FleetWorkerConfig } from "./fleet-worker.js";
import { isMain, numberFlag, runCli, stringFlags } from "./lib/cli.js";
import { clusterFromEnv } from "./lib/environment.js";
import { describeOpenAiLimits, EXAMPLE_FLAGS, exampleFlags, exampleFlagsHelp, exampleSettings, tpmExampleResult, withProviderAndCluster, type ExampleOptions, type TpmExampleResult } from "./lib/example-run.js";
import { addFigures, emptyFigures, formatCount, formatRows, formatSeconds, type WorkerFigures } from "./lib/figures.js";
import { forkTypeScript, nextMessage, withTimeout } from "./lib/fork.js";
import { openAiResource } from "./openai-workers.js";
import { DEFAULT_LIMITS } from "./provider-sim.js";

const WORKER_SCRIPT = fileURLToPath(new URL("./fleet-worker.ts", import.meta.url));
const READY_TIMEOUT_MS = 60_000;

export interface FleetOptions extends ExampleOptions {
  /** Worker processes (default 4). */
  readonly processes?: number;
  /** Concurrent workers in each process (default 4). */
  readonly workersPerProcess?: number;
}

export interface FleetResult extends TpmExampleResult {
  readonly processes: number;
  readonly workersPerProcess: number;
}

export async function run(options: FleetOptions = {}): Promise<FleetResult> {
  const settings = exampleSettings(options, { resource: "fleet-sim" });
  const { limits, resource, seed, log } = settings;
  const processes = options.processes ?? 4;
  const workersPerProcess = options.workersPerProcess ?? 4;
  const config = openAiResource(limits, settings.marginMs, settings.algorithm);
  const cluster = options.cluster ?? clusterFromEnv();
  return withProviderAndCluster({ settings, simLimits: limits, simSummary: describeOpenAiLimits(limits), config, cluster }, async ({ sim, env }) => {
    const children: ChildProcess[] = [];
    try {
      log(`starting ${processes} worker processes of ${workersPerProcess} workers each...`);
      const done: Promise<WorkerFigures>[] = [];
      const ready: Promise<unknown>[] = [];
      for (let index = 0; index < processes; index++) {
        const workerConfig: FleetWorkerConfig = { index, simUrl: sim.url, resource, workers: workersPerProcess, seed, maxTokens: settings.maxTokens };
        const child = forkTypeScript(WORKER_SCRIPT, {
          args: [JSON.stringify(workerConfig)],
          env: { ...process.env, RATEQUEUE_URL: env.url, RATEQUEUE_API_KEY: env.workerKey },
        });
        children.push(child);
        const who = `worker process ${index}`;
        ready.push(nextMessage<FleetMessage>(child, { type: "ready", who }));
        const figures = nextMessage<Extract<FleetMessage, { type: "done" }>>(child, { type: "done", who }).then((m) => m.figures);
        figures.catch(() => undefined); // awaited below; unhandled only if the processes were never ready
        done.push(figures);
      }
      await withTimeout(Promise.all(ready), READY_TIMEOUT_MS, `the worker processes were not ready within ${READY_TIMEOUT_MS} ms`);
      const startedAt = performance.now();
      for (const child of children) child.send({ type: "go", durationMs: settings.durationMs } satisfies FleetMessage);
      const figures = (await Promise.all(done)).reduce(addFigures, emptyFigures());
      const elapsedMs = performance.now() - startedAt;
      return { ...tpmExampleResult({ figures, elapsedMs, limits, provider: sim.stats().openai }), processes, workersPerProcess };
    } finally {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
}

export function formatResult(r: FleetResult): string {
  const n = formatCount;
  return formatRows([
    ["processes", `${r.processes} x ${r.workersPerProcess} workers`],
    ["requests done", n(r.requests)],
    ["429s received", n(r.limited)],
    ["tokens", `${n(r.inputTokens)} prompt + ${n(r.outputTokens)} completion = ${n(r.inputTokens + r.outputTokens)}`],
    ["share of TPM used", `${(r.tpmShare * 100).toFixed(1)}% (of the most a ${n(r.limits.tpm)} TPM bucket admits in ${formatSeconds(r.elapsedMs)} from full)`],
    ["elapsed", formatSeconds(r.elapsedMs)],
  ]);
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
${exampleFlagsHelp({ resource: "fleet-sim" })}
  --help               this text
`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { ...EXAMPLE_FLAGS, ...stringFlags(["processes", "workers", "rpm", "tpm", "concurrency"]), help: { type: "boolean" } },
  });
  if (values.help === true) return void process.stdout.write(HELP);
  const result = await run({
    ...exampleFlags(values, ["rpm", "tpm", "concurrency"]),
    processes: numberFlag(values.processes, "--processes", { min: 1, max: 64 }),
    workersPerProcess: numberFlag(values.workers, "--workers", { min: 1, max: 1_000 }),
  });
  process.stdout.write(`\n${formatResult(result)}\n`);
}

if (isMain(import.meta.url)) runCli("fleet", () => main(process.argv.slice(2)));

/**
 * The Python example, run as the other examples run: starts the provider
 * simulator, a local three-node cluster (unless RATEQUEUE_URL is set), the
 * OpenAI-style resource and a worker key, then runs
 * `examples/python/openai_workers.py` (asyncio workers with `ratequeue.aio`
 * and httpx) against them with Debian's /usr/bin/python3, and prints the
 * worker's figures beside the simulator's.
 *
 * Run: npx tsx --conditions=source examples/python-workers.ts --help
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { isMain, numberFlag, runCli, stringFlags } from "./lib/cli.js";
import { clusterFromEnv } from "./lib/environment.js";
import { describeOpenAiLimits, EXAMPLE_FLAGS, exampleFlags, exampleFlagsHelp, exampleSettings, tpmExampleResult, withProviderAndCluster, type ExampleOptions, type TpmExampleResult } from "./lib/example-run.js";
import { formatResult as formatOpenAiResult, openAiResource } from "./openai-workers.js";
import { DEFAULT_LIMITS } from "./provider-sim.js";

const SCRIPT = fileURLToPath(new URL("./python/openai_workers.py", import.meta.url));
const PYTHON_SRC = fileURLToPath(new URL("../packages/python/src", import.meta.url));
/** Debian's interpreter: the one `scripts/setup/debian-packages.sh python` gives websockets, msgpack and httpx. */
const PYTHON = process.env.RQ_PYTHON ?? "/usr/bin/python3";

export interface PythonExampleOptions extends ExampleOptions {
  /** Concurrent asyncio workers (default 16). */
  readonly workers?: number;
}

export interface PythonExampleResult extends TpmExampleResult {
  readonly workers: number;
}

/** What openai_workers.py prints with --json. */
interface PythonFigures {
  readonly requests: number;
  readonly limited: number;
  readonly cooldowns_reported: number;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly elapsed_s: number;
}

export async function run(options: PythonExampleOptions = {}): Promise<PythonExampleResult> {
  const settings = exampleSettings(options, { resource: "openai-python" });
  const { limits, resource } = settings;
  const workers = options.workers ?? 16;
  const config = openAiResource(limits, settings.marginMs, settings.algorithm);
  return withProviderAndCluster({ settings, simLimits: limits, simSummary: describeOpenAiLimits(limits), config, cluster: options.cluster ?? clusterFromEnv() }, async ({ sim, env }) => {
    const args = [
      SCRIPT,
      "--json",
      ...["--provider-url", sim.url, "--resource", resource, "--workers", String(workers)],
      ...["--duration", String(settings.durationMs / 1000), "--seed", String(settings.seed)],
      ...["--max-tokens", String(settings.maxTokens.min), String(settings.maxTokens.max)],
    ];
    const py = await runPython(args, { RATEQUEUE_URL: env.url, RATEQUEUE_API_KEY: env.workerKey });
    const figures = {
      requests: py.requests,
      limited: py.limited,
      cooldownsReported: py.cooldowns_reported,
      inputTokens: py.prompt_tokens,
      outputTokens: py.completion_tokens,
    };
    return { ...tpmExampleResult({ figures, elapsedMs: py.elapsed_s * 1000, limits, provider: sim.stats().openai }), workers };
  });
}

/** Runs the Python program; its stderr passes through, its one line of stdout is the figures. */
function runPython(args: readonly string[], env: Record<string, string>): Promise<PythonFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, {
      env: { ...process.env, ...env, PYTHONPATH: [PYTHON_SRC, process.env.PYTHONPATH].filter(Boolean).join(":") },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.on("error", (err) => reject(new Error(`could not start ${PYTHON} (scripts/setup/debian-packages.sh python installs it): ${err.message}`)));
    child.on("exit", (code, signal) => {
      if (code !== 0) return reject(new Error(`${PYTHON} ${args[0]} exited with ${signal ?? code}\n${out}`));
      try {
        resolve(JSON.parse(out.trim().split("\n").at(-1) ?? "") as PythonFigures);
      } catch {
        reject(new Error(`${PYTHON} ${args[0]} printed no figures: ${out}`));
      }
    });
  });
}

/** The printout: the same rows as openai-workers (the run has the same shape). */
export const formatResult: (r: PythonExampleResult) => string = formatOpenAiResult;

const HELP = `Usage: npx tsx --conditions=source examples/python-workers.ts [options]

N Python asyncio workers (ratequeue.aio + httpx) share one OpenAI-style quota
through RateQueue against a local provider simulator. Starts a local
three-node cluster unless RATEQUEUE_URL and RATEQUEUE_API_KEY (an admin key)
are set. The worker program itself is examples/python/openai_workers.py.

Options:
  --workers <n>        concurrent workers (default 16)
  --duration-ms <n>    how long to run (default 15000)
  --rpm <n>            provider requests per minute (default ${DEFAULT_LIMITS.rpm})
  --tpm <n>            provider tokens per minute (default ${DEFAULT_LIMITS.tpm})
  --concurrency <n>    provider requests in flight (default ${DEFAULT_LIMITS.concurrency})
  --window-ms <n>      the limits' window (default ${DEFAULT_LIMITS.windowMs})
${exampleFlagsHelp({ resource: "openai-python" })}
  --help               this text
`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { ...EXAMPLE_FLAGS, ...stringFlags(["workers", "rpm", "tpm", "concurrency"]), help: { type: "boolean" } } });
  if (values.help === true) return void process.stdout.write(HELP);
  const result = await run({
    ...exampleFlags(values, ["rpm", "tpm", "concurrency"]),
    workers: numberFlag(values.workers, "--workers", { min: 1, max: 1_000 }),
  });
  process.stdout.write(`\n${formatResult(result)}\n`);
}

if (isMain(import.meta.url)) runCli("python-workers", () => main(process.argv.slice(2)));

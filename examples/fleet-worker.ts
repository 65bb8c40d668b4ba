/**
 * One process of the fleet example (started by fleet.ts, not by hand): a few
 * OpenAI-style workers that reach the cluster through the ready-made
 * `ratequeue` client, configured from RATEQUEUE_URL and RATEQUEUE_API_KEY like
 * any deployed worker. It talks to its parent over the IPC channel:
 * -> { type: "ready" } once loaded (tsx, tiktoken; it connects on its first acquire), <- { type: "go", durationMs },
 * -> { type: "done", figures } at the end.
 */
import OpenAI from "openai";
import { ratequeue } from "@ratequeue/sdk";
import { runWorkers, type WorkerFigures } from "./lib/figures.js";
import { seededRandom } from "./lib/prng.js";
import { countTokens } from "./lib/tokens.js";
import { openAiWorker } from "./openai-workers.js";

/** What the parent passes as the single argument (JSON). */
export interface FleetWorkerConfig {
  readonly index: number;
  readonly simUrl: string;
  readonly resource: string;
  readonly workers: number;
  readonly seed: number;
  readonly maxTokens: { readonly min: number; readonly max: number };
}

export type FleetMessage =
  | { readonly type: "ready" }
  | { readonly type: "go"; readonly durationMs: number }
  | { readonly type: "done"; readonly figures: WorkerFigures };

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error("fleet-worker.ts is started by fleet.ts (it needs an IPC channel)");
  const config = JSON.parse(process.argv[2] ?? "null") as FleetWorkerConfig;
  // A parent that died (or was interrupted) before "go" would leave this process waiting forever.
  process.once("disconnect", () => process.exit(1));
  const send = (m: FleetMessage): Promise<void> => new Promise((resolve, reject) => process.send!(m, undefined, {}, (err) => (err ? reject(err) : resolve())));
  countTokens("warm up"); // builds the encoder now, not inside the timed run
  const go = new Promise<number>((resolve) =>
    process.on("message", (m: FleetMessage) => {
      if (m.type === "go") resolve(m.durationMs);
    }),
  );
  await send({ type: "ready" });
  const durationMs = await go;
  const client = new OpenAI({ apiKey: "sk-simulator", baseURL: `${config.simUrl}/v1`, maxRetries: 0 });
  const { figures } = await runWorkers({
    workers: config.workers,
    durationMs,
    worker: (i, signal) =>
      openAiWorker({
        client,
        rq: ratequeue,
        resource: config.resource,
        signal,
        random: seededRandom(config.seed * 1_000_000 + config.index * 1_000 + i),
        maxTokens: config.maxTokens,
      }),
  });
  await ratequeue.close();
  await send({ type: "done", figures });
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`fleet-worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

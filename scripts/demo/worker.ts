/**
 * One worker process of the demo's fleet (forked by demo.ts, not run by
 * hand). It stays up for all three runs, so each run starts with loaded
 * workers. Over the IPC channel:
 * -> { type: "ready" } once loaded (tsx, the tokenizer);
 * <- { type: "go", run }, then <- { type: "stop" } -> { type: "done", loops } per run
 *    (the parent decides when a run ends: the RateQueue run lasts longer when
 *    a failover took long, so every worker has time to send after it);
 * <- { type: "exit" }.
 * Each of its `loops` concurrent workers builds a seeded prompt, asks its
 * gate (gates.ts) for a turn to send prompt + max_tokens, sends with the real
 * `openai` client (maxRetries 0, so every 429 shows), reports the reply's
 * tokens to the gate, and records when it was ready, when it sent and what
 * came back.
 */
import { setMaxListeners } from "node:events";
import { OpenAI } from "../../examples/lib/provider-clients.js";
import { isMain } from "../../examples/lib/cli.js";
import { retryAfterMsOf } from "../../examples/lib/figures.js";
import { seededRandom } from "../../examples/lib/prng.js";
import { randomOpenAiRequest } from "../../examples/lib/prompts.js";
import { countTokens } from "../../examples/lib/tokens.js";
import { createGate, type Gate, type GateConfig, type Ticket } from "./gates.js";

export interface RunConfig {
  readonly gate: GateConfig;
  readonly simUrl: string;
  readonly loops: number;
  /** Seeds this process's loops: the same seed gives every run the same workload. */
  readonly seed: number;
  readonly maxTokens: { readonly min: number; readonly max: number };
  /** Tokens of context each prompt carries, drawn uniformly (none when absent): bigger, fewer requests. */
  readonly contextTokens?: { readonly min: number; readonly max: number };
}

/** What one loop did. Times are epoch ms (Date.now) so the parent can line them up across processes. */
export interface LoopReport {
  /** Requests answered 200. */
  requests: number;
  /** 429s received. */
  limited: number;
  /** Tokens the replies reported (prompt + completion). */
  totalTokens: number;
  /** Per request answered 200: ms from ready to send (gate waits plus any waits after 429s). */
  waitsMs: number[];
  /** Every send (the gate's "go"), 429s included. */
  sentAtMs: number[];
  /** Sends answered 429 (epoch ms). */
  limitedAtMs: number[];
  /** Per send, ms from RateQueue's grant stamp to the send (the part of the delivery delay before the network), when the gate stamps. */
  grantToSendMs: number[];
  /** Errors other than a 429 (the loop goes on after each); the first few messages kept. */
  errors: number;
  errorMessages: string[];
}

export type WorkerMessage =
  | { readonly type: "ready" }
  | { readonly type: "go"; readonly run: RunConfig }
  | { readonly type: "stop" }
  | { readonly type: "done"; readonly loops: LoopReport[] }
  | { readonly type: "exit" };

const MODEL = "gpt-4o-mini";
const ERROR_MESSAGES_KEPT = 5;

/**
 * Runs `config.loops` loops until `stop` aborts, and returns what each did.
 * Loops start no new request after the stop; requests in flight finish.
 */
export async function runLoops(config: RunConfig, stop: AbortSignal): Promise<LoopReport[]> {
  const gate = createGate(config.gate);
  const client = new OpenAI({ apiKey: "sk-simulator", baseURL: `${config.simUrl}/v1`, maxRetries: 0 });
  setMaxListeners(config.loops + 10, stop); // every waiting acquire listens to it
  try {
    return await Promise.all(
      Array.from({ length: config.loops }, (_, i) =>
        loop({ gate, client, signal: stop, random: seededRandom(config.seed * 1_000 + i), maxTokens: config.maxTokens, contextTokens: config.contextTokens }),
      ),
    );
  } finally {
    await gate.close();
  }
}

async function loop(options: {
  gate: Gate;
  client: InstanceType<typeof OpenAI>;
  signal: AbortSignal;
  random: () => number;
  maxTokens: { readonly min: number; readonly max: number };
  contextTokens: { readonly min: number; readonly max: number } | undefined;
}): Promise<LoopReport> {
  const { gate, client, signal, random } = options;
  const report: LoopReport = { requests: 0, limited: 0, totalTokens: 0, waitsMs: [], sentAtMs: [], limitedAtMs: [], grantToSendMs: [], errors: 0, errorMessages: [] };
  while (!signal.aborted) {
    // reserveTokens: what the provider charges against its TPM when the request arrives.
    const { messages, maxTokens, reserveTokens } = randomOpenAiRequest(random, options.maxTokens, options.contextTokens);
    const readyAtMs = Date.now();
    for (;;) {
      let ticket: Ticket | null;
      try {
        ticket = await gate.acquire(reserveTokens, signal);
      } catch (err) {
        recordError(report, err);
        break; // a new request; the loop goes on unless the run ended
      }
      if (ticket === null) return report; // the run ended while this loop waited
      const sentAtMs = Date.now();
      report.sentAtMs.push(sentAtMs);
      if (ticket.grantedAtMs !== undefined) report.grantToSendMs.push(sentAtMs - ticket.grantedAtMs);
      let totalTokens: number | null = null;
      let retryAfterMs: number | null = null;
      try {
        const reply = await client.chat.completions.create({ model: MODEL, messages, max_tokens: maxTokens });
        if (reply.usage === undefined) throw new Error("the reply has no usage block");
        totalTokens = reply.usage.total_tokens;
      } catch (err) {
        if (err instanceof OpenAI.RateLimitError) retryAfterMs = retryAfterMsOf(err.headers);
        else recordError(report, err);
      }
      try {
        await ticket.done(totalTokens);
        if (retryAfterMs !== null) await gate.limited(retryAfterMs, signal);
      } catch (err) {
        recordError(report, err);
      }
      if (totalTokens !== null) {
        report.requests++;
        report.totalTokens += totalTokens;
        report.waitsMs.push(sentAtMs - readyAtMs);
        break;
      }
      if (retryAfterMs === null) break; // an error, already recorded: move on to a new request
      report.limited++;
      report.limitedAtMs.push(sentAtMs);
      if (signal.aborted) return report; // no retry once the run is over
    }
  }
  return report;
}

function recordError(report: LoopReport, err: unknown): void {
  report.errors++;
  if (report.errorMessages.length < ERROR_MESSAGES_KEPT) report.errorMessages.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
}

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error("scripts/demo/worker.ts is started by the demo (it needs an IPC channel)");
  // A parent that died (or was interrupted) would leave this process waiting forever.
  process.once("disconnect", () => process.exit(1));
  const send = (m: WorkerMessage): Promise<void> => new Promise((resolve, reject) => process.send!(m, undefined, {}, (err) => (err ? reject(err) : resolve())));
  countTokens("warm up"); // builds the encoder now, not inside a timed run
  let stop: AbortController | null = null;
  process.on("message", (m: WorkerMessage) => {
    if (m.type === "exit") process.exit(0);
    if (m.type === "stop") stop?.abort();
    if (m.type !== "go") return;
    stop = new AbortController();
    runLoops(m.run, stop.signal).then(
      (loops) => send({ type: "done", loops }),
      (err: unknown) => {
        process.stderr.write(`demo worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        process.exit(1);
      },
    );
  });
  await send({ type: "ready" });
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`demo worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}

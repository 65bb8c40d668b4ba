/**
 * A local LLM provider simulator: an HTTP server on loopback that serves an
 * OpenAI-style `POST /v1/chat/completions` and an Anthropic-style
 * `POST /v1/messages`, enforces per-minute limits the way those providers do,
 * and answers 429 with `retry-after` and the provider's error JSON when a
 * request exceeds them. `GET /stats` (and `stats()`) count requests, 429s and
 * tokens, so an example can report the share of the token limit it used.
 *
 * Limits, each counted when the request arrives with one algorithm
 * (`algorithm`, lib/windows.ts): a continuously refilling token bucket (the
 * default; an idle account starts full), an exact sliding log, or
 * clock-aligned fixed windows. Kept separately per API (they stand for two
 * providers):
 * - OpenAI-style: `rpm`, `tpm` (prompt tokens + max_tokens at arrival,
 *   corrected to prompt + completion tokens when the reply is sent) and
 *   `concurrency` (requests in flight).
 * - Anthropic-style: `rpm`, `itpm` (input tokens at arrival), `otpm`
 *   (max_tokens at arrival, corrected to the actual output at the end, as
 *   Anthropic documents) and `concurrency`.
 * A request is admitted only if every limit has room, and then charged on all
 * of them at once; a 429 charges nothing.
 *
 * Like a real provider it sits behind a network and takes a variable time to
 * answer: each request is counted a seeded `networkDelayMs` + uniform
 * 0..`networkJitterMs` after it reaches the simulator's socket, and its reply
 * leaves after another such delay, plus `latencyMs` + 0..`latencyJitterMs` of
 * "generation". A delay that varies from request to request is what lets an
 * earlier request arrive after a later one.
 *
 * @example
 * const sim = await startProviderSim({ limits: { rpm: 600, tpm: 60_000 }, latencyMs: 200, seed: 1 });
 * const client = new OpenAI({ apiKey: "sim", baseURL: `${sim.url}/v1`, maxRetries: 0 });
 * console.log(sim.stats().openai.totalTokens);
 * await sim.close();
 *
 * CLI: npx tsx --conditions=source examples/provider-sim.ts --help
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { PROVIDER_ALGORITHMS, providerWindow, type ProviderAlgorithm, type ProviderWindow } from "./lib/windows.js";
import { isMain, limitFlags, numberFlag, runCli, stringFlags } from "./lib/cli.js";
import { randomInt, seededRandom } from "./lib/prng.js";
import { countChatTokens, type ChatMessage } from "./lib/tokens.js";

export interface ProviderLimits {
  /** Requests per window (both APIs). */
  readonly rpm: number;
  /** OpenAI-style tokens per window: prompt + max_tokens at arrival, corrected to the actual total. */
  readonly tpm: number;
  /** Anthropic-style input tokens per window. */
  readonly itpm: number;
  /** Anthropic-style output tokens per window: max_tokens at arrival, corrected to the actual output. */
  readonly otpm: number;
  /** Requests in flight at once (per API). */
  readonly concurrency: number;
  /** The window the per-window counts refill over: a minute, as the names say, unless a demo compresses it. */
  readonly windowMs: number;
}

export const DEFAULT_LIMITS: ProviderLimits = {
  rpm: 600,
  tpm: 60_000,
  itpm: 40_000,
  otpm: 16_000,
  concurrency: 8,
  windowMs: 60_000,
};

export type { ProviderAlgorithm };

export interface ProviderSimOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number;
  /** Any subset; the rest come from DEFAULT_LIMITS. */
  readonly limits?: Partial<ProviderLimits>;
  /** How every per-window limit counts: "bucket" (default), "sliding" (exact log) or "fixed" (clock-aligned). */
  readonly algorithm?: ProviderAlgorithm;
  /** One-way network delay each way (default 0), plus a seeded uniform 0..networkJitterMs (default 0). */
  readonly networkDelayMs?: number;
  readonly networkJitterMs?: number;
  /** How long a reply takes to "generate" (default 200 ms), plus a seeded uniform 0..latencyJitterMs. */
  readonly latencyMs?: number;
  readonly latencyJitterMs?: number;
  /** Seeds completion lengths and latency jitter (default 1). */
  readonly seed?: number;
  /** max_tokens assumed for an OpenAI-style request that sends none (default 1024). */
  readonly defaultMaxTokens?: number;
  /** The clock, in integer ms (default Date.now). Tests pass a fake one to drive the buckets. */
  readonly now?: () => number;
}

/** Counters of one API. Tokens are what the provider finally charged (after the end-of-request correction). */
export interface ApiStats {
  /** Requests that reached the endpoint with a valid body. */
  requests: number;
  /** Requests answered 200. */
  completed: number;
  /** Requests answered 429, and by which limit (the first that had no room). */
  limited: number;
  limitedBy: Record<string, number>;
  /** Requests answered 400 (malformed or can never fit). */
  invalid: number;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  inFlight: number;
  maxInFlight: number;
  /** Whole units left in each bucket now (rpm, tpm / rpm, itpm, otpm). */
  available: Record<string, number>;
}

export interface ProviderStats {
  readonly limits: ProviderLimits;
  readonly algorithm: ProviderAlgorithm;
  /** Ms since the simulator started. */
  readonly elapsedMs: number;
  readonly openai: ApiStats;
  readonly anthropic: ApiStats;
}

export interface ProviderSim {
  /** e.g. "http://127.0.0.1:41234"; OpenAI clients take `${url}/v1` as baseURL, Anthropic clients `url`. */
  readonly url: string;
  readonly limits: ProviderLimits;
  readonly algorithm: ProviderAlgorithm;
  /** When it started, on its clock (epoch ms by default): arrivals' `atMs` count from it. */
  readonly startedAtMs: number;
  /** A snapshot of the counters. */
  stats(): ProviderStats;
  /** Each completed request of `api`: when it arrived (ms since the simulator started) and the tokens finally charged. */
  arrivals(api: "openai" | "anthropic"): readonly { readonly atMs: number; readonly tokens: number }[];
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The most a token bucket of `limit` per `windowMs` can admit over
 * `elapsedMs` from full: its capacity plus its refill. "Share of the token
 * limit used" in the examples is tokens charged divided by this.
 */
export function bucketBudget(options: { limit: number; windowMs: number; elapsedMs: number }): number {
  return options.limit + (options.limit / options.windowMs) * Math.max(0, options.elapsedMs);
}

/**
 * The most a sliding log of `limit` per `windowMs` admits over `elapsedMs`:
 * `limit` in each window, `limit * ceil(elapsedMs / windowMs)`.
 */
export function slidingBudget(options: { limit: number; windowMs: number; elapsedMs: number }): number {
  return options.limit * Math.max(1, Math.ceil(options.elapsedMs / options.windowMs));
}

const MAX_BODY_BYTES = 1 << 20;

type Api = "openai" | "anthropic";

/** One API's limits and counters. */
class Endpoint {
  readonly buckets: Record<string, ProviderWindow>;
  readonly stats: ApiStats = {
    requests: 0,
    completed: 0,
    limited: 0,
    limitedBy: {},
    invalid: 0,
    inputTokens: 0,
    outputTokens: 0,
    totalTokens: 0,
    inFlight: 0,
    maxInFlight: 0,
    available: {},
  };
  readonly arrivals: { atMs: number; tokens: number }[] = [];

  constructor(
    readonly api: Api,
    readonly limits: ProviderLimits,
    algorithm: ProviderAlgorithm,
    nowMs: number,
  ) {
    const names = api === "openai" ? (["rpm", "tpm"] as const) : (["rpm", "itpm", "otpm"] as const);
    this.buckets = Object.fromEntries(names.map((n) => [n, providerWindow(algorithm, limits[n], limits.windowMs, nowMs)]));
  }
}

/** What a valid request asks for, in the units the buckets count. */
interface Charge {
  readonly model: string;
  readonly inputTokens: number;
  readonly maxTokens: number;
  /** Units per bucket name. */
  readonly costs: Readonly<Record<string, number>>;
}

/** Starts the simulator on 127.0.0.1. */
export async function startProviderSim(options: ProviderSimOptions = {}): Promise<ProviderSim> {
  const limits = checkLimits({ ...DEFAULT_LIMITS, ...options.limits });
  const latencyMs = checkMs(options.latencyMs ?? 200, "latencyMs");
  const latencyJitterMs = checkMs(options.latencyJitterMs ?? 0, "latencyJitterMs");
  const networkDelayMs = checkMs(options.networkDelayMs ?? 0, "networkDelayMs");
  const networkJitterMs = checkMs(options.networkJitterMs ?? 0, "networkJitterMs");
  const algorithm = options.algorithm ?? "bucket";
  if (!PROVIDER_ALGORITHMS.includes(algorithm)) throw new RangeError(`algorithm must be one of ${PROVIDER_ALGORITHMS.join(", ")}, got ${String(algorithm)}`);
  const defaultMaxTokens = options.defaultMaxTokens ?? 1024;
  if (!Number.isInteger(defaultMaxTokens) || defaultMaxTokens < 1) throw new RangeError("defaultMaxTokens must be an integer >= 1");
  const now = options.now ?? Date.now;
  const random = seededRandom(options.seed ?? 1);
  const startedAtMs = now();
  const endpoints: Record<Api, Endpoint> = {
    openai: new Endpoint("openai", limits, algorithm, startedAtMs),
    anthropic: new Endpoint("anthropic", limits, algorithm, startedAtMs),
  };
  const timers = new Set<NodeJS.Timeout>();
  const sleep = (ms: number): Promise<void> =>
    ms <= 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            timers.delete(timer);
            resolve();
          }, ms);
          timers.add(timer);
        });
  /** One network crossing: drawn per request and per direction from the seeded generator. */
  const networkMs = (): number => networkDelayMs + (networkJitterMs === 0 ? 0 : random() * networkJitterMs);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? "/", "http://sim").pathname;
    if (req.method === "GET" && path === "/stats") return sendJson(res, 200, snapshot());
    const api: Api | null =
      path === "/v1/chat/completions" ? "openai" : path === "/v1/messages" ? "anthropic" : null;
    if (api === null) return sendError(res, "openai", 404, "not_found_error", `no route for ${req.method} ${path}`);
    if (req.method !== "POST") return sendError(res, api, 405, "invalid_request_error", `use POST ${path}`);
    const endpoint = endpoints[api];
    const body = await readBody(req);
    const parsed = body.ok ? parseRequest(api, body.value, defaultMaxTokens) : body;
    if (!parsed.ok) {
      endpoint.stats.invalid++;
      return sendError(res, api, parsed.status, "invalid_request_error", parsed.message);
    }
    const charge = parsed.value;
    await sleep(networkMs()); // the trip from the worker: the request is counted when it arrives
    endpoint.stats.requests++;
    const at = now();
    const refusal = admit(endpoint, charge, at);
    if (refusal !== null) {
      if (refusal.retryAfterMs === Infinity) {
        endpoint.stats.invalid++;
        return sendError(res, api, 400, "invalid_request_error", refusal.message);
      }
      endpoint.stats.limited++;
      endpoint.stats.limitedBy[refusal.limit] = (endpoint.stats.limitedBy[refusal.limit] ?? 0) + 1;
      // retry-after is whole seconds, as both providers send it; never 0, which clients read as "retry now".
      const retryAfterS = Math.max(1, Math.ceil(refusal.retryAfterMs / 1000));
      const headers = { "retry-after": String(retryAfterS) };
      return sendError(res, api, 429, "rate_limit_error", refusal.message, headers, refusal.limit === "rpm" ? "requests" : "tokens");
    }
    const tickets: Record<string, number> = {};
    for (const [name, cost] of Object.entries(charge.costs)) tickets[name] = endpoint.buckets[name]!.take(at, cost);
    endpoint.stats.inFlight++;
    endpoint.stats.maxInFlight = Math.max(endpoint.stats.maxInFlight, endpoint.stats.inFlight);
    if (endpoint.stats.inFlight > limits.concurrency) throw new Error("invariant: more requests in flight than the concurrency limit");

    const outputTokens = randomInt(random, 1, charge.maxTokens);
    const delayMs = latencyMs + (latencyJitterMs === 0 ? 0 : random() * latencyJitterMs);
    const backMs = networkMs();
    await sleep(delayMs);

    // The end-of-request correction: the output reserved as max_tokens becomes what was generated.
    const refundTokens = charge.maxTokens - outputTokens;
    const corrected = api === "openai" ? "tpm" : "otpm";
    endpoint.buckets[corrected]!.adjust(now(), -refundTokens, tickets[corrected] as number);
    endpoint.stats.inFlight--; // before the reply leaves, so a client that sends again at once finds the slot free
    endpoint.stats.completed++;
    endpoint.stats.inputTokens += charge.inputTokens;
    endpoint.stats.outputTokens += outputTokens;
    endpoint.stats.totalTokens += charge.inputTokens + outputTokens;
    endpoint.arrivals.push({ atMs: at - startedAtMs, tokens: charge.inputTokens + outputTokens });
    await sleep(backMs); // the trip back to the worker
    sendJson(res, 200, api === "openai" ? openAiReply(charge, outputTokens) : anthropicReply(charge, outputTokens));
  };

  const snapshot = (): ProviderStats => {
    const at = now();
    const view = (e: Endpoint): ApiStats => ({
      ...structuredClone(e.stats),
      available: Object.fromEntries(Object.entries(e.buckets).map(([name, b]) => [name, Math.floor(b.level(at))])),
    });
    return { limits, algorithm, elapsedMs: at - startedAtMs, openai: view(endpoints.openai), anthropic: view(endpoints.anthropic) };
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A bug in the simulator must be loud, but must not kill the process serving other requests.
      process.stderr.write(`provider-sim: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      if (!res.headersSent) sendError(res, "openai", 500, "api_error", "simulator error");
      else res.destroy();
    });
  });
  // Clients keep connections alive; close() must not wait for them.
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  const arrivals = (api: Api): readonly { atMs: number; tokens: number }[] => [...endpoints[api].arrivals];
  return { url: `http://127.0.0.1:${port}`, limits, algorithm, startedAtMs, stats: snapshot, arrivals, close, [Symbol.asyncDispose]: close };
}

/** null if the request fits every limit now, else why not and when it would (Infinity: never). */
function admit(endpoint: Endpoint, charge: Charge, at: number): { limit: string; retryAfterMs: number; message: string } | null {
  const { limits, stats } = endpoint;
  if (stats.inFlight >= limits.concurrency) {
    // Nothing refills a concurrency slot on a schedule; a second is the usual hint.
    return { limit: "concurrency", retryAfterMs: 1_000, message: `Concurrency limit reached: ${limits.concurrency} requests in flight.` };
  }
  for (const [name, cost] of Object.entries(charge.costs)) {
    const bucket = endpoint.buckets[name]!;
    const waitMs = bucket.waitMs(at, cost);
    if (waitMs === 0) continue;
    const what = `${name.toUpperCase()} (limit ${bucket.capacity} per ${limits.windowMs} ms)`;
    if (waitMs === Infinity) {
      return { limit: name, retryAfterMs: Infinity, message: `Request too large for ${charge.model} on ${what}: it needs ${cost}. It can never be admitted.` };
    }
    const available = Math.floor(bucket.level(at));
    return {
      limit: name,
      retryAfterMs: waitMs,
      message: `Rate limit reached for ${charge.model} on ${what}: available ${available}, requested ${cost}. Please try again in ${(waitMs / 1000).toFixed(3)}s.`,
    };
  }
  return null;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; status: number; message: string };

function parseRequest(api: Api, body: unknown, defaultMaxTokens: number): Parsed<Charge> {
  const bad = (message: string): Parsed<Charge> => ({ ok: false, status: 400, message });
  if (typeof body !== "object" || body === null || Array.isArray(body)) return bad("the body must be a JSON object");
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model === "") return bad("model: a non-empty string is required");
  if (!Array.isArray(b.messages) || b.messages.length === 0 || b.messages.length > 1_000) {
    return bad("messages: an array of 1 to 1000 messages is required");
  }
  for (const [i, m] of b.messages.entries()) {
    const problem = messageProblem(m);
    if (problem !== null) return bad(`messages[${i}]: ${problem}`);
  }
  const maxTokensRaw = api === "openai" ? (b.max_completion_tokens ?? b.max_tokens ?? defaultMaxTokens) : b.max_tokens;
  if (typeof maxTokensRaw !== "number" || !Number.isInteger(maxTokensRaw) || maxTokensRaw < 1 || maxTokensRaw > 1_000_000) {
    return bad(`max_tokens: an integer from 1 to 1000000 is required${api === "openai" ? " when given" : ""}`);
  }
  let system: string | undefined;
  if (api === "anthropic" && b.system !== undefined) {
    if (typeof b.system !== "string") return bad("system: a string is expected");
    system = b.system;
  }
  const inputTokens = countChatTokens(b.messages as ChatMessage[], system);
  const maxTokens = maxTokensRaw;
  const costs: Record<string, number> =
    api === "openai" ? { rpm: 1, tpm: inputTokens + maxTokens } : { rpm: 1, itpm: inputTokens, otpm: maxTokens };
  return { ok: true, value: { model: b.model, inputTokens, maxTokens, costs } };
}

function messageProblem(m: unknown): string | null {
  if (typeof m !== "object" || m === null || Array.isArray(m)) return "a message must be an object";
  const { role, content } = m as Record<string, unknown>;
  if (typeof role !== "string" || !/^(system|developer|user|assistant)$/.test(role)) return "role must be system, developer, user or assistant";
  if (typeof content === "string") return null;
  if (!Array.isArray(content)) return "content must be a string or an array of text blocks";
  const textBlocks = content.every(
    (c: unknown) => typeof c === "object" && c !== null && (c as { type?: unknown }).type === "text" && typeof (c as { text?: unknown }).text === "string",
  );
  return textBlocks ? null : 'content blocks must be { "type": "text", "text": string }';
}

let replyCounter = 0;

function openAiReply(charge: Charge, outputTokens: number): unknown {
  return {
    id: `chatcmpl-sim-${++replyCounter}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: charge.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: replyText(outputTokens), refusal: null },
        logprobs: null,
        finish_reason: outputTokens === charge.maxTokens ? "length" : "stop",
      },
    ],
    usage: { prompt_tokens: charge.inputTokens, completion_tokens: outputTokens, total_tokens: charge.inputTokens + outputTokens },
  };
}

function anthropicReply(charge: Charge, outputTokens: number): unknown {
  return {
    id: `msg_sim_${++replyCounter}`,
    type: "message",
    role: "assistant",
    model: charge.model,
    content: [{ type: "text", text: replyText(outputTokens) }],
    stop_reason: outputTokens === charge.maxTokens ? "max_tokens" : "end_turn",
    stop_sequence: null,
    usage: { input_tokens: charge.inputTokens, output_tokens: outputTokens },
  };
}

/** Placeholder text; the usage block, not the text, is what the examples measure. */
function replyText(outputTokens: number): string {
  return `(simulated reply of ${outputTokens} tokens)`;
}

/** The provider's error shape: OpenAI `{ error: { message, type, param, code } }`, Anthropic `{ type: "error", error: { type, message } }`. */
function sendError(
  res: ServerResponse,
  api: Api,
  status: number,
  type: "invalid_request_error" | "rate_limit_error" | "not_found_error" | "api_error",
  message: string,
  headers: Record<string, string> = {},
  /** OpenAI names the exhausted limit in `type` ("requests" or "tokens") on a 429. */
  openAiLimitType = "requests",
): void {
  const body =
    api === "openai"
      ? {
          error: {
            message,
            type: type === "rate_limit_error" ? openAiLimitType : type,
            param: null,
            code: type === "rate_limit_error" ? "rate_limit_exceeded" : null,
          },
        }
      : { type: "error", error: { type, message } };
  sendJson(res, status, body, headers);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Parsed<unknown>> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > MAX_BODY_BYTES) return { ok: false, status: 413, message: `the body is larger than ${MAX_BODY_BYTES} bytes` };
    chunks.push(chunk);
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString("utf8")) };
  } catch {
    return { ok: false, status: 400, message: "the body is not valid JSON" };
  }
}

function checkLimits(limits: ProviderLimits): ProviderLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      throw new RangeError(`limits.${name} must be an integer >= 1, got ${String(value)}`);
    }
  }
  return Object.freeze({ ...limits });
}

function checkMs(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${value}`);
  return value;
}

// ---------------------------------------------------------------------------
// CLI

const HELP = `Usage: npx tsx --conditions=source examples/provider-sim.ts [options]

A local LLM provider simulator: OpenAI-style POST /v1/chat/completions and
Anthropic-style POST /v1/messages on 127.0.0.1, with per-minute limits counted
when each request arrives (token bucket, exact sliding log or clock-aligned
fixed window), 429 + retry-after when exceeded, a seeded variable network
delay and reply time, and GET /stats. Ctrl-C stops it.

Options:
  --port <n>            port (default 8080; 0 picks a free one)
  --rpm <n>             requests per window, each API (default ${DEFAULT_LIMITS.rpm})
  --tpm <n>             OpenAI-style tokens per window (default ${DEFAULT_LIMITS.tpm})
  --itpm <n>            Anthropic-style input tokens per window (default ${DEFAULT_LIMITS.itpm})
  --otpm <n>            Anthropic-style output tokens per window (default ${DEFAULT_LIMITS.otpm})
  --concurrency <n>     requests in flight, each API (default ${DEFAULT_LIMITS.concurrency})
  --window-ms <n>       the window the limits refill over (default ${DEFAULT_LIMITS.windowMs})
  --algorithm <a>       bucket | sliding | fixed (default bucket)
  --latency-ms <n>      reply latency (default 200)
  --latency-jitter-ms <n>  plus a seeded uniform 0..n ms (default 0)
  --network-delay-ms <n>   one-way network delay each way (default 0)
  --network-jitter-ms <n>  plus a seeded uniform 0..n ms each way (default 0)
  --seed <n>            seeds completion lengths, latencies and delays (default 1)
  --help                this text
`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8080" },
      ...stringFlags(["rpm", "tpm", "itpm", "otpm", "concurrency", "window-ms", "algorithm", "latency-ms", "latency-jitter-ms", "network-delay-ms", "network-jitter-ms", "seed"]),
      help: { type: "boolean" },
    },
  });
  if (values.help === true) return void process.stdout.write(HELP);
  const limits = limitFlags(values, ["rpm", "tpm", "itpm", "otpm", "concurrency"]);
  const sim = await startProviderSim({
    port: numberFlag(values.port, "--port", { min: 0, max: 65_535 }),
    limits,
    latencyMs: numberFlag(values["latency-ms"], "--latency-ms", { min: 0 }) ?? 200,
    latencyJitterMs: numberFlag(values["latency-jitter-ms"], "--latency-jitter-ms", { min: 0 }) ?? 0,
    networkDelayMs: numberFlag(values["network-delay-ms"], "--network-delay-ms", { min: 0 }) ?? 0,
    networkJitterMs: numberFlag(values["network-jitter-ms"], "--network-jitter-ms", { min: 0 }) ?? 0,
    algorithm: algorithmFlag(values.algorithm),
    seed: numberFlag(values.seed, "--seed", { min: 0 }) ?? 1,
  });
  process.stdout.write(`provider simulator on ${sim.url} (OpenAI baseURL ${sim.url}/v1, Anthropic baseURL ${sim.url}, stats ${sim.url}/stats)\n`);
  process.stdout.write(`limits: ${JSON.stringify(sim.limits)} (${sim.algorithm})\n`);
}

function algorithmFlag(value: string | undefined): ProviderAlgorithm {
  if (value === undefined) return "bucket";
  if (!(PROVIDER_ALGORITHMS as readonly string[]).includes(value)) throw new RangeError(`--algorithm must be one of ${PROVIDER_ALGORITHMS.join(", ")}, got ${value}`);
  return value as ProviderAlgorithm;
}

if (isMain(import.meta.url)) runCli("provider-sim", () => main(process.argv.slice(2)));

import { setMaxListeners } from "node:events";

/** What one worker (or a whole run) did. Tokens are what the replies reported. */
export interface WorkerFigures {
  /** Requests answered 200. */
  requests: number;
  /** 429s received. */
  limited: number;
  /** reportLimited calls made (one per 429 when RateQueue is used). */
  cooldownsReported: number;
  /** Input (prompt) and output (completion) tokens. */
  inputTokens: number;
  outputTokens: number;
}

export function emptyFigures(): WorkerFigures {
  return { requests: 0, limited: 0, cooldownsReported: 0, inputTokens: 0, outputTokens: 0 };
}

export function addFigures(into: WorkerFigures, from: WorkerFigures): WorkerFigures {
  for (const k of Object.keys(into) as (keyof WorkerFigures)[]) into[k] += from[k];
  return into;
}

/** `retry-after` (whole seconds, as OpenAI and Anthropic send it) in ms; 1 s if absent or unreadable. */
export function retryAfterMsOf(headers: Headers | undefined): number {
  const seconds = Number(headers?.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000;
}

/**
 * Runs `workers` copies of `worker` until `durationMs` has passed (then their
 * signal aborts: no new request starts, waits in the queue are cancelled,
 * requests in flight finish). Returns the summed figures and the elapsed ms.
 */
export async function runWorkers(options: {
  readonly workers: number;
  readonly durationMs: number;
  readonly worker: (index: number, signal: AbortSignal) => Promise<WorkerFigures>;
}): Promise<{ figures: WorkerFigures; elapsedMs: number }> {
  const ac = new AbortController();
  setMaxListeners(options.workers + 10, ac.signal); // every waiting acquire listens to it
  const startedAt = performance.now();
  const timer = setTimeout(() => ac.abort(), options.durationMs);
  try {
    const results = await Promise.all(Array.from({ length: options.workers }, (_, i) => options.worker(i, ac.signal)));
    return { figures: results.reduce(addFigures, emptyFigures()), elapsedMs: performance.now() - startedAt };
  } finally {
    clearTimeout(timer);
    ac.abort(); // one worker failed: stop the others
  }
}

/** A count as the printouts show it: 12,345. */
export function formatCount(x: number): string {
  return x.toLocaleString("en-US");
}

/** Milliseconds as the printouts show them: "15.0 s". */
export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A printout of "label:  value" lines, the values aligned two spaces after the longest label. */
export function formatRows(rows: readonly (readonly [label: string, value: string])[]): string {
  if (rows.length === 0) throw new RangeError("formatRows needs at least one row");
  const width = Math.max(...rows.map(([label]) => label.length)) + 3; // the colon and two spaces
  return rows.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}`).join("\n");
}

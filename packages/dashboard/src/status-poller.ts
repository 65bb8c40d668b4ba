/**
 * Polls every node's public GET /v1/status, so the page can show each node's
 * own view (role, term, commit and applied index) and not only what this node
 * believes. Runs only while someone watches the dashboard.
 */
import type { NodeStatusJson, PolledStatus } from "./snapshot.js";

/** Fetches one status; resolves with the parsed JSON or rejects with a reason. Replaceable in tests. */
export type StatusFetcher = (url: string, timeoutMs: number) => Promise<unknown>;

export interface StatusPollerOptions {
  /** Node id to HTTP base URL, this node included. */
  readonly nodeUrls: ReadonlyMap<string, string>;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly now: () => number;
  readonly fetchStatus?: StatusFetcher;
}

/** Status answers are small; a larger one is refused rather than parsed. */
const STATUS_BYTES_MAX = 64 * 1024;

export const fetchStatusOverHttp: StatusFetcher = async (url, timeoutMs) => {
  const res = await fetch(new URL("/v1/status", url), { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  if (text.length > STATUS_BYTES_MAX) throw new Error(`status is larger than ${STATUS_BYTES_MAX} bytes`);
  return JSON.parse(text) as unknown;
};

export class StatusPoller {
  readonly #o: Required<Omit<StatusPollerOptions, "nodeUrls">> & { nodeUrls: ReadonlyMap<string, string> };
  readonly #latest = new Map<string, PolledStatus>();
  /** Nodes with a request in flight: never more than one per node, however slow it is. */
  readonly #inFlight = new Set<string>();
  #timer: NodeJS.Timeout | null = null;

  constructor(options: StatusPollerOptions) {
    this.#o = {
      nodeUrls: options.nodeUrls,
      intervalMs: options.intervalMs ?? 1_000,
      timeoutMs: options.timeoutMs ?? 900,
      now: options.now,
      fetchStatus: options.fetchStatus ?? fetchStatusOverHttp,
    };
    if (!(this.#o.intervalMs > 0) || !(this.#o.timeoutMs > 0)) throw new RangeError("intervalMs and timeoutMs must be positive");
    for (const [id, url] of options.nodeUrls) this.#latest.set(id, { id, url, status: null, error: null, atMs: null });
  }

  get running(): boolean {
    return this.#timer !== null;
  }

  /** Starts polling (at once, then every intervalMs). Idempotent. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.pollOnce(), this.#o.intervalMs);
    this.#timer.unref();
    this.pollOnce();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** The latest answer of every node, in node-id order. */
  latest(): PolledStatus[] {
    return [...this.#latest.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Asks every node that has no request in flight; resolves when those answers are in. */
  pollOnce(): Promise<void> {
    const polls: Promise<void>[] = [];
    for (const [id, url] of this.#o.nodeUrls) {
      if (this.#inFlight.has(id)) continue;
      this.#inFlight.add(id);
      polls.push(
        this.#o
          .fetchStatus(url, this.#o.timeoutMs)
          .then(
            (body) => {
              const status = parseStatus(body, id);
              this.#latest.set(id, { id, url, status, error: status === null ? "unexpected /v1/status answer" : null, atMs: this.#o.now() });
            },
            (err: unknown) => {
              const reason = err instanceof Error ? (err.name === "TimeoutError" ? "no answer in time" : err.message) : String(err);
              this.#latest.set(id, { id, url, status: null, error: reason, atMs: this.#o.now() });
            },
          )
          .finally(() => this.#inFlight.delete(id)),
      );
    }
    return Promise.all(polls).then(() => undefined);
  }
}

/** Checks an answer's shape: a node that answers nonsense (or the wrong id) is shown as unreachable. */
export function parseStatus(body: unknown, expectedId: string): NodeStatusJson | null {
  if (typeof body !== "object" || body === null) return null;
  const b = body as Record<string, unknown>;
  const isCount = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
  if (b.id !== expectedId || typeof b.role !== "string" || !isCount(b.term) || !isCount(b.commitIndex) || !isCount(b.appliedIndex)) return null;
  if (b.leader !== null && typeof b.leader !== "string") return null;
  const peers = Array.isArray(b.peers)
    ? b.peers.flatMap((p: unknown) => {
        if (typeof p !== "object" || p === null || typeof (p as { id?: unknown }).id !== "string") return [];
        const { id, lag, match, clockOffsetMs } = p as { id: string; lag?: unknown; match?: unknown; clockOffsetMs?: unknown };
        const offset = typeof clockOffsetMs === "number" && Number.isFinite(clockOffsetMs) ? { clockOffsetMs } : {};
        return [{ id, ...(isCount(lag) ? { lag } : {}), ...(isCount(match) ? { match } : {}), ...offset }];
      })
    : [];
  return {
    id: b.id,
    role: b.role,
    term: b.term,
    leader: b.leader,
    commitIndex: b.commitIndex,
    appliedIndex: b.appliedIndex,
    ...(isCount(b.lastIndex) ? { lastIndex: b.lastIndex } : {}),
    peers,
  };
}

/**
 * A small scenario driven through the limiter state machine, in simulated
 * time (`pnpm start`). One resource with three stacked limits, three workers:
 * a big request waits and a small one waits behind it, settle frees tokens,
 * a window slides, a provider 429 pauses everyone, and a worker that dies
 * loses its lease.
 *
 * The loop below plays the node's part: it applies each scheduled command at
 * its time and, in between, ticks at `nextDeadline()` so time-driven events
 * (a window sliding, a cooldown ending, a session expiring) happen on time.
 */
import { Limiter, type Command, type Effect } from "@ratequeue/limiter";

const RESOURCE = "gpt-4o";
const limiter = new Limiter();

type Step = readonly [atMs: number, note: string, command: Command | null];
const acquire = (at: number, worker: string, requestId: string, tokens: number, extra: object = {}): Command => ({
  type: "acquire",
  at,
  sessionId: worker,
  requestId,
  resource: RESOURCE,
  load: { tokens },
  ...extra,
});

const steps: Step[] = [
  [0, "gpt-4o: 6 requests / 10 s, 12,000 tokens / 10 s (sliding windows), 2 at a time", {
    type: "putResource",
    at: 0,
    name: RESOURCE,
    config: {
      limits: [
        { kind: "rate", limit: 6, windowMs: 10_000 },
        { kind: "load", limit: 12_000, windowMs: 10_000, dimension: "tokens" },
        { kind: "concurrency", limit: 2 },
      ],
    },
  }],
  [0, "", { type: "openSession", at: 0, sessionId: "w1", ttlMs: 60_000 }],
  [0, "", { type: "openSession", at: 0, sessionId: "w2", ttlMs: 60_000 }],
  [0, "", { type: "openSession", at: 0, sessionId: "w3", ttlMs: 3_000 }],
  [0, "w1 asks for 2,000 tokens", acquire(0, "w1", "a1", 2_000)],
  [100, "w2 asks for 3,000 tokens", acquire(100, "w2", "b1", 3_000)],
  [200, "w3 asks for 8,000 tokens (only 7,000 left, and 2 calls are running)", acquire(200, "w3", "c1", 8_000)],
  [300, "w1 asks for 500 tokens: it queues behind the big request", acquire(300, "w1", "a2", 500)],
  [1_000, "w1's call used 1,200 tokens, not the 2,000 it reserved", { type: "settle", at: 1_000, sessionId: "w1", leaseId: 1, actual: { tokens: 1_200 } }],
  [1_000, "w1 releases its lease: a slot is free, but 8,000 tokens still do not fit", { type: "release", at: 1_000, sessionId: "w1", leaseId: 1 }],
  [1_500, "w2's call used 300 tokens: now the 8,000 fit", { type: "settle", at: 1_500, sessionId: "w2", leaseId: 2, actual: { tokens: 300 } }],
  [1_600, "w2 is done: its slot goes to the next in line", { type: "release", at: 1_600, sessionId: "w2", leaseId: 2 }],
  [2_000, "w2 got a 429 from the provider, retry-after 4 s", { type: "cooldown", at: 2_000, resource: RESOURCE, retryAfterMs: 4_000 }],
  [2_100, "w2 asks for 100 tokens: it waits out the cooldown", acquire(2_100, "w2", "b2", 100)],
  [2_200, "w2 tries 50 tokens without waiting (tryAcquire)", acquire(2_200, "w2", "b3", 50, { timeoutMs: 0 })],
  [2_500, "w1 and w2 send heartbeats; w3 has died and sends none", { type: "heartbeat", at: 2_500, sessionId: "w1" }],
  [2_500, "", { type: "heartbeat", at: 2_500, sessionId: "w2" }],
  [12_000, "(the node keeps ticking; nothing else is due)", { type: "tick", at: 12_000 }],
];

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1).padStart(5)} s`;
}

const queuedAt = new Map<string, number>();

function describe(e: Effect, at: number): string | null {
  switch (e.type) {
    case "granted": {
      const since = queuedAt.get(e.requestId);
      const waited = since === undefined ? "at once" : `after waiting ${((at - since) / 1000).toFixed(1)} s`;
      return `${e.sessionId} granted ${(e.load.tokens ?? 0).toLocaleString("en-US")} tokens (lease ${e.leaseId}) ${waited}`;
    }
    case "queued":
      queuedAt.set(e.requestId, at);
      return `${e.sessionId} waits`;
    case "timedOut":
    case "rejected":
    case "cancelled":
      return `${e.sessionId} ${e.type} ${e.requestId}: ${e.code} (${e.message})`;
    case "settled":
      return `${e.sessionId} settled lease ${e.leaseId} at ${(e.load.tokens ?? 0).toLocaleString("en-US")} tokens`;
    case "released":
      return `${e.sessionId} released lease ${e.leaseId}`;
    case "cooldown":
      return `${e.resource} paused until ${seconds(e.untilMs).trim()}`;
    case "sessionEnded":
      return `${e.sessionId} ${e.reason}: released leases [${e.releasedLeases.join(", ")}], dropped [${e.droppedRequests.join(", ")}]`;
    case "error":
      return `error: ${e.code} ${e.message}`;
    default:
      return null; // session and config acknowledgements are not interesting here
  }
}

function show(at: number, note: string, effects: Effect[]): void {
  const lines = effects.map((e) => describe(e, at)).filter((x): x is string => x !== null);
  if (note) console.log(`${seconds(at)}  ${note}`);
  // Effects of a command are indented under it; those of a tick (time alone) carry their own time.
  for (const line of lines) console.log(`${note ? " ".repeat(9) : `${seconds(at)}  `}-> ${line}`);
}

console.log("RateQueue limiter demo (simulated time)\n");
for (const [at, note, command] of steps) {
  // Like the node: tick at every deadline that comes before the next command.
  for (let t = limiter.nextDeadline(); t !== null && t < at; t = limiter.nextDeadline()) {
    show(t, "", limiter.apply({ type: "tick", at: t }));
  }
  if (command !== null) show(at, note, limiter.apply(command));
}
const view = limiter.resource(RESOURCE);
console.log(`\nat ${seconds(limiter.lastAt).trim()}: ${view?.leasesHeld} leases held, usage per limit [${view?.usage.map((u) => u.used).join(", ")}], ${limiter.sessionCount()} sessions`);

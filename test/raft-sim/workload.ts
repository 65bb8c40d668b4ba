import type { Entry, NodeId } from "@ratequeue/raft";
import type { Checker } from "./checkers/types.js";
import { decodePayload, encodePayload } from "./payload.js";
import type { Prng } from "@ratequeue/testkit";

/** How the simulated clients behave. */
export interface WorkloadOptions {
  readonly clients: number;
  /** A client waits a uniform [min, max] ms after an acknowledgement before its next proposal. */
  readonly thinkMinMs: number;
  readonly thinkMaxMs: number;
  /** A client retries (at another node, same payload id) when not acknowledged within this. */
  readonly retryAfterMs: number;
}

/** How a node answered a proposal, reduced to what a client acts on. */
export type ProposeAnswer =
  | { readonly kind: "taken" }
  /** Not taken; try `leader` (if known) soon. */
  | { readonly kind: "refused"; readonly leader: NodeId | null }
  /** The node is down or paused: the client's request timed out at the transport. */
  | { readonly kind: "unreachable" };

export interface WorkloadHost {
  nowMs(): number;
  after(delayMs: number, fn: () => void): void;
  /** Nodes a client could connect to right now. */
  reachableNodes(): readonly NodeId[];
  propose(node: NodeId, data: Uint8Array): ProposeAnswer;
  readonly checkers: readonly Checker[];
}

interface Outstanding {
  readonly id: string;
  attempts: number;
  /** Every node this proposal was sent to: an apply at any of them answers the client. */
  readonly nodes: Set<NodeId>;
  readonly issuedMs: number;
}

/**
 * Clients that propose unique payloads at random nodes and retry with the
 * same id until acknowledged. A client is told "committed" when a node it
 * proposed to applies its payload; that acknowledgement goes to the checkers.
 */
export class Workload {
  readonly #prng: Prng;
  readonly #options: WorkloadOptions;
  readonly #host: WorkloadHost;
  readonly #outstanding: (Outstanding | null)[];
  readonly #acked = new Set<string>();
  #issuing = true;
  #nextSeq = 0;
  attempts = 0;
  /** Longest time from issue to acknowledgement, in simulated ms. */
  maxLatencyMs = 0;

  constructor(options: { prng: Prng; workload: WorkloadOptions; host: WorkloadHost }) {
    const w = options.workload;
    if (!Number.isInteger(w.clients) || w.clients < 0) throw new RangeError(`clients must be an integer >= 0, got ${w.clients}`);
    if (!(w.thinkMinMs >= 0 && w.thinkMaxMs >= w.thinkMinMs && w.retryAfterMs > 0)) {
      throw new RangeError(`bad workload timing ${JSON.stringify(w)}`);
    }
    this.#prng = options.prng;
    this.#options = w;
    this.#host = options.host;
    this.#outstanding = Array.from({ length: w.clients }, () => null);
  }

  start(): void {
    for (let c = 0; c < this.#options.clients; c++) this.#scheduleNext(c);
  }

  /** No new proposals from now on; outstanding ones keep retrying (the liveness phase). */
  stopIssuing(): void {
    this.#issuing = false;
  }

  get ackedCount(): number {
    return this.#acked.size;
  }

  get issuedCount(): number {
    return this.#nextSeq;
  }

  /** Proposals issued and not yet acknowledged. */
  pending(): { id: string; attempts: number; issuedMs: number }[] {
    return this.#outstanding.filter((o): o is Outstanding => o !== null).map((o) => ({ id: o.id, attempts: o.attempts, issuedMs: o.issuedMs }));
  }

  /** Called for every entry any node applies. */
  onApplied(node: NodeId, entry: Entry): void {
    if (entry.type !== "normal") return;
    const payload = decodePayload(entry.data);
    if (payload === null) return;
    const client = this.#outstanding.findIndex((o) => o !== null && o.id === payload.id && o.nodes.has(node));
    if (client < 0) return; // applied elsewhere, or a retry of something already acknowledged
    const o = this.#outstanding[client]!;
    this.#outstanding[client] = null;
    this.#acked.add(o.id);
    this.maxLatencyMs = Math.max(this.maxLatencyMs, this.#host.nowMs() - o.issuedMs);
    for (const c of this.#host.checkers) c.onAck?.({ payloadId: o.id, node, index: entry.index, term: entry.term });
    this.#scheduleNext(client);
  }

  #scheduleNext(client: number): void {
    this.#host.after(this.#prng.int(this.#options.thinkMinMs, this.#options.thinkMaxMs), () => {
      if (!this.#issuing || this.#outstanding[client] !== null) return;
      const o: Outstanding = { id: `c${client}.${this.#nextSeq++}`, attempts: 0, nodes: new Set(), issuedMs: this.#host.nowMs() };
      this.#outstanding[client] = o;
      this.#attempt(client, o, null);
    });
  }

  #attempt(client: number, o: Outstanding, hint: NodeId | null): void {
    if (this.#outstanding[client] !== o) return; // acknowledged meanwhile
    const reachable = this.#host.reachableNodes();
    const node = hint !== null && reachable.includes(hint) ? hint : reachable.length > 0 ? this.#prng.pick(reachable) : null;
    let retryMs = this.#options.retryAfterMs;
    let nextHint: NodeId | null = null;
    if (node !== null) {
      o.attempts++;
      this.attempts++;
      o.nodes.add(node);
      const answer = this.#host.propose(node, encodePayload({ id: o.id, attempt: o.attempts }));
      if (answer.kind === "refused") {
        // Not taken: no need to wait out the timeout, ask the hinted leader soon. A node that
        // refuses while naming itself (e.g. a removed leader handing over) is not a hint to follow.
        retryMs = Math.max(1, Math.floor(this.#options.retryAfterMs / 8));
        nextHint = answer.leader === node ? null : answer.leader;
      }
    }
    this.#host.after(retryMs, () => this.#attempt(client, o, nextHint));
  }
}

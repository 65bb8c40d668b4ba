import {
  decodeServerFrame,
  encodeClientFrame,
  PROTOCOL_VERSION,
  type Acquire,
  type ClientMessage,
  type Load,
  type ServerMessage,
} from "@ratequeue/protocol";
import type { Prng } from "@ratequeue/testkit";

/** What a simulated client needs from the world around it. */
export interface ClientWorld {
  readonly nowMs: number;
  readonly nodeIds: readonly string[];
  /** Runs `fn` at `atMs` unless `owner` is dead by then. */
  at(atMs: number, owner: { readonly alive: boolean }, fn: () => void): void;
  /** Opens a connection to `nodeId` (the open reaches the node after a network delay). */
  connect(client: SimClient, nodeId: string): ClientConn;
  /** Sends one frame, or the close, on `conn` (FIFO, after a delay). */
  sendFrame(conn: ClientConn, frame: Uint8Array): void;
  closeFromClient(conn: ClientConn): void;
  /** A client saw a grant: the outcome checker verifies it against the committed history. */
  clientGranted(client: string, sessionId: string, requestId: number, leaseId: string): void;
  violation(message: string): void;
}

/** A client's end of one connection. */
export interface ClientConn {
  readonly id: string;
  readonly nodeId: string;
  /** False once either side closed it. */
  clientOpen: boolean;
}

interface Pending {
  readonly msg: ClientMessage & { readonly requestId: number };
  readonly issuedAtMs: number;
}

export interface ClientWorkload {
  /** Resources and how to draw a load for each. */
  readonly resources: readonly {
    readonly name: string;
    load(prng: Prng): Load;
    settle(prng: Prng, load: Load): Load;
    /** A load above the resource's whole capacity (rejected at once with RQ_UNGRANTABLE). */
    readonly tooLarge: Load;
    /** The resource's lanes, if it has any: acquires pick one (or none: the default lane). */
    readonly lanes?: readonly string[];
  }[];
  readonly sessionTtlMs: number;
  readonly apiKey: string;
  /** Chance (0..1) per action that the client breaks its own connection. */
  readonly breakRate: number;
}

const MAX_PENDING_ACQUIRES = 4;
const BACKOFF_MIN_MS = 20;
const BACKOFF_MAX_MS = 500;

/**
 * A simulated SDK client, behaving like packages/sdk: it connects to any node,
 * follows `notLeader` to the leader, and on a closed link reconnects with
 * `resume: sessionId` and resends every pending request under its original
 * id. It heartbeats its session, holds leases for a while, settles some,
 * releases them, cancels some waiters, reports cooldowns, and now and then
 * breaks its own connection. A client that dies stops for good: its session
 * must expire and release its leases.
 */
export class SimClient {
  alive = true;
  /** While true the client starts new work; the liveness phase turns it off and waits for everything to finish. */
  issuing = true;
  sessionId: string | null = null;
  conn: ClientConn | null = null;
  #state: "idle" | "connecting" | "ready" = "idle";
  readonly pending = new Map<number, Pending>();
  /** Leases held: lease id -> the session that holds it. */
  readonly leases = new Map<string, string>();
  readonly #cancels = new Set<number>();
  #nextRequestId = 1;
  #preferredNode: string | null = null;
  #backoffMs = BACKOFF_MIN_MS;
  #heartbeatEpoch = 0;
  readonly stats = { acquires: 0, granted: 0, rejected: 0, reconnects: 0, resumed: 0, newSessions: 0, goodbyes: 0 };

  constructor(
    readonly name: string,
    readonly prng: Prng,
    readonly world: ClientWorld,
    readonly workload: ClientWorkload,
  ) {}

  start(): void {
    this.#connect();
    this.#scheduleThink();
  }

  /** The client process dies: its connection drops and it never comes back. */
  die(): void {
    if (!this.alive) return;
    if (this.conn?.clientOpen) this.world.closeFromClient(this.conn);
    this.alive = false;
    this.conn = null;
  }

  /** True when the client has nothing left in flight and holds nothing. */
  get idle(): boolean {
    return this.pending.size === 0 && this.leases.size === 0;
  }

  /** The oldest request still unanswered, for liveness reports. */
  oldestPending(): Pending | null {
    let oldest: Pending | null = null;
    for (const p of this.pending.values()) if (oldest === null || p.issuedAtMs < oldest.issuedAtMs) oldest = p;
    return oldest;
  }

  // ---------------------------------------------------------------------------
  // Workload

  #scheduleThink(): void {
    this.world.at(this.world.nowMs + this.prng.int(10, 120), this, () => {
      this.#think();
      this.#scheduleThink();
    });
  }

  #think(): void {
    if (this.prng.chance(this.workload.breakRate) && this.conn !== null && this.#state === "ready") {
      this.#closeConn(); // the worker's network hiccups: the SDK reconnects and resumes
      return;
    }
    if (!this.issuing) return;
    const roll = this.prng.int(0, 99);
    const acquires = [...this.pending.values()].filter((p) => p.msg.type === "acquire");
    if (roll < 60 && acquires.length < MAX_PENDING_ACQUIRES) return this.#acquire();
    if (roll < 68 && acquires.length > 0) {
      const victim = this.prng.pick(acquires).msg.requestId;
      this.#cancels.add(victim);
      if (this.#state === "ready") this.#sendNow({ type: "cancel", requestId: victim });
      return;
    }
    if (roll < 70) {
      const resource = this.prng.pick(this.workload.resources).name;
      this.#request({ type: "cooldown", requestId: this.#nextRequestId++, resource, retryAfterMs: this.prng.int(20, 300) });
      return;
    }
    if (roll === 70 && this.prng.chance(0.5)) this.#goodbye();
  }

  /**
   * The worker closes its client (`rq.close()`): a goodbye ends the session, which releases its leases and
   * drops its waiters; like the SDK it forgets everything pending and starts a new session on its next call.
   */
  #goodbye(): void {
    if (this.#state !== "ready" || this.conn === null) return;
    this.#sendNow({ type: "goodbye" });
    this.stats.goodbyes++;
    this.sessionId = null;
    this.pending.clear();
    this.leases.clear();
    this.#cancels.clear();
    // The node closes that link once the session is closed; from here on the client ignores it (a new client
    // instance) and opens a new session on a new connection.
    this.conn = null;
    this.#state = "idle";
    this.#heartbeatEpoch++;
    this.world.at(this.world.nowMs + this.prng.int(0, 50), this, () => this.#connect());
  }

  #acquire(): void {
    const r = this.prng.pick(this.workload.resources);
    const mode = this.prng.int(0, 9);
    // Now and then a request that can never be granted: it must be rejected at once, never wait (SPEC).
    const odd = this.prng.int(0, 99);
    const msg: Acquire = {
      type: "acquire",
      requestId: this.#nextRequestId++,
      resource: odd < 2 ? "no-such-resource" : r.name,
      load: odd >= 2 && odd < 4 ? r.tooLarge : r.load(this.prng),
      ...(mode < 4 ? { timeoutMs: this.prng.int(50, 1500) } : mode === 4 ? { try: true } : {}),
      ...(this.prng.chance(0.3) ? { priority: this.prng.int(1, 20) } : {}),
      ...(r.lanes !== undefined && this.prng.chance(0.8) ? { lane: odd === 4 ? "no-such-lane" : this.prng.pick(r.lanes) } : {}),
    };
    this.stats.acquires++;
    this.#request(msg);
  }

  #holdLease(leaseId: string, resource: string, load: Load): void {
    this.world.at(this.world.nowMs + this.prng.int(5, 400), this, () => {
      if (!this.leases.has(leaseId)) return; // the session ended and took the lease with it
      const r = this.workload.resources.find((x) => x.name === resource)!;
      if (this.prng.chance(0.4)) this.#request({ type: "settle", requestId: this.#nextRequestId++, leaseId, actual: r.settle(this.prng, load) });
      this.#request({ type: "release", requestId: this.#nextRequestId++, leaseId });
    });
  }

  #request(msg: ClientMessage & { readonly requestId: number }): void {
    this.pending.set(msg.requestId, { msg, issuedAtMs: this.world.nowMs });
    if (this.#state === "ready") this.#sendNow(msg);
    else this.#connect();
  }

  // ---------------------------------------------------------------------------
  // Connection

  #connect(): void {
    if (!this.alive || this.#state !== "idle") return;
    this.#state = "connecting";
    const nodeId = this.#preferredNode ?? this.prng.pick(this.world.nodeIds);
    this.#preferredNode = null;
    const conn = this.world.connect(this, nodeId);
    this.conn = conn;
    this.world.sendFrame(
      conn,
      encodeClientFrame([
        {
          type: "hello",
          protocolVersion: PROTOCOL_VERSION,
          apiKey: this.workload.apiKey,
          clientName: this.name,
          ttlMs: this.workload.sessionTtlMs,
          ...(this.sessionId === null ? {} : { resume: this.sessionId }),
        },
      ]),
    );
  }

  #closeConn(): void {
    const conn = this.conn;
    if (conn === null) return;
    if (conn.clientOpen) this.world.closeFromClient(conn);
    this.#down(conn);
  }

  /** The world: the node closed `conn` (or it broke). */
  closed(conn: ClientConn): void {
    if (conn === this.conn) this.#down(conn);
  }

  #down(conn: ClientConn): void {
    if (conn !== this.conn) return;
    this.conn = null;
    this.#state = "idle";
    this.#heartbeatEpoch++;
    if (!this.alive) return;
    const delayMs = this.#preferredNode !== null ? 0 : this.prng.int(0, this.#backoffMs);
    this.#backoffMs = Math.min(BACKOFF_MAX_MS, this.#backoffMs * 2);
    this.stats.reconnects++;
    this.world.at(this.world.nowMs + delayMs, this, () => this.#connect());
  }

  /** The world: a frame arrived on `conn`. */
  frame(conn: ClientConn, bytes: Uint8Array): void {
    if (conn !== this.conn || !this.alive) return;
    const decoded = decodeServerFrame(bytes);
    if (!decoded.ok) return this.world.violation(`${this.name}: the node sent an undecodable frame: ${decoded.error.message}`);
    for (const m of decoded.messages) {
      if (conn !== this.conn) return;
      this.#onMessage(conn, m);
    }
  }

  #onMessage(conn: ClientConn, m: ServerMessage): void {
    switch (m.type) {
      case "welcome":
        return this.#ready(m.sessionId, m.resumed);
      case "notLeader":
        this.#preferredNode = m.leader;
        if (m.leader !== null) this.#backoffMs = BACKOFF_MIN_MS;
        return this.#closeConn();
      case "error":
        if (m.code === "RQ_SESSION_EXPIRED") {
          this.sessionId = null;
          return;
        }
        return this.world.violation(`${this.name} got an unexpected error from ${conn.nodeId}: ${m.code} ${m.message}`);
      case "queued":
        return;
      case "granted": {
        if (this.sessionId === null) return this.world.violation(`${this.name}: a grant before any welcome`);
        this.world.clientGranted(this.name, this.sessionId, m.requestId, m.lease.id);
        const p = this.pending.get(m.requestId);
        if (p === undefined || p.msg.type !== "acquire") {
          // A repeated answer to a resent acquire, or one we no longer track: the checker has verified it.
          return;
        }
        this.pending.delete(m.requestId);
        this.#cancels.delete(m.requestId);
        this.stats.granted++;
        this.leases.set(m.lease.id, this.sessionId);
        this.#holdLease(m.lease.id, m.lease.resource, m.lease.load);
        return;
      }
      case "rejected": {
        const p = this.pending.get(m.requestId);
        if (p === undefined) return;
        this.pending.delete(m.requestId);
        this.#cancels.delete(m.requestId);
        if (p.msg.type === "acquire") this.stats.rejected++;
        // A release or settle refused because the lease is gone (its session expired) is done all the same.
        if (p.msg.type === "release") this.leases.delete(p.msg.leaseId);
        return;
      }
      case "ack": {
        const p = this.pending.get(m.requestId);
        if (p === undefined) return;
        this.pending.delete(m.requestId);
        if (p.msg.type === "release") this.leases.delete(p.msg.leaseId);
        return;
      }
    }
  }

  #ready(sessionId: string, resumedFlag: boolean): void {
    const resumed = resumedFlag && sessionId === this.sessionId;
    if (resumed) this.stats.resumed++;
    else {
      this.stats.newSessions++;
      // The old session expired: its leases were released and its waiters dropped with it (SDK #ready).
      this.leases.clear();
      this.#cancels.clear();
      for (const [id, p] of this.pending) if (p.msg.type === "release" || p.msg.type === "settle") this.pending.delete(id);
    }
    this.sessionId = sessionId;
    this.#state = "ready";
    this.#backoffMs = BACKOFF_MIN_MS;
    // Resend everything pending under its original id: the cluster answers a repeat with the original outcome.
    const resend: ClientMessage[] = [...this.pending.values()].map((p) => p.msg);
    for (const requestId of this.#cancels) resend.push({ type: "cancel", requestId });
    if (resend.length > 0) this.#sendNow(...resend);
    this.#heartbeat(++this.#heartbeatEpoch);
  }

  #heartbeat(epoch: number): void {
    this.world.at(this.world.nowMs + Math.floor(this.workload.sessionTtlMs / 3), this, () => {
      if (epoch !== this.#heartbeatEpoch || this.#state !== "ready") return;
      this.#sendNow({ type: "heartbeat" });
      this.#heartbeat(epoch);
    });
  }

  #sendNow(...messages: ClientMessage[]): void {
    if (this.conn === null || !this.conn.clientOpen) return;
    this.world.sendFrame(this.conn, encodeClientFrame(messages));
  }
}

import WebSocket from "ws";
import {
  Bounds,
  ErrorCode as WireCode,
  NAME_PATTERN,
  checkClientMessage,
  decodeServerFrame,
  encodeClientFrame,
  PROTOCOL_VERSION,
  DELIVERY_BUCKETS_MS,
  deliveryBucket,
  MAX_DELIVERY_MS,
  MAX_MESSAGES_PER_FRAME,
  MAX_REPORT_COUNT,
  type Acquire,
  type ClientMessage,
  type Cooldown,
  type Release,
  type ServerMessage,
  type Settle,
  type Welcome,
} from "@ratequeue/protocol";
import {
  CancelledError,
  errorFor,
  InvalidError,
  type RateQueueError,
  UnauthorizedError,
  UnavailableError,
} from "./errors.js";

/** A request's load: a number (tokens), or one amount per dimension, e.g. `{ input: 1200, output: 1024 }`. */
export type Load = number | Readonly<Record<string, number>>;

export interface RateQueueOptions {
  /** Node URLs: a comma-separated list or an array, e.g. "ws://10.0.0.1:7401,ws://10.0.0.2:7401". */
  readonly url: string | readonly string[];
  /** An API key with `acquire` scope on the resources used (or an admin key). */
  readonly apiKey: string | undefined;
  /** Session TTL asked of the cluster (default: the cluster's, 10 s). Leases outlive a dead worker by at most this. */
  readonly sessionTtlMs?: number;
  /** With no timeoutMs on a request, how long it may wait for any node to be reachable before RQ_UNAVAILABLE. Default 30 s. */
  readonly unavailableAfterMs?: number;
  /**
   * While requests are pending, a connection that has heard nothing from its node (no answer, no pong to the
   * SDK's pings) for this long is given up and the client moves to another node, which knows the new leader.
   * It catches a leader that is frozen (SIGSTOP, a stalled VM) with its sockets still open, which no close
   * event reveals. Resent requests keep their ids, so a false alarm on a slow node costs a reconnect, never a
   * second grant. Default 2000 ms; 100 to 600000.
   */
  readonly silentAfterMs?: number;
  /** Sent in the hello, for the cluster's logs. */
  readonly clientName?: string;
  /**
   * How often the client reports the grant-to-send delays it observed to its node (per resource: count, sum,
   * largest, histogram), for the node's /metrics and its warning near a resource's delivery margin. Default
   * 10000 ms; 100 to 600000.
   */
  readonly deliveryReportMs?: number;
  /** Extra options for the WebSocket (e.g. `ca` for a private CA with wss://). */
  readonly webSocketOptions?: WebSocket.ClientOptions;
}

export interface AcquireOptions {
  /** What this request costs against `load` limits, in whole units (e.g. prompt tokens + max_tokens). Default: nothing. */
  readonly load?: Load;
  /** An integer from 0 to 1000; higher is served first. Default 10. */
  readonly priority?: number;
  /** The resource lane (traffic class) to queue in. */
  readonly lane?: string;
  /** Longest wait in the queue, in ms; then the acquire fails with RQ_TIMEOUT. Default: no limit. */
  readonly timeoutMs?: number;
  /** Aborting cancels the wait (RQ_CANCELLED) and removes the waiter on the server. */
  readonly signal?: AbortSignal;
}

const HEARTBEATS_PER_TTL = 3;
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 2_000;
/** Grace given to the server to answer a timed-out request before the SDK gives up on its own. */
const TIMEOUT_GRACE_MS = 5_000;
/** setTimeout fires at once for delays above 2^31 - 1 ms. */
const TIMER_MS_MAX = 2 ** 31 - 1;
const CONNECT_TIMEOUT_MS = 5_000;
const SILENT_AFTER_MS = 2_000;
/** Pings per silentAfterMs while requests are pending. */
const PROBES_PER_SILENCE = 4;
const DELIVERY_REPORT_MS = 10_000;
/** Clock readings (log time minus local time, round trips) are kept this long: log time drifts 0.1% from ours. */
const CLOCK_WINDOW_MS = 15_000;

/**
 * The largest value seen over the last one to two windows: a reading ages out instead of holding forever,
 * because what it estimates drifts (log time runs 0.1% slow against the monotonic clock).
 */
class RecentMax {
  #current = -Infinity;
  #previous = -Infinity;
  #start = 0;

  add(value: number, nowMs: number): void {
    this.#roll(nowMs);
    if (value > this.#current) this.#current = value;
  }

  /** The largest recent value, or null if none. */
  read(nowMs: number): number | null {
    this.#roll(nowMs);
    const best = Math.max(this.#current, this.#previous);
    return best === -Infinity ? null : best;
  }

  #roll(nowMs: number): void {
    if (nowMs - this.#start < CLOCK_WINDOW_MS) return;
    this.#previous = nowMs - this.#start < 2 * CLOCK_WINDOW_MS ? this.#current : -Infinity;
    this.#current = -Infinity;
    this.#start = nowMs;
  }
}

/** Delays observed on one resource since the last report. */
interface DeliveryTally {
  count: number;
  sumMs: number;
  maxMs: number;
  readonly buckets: number[];
}

interface PendingAcquire {
  readonly kind: "acquire";
  readonly msg: Acquire;
  readonly startedAt: number;
  resolve(lease: Lease | null): void;
  reject(err: RateQueueError): void;
  cleanup(): void;
}

interface PendingAck {
  readonly kind: "ack";
  readonly msg: Release | Settle | Cooldown;
  readonly startedAt: number;
  resolve(): void;
  reject(err: RateQueueError): void;
  cleanup(): void;
}

type Pending = PendingAcquire | PendingAck;

/**
 * A granted request. Hold it while you use the capacity; `release()` frees
 * its concurrency slot (rate and load were consumed at grant time, as
 * providers count them). `await using lease = await rq.acquire(...)` releases
 * it at the end of the block.
 */
export class Lease {
  #released = false;

  /** @internal */
  constructor(
    private readonly client: RateQueue,
    /** The lease id, unique in its session. */
    readonly id: string,
    readonly resource: string,
    /** The load charged (as requested; `settle` corrects it). */
    readonly load: Load,
    /** The cluster's log time of the grant, in ms. */
    readonly grantedAt: number,
    /** @internal the session the lease belongs to */
    readonly sessionId: string,
  ) {}

  /** True once `release()` was called. */
  get released(): boolean {
    return this.#released;
  }

  /** Frees the concurrency slot. Idempotent: later calls resolve at once. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.client._sendAcked(this, (requestId) => ({ type: "release", requestId, leaseId: this.id }));
  }

  /**
   * Reports the real usage once known (e.g. the tokens the provider counted):
   * the grant's charge in every window becomes `actual`. Less returns
   * capacity to the queue; more charges the difference.
   *
   * @example await lease.settle({ output: 312 });
   */
  async settle(actual: Load): Promise<void> {
    checkLoad(actual, "actual");
    await this.client._sendAcked(this, (requestId) => ({ type: "settle", requestId, leaseId: this.id, actual }));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/**
 * A RateQueue client: one WebSocket to the cluster's leader, shared by any
 * number of concurrent acquires. It connects lazily, follows the leader,
 * reconnects with jittered back-off, resumes its session and resends pending
 * requests under their original ids (so a leader change never grants twice
 * and never loses a request), and heartbeats its session.
 *
 * @example
 * const rq = new RateQueue({ url: process.env.RATEQUEUE_URL!, apiKey: process.env.RATEQUEUE_API_KEY });
 * const reply = await rq.acquire("openai-gpt4o", { load: 1200 }, async () => client.chat.completions.create(req));
 */
export class RateQueue {
  readonly #options: RateQueueOptions;
  readonly #urls: string[];
  #urlIndex = 0;
  #preferredUrl: string | null = null;
  /** The node whose connection was just lost: the next attempt tries another node first. */
  #lostUrl: string | null = null;
  /** The node last given up for silence, and when: a follower may still name it as leader for a moment. */
  #silent: { readonly url: string; readonly at: number } | null = null;
  /** The URL of the current connection. */
  #wsUrl: string | null = null;
  #ws: WebSocket | null = null;
  #state: "idle" | "connecting" | "ready" | "closed" = "idle";
  #sessionId: string | null = null;
  #ttlMs = 10_000;
  #backoffMs = BACKOFF_MIN_MS;
  #downSince: number | null = null;
  #nextRequestId = 1;
  readonly #pending = new Map<number, Pending>();
  /** Cancels to deliver once connected (a waiter aborted while the link was down). */
  readonly #cancels = new Set<number>();
  /**
   * Acquires the caller gave up on (aborted, or timed out locally): a grant
   * that still arrives for one of them is released at once. Any other grant
   * for a request no longer pending is a repeat of one already handed out
   * (the cluster answers a resent request with its original outcome) and is
   * ignored.
   */
  readonly #abandoned = new Set<number>();
  #outbox: ClientMessage[] = [];
  #flushScheduled = false;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #watchdog: NodeJS.Timeout | null = null;
  #probeTimer: NodeJS.Timeout | null = null;
  /** When the current connection last heard from its node (any frame or pong). */
  #heardAt = 0;
  #closing: Promise<void> | null = null;
  /** Log time minus performance.now(), from grants' sentAt: each reading is low by its trip, so the largest is kept. */
  readonly #logOffset = new RecentMax();
  /** Round trips of the SDK's pings, negated (RecentMax keeps the smallest). */
  readonly #negRttMs = new RecentMax();
  #pingSentAt: number | null = null;
  readonly #deliveries = new Map<string, DeliveryTally>();
  #reportTimer: NodeJS.Timeout | null = null;
  /**
   * Requests sent right behind the hello on the current connection (docs/protocol.md, section 6): the node
   * handles them once it welcomes us, unless the session we resume is gone, so the welcome does not resend them.
   */
  #sentEarly = new Set<number>();
  /** Whether the current connection's hello asked to resume a session. */
  #helloResumed = false;

  constructor(options: RateQueueOptions) {
    const urls = (typeof options.url === "string" ? options.url.split(",") : [...options.url]).map((u) => u.trim()).filter((u) => u !== "");
    if (urls.length === 0) throw new InvalidError("RateQueue: url must name at least one node (ws://host:port, comma-separated)");
    for (const u of urls) {
      if (!/^wss?:\/\/[^/\s]+\/?$/.test(u)) throw new InvalidError(`RateQueue: "${u}" is not a node URL like ws://127.0.0.1:7401`);
    }
    if (typeof options.apiKey !== "string" || options.apiKey === "") {
      throw new UnauthorizedError("RateQueue: apiKey is missing: pass { apiKey } or set RATEQUEUE_API_KEY");
    }
    const silent = options.silentAfterMs;
    if (silent !== undefined && (!Number.isInteger(silent) || silent < 100 || silent > 600_000)) {
      throw new InvalidError(`RateQueue: silentAfterMs must be an integer from 100 to 600000, got ${silent}`);
    }
    const reportMs = options.deliveryReportMs;
    if (reportMs !== undefined && (!Number.isInteger(reportMs) || reportMs < 100 || reportMs > 600_000)) {
      throw new InvalidError(`RateQueue: deliveryReportMs must be an integer from 100 to 600000, got ${reportMs}`);
    }
    this.#options = options;
    this.#urls = urls.map((u) => u.replace(/\/$/, ""));
  }

  /**
   * Waits for capacity on `resource` and returns a Lease; or, with `fn`,
   * holds the lease while `fn` runs, releases it when `fn` returns or throws,
   * and returns `fn`'s result. In that form the result comes back as soon as
   * the release is sent, without waiting for the cluster to commit it: the
   * release travels ahead of anything this client sends next, and is resent
   * after a reconnect like every pending request.
   *
   * @example
   * await using lease = await rq.acquire("anthropic-claude", { load: { input: 1200, output: 1024 } });
   */
  acquire(resource: string, options?: AcquireOptions): Promise<Lease>;
  acquire<T>(resource: string, options: AcquireOptions, fn: (lease: Lease) => Promise<T> | T): Promise<T>;
  async acquire<T>(resource: string, options: AcquireOptions = {}, fn?: (lease: Lease) => Promise<T> | T): Promise<Lease | T> {
    const lease = (await this.#acquire(resource, options, false))!;
    this.#delivered(lease);
    if (fn === undefined) return lease;
    try {
      return await fn(lease);
    } finally {
      // Not awaited (see above): the caller gets fn's result one commit sooner. If the release can never be sent,
      // the session's expiry frees the slot.
      lease.release().catch(() => undefined);
    }
  }

  /** A lease if capacity is there right now, else null. Never waits in the queue. */
  async tryAcquire(resource: string, options: Omit<AcquireOptions, "timeoutMs"> = {}): Promise<Lease | null> {
    const lease = await this.#acquire(resource, options, true);
    if (lease !== null) this.#delivered(lease);
    return lease;
  }

  /**
   * Reports a provider 429: the resource grants nothing for `retryAfterMs`,
   * on every node, so one worker's 429 protects the whole fleet.
   */
  async reportLimited(resource: string, options: { retryAfterMs: number }): Promise<void> {
    checkResource(resource);
    const ms = options?.retryAfterMs;
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > Bounds.retryAfterMsMax) {
      throw new InvalidError(`reportLimited: retryAfterMs must be a number of ms from 0 to ${Bounds.retryAfterMsMax}`);
    }
    await this._sendAcked(null, (requestId) => ({ type: "cooldown", requestId, resource, retryAfterMs: Math.ceil(ms) }));
  }

  /** Ends the session (its leases are released, its waiters dropped) and closes the connection. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---------------------------------------------------------------------------

  #acquire(resource: string, options: AcquireOptions, isTry: boolean): Promise<Lease | null> {
    checkResource(resource);
    if (options.load !== undefined) checkLoad(options.load, "load");
    if (options.priority !== undefined && (!Number.isInteger(options.priority) || options.priority < 0 || options.priority > Bounds.priorityMax)) {
      throw new InvalidError(`priority must be an integer from 0 to ${Bounds.priorityMax} (default 10, higher first)`);
    }
    if (options.lane !== undefined && (typeof options.lane !== "string" || !NAME_PATTERN.test(options.lane))) {
      throw new InvalidError("lane must be 1-128 characters of A-Z a-z 0-9 . _ : / -");
    }
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > Bounds.timeoutMsMax)) {
      throw new InvalidError(`timeoutMs must be a number of ms from 0 to ${Bounds.timeoutMsMax}`);
    }
    const signal = options.signal;
    if (signal?.aborted === true) return Promise.reject(new CancelledError("the acquire was aborted before it was sent"));
    this.#assertOpen();
    const requestId = this.#nextRequestId++;
    const msg: Acquire = {
      type: "acquire",
      requestId,
      resource,
      ...(options.load === undefined ? {} : { load: options.load }),
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.lane === undefined ? {} : { lane: options.lane }),
      ...(timeoutMs === undefined ? {} : { timeoutMs: Math.ceil(timeoutMs) }),
      ...(isTry ? { try: true } : {}),
    };
    return new Promise<Lease | null>((resolve, reject) => {
      let timer: NodeJS.Timeout | null = null;
      const onAbort = (): void => {
        const p = this.#pending.get(requestId);
        if (p === undefined) return;
        this.#finish(requestId);
        reject(new CancelledError("the acquire was cancelled by its AbortSignal"));
        this.#abandon(requestId);
      };
      const pending: PendingAcquire = {
        kind: "acquire",
        msg,
        startedAt: Date.now(),
        resolve,
        reject,
        cleanup: () => {
          if (timer !== null) clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      if (timeoutMs !== undefined) {
        // The server times the wait; this only catches a server that cannot answer (e.g. no node is reachable).
        timer = setTimeout(() => {
          if (!this.#pending.has(requestId)) return;
          this.#finish(requestId);
          this.#abandon(requestId);
          reject(
            this.#state === "ready"
              ? errorFor(WireCode.RQ_TIMEOUT, `no answer from the cluster within timeoutMs ${timeoutMs} ms`)
              : new UnavailableError(`no RateQueue node was reachable within timeoutMs (${timeoutMs} ms); tried ${this.#urls.join(", ")}`),
          );
        }, Math.min(TIMER_MS_MAX, timeoutMs + (this.#state === "ready" ? TIMEOUT_GRACE_MS : 0)));
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(requestId, pending);
      this.#send(msg);
    });
  }

  /** @internal sends a release/settle/cooldown and resolves on its ack. */
  _sendAcked(lease: Lease | null, build: (requestId: number) => Release | Settle | Cooldown): Promise<void> {
    if (lease !== null && lease.sessionId !== this.#sessionId) return Promise.resolve(); // its session ended: nothing left to free
    if (this.#state === "closed") {
      return lease === null ? Promise.reject(new UnavailableError("the client is closed")) : Promise.resolve();
    }
    const requestId = this.#nextRequestId++;
    const msg = build(requestId);
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(requestId, { kind: "ack", msg, startedAt: Date.now(), resolve, reject, cleanup: () => undefined });
      this.#send(msg);
    });
  }

  #assertOpen(): void {
    if (this.#state === "closed") throw new UnavailableError("the client is closed; create a new RateQueue");
  }

  #finish(requestId: number): Pending | undefined {
    const p = this.#pending.get(requestId);
    if (p === undefined) return undefined;
    this.#pending.delete(requestId);
    p.cleanup();
    return p;
  }

  #send(msg: ClientMessage): void {
    if (this.#state === "idle") this.#connect();
    if (this.#state !== "ready") return; // resent from #pending when the session is ready
    this.#outbox.push(msg);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Everything issued in the same tick travels in one frame.
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const messages = this.#outbox;
    this.#outbox = [];
    if (messages.length === 0 || this.#ws === null || this.#ws.readyState !== WebSocket.OPEN) return;
    this.#ws.send(this.#encode(messages));
  }

  /** Encodes a batch; a message the protocol refuses fails its own request alone, never the batch. */
  #encode(messages: ClientMessage[]): Uint8Array {
    try {
      return encodeClientFrame(messages);
    } catch {
      const good = messages.filter((m) => {
        const problem = checkClientMessage(m);
        if (problem === null) return true;
        if ("requestId" in m) this.#finish(m.requestId)?.reject(new InvalidError(problem.message));
        return false;
      });
      return encodeClientFrame(good.length > 0 ? good : [{ type: "heartbeat" }]);
    }
  }

  /** The caller gave up on an acquire: ask the cluster to drop it, and free its grant if one still comes. */
  #abandon(requestId: number): void {
    this.#cancels.add(requestId);
    this.#abandoned.add(requestId);
    if (this.#state === "ready") this.#flushCancels();
  }

  #flushCancels(): void {
    for (const requestId of this.#cancels) this.#send({ type: "cancel", requestId });
    this.#cancels.clear();
  }

  // ---------------------------------------------------------------------------
  // Connection

  #connect(): void {
    if (this.#state === "closed" || this.#state === "connecting") return;
    this.#state = "connecting";
    this.#downSince ??= Date.now();
    this.#armWatchdog();
    let url = this.#preferredUrl ?? this.#urls[this.#urlIndex++ % this.#urls.length]!;
    // In rotation, skip the node just lost and one given up for silence lately (a frozen node accepts TCP and
    // then never answers the upgrade), unless nothing else is left.
    for (let tries = 1; this.#preferredUrl === null && tries < this.#urls.length && (url === this.#lostUrl || this.#recentlySilent(url)); tries++) {
      url = this.#urls[this.#urlIndex++ % this.#urls.length]!;
    }
    this.#preferredUrl = null;
    this.#lostUrl = null;
    const ws = new WebSocket(`${url}/v1/client`, {
      ...this.#options.webSocketOptions,
      perMessageDeflate: false,
      handshakeTimeout: CONNECT_TIMEOUT_MS,
    });
    this.#ws = ws;
    this.#wsUrl = url;
    this.#pingSentAt = null;
    ws.binaryType = "nodebuffer";
    ws.on("open", () => {
      this.#heardAt = Date.now();
      this.#helloResumed = this.#sessionId !== null;
      ws.send(
        encodeClientFrame([
          {
            type: "hello",
            protocolVersion: PROTOCOL_VERSION,
            apiKey: this.#options.apiKey!,
            clientName: this.#options.clientName ?? "ratequeue-sdk-node",
            clientVersion: "0.1.0",
            ...(this.#sessionId === null ? {} : { resume: this.#sessionId }),
            ...(this.#options.sessionTtlMs === undefined ? {} : { ttlMs: this.#options.sessionTtlMs }),
          },
        ]),
      );
      this.#sendEarly(ws);
    });
    ws.on("pong", () => {
      if (this.#ws !== ws) return;
      this.#heardAt = Date.now();
      if (this.#pingSentAt !== null) {
        const nowMs = performance.now();
        this.#negRttMs.add(this.#pingSentAt - nowMs, nowMs);
        this.#pingSentAt = null;
      }
    });
    ws.on("message", (data: Buffer) => {
      if (this.#ws !== ws) return;
      this.#heardAt = Date.now();
      const decoded = decodeServerFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (!decoded.ok) {
        ws.terminate();
        return;
      }
      for (const m of decoded.messages) {
        if (this.#ws !== ws) return; // redirected: the rest of the frame belongs to a connection given up
        this.#onMessage(ws, m);
      }
    });
    ws.on("error", () => undefined);
    ws.on("close", () => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#lostUrl = url; // the node may be down: the next attempt goes to another one
      this.#down();
    });
  }

  #onMessage(ws: WebSocket, m: ServerMessage): void {
    switch (m.type) {
      case "welcome":
        return this.#ready(m);
      case "notLeader":
        // Go straight to the leader when the node names it, at once (without waiting for the close handshake);
        // otherwise try the next node after a back-off.
        if (m.url !== null && !this.#recentlySilent(m.url)) {
          this.#preferredUrl = m.url;
          this.#backoffMs = BACKOFF_MIN_MS;
        }
        this.#ws = null;
        ws.close();
        this.#down();
        return;
      case "error":
        if (m.code === WireCode.RQ_UNAUTHORIZED) {
          this.#failAll(new UnauthorizedError(`${m.message}: check the apiKey (RATEQUEUE_API_KEY)`));
          this.#state = "idle";
          this.#ws = null;
          ws.close();
          return;
        }
        if (m.code === WireCode.RQ_SESSION_EXPIRED) this.#sessionId = null;
        return;
      case "queued":
        return;
      case "granted": {
        const p = this.#pending.get(m.requestId);
        if (p === undefined || p.kind !== "acquire") {
          // Released at once if the caller gave up on it; otherwise a repeat of a grant already handed out.
          if (this.#abandoned.delete(m.requestId)) this.#send({ type: "release", requestId: this.#nextRequestId++, leaseId: m.lease.id });
          return;
        }
        if (m.sentAt !== undefined) this.#logOffset.add(m.sentAt - performance.now(), performance.now());
        this.#finish(m.requestId);
        p.resolve(new Lease(this, m.lease.id, m.lease.resource, m.lease.load, m.lease.grantedAt, this.#sessionId!));
        return;
      }
      case "rejected": {
        this.#abandoned.delete(m.requestId);
        if (m.code === WireCode.RQ_SESSION_EXPIRED) return this.#sessionLost(ws, m.requestId);
        const p = this.#finish(m.requestId);
        if (p === undefined) return;
        if (p.kind === "acquire" && m.code === WireCode.RQ_WOULD_WAIT) return p.resolve(null);
        const request = this.#sessionId === null ? {} : { request: { sessionId: this.#sessionId, requestId: m.requestId } };
        return p.reject(errorFor(m.code, m.message, request));
      }
      case "ack": {
        const p = this.#finish(m.requestId);
        if (p?.kind === "ack") p.resolve();
        return;
      }
    }
  }

  /**
   * The session ended before the cluster applied request `requestId`, so none of it happened there. A
   * release or settle is done (its lease went with the session); anything else stays pending and is sent
   * again in a new session, which closing this connection starts.
   */
  #sessionLost(ws: WebSocket, requestId: number): void {
    this.#sessionId = null;
    const p = this.#pending.get(requestId);
    if (p?.kind === "ack" && p.msg.type !== "cooldown") {
      this.#finish(requestId);
      p.resolve();
    }
    ws.close();
  }

  #ready(welcome: Welcome): void {
    const resumed = welcome.resumed && welcome.sessionId === this.#sessionId;
    this.#sessionId = welcome.sessionId;
    this.#ttlMs = welcome.ttlMs;
    this.#state = "ready";
    this.#backoffMs = BACKOFF_MIN_MS;
    this.#downSince = null;
    for (const n of welcome.nodes) if (n.url !== null && !this.#urls.includes(n.url)) this.#urls.push(n.url);
    this.#startHeartbeats();
    if (!resumed) {
      // The old session's waiters were dropped and its leases released with it.
      this.#cancels.clear();
      this.#abandoned.clear();
    }
    // What went right behind the hello was handled by the node, unless the session we asked to resume is gone.
    const early = resumed || !this.#helloResumed ? this.#sentEarly : new Set<number>();
    this.#sentEarly = new Set();
    // Resend everything still pending under its original id: the cluster answers repeats with the original outcome.
    for (const [requestId, p] of this.#pending) {
      if (p.kind === "ack" && p.msg.type !== "cooldown" && !resumed) {
        this.#finish(requestId);
        p.resolve(); // a release/settle for a lease of an expired session: the lease is already gone
        continue;
      }
      if (!early.has(requestId)) this.#send(p.msg);
    }
    this.#flushCancels();
  }

  /**
   * Sends every pending request and cancel right behind the hello, in a frame of their own, instead of waiting
   * a round trip for the welcome: after a failover the resent requests reach the new leader with the hello.
   */
  #sendEarly(ws: WebSocket): void {
    this.#sentEarly = new Set();
    if (this.#pending.size === 0 && this.#cancels.size === 0) return;
    const messages: ClientMessage[] = [];
    for (const [requestId, p] of this.#pending) {
      messages.push(p.msg);
      this.#sentEarly.add(requestId);
    }
    for (const requestId of this.#cancels) messages.push({ type: "cancel", requestId });
    for (let i = 0; i < messages.length; i += MAX_MESSAGES_PER_FRAME) ws.send(this.#encode(messages.slice(i, i + MAX_MESSAGES_PER_FRAME)));
  }

  #down(): void {
    this.#stopHeartbeats();
    if (this.#state === "closed") return;
    this.#state = "idle";
    this.#downSince ??= Date.now();
    if (this.#pending.size === 0 && this.#cancels.size === 0) return; // reconnect lazily on the next call
    const delayMs = this.#preferredUrl !== null ? 0 : Math.floor(Math.random() * this.#backoffMs);
    this.#backoffMs = Math.min(BACKOFF_MAX_MS, this.#backoffMs * 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#state === "idle") this.#connect();
    }, delayMs);
  }

  /** While no node answers, fails requests that have waited longer than they may. */
  #armWatchdog(): void {
    if (this.#watchdog !== null) return;
    this.#watchdog = setInterval(() => {
      if (this.#state === "ready" || this.#downSince === null) {
        clearInterval(this.#watchdog!);
        this.#watchdog = null;
        return;
      }
      const limitMs = this.#options.unavailableAfterMs ?? 30_000;
      const now = Date.now();
      for (const [requestId, p] of this.#pending) {
        const hasOwnTimeout = p.kind === "acquire" && p.msg.timeoutMs !== undefined;
        if (!hasOwnTimeout && now - Math.max(this.#downSince, p.startedAt) >= limitMs) {
          this.#finish(requestId);
          if (p.kind === "acquire") this.#abandon(requestId);
          p.reject(new UnavailableError(`no RateQueue node was reachable for ${limitMs} ms; tried ${this.#urls.join(", ")}`));
        }
      }
    }, 250);
    this.#watchdog.unref();
  }

  /** Heartbeats for the session, and pings that find a node gone silent (see silentAfterMs). */
  #startHeartbeats(): void {
    this.#stopHeartbeats();
    this.#heartbeatTimer = setInterval(() => this.#send({ type: "heartbeat" }), Math.max(100, Math.floor(this.#ttlMs / HEARTBEATS_PER_TTL)));
    this.#heartbeatTimer.unref();
    const silentAfterMs = this.#options.silentAfterMs ?? SILENT_AFTER_MS;
    this.#probeTimer = setInterval(() => this.#probe(silentAfterMs), Math.floor(silentAfterMs / PROBES_PER_SILENCE));
    this.#probeTimer.unref();
    this.#reportTimer = setInterval(() => {
      for (const m of this.#takeReports()) this.#send(m);
    }, this.#options.deliveryReportMs ?? DELIVERY_REPORT_MS);
    this.#reportTimer.unref();
  }

  #stopHeartbeats(): void {
    if (this.#heartbeatTimer !== null) clearInterval(this.#heartbeatTimer);
    if (this.#probeTimer !== null) clearInterval(this.#probeTimer);
    if (this.#reportTimer !== null) clearInterval(this.#reportTimer);
    this.#heartbeatTimer = null;
    this.#probeTimer = null;
    this.#reportTimer = null;
  }

  /**
   * Whether `url` was given up for silence lately: followers keep naming a frozen leader until they elect
   * another (an election timeout), so a redirect there is not followed for twice silentAfterMs.
   */
  #recentlySilent(url: string): boolean {
    const silentAfterMs = this.#options.silentAfterMs ?? SILENT_AFTER_MS;
    return this.#silent !== null && this.#silent.url === url && Date.now() - this.#silent.at < 2 * silentAfterMs;
  }

  #probe(silentAfterMs: number): void {
    const ws = this.#ws;
    if (ws === null || this.#state !== "ready" || ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    // Idle, nothing is waiting on this node: no need to hear from it (and no pings from idle clients).
    if (this.#pending.size === 0 && this.#cancels.size === 0) {
      this.#heardAt = now;
      return;
    }
    if (now - this.#heardAt > silentAfterMs) {
      // The close handler marks this URL as lost and reconnects elsewhere; pending requests are resent there.
      if (this.#wsUrl !== null) this.#silent = { url: this.#wsUrl, at: now };
      ws.terminate();
      return;
    }
    this.#pingSentAt ??= performance.now();
    ws.ping();
  }

  /**
   * The caller can send now: tallies how long after its grant's log time that is (docs/protocol.md, "Delivery
   * reports"). Log time now = this clock + the largest recent (sentAt - arrival) + half the shortest recent
   * ping round trip. The reading is low by at most the trip's asymmetry and by the event-loop delay of the
   * best recent arrival; a delay of this process after that (a blocked event loop) is counted in full.
   */
  #delivered(lease: Lease): void {
    const nowMs = performance.now();
    const offset = this.#logOffset.read(nowMs);
    if (offset === null) return; // a node that does not send sentAt: no reading of log time
    const rtt = this.#negRttMs.read(nowMs);
    const oneWayMs = rtt === null ? 0 : -rtt / 2;
    const delayMs = Math.min(MAX_DELIVERY_MS, Math.max(0, Math.round(nowMs + offset + oneWayMs - lease.grantedAt)));
    let t = this.#deliveries.get(lease.resource);
    if (t === undefined) {
      t = { count: 0, sumMs: 0, maxMs: 0, buckets: new Array<number>(DELIVERY_BUCKETS_MS.length + 1).fill(0) };
      this.#deliveries.set(lease.resource, t);
    }
    if (t.count >= MAX_REPORT_COUNT) return;
    t.count++;
    t.sumMs += delayMs;
    t.maxMs = Math.max(t.maxMs, delayMs);
    t.buckets[deliveryBucket(delayMs)]! += 1;
  }

  /** One report per resource with delays since the last one; not tracked as pending (a lost one is not resent). */
  #takeReports(): ClientMessage[] {
    const out: ClientMessage[] = [];
    for (const [resource, t] of this.#deliveries) {
      out.push({ type: "report", requestId: this.#nextRequestId++, resource, count: t.count, sumMs: t.sumMs, maxMs: t.maxMs, buckets: t.buckets });
    }
    this.#deliveries.clear();
    return out;
  }

  #failAll(err: RateQueueError): void {
    for (const requestId of [...this.#pending.keys()]) this.#finish(requestId)?.reject(err);
  }

  async #close(): Promise<void> {
    const ws = this.#ws;
    const wasReady = this.#state === "ready";
    this.#state = "closed";
    this.#stopHeartbeats();
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    if (this.#watchdog !== null) clearInterval(this.#watchdog);
    this.#failAll(new UnavailableError("the client was closed"));
    if (ws === null) return;
    if (wasReady && ws.readyState === WebSocket.OPEN) {
      ws.send(encodeClientFrame([...this.#takeReports(), { type: "goodbye" }]));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2_000);
        ws.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    } else ws.terminate();
    this.#ws = null;
  }
}

function checkResource(resource: unknown): void {
  if (typeof resource !== "string" || !NAME_PATTERN.test(resource)) {
    throw new InvalidError(`resource ${JSON.stringify(resource)} is not a resource name (1-128 of A-Z a-z 0-9 . _ : / -)`);
  }
}

function checkLoad(load: unknown, what: string): void {
  // Loads are whole units (tokens), as the cluster counts them exactly.
  const ok = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= Bounds.unitsMax;
  if (typeof load === "number") {
    if (!ok(load)) throw new InvalidError(`${what} must be a whole number from 0 to ${Bounds.unitsMax}, got ${load}`);
    return;
  }
  if (typeof load !== "object" || load === null || Array.isArray(load)) {
    throw new InvalidError(`${what} must be a number or an object of dimension -> amount, e.g. { input: 1200, output: 1024 }`);
  }
  const entries = Object.entries(load);
  if (entries.length === 0 || entries.length > Bounds.dimensionsMax) throw new InvalidError(`${what} must name 1 to ${Bounds.dimensionsMax} dimensions`);
  for (const [dim, n] of entries) {
    if (!NAME_PATTERN.test(dim) || dim === "__proto__") throw new InvalidError(`${what}: "${dim}" is not a dimension name`);
    if (!ok(n)) throw new InvalidError(`${what}.${dim} must be a whole number from 0 to ${Bounds.unitsMax}, got ${String(n)}`);
  }
}

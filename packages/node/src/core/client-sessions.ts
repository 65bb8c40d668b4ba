import type { Logger } from "pino";
import { commandProblem, DEFAULT_PRIORITY, type Command, type Effect } from "@ratequeue/limiter";
import {
  ErrorCode,
  wireCodeOf,
  PROTOCOL_VERSION,
  type ClientMessage,
  type Hello,
  type Load,
  type NodeInfo,
  type ServerMessage,
} from "@ratequeue/protocol";
import { acquireRefusal, canAcquire, ttlRefusal, type KeyScope } from "../state/keys.js";
import type { OpResult } from "./cluster-state.js";
import { CloseCode, type ClientLink, type NodeEnv, type TimerHandle } from "./env.js";
import { NotLeaderError, type NodeCore } from "./node-core.js";
import type { LimiterCommand } from "./ops.js";

export interface ClientSessionsOptions {
  readonly core: NodeCore;
  readonly env: NodeEnv;
  readonly logger: Logger;
  readonly sessionTtlMs: number;
  /** Every node and the URL clients use to reach it. */
  readonly nodes: readonly NodeInfo[];
  /** Leader heartbeats for attached sessions are batched into one entry this often. */
  readonly heartbeatFlushMs?: number;
  /** How long a node that knows no leader holds a hello, waiting for an election to end (default 3 s). */
  readonly leaderWaitMs?: number;
  /**
   * Whether this node's link to the leader is up. When it is down, the leader may be dead, and Raft notices only
   * at the election timeout: a hello is held then as if no leader were known, rather than sent to a node that may
   * be gone. Default: always up.
   */
  readonly leaderReachable?: (leaderId: string) => boolean;
}

const LEADER_WAIT_MS = 3_000;

type ConnState = "hello" | "opening" | "ready" | "closed";

/**
 * Most acquires one connection may have unanswered (queued or in flight).
 * The limiter keeps every waiter in memory, so a runaway client must hit a
 * wall here rather than grow the replicated state without bound.
 */
export const PENDING_ACQUIRES_MAX = 10_000;

/** One client connection's state, owned by ClientSessions. */
export class ClientConnection {
  state: ConnState = "hello";
  scope: KeyScope | null = null;
  /** The id of the stored key that authenticated this connection. */
  keyId: string | null = null;
  /** The hello's clientName, if it gave one: the dashboard names a cooldown's reporter with it. */
  clientName: string | null = null;
  sessionId: string | null = null;
  /** Request ids of tryAcquire calls still unanswered: their time-outs are reported as RQ_WOULD_WAIT. */
  readonly tryRequests = new Set<string>();
  /** Acquires sent and not yet granted or rejected. */
  readonly pendingAcquires = new Set<string>();

  constructor(
    readonly link: ClientLink,
    readonly remote: string,
  ) {}
}

/**
 * The client side of a node: hello and authentication, sessions, turning
 * client messages into log operations, and routing applied effects back to
 * the connection that holds each session. Deterministic given its NodeEnv.
 */
export class ClientSessions {
  readonly #o: ClientSessionsOptions;
  readonly #bySession = new Map<string, ClientConnection>();
  readonly #connections = new Set<ClientConnection>();
  #heartbeatsDue = new Set<string>();
  #heartbeatTimer: TimerHandle | null = null;
  /**
   * Connections waiting for a leader to be known (answered when an election ends, or after leaderWaitMs): hellos
   * that reached this node while it knew no leader (`hello` set), and clients of this node when it lost leadership
   * with no successor known yet (`hello` null), so that they are sent straight to the new leader rather than away
   * to search with back-off.
   */
  readonly #awaitingLeader = new Map<ClientConnection, { hello: Hello | null; timer: TimerHandle }>();

  constructor(options: ClientSessionsOptions) {
    this.#o = options;
    options.core.onApply((results) => this.#route(results));
    options.core.onRoleChange((role) => {
      if (role === "leader") this.#admitAwaitingLeader();
      else this.#redirectAll();
    });
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  connect(link: ClientLink, remote: string): ClientConnection {
    const conn = new ClientConnection(link, remote);
    this.#connections.add(conn);
    return conn;
  }

  /** The connection went away (without a goodbye): the session lives on until its TTL, for a resume. */
  disconnected(conn: ClientConnection): void {
    if (conn.state === "closed") return;
    conn.state = "closed";
    this.#connections.delete(conn);
    this.#dropAwaiting(conn);
    if (conn.sessionId !== null && this.#bySession.get(conn.sessionId) === conn) this.#bySession.delete(conn.sessionId);
    this.#o.logger.info({ session: conn.sessionId, remote: conn.remote }, "client disconnected");
  }

  /**
   * Planned stop: every client is told where the leader is (`notLeader` naming it, or naming nobody if this node
   * is the leader or knows none) and its connection is closed, so it goes straight there instead of finding out
   * by a dropped connection. Call after `NodeCore.handOver`.
   */
  goAway(): void {
    const leader = this.#o.core.leader === this.#o.core.id ? null : this.#o.core.leader;
    for (const conn of [...this.#connections]) {
      this.#dropAwaiting(conn);
      this.#notLeader(conn, leader);
    }
  }

  /** Closes every connection (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const conn of [...this.#connections]) {
      conn.link.close(code, reason);
      this.disconnected(conn);
    }
    if (this.#heartbeatTimer !== null) this.#o.env.clearTimer(this.#heartbeatTimer);
  }

  /** A decoded frame's messages, in order. */
  receive(conn: ClientConnection, messages: readonly ClientMessage[]): void {
    for (const m of messages) {
      if (conn.state === "closed") return;
      if (conn.state === "hello") {
        if (m.type !== "hello") return this.#fail(conn, ErrorCode.RQ_PROTOCOL, "the first message must be a hello", CloseCode.PROTOCOL);
        this.#hello(conn, m);
        continue;
      }
      if (m.type === "hello") return this.#fail(conn, ErrorCode.RQ_PROTOCOL, "hello was already received", CloseCode.PROTOCOL);
      if (conn.state === "opening") {
        // The session is being opened; requests sent before the welcome are a client bug.
        return this.#fail(conn, ErrorCode.RQ_PROTOCOL, "wait for the welcome before sending requests", CloseCode.PROTOCOL);
      }
      this.#request(conn, m);
    }
  }

  // ---------------------------------------------------------------------------

  #hello(conn: ClientConnection, hello: Hello): void {
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      return this.#fail(
        conn,
        ErrorCode.RQ_PROTOCOL_VERSION,
        `this node speaks protocol ${PROTOCOL_VERSION}, the client ${hello.protocolVersion}`,
        CloseCode.PROTOCOL,
      );
    }
    const core = this.#o.core;
    // Only the leader judges a key or a session to resume: a follower may not have applied a key's creation (or
    // revocation) yet, and refusing a key the cluster just created would be wrong. So every client is sent on to
    // the leader first, and a new leader answers only once it has applied what earlier leaders committed: before,
    // a session opened just before a failover would look unknown, and its resent requests would open a new one.
    if (!core.isLeader) return this.#liveLeader() === null ? this.#awaitLeader(conn, hello) : this.#notLeader(conn);
    conn.state = "opening";
    core.whenCaughtUp(() => this.#admit(conn, hello));
  }

  /**
   * No leader is known (an election is on, or this node is cut off), or the leader looks dead. Rather than send
   * the client away to poll with back-off, which after a leader's death added a few hundred ms to the election,
   * hold the hello and answer it the moment a leader is known: admitted here if this node won, sent to the
   * winner if not. After leaderWaitMs it is answered with whatever this node knows.
   */
  #awaitLeader(conn: ClientConnection, hello: Hello | null): void {
    if (hello !== null) conn.state = "opening";
    if (this.#awaitingLeader.has(conn)) return;
    const timer = this.#o.env.setTimer(() => {
      if (this.#awaitingLeader.delete(conn)) this.#notLeader(conn);
    }, this.#o.leaderWaitMs ?? LEADER_WAIT_MS);
    this.#awaitingLeader.set(conn, { hello, timer });
  }

  /** This node's link to `peerId` opened: hellos held because the leader looked unreachable may go to it now. */
  peerLinkOpened(peerId: string): void {
    if (this.#awaitingLeader.size === 0 || this.#o.core.isLeader || this.#o.core.leader !== peerId) return;
    this.#redirectAll();
  }

  #admitAwaitingLeader(): void {
    for (const [conn, { hello, timer }] of [...this.#awaitingLeader]) {
      this.#o.env.clearTimer(timer);
      this.#awaitingLeader.delete(conn);
      // A client held since this node lost leadership had requests in flight that failed with it: it must
      // reconnect (here) and resend them, so it is redirected to this node rather than kept.
      if (hello === null) this.#notLeader(conn);
      else this.#o.core.whenCaughtUp(() => this.#admit(conn, hello));
    }
  }

  #dropAwaiting(conn: ClientConnection): void {
    const awaiting = this.#awaitingLeader.get(conn);
    if (awaiting === undefined) return;
    this.#o.env.clearTimer(awaiting.timer);
    this.#awaitingLeader.delete(conn);
  }

  #admit(conn: ClientConnection, hello: Hello): void {
    // Closed (or redirected) while the new leader caught up, or held for the next leader after losing leadership.
    if (conn.state !== "opening" || this.#awaitingLeader.has(conn)) return;
    const core = this.#o.core;
    if (!core.isLeader) return this.#notLeader(conn);
    const key = this.#authenticate(hello.apiKey);
    if (key === null) {
      this.#o.logger.warn({ remote: conn.remote }, "client refused: unknown API key");
      return this.#fail(conn, ErrorCode.RQ_UNAUTHORIZED, "unknown or revoked API key", CloseCode.UNAUTHORIZED);
    }
    if (key.scope === "metrics") {
      this.#o.logger.warn({ remote: conn.remote, key: key.id }, "client refused: a metrics key cannot open a session");
      return this.#fail(conn, ErrorCode.RQ_FORBIDDEN, "this key may read metrics only; it cannot open a session", CloseCode.UNAUTHORIZED);
    }
    conn.scope = key.scope;
    conn.keyId = key.id;
    conn.clientName = hello.clientName ?? null;
    // Sessions belong to the key that opened them.
    const owner = key.id;
    const ttlMsMax = typeof key.scope === "string" ? undefined : key.scope.ttlMsMax;
    const ttlMs = hello.ttlMs ?? Math.min(this.#o.sessionTtlMs, ttlMsMax ?? Infinity);
    const tooLong = ttlRefusal(key.scope, ttlMs);
    if (tooLong !== null) {
      this.#o.logger.warn({ remote: conn.remote, key: key.id, ttlMs }, "client refused: session TTL beyond its key's scope");
      return this.#fail(conn, ErrorCode.RQ_FORBIDDEN, tooLong, CloseCode.UNAUTHORIZED);
    }
    const open = (): void => {
      const sessionId = this.#o.env.randomId();
      core
        .propose({ t: "limiter", cmd: { type: "openSession", sessionId, ttlMs }, owner })
        .then((r) => (hasEffect(r, "session") ? this.#welcome(conn, sessionId, ttlMs, false) : this.#refuseOpen(conn, r)))
        .catch((err: Error) => this.#proposalFailed(conn, err));
    };
    // Only the key that opened a session may resume it (session ids are secrets too, but keys are the authority).
    if (hello.resume === undefined || core.state.ownerOf(hello.resume) !== owner) return open();
    const resume = hello.resume;
    // Resuming a session this leader has applied with at least half its TTL left: welcomed at once, without waiting
    // for a commit, which after a failover put a whole commit round before the client could resend its requests.
    // This leader has applied everything earlier leaders committed (whenCaughtUp), so the session is live as of
    // now; the renewing heartbeat is proposed before the welcome, so it precedes the requests the client resends
    // in the log. Should the session still have ended before they apply, they are refused as RQ_SESSION_EXPIRED
    // and the client sends them again in a new session (nothing of them happened).
    const expiresAt = core.state.limiter.sessionExpiresAt(resume);
    if (expiresAt !== null && expiresAt - core.state.limiter.lastAt >= ttlMs / 2) {
      if (core.proposeQuietly({ t: "limiter", cmd: { type: "heartbeat", sessionId: resume } })) return this.#welcome(conn, resume, ttlMs, true);
    }
    // Otherwise a committed heartbeat proves the session is alive (and renews it); if it is gone, a new one opens.
    core
      .propose({ t: "limiter", cmd: { type: "heartbeat", sessionId: resume } })
      .then((r) => (hasEffect(r, "session") ? this.#welcome(conn, resume, ttlMs, true) : open()))
      .catch((err: Error) => this.#proposalFailed(conn, err));
  }

  /**
   * The priority and lane to propose for an acquire under a key's scope, or why the scope forbids it. A bounded key's
   * omitted priority becomes min(default, priorityMax) and its omitted lane the resource's default lane, named
   * explicitly so the limiter applies exactly what was checked.
   */
  #scopedAcquire(scope: KeyScope, m: Extract<ClientMessage, { type: "acquire" }>): { priority?: number; lane?: string } | string {
    if (typeof scope === "string" || (scope.priorityMax === undefined && scope.lanes === undefined && scope.loadMax === undefined)) {
      return { ...(m.priority === undefined ? {} : { priority: m.priority }), ...(m.lane === undefined ? {} : { lane: m.lane }) };
    }
    const priority = m.priority ?? Math.min(DEFAULT_PRIORITY, scope.priorityMax ?? DEFAULT_PRIORITY);
    let lane = m.lane ?? null;
    if (lane === null && scope.lanes !== undefined) lane = this.#o.core.state.limiter.resource(m.resource)?.config.defaultLane ?? null;
    const refusal = acquireRefusal(scope, { resource: m.resource, priority, lane, load: m.load });
    if (refusal !== null) return refusal;
    return { priority, ...(lane === null ? {} : { lane }) };
  }

  /** The key table is the only authority, admin keys included (the bootstrap --admin-key is seeded into it). */
  #authenticate(apiKey: string): { scope: KeyScope; id: string } | null {
    const stored = this.#o.core.state.keys.verify(apiKey);
    return stored === null ? null : { scope: stored.scope, id: stored.id };
  }

  #welcome(conn: ClientConnection, sessionId: string, ttlMs: number, resumed: boolean): void {
    if (conn.state !== "opening") return;
    conn.state = "ready";
    conn.sessionId = sessionId;
    const previous = this.#bySession.get(sessionId);
    if (previous !== undefined && previous !== conn) {
      // The same session on a new connection: the old one is stale.
      previous.link.close(CloseCode.NORMAL, "session resumed on another connection");
      this.disconnected(previous);
    }
    this.#bySession.set(sessionId, conn);
    const core = this.#o.core;
    conn.link.send({
      type: "welcome",
      protocolVersion: PROTOCOL_VERSION,
      sessionId,
      ttlMs,
      nodeId: core.id,
      leader: core.leader,
      nodes: this.#o.nodes,
      resumed,
    });
    this.#o.logger.info({ session: sessionId, remote: conn.remote, resumed }, "client connected");
  }

  #refuseOpen(conn: ClientConnection, r: OpResult): void {
    const err = r.effects.find((e) => e.type === "error");
    this.#fail(conn, ErrorCode.RQ_INVALID, err?.type === "error" ? err.message : "could not open a session", CloseCode.PROTOCOL);
  }

  #request(conn: ClientConnection, m: ClientMessage): void {
    const core = this.#o.core;
    const sessionId = conn.sessionId!;
    if (m.type === "heartbeat") {
      this.#heartbeatsDue.add(sessionId);
      this.#armHeartbeatFlush();
      return;
    }
    if (this.#awaitingLeader.has(conn)) {
      // Held until the next leader is known; the client resends its requests there. A goodbye just closes.
      if (m.type === "goodbye") {
        conn.link.close(CloseCode.NORMAL, "goodbye");
        this.disconnected(conn);
      }
      return;
    }
    if (!core.isLeader) return this.#notLeader(conn);
    switch (m.type) {
      case "acquire": {
        if (!canAcquire(conn.scope!, m.resource)) {
          return conn.link.send({ type: "rejected", requestId: m.requestId, code: ErrorCode.RQ_FORBIDDEN, message: forbidden(m.resource) });
        }
        const scoped = this.#scopedAcquire(conn.scope!, m);
        if (typeof scoped === "string") {
          return conn.link.send({ type: "rejected", requestId: m.requestId, code: ErrorCode.RQ_FORBIDDEN, message: scoped });
        }
        const requestId = String(m.requestId);
        if (!conn.pendingAcquires.has(requestId) && conn.pendingAcquires.size >= PENDING_ACQUIRES_MAX) {
          return conn.link.send({
            type: "rejected",
            requestId: m.requestId,
            code: ErrorCode.RQ_INVALID,
            message: `too many acquires waiting on this connection (at most ${PENDING_ACQUIRES_MAX})`,
          });
        }
        const cmd: LimiterCommand = {
          type: "acquire",
          sessionId,
          requestId,
          resource: m.resource,
          ...(m.load === undefined ? {} : { load: m.load }),
          ...(scoped.priority === undefined ? {} : { priority: scoped.priority }),
          ...(scoped.lane === undefined ? {} : { lane: scoped.lane }),
          ...(m.try === true ? { timeoutMs: 0 } : m.timeoutMs === undefined ? {} : { timeoutMs: m.timeoutMs }),
        };
        // Bounds, then the load's dimensions against the resource as configured now (cheap: map lookups), so a
        // request the limiter would refuse never reaches the log. The limiter checks again at apply.
        const problem = refusal(cmd) ?? core.state.limiter.acquireLoadProblem(m.resource, m.load);
        if (problem !== null) return conn.link.send({ type: "rejected", requestId: m.requestId, code: ErrorCode.RQ_INVALID, message: problem });
        conn.pendingAcquires.add(requestId);
        if (m.try === true) conn.tryRequests.add(requestId);
        // The answer (granted / queued / rejected) is routed from the applied effects by session.
        core
          .propose({ t: "limiter", cmd })
          .then((r) => {
            const err = r.effects.find((e) => e.type === "error");
            if (err?.type !== "error") return;
            conn.pendingAcquires.delete(requestId);
            conn.link.send({ type: "rejected", requestId: m.requestId, code: wireCodeOf(err.code), message: err.message });
          })
          .catch((err: Error) => this.#proposalFailed(conn, err));
        return;
      }
      case "release":
      case "settle": {
        const leaseId = parseLeaseId(m.leaseId);
        if (leaseId === null) {
          return conn.link.send({ type: "rejected", requestId: m.requestId, code: ErrorCode.RQ_INVALID, message: `unknown lease ${m.leaseId}` });
        }
        const cmd: LimiterCommand =
          m.type === "release" ? { type: "release", sessionId, leaseId } : { type: "settle", sessionId, leaseId, actual: m.actual };
        return this.#proposeAcked(conn, m.requestId, cmd);
      }
      case "cancel":
        core.proposeQuietly({ t: "limiter", cmd: { type: "cancel", sessionId, requestId: String(m.requestId) } });
        return;
      case "cooldown":
        if (!canAcquire(conn.scope!, m.resource)) {
          return conn.link.send({ type: "rejected", requestId: m.requestId, code: ErrorCode.RQ_FORBIDDEN, message: forbidden(m.resource) });
        }
        return this.#proposeAcked(conn, m.requestId, { type: "cooldown", resource: m.resource, retryAfterMs: m.retryAfterMs, by: reporter(conn) });
      case "goodbye":
        core
          .propose({ t: "limiter", cmd: { type: "closeSession", sessionId } })
          .finally(() => {
            conn.link.close(CloseCode.NORMAL, "goodbye");
            this.disconnected(conn);
          })
          .catch(() => undefined);
        return;
    }
  }

  /** Proposes a command whose answer is an ack (or a rejection carrying the limiter's error). */
  #proposeAcked(conn: ClientConnection, requestId: number, cmd: LimiterCommand): void {
    const problem = refusal(cmd) ?? (cmd.type === "settle" ? this.#o.core.state.limiter.settleLoadProblem(cmd.leaseId, cmd.actual) : null);
    if (problem !== null) return conn.link.send({ type: "rejected", requestId, code: ErrorCode.RQ_INVALID, message: problem });
    this.#o.core
      .propose({ t: "limiter", cmd })
      .then((r) => {
        const err = r.effects.find((e) => e.type === "error");
        if (err?.type === "error") conn.link.send({ type: "rejected", requestId, code: wireCodeOf(err.code), message: err.message });
        else conn.link.send({ type: "ack", requestId });
      })
      .catch((err: Error) => this.#proposalFailed(conn, err));
  }

  #proposalFailed(conn: ClientConnection, err: Error): void {
    if (conn.state === "closed" || this.#awaitingLeader.has(conn)) return; // a held client is redirected later
    if (err instanceof NotLeaderError) return this.#notLeader(conn);
    // Leadership moved (or the node stops) with the request in flight: the client reconnects and
    // resends under the same ids; exactly-once makes the resend safe whether or not this one applied.
    conn.link.close(CloseCode.NOT_LEADER, err.message.slice(0, 120));
    this.disconnected(conn);
  }

  /** Routes applied effects to the connections holding their sessions (on every node). */
  #route(results: readonly OpResult[]): void {
    for (const r of results) {
      if (r.op.t === "keyRemove") this.#revoke(r.op.id);
      for (const e of r.effects) {
        const sessionId = "sessionId" in e ? e.sessionId : null;
        if (sessionId === null) continue;
        const conn = this.#bySession.get(sessionId);
        if (conn === undefined) continue;
        const message = toServerMessage(conn, e);
        if (message !== null) conn.link.send(message);
        if (e.type === "sessionEnded") {
          if (e.reason === "expired") {
            conn.link.send({ type: "error", code: ErrorCode.RQ_SESSION_EXPIRED, message: "the session expired: its leases were released" });
          }
          conn.link.close(e.reason === "expired" ? CloseCode.SESSION_EXPIRED : CloseCode.NORMAL, `session ${e.reason}`);
          this.disconnected(conn);
        }
      }
    }
  }

  /** A deleted key stops working at once: connections it opened are closed (their sessions then run out their TTL). */
  #revoke(keyId: string): void {
    for (const conn of [...this.#connections]) {
      if (conn.keyId !== keyId || conn.state === "closed") continue;
      this.#o.logger.info({ key: keyId, session: conn.sessionId, remote: conn.remote }, "client closed: its API key was revoked");
      this.#fail(conn, ErrorCode.RQ_UNAUTHORIZED, "the API key was revoked", CloseCode.UNAUTHORIZED);
    }
  }

  /** The leader, if one is known and this node's link to it is up; null while a client is better off waiting. */
  #liveLeader(): string | null {
    const leader = this.#o.core.leader;
    return leader !== null && this.#o.leaderReachable?.(leader) !== false ? leader : null;
  }

  /**
   * This node is not the leader: every client goes to the live leader. With none known (an election is on, or this
   * node just handed leadership over and has not heard from its successor), clients are held until one is, so
   * that they go straight to it. A connection that has not said hello yet is left alone.
   */
  #redirectAll(): void {
    const leaderKnown = this.#liveLeader() !== null;
    for (const conn of [...this.#connections]) {
      if (conn.state === "hello") continue;
      if (leaderKnown) {
        this.#dropAwaiting(conn);
        this.#notLeader(conn);
      } else this.#awaitLeader(conn, null);
    }
  }

  #notLeader(conn: ClientConnection, leader = this.#o.core.leader): void {
    const url = this.#o.nodes.find((n) => n.id === leader)?.url ?? null;
    conn.link.send({ type: "notLeader", leader, url });
    conn.link.close(CloseCode.NOT_LEADER, "not the leader");
    this.disconnected(conn);
  }

  #fail(conn: ClientConnection, code: ErrorCode, message: string, closeCode: number): void {
    conn.link.send({ type: "error", code, message });
    conn.link.close(closeCode, message.slice(0, 120));
    this.disconnected(conn);
  }

  #armHeartbeatFlush(): void {
    if (this.#heartbeatTimer !== null) return;
    this.#heartbeatTimer = this.#o.env.setTimer(() => {
      this.#heartbeatTimer = null;
      const due = this.#heartbeatsDue;
      this.#heartbeatsDue = new Set();
      for (const sessionId of due) {
        if (this.#bySession.has(sessionId)) this.#o.core.proposeQuietly({ t: "limiter", cmd: { type: "heartbeat", sessionId } });
      }
    }, this.#o.heartbeatFlushMs ?? 200);
  }
}

function hasEffect(r: OpResult, type: Effect["type"]): boolean {
  return r.effects.some((e) => e.type === type);
}

/**
 * Why the state machine would refuse `cmd` (its shape, names and the ranges of the one bounds table), or
 * null. Checked before proposing, so a request the limiter refuses never reaches the log.
 */
function refusal(cmd: LimiterCommand): string | null {
  return commandProblem({ ...cmd, at: 0 } as Command);
}

function forbidden(resource: string): string {
  return `this API key may not use resource "${resource}"`;
}

/** Lease ids travel as decimal strings; the limiter numbers them. */
function parseLeaseId(text: string): number | null {
  if (!/^\d{1,15}$/.test(text)) return null;
  return Number(text);
}

/** A lease's load on the wire: the per-dimension object, or 0 when nothing was charged. */
function wireLoad(load: Readonly<Record<string, number>>): Load {
  return Object.keys(load).length === 0 ? 0 : load;
}

function toServerMessage(conn: ClientConnection, e: Effect): ServerMessage | null {
  switch (e.type) {
    case "granted":
      conn.tryRequests.delete(e.requestId);
      conn.pendingAcquires.delete(e.requestId);
      return {
        type: "granted",
        requestId: Number(e.requestId),
        lease: { id: String(e.leaseId), resource: e.resource, load: wireLoad(e.load), grantedAt: e.grantedAt },
      };
    case "queued":
      return conn.tryRequests.has(e.requestId) ? null : { type: "queued", requestId: Number(e.requestId) };
    case "rejected":
    case "timedOut":
    case "cancelled": {
      const wasTry = conn.tryRequests.delete(e.requestId);
      conn.pendingAcquires.delete(e.requestId);
      const code = wasTry && e.type === "timedOut" ? ErrorCode.RQ_WOULD_WAIT : wireCodeOf(e.code);
      return { type: "rejected", requestId: Number(e.requestId), code, message: e.message };
    }
    default:
      return null;
  }
}

/** Who a cooldown is reported by, for operators: the client's name, else the key that authenticated it. */
function reporter(conn: ClientConnection): string {
  if (conn.clientName !== null) return conn.clientName;
  return `key ${conn.keyId ?? "?"}`;
}

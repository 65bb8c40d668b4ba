import type { Logger } from "pino";
import { commandProblem, type Command, type Effect } from "@ratequeue/limiter";
import { ErrorCode, PROTOCOL_VERSION, type ClientMessage, type Hello, type NodeInfo, type ProtocolError } from "@ratequeue/protocol";
import type { DeliveryStats } from "../http/delivery-stats.js";
import { checkKey, scopedAcquire } from "../state/auth.js";
import { canAcquire, ttlRefusal } from "../state/keys.js";
import { ClientConnection, EARLY_REQUESTS_MAX, PENDING_ACQUIRES_MAX } from "./client-connection.js";
import type { OpResult } from "./cluster-state.js";
import { CloseCode, type ClientLink, type NodeEnv, type TimerHandle } from "./env.js";
import { HeldHellos } from "./held-hellos.js";
import type { NodeCore } from "./node-core.js";
import type { LimiterCommand, Op } from "./ops.js";
import type { Answer } from "./wire-answers.js";

export { ClientConnection, PENDING_ACQUIRES_MAX } from "./client-connection.js";

const LEADER_WAIT_MS = 3_000;

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
  /** Where clients' delivery reports go (the `report` message); without it reports are acknowledged and dropped. */
  readonly delivery?: DeliveryStats;
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
  /** Connections waiting for a leader to be known (held-hellos.ts). */
  readonly #awaitingLeader: HeldHellos;

  constructor(options: ClientSessionsOptions) {
    this.#o = options;
    this.#awaitingLeader = new HeldHellos(options.env, options.leaderWaitMs ?? LEADER_WAIT_MS, (conn) => this.#notLeader(conn));
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
    this.#awaitingLeader.drop(conn);
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
      this.#awaitingLeader.drop(conn);
      this.#notLeader(conn, leader);
    }
  }

  /** Closes every connection (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const conn of [...this.#connections]) this.#answer(conn, { kind: "closed", closeCode: code, reason });
    if (this.#heartbeatTimer !== null) this.#o.env.clearTimer(this.#heartbeatTimer);
  }

  /**
   * A frame that could not be decoded (or was not binary): `error` with its code, and the connection closes (1002;
   * `reason`: the close reason, default the message).
   */
  refuseFrame(conn: ClientConnection, problem: Pick<ProtocolError, "code" | "message">, reason?: string): void {
    const { code, message } = problem;
    this.#answer(conn, { kind: "connectionError", code, message, closeCode: CloseCode.PROTOCOL, ...(reason === undefined ? {} : { reason }) });
  }

  /** The client sent no hello in time: its connection closes (a no-op once it has said hello). */
  helloTimedOut(conn: ClientConnection, reason: string): void {
    if (conn.state === "hello") this.#answer(conn, { kind: "closed", closeCode: CloseCode.PROTOCOL, reason });
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
        // Sent behind the hello: handled once the session is open, or dropped with the hello if it is refused,
        // redirected or asked to resume a session that is gone (the client resends after the welcome then).
        if (conn.early.length >= EARLY_REQUESTS_MAX) {
          return this.#fail(conn, ErrorCode.RQ_PROTOCOL, `at most ${EARLY_REQUESTS_MAX} requests may wait for the welcome`, CloseCode.PROTOCOL);
        }
        conn.early.push(m);
        continue;
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
    this.#awaitingLeader.hold(conn, hello);
  }

  /** This node's link to `peerId` opened: hellos held because the leader looked unreachable may go to it now. */
  peerLinkOpened(peerId: string): void {
    if (this.#awaitingLeader.size === 0 || this.#o.core.isLeader || this.#o.core.leader !== peerId) return;
    this.#redirectAll();
  }

  #admitAwaitingLeader(): void {
    for (const [conn, hello] of this.#awaitingLeader.takeAll()) {
      // A client held since this node lost leadership had requests in flight that failed with it: it must
      // reconnect (here) and resend them, so it is redirected to this node rather than kept.
      if (hello === null) this.#notLeader(conn);
      else this.#o.core.whenCaughtUp(() => this.#admit(conn, hello));
    }
  }

  #admit(conn: ClientConnection, hello: Hello): void {
    // Closed (or redirected) while the new leader caught up, or held for the next leader after losing leadership.
    if (conn.state !== "opening" || this.#awaitingLeader.has(conn)) return;
    const core = this.#o.core;
    if (!core.isLeader) return this.#notLeader(conn);
    const check = checkKey(core.state.keys, hello.apiKey, "session");
    if (!check.ok) {
      if (check.key === null) this.#o.logger.warn({ remote: conn.remote }, "client refused: unknown API key");
      else this.#o.logger.warn({ remote: conn.remote, key: check.key.id }, "client refused: a metrics key cannot open a session");
      return this.#fail(conn, check.code, check.message, CloseCode.UNAUTHORIZED);
    }
    const key = check.key;
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
      this.#propose(conn, { t: "limiter", cmd: { type: "openSession", sessionId, ttlMs }, owner }, (r) =>
        hasEffect(r, "session") ? this.#welcome(conn, sessionId, ttlMs, false, hello.resume !== undefined) : this.#refuseOpen(conn, r),
      );
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
    this.#propose(conn, { t: "limiter", cmd: { type: "heartbeat", sessionId: resume } }, (r) =>
      hasEffect(r, "session") ? this.#welcome(conn, resume, ttlMs, true) : open(),
    );
  }

  /** `resumingFailed`: the hello asked to resume a session, and a new one was opened instead. */
  #welcome(conn: ClientConnection, sessionId: string, ttlMs: number, resumed: boolean, resumingFailed = false): void {
    if (conn.state !== "opening") return;
    conn.state = "ready";
    conn.sessionId = sessionId;
    conn.ttlMs = ttlMs;
    const previous = this.#bySession.get(sessionId);
    if (previous !== undefined && previous !== conn) {
      // The same session on a new connection: the old one is stale.
      this.#answer(previous, { kind: "closed", closeCode: CloseCode.NORMAL, reason: "session resumed on another connection" });
    }
    this.#bySession.set(sessionId, conn);
    const core = this.#o.core;
    this.#answer(conn, { kind: "welcome", sessionId, ttlMs, nodeId: core.id, leader: core.leader, nodes: this.#o.nodes, resumed });
    this.#o.logger.info({ session: sessionId, remote: conn.remote, resumed }, "client connected");
    const early = conn.early;
    conn.early = [];
    // Requests meant for a session that is gone are dropped: the client learns it from `resumed: false` and
    // resends them in the new session itself (docs/protocol.md, section 8).
    if (early.length > 0 && (resumed || !resumingFailed)) this.receive(conn, early);
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
    // Any request shows the client is alive, as a heartbeat does: a client whose heartbeats wait behind thousands of
    // its own requests in the node's socket buffer must not expire while the node is still reading them. Renewed at
    // most twice per TTL, when less than half of it is left (the SDKs' heartbeats renew three times per TTL).
    const expiresAt = core.state.limiter.sessionExpiresAt(sessionId);
    if (core.isLeader && expiresAt !== null && expiresAt - core.state.limiter.lastAt < conn.ttlMs / 2) {
      this.#heartbeatsDue.add(sessionId);
      this.#armHeartbeatFlush();
    }
    if (this.#awaitingLeader.has(conn)) {
      // Held until the next leader is known; the client resends its requests there. A goodbye just closes.
      if (m.type === "goodbye") this.#answer(conn, GOODBYE);
      return;
    }
    if (!core.isLeader) return this.#notLeader(conn);
    switch (m.type) {
      case "acquire": {
        if (!canAcquire(conn.scope!, m.resource)) return this.#refuse(conn, m.requestId, ErrorCode.RQ_FORBIDDEN, forbidden(m.resource));
        const scoped = scopedAcquire(conn.scope!, m, (resource) => core.state.limiter.resource(resource)?.config.defaultLane ?? null);
        if (typeof scoped === "string") return this.#refuse(conn, m.requestId, ErrorCode.RQ_FORBIDDEN, scoped);
        const requestId = String(m.requestId);
        if (!conn.pendingAcquires.has(requestId) && conn.pendingAcquires.size >= PENDING_ACQUIRES_MAX) {
          return this.#refuse(conn, m.requestId, ErrorCode.RQ_INVALID, `too many acquires waiting on this connection (at most ${PENDING_ACQUIRES_MAX})`);
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
        if (problem !== null) return this.#refuse(conn, m.requestId, ErrorCode.RQ_INVALID, problem);
        conn.pendingAcquires.add(requestId);
        if (m.try === true) conn.tryRequests.add(requestId);
        // The answer (granted / queued / rejected) is routed from the applied effects by session; a command the
        // limiter refuses names no session, so its `error` comes back with the proposal.
        return this.#propose(conn, { t: "limiter", cmd }, (r) => {
          const error = refusalOf(r);
          if (error !== null) this.#answer(conn, { kind: "applyRefused", requestId: m.requestId, error });
        });
      }
      case "release":
      case "settle": {
        const leaseId = parseLeaseId(m.leaseId);
        if (leaseId === null) return this.#refuse(conn, m.requestId, ErrorCode.RQ_INVALID, `unknown lease ${m.leaseId}`);
        const cmd: LimiterCommand =
          m.type === "release" ? { type: "release", sessionId, leaseId } : { type: "settle", sessionId, leaseId, actual: m.actual };
        return this.#proposeAcked(conn, m.requestId, cmd);
      }
      case "cancel":
        core.proposeQuietly({ t: "limiter", cmd: { type: "cancel", sessionId, requestId: String(m.requestId) } });
        return;
      case "cooldown":
        if (!canAcquire(conn.scope!, m.resource)) return this.#refuse(conn, m.requestId, ErrorCode.RQ_FORBIDDEN, forbidden(m.resource));
        return this.#proposeAcked(conn, m.requestId, { type: "cooldown", resource: m.resource, retryAfterMs: m.retryAfterMs, by: reporter(conn) });
      case "report":
        // Node-local figures, not replicated: checked here and answered at once (the decoder checked the fields).
        if (!canAcquire(conn.scope!, m.resource)) return this.#refuse(conn, m.requestId, ErrorCode.RQ_FORBIDDEN, forbidden(m.resource));
        if (core.state.limiter.resource(m.resource) === null) {
          return this.#refuse(conn, m.requestId, ErrorCode.RQ_UNKNOWN_RESOURCE, `no resource "${m.resource}"`);
        }
        this.#o.delivery?.record(m, { session: sessionId, client: conn.clientName });
        return void this.#answer(conn, { kind: "ack", requestId: m.requestId });
      case "goodbye": {
        // Closed whatever became of the closeSession (its sessionEnded usually closes the connection first).
        const bye = (): void => void this.#answer(conn, GOODBYE);
        core.propose({ t: "limiter", cmd: { type: "closeSession", sessionId } }).then(bye, bye);
        return;
      }
    }
  }

  /** Proposes a command whose answer is an ack (or a rejection carrying the limiter's error). */
  #proposeAcked(conn: ClientConnection, requestId: number, cmd: LimiterCommand): void {
    const problem = refusal(cmd) ?? (cmd.type === "settle" ? this.#o.core.state.limiter.settleLoadProblem(cmd.leaseId, cmd.actual) : null);
    if (problem !== null) return this.#refuse(conn, requestId, ErrorCode.RQ_INVALID, problem);
    this.#propose(conn, { t: "limiter", cmd }, (r) => {
      const error = refusalOf(r);
      this.#answer(conn, error === null ? { kind: "ack", requestId } : { kind: "applyRefused", requestId, error });
    });
  }

  /**
   * Proposes `op` for `conn`'s client: `applied` gets its result once it applies here; a proposal that fails
   * before (not the leader, leadership moved, the node stops, no apply in time) is answered as `proposalFailed`.
   * Every proposal made for a client goes through here, so none translates a failure itself.
   */
  #propose(conn: ClientConnection, op: Op, applied: (r: OpResult) => void): void {
    this.#o.core
      .propose(op)
      .then(applied)
      .catch((error: Error) => this.#answer(conn, { kind: "proposalFailed", error, ...this.#leaderAddress() }));
  }

  /**
   * The one road back to a client: every frame and close a client gets is an Answer sent through here (and
   * `ClientConnection.answer`, which translates it). A connection the answer closes is forgotten.
   */
  #answer(conn: ClientConnection, a: Answer): void {
    // A held client is redirected once a leader is known; its in-flight proposals failed with the old leadership.
    if (a.kind === "proposalFailed" && this.#awaitingLeader.has(conn)) return;
    const sent = conn.answer(a);
    if (sent !== null && sent.close !== null) this.disconnected(conn);
  }

  #refuse(conn: ClientConnection, requestId: number, code: ErrorCode, message: string): void {
    this.#answer(conn, { kind: "refused", requestId, code, message });
  }

  /** The leader this node knows and the URL its clients reach it at. */
  #leaderAddress(leader = this.#o.core.leader): { leader: string | null; url: string | null } {
    return { leader, url: this.#o.nodes.find((n) => n.id === leader)?.url ?? null };
  }

  /** Routes applied effects to the connections holding their sessions (on every node). */
  #route(results: readonly OpResult[]): void {
    // The log time grants leave at, for the clients' delay measurement (docs/protocol.md, "Delivery reports").
    let sentAt: number | null = null;
    for (const r of results) {
      if (r.op.t === "keyRemove") this.#revoke(r.op.id);
      for (const e of r.effects) {
        const sessionId = "sessionId" in e ? e.sessionId : null;
        if (sessionId === null) continue;
        const conn = this.#bySession.get(sessionId);
        if (conn === undefined) continue;
        if (e.type === "granted") sentAt ??= this.#o.core.clusterNow();
        this.#answer(conn, { kind: "applied", effect: e, sentAt: e.type === "granted" ? sentAt : null });
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
        this.#awaitingLeader.drop(conn);
        this.#notLeader(conn);
      } else this.#awaitLeader(conn, null);
    }
  }

  #notLeader(conn: ClientConnection, leader = this.#o.core.leader): void {
    this.#answer(conn, { kind: "notLeader", ...this.#leaderAddress(leader) });
  }

  #fail(conn: ClientConnection, code: ErrorCode, message: string, closeCode: number): void {
    this.#answer(conn, { kind: "connectionError", code, message, closeCode });
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

const GOODBYE: Answer = { kind: "closed", closeCode: CloseCode.NORMAL, reason: "goodbye" };

/** The limiter's refusal of the proposal's command, or null if it was carried out. */
function refusalOf(r: OpResult): Extract<Effect, { type: "error" }> | null {
  for (const e of r.effects) if (e.type === "error") return e;
  return null;
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

/** Who a cooldown is reported by, for operators: the client's name, else the key that authenticated it. */
function reporter(conn: ClientConnection): string {
  if (conn.clientName !== null) return conn.clientName;
  return `key ${conn.keyId ?? "?"}`;
}

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { createDashboard } from "@ratequeue/dashboard";
import type { NodeInfo } from "@ratequeue/protocol";
import { ConfigError, type NodeConfig } from "./config.js";
import { ClientSessions } from "./core/client-sessions.js";
import type { NodeEnv, TimerHandle } from "./core/env.js";
import { checkResourceBody, NodeCore } from "./core/node-core.js";
import type { Op } from "./core/ops.js";
import { DeliveryStats, deliveryMarginOf } from "./http/delivery-stats.js";
import { createMetrics } from "./http/metrics.js";
import { GrantLog } from "./http/grant-log.js";
import { handleHttp } from "./http/routes.js";
import { createLogger } from "./logger.js";
import { PeerLink } from "./peer/peer-link.js";
import { PEER_PATH } from "./peer/transport.js";
import { CLIENT_PATH, ClientSocketServer } from "./server/client-socket.js";
import { viewerAccess } from "./state/auth.js";
import { keyFromSecret } from "./state/keys.js";
import { LevelStore } from "./storage/level-store.js";
import { checkStartMode, startJoining } from "./membership/join.js";
import { MemberChanges } from "./membership/changes.js";
import { ClusterIdentity } from "./membership/cluster-id.js";
import { Membership } from "./membership/membership.js";

/** A running node; `stop()` shuts it down cleanly. */
export interface RunningNode {
  readonly core: NodeCore;
  readonly server: Server;
  readonly logger: Logger;
  stop(): Promise<void>;
}

/** Starts a node from its configuration (the `ratequeue start` command). */
export async function startNode(config: NodeConfig): Promise<RunningNode> {
  const logger = createLogger({ nodeId: config.id, level: config.logLevel, pretty: config.prettyLogs });
  const secure = config.tls !== null;
  const tlsFiles = config.tls === null ? null : { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
  const peerCa = config.tls?.peerCaFile == null ? null : readFileSync(config.tls.peerCaFile);
  // Both are kept up to date in place by Membership as members come and go.
  const nodes: NodeInfo[] = [...config.peers].map(([id, hp]) => ({ id, url: `${secure ? "wss" : "ws"}://${hostOf(hp.host)}:${hp.port}` }));
  const httpUrls = new Map([...config.peers].map(([id, hp]) => [id, `${secure ? "https" : "http"}://${hostOf(hp.host)}:${hp.port}`]));
  httpUrls.set(config.id, `${secure ? "https" : "http"}://${hostOf(config.advertise.host)}:${config.advertise.port}`);
  const bootstrapOps = bootstrapOpsOf(config);

  const store = new LevelStore({ path: config.dataDir, nodeId: config.id });
  const link = new PeerLink({
    selfId: config.id,
    clusterSecrets: config.previousClusterSecret === null ? [config.clusterSecret] : [config.clusterSecret, config.previousClusterSecret],
    peers: nodes.map((n) => ({ id: n.id, url: n.url! })),
    logger,
    clockWarnMs: config.clockWarnMs,
    // Our certificate as a client certificate: a peer that requires one (--tls-peer-ca) checks it.
    ...(tlsFiles === null ? {} : { clientOptions: { cert: tlsFiles.cert, key: tlsFiles.key } }),
  });

  const env: NodeEnv = {
    monotonicNow: () => performance.now(),
    wallNow: () => Date.now(),
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (h: TimerHandle) => clearTimeout(h as NodeJS.Timeout),
    defer: (fn) => void setImmediate(fn),
    randomId: () => randomBytes(16).toString("base64url"),
    randomSeed: () => randomBytes(4).readUInt32LE(0),
    sendPeer: (to, messages) => link.send(to, messages),
  };

  const core = new NodeCore({
    id: config.id,
    voters: [...config.peers.keys()], // empty without --peers: the node waits to be added (--join) or has data

    store,
    env,
    logger,
    tickMs: config.tickMs,
    electionTicks: config.electionTicks,
    heartbeatTicks: config.heartbeatTicks,
    snapshotEntries: config.snapshotEntries,
    bootstrapOps,
    adminSeed: config.adminKey === null ? null : keyFromSecret(config.adminKey, "bootstrap admin", "admin"),
  });
  const membership = new Membership({
    core: core,
    logger,
    secure,
    self: config.advertise,
    seed: config.peers,
    setPeers: (peers) => link.setPeers(peers),
    httpUrls,
    nodes,
  });
  const delivery = new DeliveryStats({
    logger,
    now: () => env.monotonicNow(),
    exists: (resource) => core.state.limiter.resource(resource) !== null,
    marginMs: (resource) => deliveryMarginOf(core.state.limiter.resource(resource)?.config.limits ?? []),
  });
  const sessions = new ClientSessions({
    core: core,
    delivery,
    env,
    logger,
    sessionTtlMs: config.sessionTtlMs,
    nodes,
    leaderWaitMs: config.leaderWaitMs,
    leaderReachable: (id) => link.isConnected(id),
  });
  const clients = new ClientSocketServer(sessions, logger);
  const registry = createMetrics(core, () => clients.connectionCount, link.clocks, delivery);
  // The web dashboard (packages/dashboard): reads live views and keys, counts grants from applied entries.
  const dashboard = createDashboard({
    nodeId: config.id,
    nodeUrls: httpUrls,
    resources: (atMs) => {
      const limiter = core.state.limiter;
      return limiter.resourceNames().flatMap((name) => limiter.resource(name, atMs) ?? []);
    },
    logTime: () => core.logTime,
    // Views are computed at log time by this node's stamp clock, not the wall clock (which log time may lag).
    now: () => core.clusterNow(),
    authorize: (secret) => viewerAccess(core.state.keys, secret),
    onError: (err, context) => logger.error({ err }, `dashboard: ${context} failed`),
  });
  core.onApply(dashboard.onApply);
  const grantLog = new GrantLog();
  core.onApply((results, at, index) => grantLog.record(results, at, index));

  // With --tls-peer-ca every TLS connection is asked for a client certificate, but only /v1/peer requires one (below):
  // clients, the admin API and the dashboard are served without.
  const server = tlsFiles !== null
    ? createHttpsServer({ ...tlsFiles, ...(peerCa === null ? {} : { ca: peerCa, requestCert: true, rejectUnauthorized: false }) })
    : createHttpServer();
  const httpContext = {
    core: core,
    registry,
    logger,
    publicMetrics: config.publicMetrics,
    httpUrls,
    connections: () => clients.connectionCount,
    dashboard: dashboard.handle,
    grantLog,
    peerConnected: (id: string) => link.isConnected(id),
    peerClock: (id: string) => link.clockOffset(id),
    delivery,
    membership,
    memberChanges: new MemberChanges({
      core: core,
      logger,
      env,
      everyMs: config.tickMs,
      peerConnected: (id) => link.isConnected(id),
      addressOf: (id) => membership.addressOf(id),
    }),
    clusterId: () => link.clusterId,
  };
  server.on("request", (req, res) => void handleHttp(httpContext, req, res));
  server.on("upgrade", (req, socket, head) => {
    const path = (req.url ?? "").split("?")[0];
    if (path === CLIENT_PATH) clients.handleUpgrade(req, socket, head);
    else if (path === PEER_PATH) {
      if (peerCa !== null && (req.socket as TLSSocket).authorized !== true) {
        logger.warn({ remote: req.socket.remoteAddress, reason: (req.socket as TLSSocket).authorizationError ?? "no client certificate" }, "peer link refused: no client certificate signed by --tls-peer-ca");
        return void socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      }
      link.handleUpgrade(req, socket, head);
    }
    else socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  // A connection that never finishes its request head is dropped after 10 s (Node's default is 60 s or more), and
  // the process never holds more sockets than this, upgraded or not.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxConnections = 20_000;

  await core.start();
  const identity = new ClusterIdentity({ core: core, store, logger, onKnown: (id) => link.setClusterId(id) });
  link.setClusterId(identity.id);
  let joining: boolean;
  try {
    joining = checkStartMode(config, core, membership, logger);
    checkAdminKeyAtFounding(config, core);
  } catch (err) {
    core.stop();
    await store.close();
    throw err;
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  link.attach({
    stepPeer: (from, messages) => core.stepPeer(from, messages),
    reportUnreachable: (peer) => core.reportUnreachable(peer),
    leaderLinkLost: (peer) => core.leaderLinkLost(peer),
    peerLinkOpened: (peer) => sessions.peerLinkOpened(peer),
  });
  link.start();
  const joiner = joining ? startJoining({ config, membership, identity, logger }) : null;
  logger.info(
    { listen: `${config.listen.host}:${config.listen.port}`, peers: Object.fromEntries(httpUrls), tls: secure, clusterId: identity.id },
    "node started",
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      logger.info("node stopping");
      joiner?.stop();
      // A planned stop is invisible to clients: a leader hands leadership over first (bounded), and every client
      // is told where the leader is before its connection closes, so it resumes there at once.
      if (core.isLeader && core.fatalError === null) await core.handOver(handOverTimeoutMs(config));
      sessions.goAway();
      await clients.drain(CLIENT_DRAIN_MS);
      core.stop();
      dashboard.close();
      await clients.close();
      await link.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
      logger.info("node stopped");
    })());
  return { core: core, server, logger, stop };
}

/** A clean stop that takes longer than this is abandoned: the process exits 1 (the log is crash-safe). */
const SHUTDOWN_TIMEOUT_MS = 10_000;
/** How long a stopping node waits for its clients to close after telling them where the leader is. */
const CLIENT_DRAIN_MS = 1_000;

/**
 * How long a stopping leader waits for its successor: two election timeouts (a transfer normally takes one round
 * trip and a synced vote; Raft gives up on a target after one election timeout, and one retry goes to the next
 * voter), within the clean-stop budget.
 */
export function handOverTimeoutMs(config: Pick<NodeConfig, "electionTicks" | "tickMs">): number {
  return Math.min(2 * config.electionTicks * config.tickMs, SHUTDOWN_TIMEOUT_MS / 2);
}

/** `ratequeue start`: runs until SIGINT/SIGTERM, or exits 1 if the node hits a fatal error. */
export async function runNode(config: NodeConfig): Promise<void> {
  // Handlers go in first, before anything starts: a signal that arrived while the node was starting took the
  // default action and killed it. They stay installed for the whole shutdown: a process often gets the same signal
  // twice (Ctrl-C reaches the whole process group and `ratequeue dev` forwards it too; `timeout` signals the child
  // and its group), and with `once` the second took the default action in the middle of the clean stop.
  let signals = 0;
  let requestStop: (() => void) | null = null;
  let logger: Logger | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals > 1) return void logger?.info({ signal }, "already stopping");
    requestStop?.();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const node = await startNode(config);
  logger = node.logger;
  if (signals === 0) {
    await new Promise<void>((resolve) => {
      const watchdog = setInterval(() => {
        if (node.core.fatalError !== null) {
          clearInterval(watchdog);
          process.exitCode = 1;
          resolve();
        }
      }, 250);
      requestStop = () => {
        clearInterval(watchdog);
        resolve();
      };
    });
  }
  const deadline = setTimeout(() => {
    node.logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, "clean stop took too long; exiting anyway");
    process.exit(1);
  }, SHUTDOWN_TIMEOUT_MS);
  deadline.unref();
  await node.stop();
  clearTimeout(deadline);
}

/** The config file's resources and keys, checked now so a bad file fails at start, not in the log. */
function bootstrapOpsOf(config: NodeConfig): Op[] {
  const problems: string[] = [];
  const ops: Op[] = [];
  for (const [name, body] of Object.entries(config.bootstrapResources)) {
    const checked = checkResourceBody(body);
    if (!checked.ok) problems.push(...checked.details.map((d) => `resources.${name}: ${d}`));
    else ops.push({ t: "limiter", cmd: { type: "putResource", name, config: body } });
  }
  for (const key of config.bootstrapKeys) ops.push({ t: "keyAdd", key: keyFromSecret(key.secret, key.name, key.scope) });
  if (problems.length > 0) throw new ConfigError(problems);
  return ops;
}

/**
 * A node founding a new cluster (empty data, --peers) must bring an admin key, or nobody could ever administer the
 * cluster: the bootstrap --admin-key, or a config-file key with scope "admin". A restart or a joining node takes
 * its keys from the cluster's table.
 */
function checkAdminKeyAtFounding(config: NodeConfig, core: NodeCore): void {
  if (!core.startedEmpty || config.peers.size === 0) return;
  if (config.adminKey !== null || config.bootstrapKeys.some((k) => k.scope === "admin")) return;
  throw new ConfigError([
    "a new cluster needs an admin key, or nobody could ever administer it: give adminKey (flag --admin-key or " +
      'RATEQUEUE_ADMIN_KEY; the same on every founding node) or a config-file key with scope "admin"',
  ]);
}

function hostOf(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

import { readFileSync } from "node:fs";
import { parseKeyScope, type KeyScope } from "./state/keys.js";

/**
 * A node's settings, from (highest precedence first) command-line flags,
 * RATEQUEUE_* environment variables, a JSON config file, then defaults.
 */
export interface NodeConfig {
  /** This node's id, e.g. "n1". */
  readonly id: string;
  /** Where this node listens for clients, peers and HTTP. */
  readonly listen: HostPort;
  /**
   * Every voter of the initial cluster, this node included: id -> address peers dial. Used only to found a new
   * cluster from an empty data folder; empty when not given (a restart reads the membership from its data).
   */
  readonly peers: ReadonlyMap<string, HostPort>;
  /** Nodes of a running cluster this node joins (from an empty data folder): their HTTP base URLs. */
  readonly join: readonly string[];
  /** The address other nodes and clients reach this node at (default: listen). */
  readonly advertise: HostPort;
  /** The data folder (LevelDB). */
  readonly dataDir: string;
  /** Shared by every node; peer links must prove they know it (challenge and response, src/peer/handshake.ts). */
  readonly clusterSecret: string;
  /** During a rotation of the cluster secret, the other secret still accepted on peer links; null otherwise. */
  readonly previousClusterSecret: string | null;
  /** The bootstrap admin key, or null when keys are managed through the admin API only. */
  readonly adminKey: string | null;
  /** One logical Raft tick, in ms. Election timeout = electionTicks * tickMs (randomized up to 2x). */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Default session TTL given to clients that do not ask for one. */
  readonly sessionTtlMs: number;
  /** How long a node that knows no live leader holds a client's hello, waiting for an election to end. */
  readonly leaderWaitMs: number;
  /** Take a snapshot and compact the log after this many applied entries. */
  readonly snapshotEntries: number;
  /** Warn when a peer's wall clock differs from this node's by more than this (ms). Display only: limits never read wall clocks. */
  readonly clockWarnMs: number;
  readonly logLevel: LogLevel;
  /** Human-readable logs instead of JSON lines. */
  readonly prettyLogs: boolean;
  /** Serve every resource's series in /metrics to readers without a key (by default only a key that may see them). */
  readonly publicMetrics: boolean;
  /**
   * With cert and key set, the node serves wss:// and https://. With `peerCaFile` too, a peer link must present a
   * client certificate that CA signed (mutual TLS on /v1/peer; clients and HTTP are not asked for one), and this
   * node presents its own certificate when it dials peers.
   */
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly peerCaFile: string | null } | null;
  /** Resources to create when the cluster is first bootstrapped (config file only). */
  readonly bootstrapResources: Readonly<Record<string, unknown>>;
  /** API keys to create when the cluster is first bootstrapped (config file only). */
  readonly bootstrapKeys: readonly BootstrapKey[];
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface BootstrapKey {
  readonly name: string;
  readonly secret: string;
  readonly scope: KeyScope;
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** Raw settings as strings (flags and environment) or JSON values (config file). */
export type RawSettings = Partial<Record<SettingName, unknown>>;

const SETTINGS = {
  id: "RATEQUEUE_ID",
  listen: "RATEQUEUE_LISTEN",
  peers: "RATEQUEUE_PEERS",
  join: "RATEQUEUE_JOIN",
  advertise: "RATEQUEUE_ADVERTISE",
  data: "RATEQUEUE_DATA",
  clusterSecret: "RATEQUEUE_CLUSTER_SECRET",
  previousClusterSecret: "RATEQUEUE_PREVIOUS_CLUSTER_SECRET",
  adminKey: "RATEQUEUE_ADMIN_KEY",
  tickMs: "RATEQUEUE_TICK_MS",
  electionTicks: "RATEQUEUE_ELECTION_TICKS",
  heartbeatTicks: "RATEQUEUE_HEARTBEAT_TICKS",
  sessionTtlMs: "RATEQUEUE_SESSION_TTL_MS",
  leaderWaitMs: "RATEQUEUE_LEADER_WAIT_MS",
  snapshotEntries: "RATEQUEUE_SNAPSHOT_ENTRIES",
  clockWarnMs: "RATEQUEUE_CLOCK_WARN_MS",
  logLevel: "RATEQUEUE_LOG_LEVEL",
  prettyLogs: "RATEQUEUE_PRETTY_LOGS",
  publicMetrics: "RATEQUEUE_PUBLIC_METRICS",
  tlsCert: "RATEQUEUE_TLS_CERT",
  tlsKey: "RATEQUEUE_TLS_KEY",
  tlsPeerCa: "RATEQUEUE_TLS_PEER_CA",
} as const;
export type SettingName = keyof typeof SETTINGS | "resources" | "keys";

/** Every problem found, each naming the setting, so a user can fix them all at once. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "RQ_CONFIG";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  }
}

/** The environment's settings (unset variables are left out). */
export function settingsFromEnv(env: NodeJS.ProcessEnv): RawSettings {
  const out: RawSettings = {};
  for (const [name, variable] of Object.entries(SETTINGS) as [keyof typeof SETTINGS, string][]) {
    const value = env[variable];
    if (value !== undefined && value !== "") out[name] = value;
  }
  return out;
}

/** Reads a JSON config file: the same setting names as the flags (camelCase), plus `resources` and `keys`. */
export function settingsFromFile(path: string): RawSettings {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError([`config file ${path}: ${(err as Error).message}`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([`config file ${path}: not valid JSON (${(err as Error).message})`]);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError([`config file ${path}: must hold a JSON object`]);
  }
  const known = new Set<string>([...Object.keys(SETTINGS), "resources", "keys"]);
  const unknown = Object.keys(parsed).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new ConfigError(unknown.map((k) => `config file ${path}: unknown setting "${k}" (known: ${[...known].join(", ")})`));
  }
  return parsed as RawSettings;
}

/** Validates merged settings into a NodeConfig, or throws a ConfigError listing every problem. */
export function resolveConfig(...layers: RawSettings[]): NodeConfig {
  const raw: RawSettings = Object.assign({}, ...layers.slice().reverse().map((l) => dropUndefined(l)));
  const problems: string[] = [];
  const str = (name: SettingName, required: boolean): string | null => {
    const v = raw[name];
    if (v === undefined || v === null || v === "") {
      if (required) problems.push(`${name} is required (flag --${kebab(name)} or ${envName(name)})`);
      return null;
    }
    if (typeof v !== "string") {
      problems.push(`${name} must be a string`);
      return null;
    }
    return v;
  };
  const int = (name: SettingName, fallback: number, min: number, max: number): number => {
    const v = raw[name];
    if (v === undefined || v === "") return fallback;
    const n = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return n;
  };

  const id = str("id", true) ?? "";
  if (id !== "" && !NODE_ID.test(id)) problems.push(`id "${id}" must be 1-64 of A-Z a-z 0-9 _ -`);
  const listenText = str("listen", true);
  const listen = listenText === null ? { host: "127.0.0.1", port: 0 } : parseHostPort("listen", listenText, problems);
  const peersText = str("peers", false);
  const peers = peersText === null ? new Map<string, HostPort>() : parsePeers(peersText, problems);
  if (peersText !== null && id !== "" && !peers.has(id)) problems.push(`peers must include this node's own id "${id}"`);
  const joinText = str("join", false);
  const join = joinText === null ? [] : parseJoin(joinText, problems);
  if (peersText !== null && joinText !== null) {
    problems.push("give peers (to found a new cluster) or join (to join a running one), not both");
  }
  const advertiseText = str("advertise", false);
  const advertise = advertiseText !== null ? parseHostPort("advertise", advertiseText, problems) : (peers.get(id) ?? listen);
  if (advertiseText === null && peersText === null && ["0.0.0.0", "::"].includes(listen.host)) {
    problems.push(`listen ${listen.host} is no address others can dial: give advertise (flag --advertise or RATEQUEUE_ADVERTISE)`);
  }
  const dataDir = str("data", true) ?? "";
  const clusterSecret = str("clusterSecret", true) ?? "";
  if (clusterSecret !== "" && clusterSecret.length < 16) problems.push("clusterSecret must be at least 16 characters");
  const previousClusterSecret = str("previousClusterSecret", false);
  if (previousClusterSecret !== null && previousClusterSecret.length < 16) problems.push("previousClusterSecret must be at least 16 characters");
  if (previousClusterSecret !== null && previousClusterSecret === clusterSecret) problems.push("previousClusterSecret must differ from clusterSecret");
  const adminKey = str("adminKey", false);
  if (adminKey !== null && adminKey.length < 16) problems.push("adminKey must be at least 16 characters");
  const tickMs = int("tickMs", 50, 1, 10_000);
  const electionTicks = int("electionTicks", 10, 2, 1_000);
  const heartbeatTicks = int("heartbeatTicks", 1, 1, 1_000);
  if (heartbeatTicks >= electionTicks) problems.push("heartbeatTicks must be smaller than electionTicks");
  const sessionTtlMs = int("sessionTtlMs", 10_000, 100, 3_600_000);
  const leaderWaitMs = int("leaderWaitMs", 2 * electionTicks * tickMs, 0, 600_000); // default: two election timeouts
  const snapshotEntries = int("snapshotEntries", 10_000, 10, 100_000_000);
  const clockWarnMs = int("clockWarnMs", 500, 1, 86_400_000);
  const logLevelText = str("logLevel", false) ?? "info";
  if (!LOG_LEVELS.includes(logLevelText as LogLevel)) problems.push(`logLevel must be one of ${LOG_LEVELS.join(", ")}`);
  const prettyLogs = parseBool("prettyLogs", raw.prettyLogs, problems);
  const publicMetrics = parseBool("publicMetrics", raw.publicMetrics, problems);
  const certFile = str("tlsCert", false);
  const keyFile = str("tlsKey", false);
  if ((certFile === null) !== (keyFile === null)) problems.push("tlsCert and tlsKey must be given together");
  const peerCaFile = str("tlsPeerCa", false);
  if (peerCaFile !== null && certFile === null) problems.push("tlsPeerCa needs tlsCert and tlsKey (peer links present that certificate)");
  const resources = raw.resources ?? {};
  if (typeof resources !== "object" || resources === null || Array.isArray(resources)) {
    problems.push("resources must be an object of name -> resource body");
  }
  const keys = parseKeys(raw.keys, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    id,
    listen,
    peers,
    join,
    advertise,
    dataDir,
    clusterSecret,
    previousClusterSecret,
    adminKey,
    tickMs,
    electionTicks,
    heartbeatTicks,
    sessionTtlMs,
    leaderWaitMs,
    snapshotEntries,
    clockWarnMs,
    logLevel: logLevelText as LogLevel,
    prettyLogs,
    publicMetrics,
    tls: certFile !== null && keyFile !== null ? { certFile, keyFile, peerCaFile } : null,
    bootstrapResources: resources as Record<string, unknown>,
    bootstrapKeys: keys,
  };
}

const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

function parseHostPort(name: string, text: string, problems: string[]): HostPort {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65_535) {
    problems.push(`${name} "${text}" must be host:port (e.g. 127.0.0.1:7401)`);
    return { host: "127.0.0.1", port: 0 };
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

/** `--peers`: id=host:port,... (problems are appended to `problems`). */
export function parsePeers(text: string, problems: string[]): Map<string, HostPort> {
  const peers = new Map<string, HostPort>();
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const eq = part.indexOf("=");
    const peerId = eq > 0 ? part.slice(0, eq) : "";
    if (!NODE_ID.test(peerId)) {
      problems.push(`peers entry "${part}" must be id=host:port`);
      continue;
    }
    if (peers.has(peerId)) problems.push(`peers lists "${peerId}" twice`);
    peers.set(peerId, parseHostPort(`peers entry ${peerId}`, part.slice(eq + 1), problems));
  }
  if (peers.size === 0) problems.push("peers must list at least this node (id=host:port,...)");
  return peers;
}

/** Join targets: comma-separated http(s):// base URLs or host:port (http). */
function parseJoin(text: string, problems: string[]): string[] {
  const urls: string[] = [];
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    let url: URL | null = null;
    try {
      url = new URL(/^[a-z]+:\/\//i.test(part) ? part : `http://${part}`);
    } catch {
      url = null;
    }
    if (url === null || (url.protocol !== "http:" && url.protocol !== "https:") || url.port === "") {
      problems.push(`join entry "${part}" must be host:port or http(s)://host:port of a running node`);
      continue;
    }
    urls.push(`${url.protocol}//${url.host}`);
  }
  if (urls.length === 0) problems.push("join must name at least one running node (host:port,...)");
  return urls;
}

function parseBool(name: string, v: unknown, problems: string[]): boolean {
  if (v === undefined || v === "" || v === false || v === "false" || v === "0") return false;
  if (v === true || v === "true" || v === "1") return true;
  problems.push(`${name} must be true or false`);
  return false;
}

function parseKeys(v: unknown, problems: string[]): BootstrapKey[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    problems.push("keys must be an array of { name, secret, scope }");
    return [];
  }
  const keys: BootstrapKey[] = [];
  v.forEach((k: unknown, i) => {
    const where = `keys[${i}]`;
    if (typeof k !== "object" || k === null) return void problems.push(`${where} must be an object`);
    const { name, secret, scope } = k as Record<string, unknown>;
    if (typeof name !== "string" || name.length < 1 || name.length > 128) problems.push(`${where}.name must be 1-128 characters`);
    if (typeof secret !== "string" || secret.length < 16) problems.push(`${where}.secret must be at least 16 characters`);
    const parsedScope = parseKeyScope(scope);
    if (!parsedScope.ok) problems.push(...parsedScope.errors.map((e) => `${where}.${e}`));
    const okScope = parsedScope.ok;
    if (typeof name === "string" && typeof secret === "string" && okScope) {
      keys.push({ name, secret, scope: parsedScope.scope });
    }
  });
  return keys;
}

function dropUndefined(settings: RawSettings): RawSettings {
  return Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
}

function kebab(name: string): string {
  return name === "data" ? "data" : name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function envName(name: SettingName): string {
  return name in SETTINGS ? SETTINGS[name as keyof typeof SETTINGS] : "(config file only)";
}

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePorts } from "@ratequeue/node";
import type { StatusBody } from "@ratequeue/protocol/http";

/** The one free-port helper is LocalCluster's (packages/node); the harness passes it on. */
export { freePorts };

const BIN = fileURLToPath(new URL("../../packages/node/bin/ratequeue.mjs", import.meta.url));

export const ADMIN_KEY = "test-admin-key-0123456789";
export const CLUSTER_SECRET = "test-cluster-secret-0123456789";

export interface ClusterOptions {
  readonly size?: number;
  readonly snapshotEntries?: number;
  readonly sessionTtlMs?: number;
  /** Resources created at bootstrap (the config file's `resources`). */
  readonly resources?: Record<string, unknown>;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  /** More `ratequeue start` flags, for every node. */
  readonly extraArgs?: readonly string[];
  /** Flags for the node processes' `node` itself (e.g. --cpu-prof), before the script. */
  readonly execArgv?: readonly string[];
  /** More `ratequeue start` flags for one node, by id (after the others: a flag given twice takes this value). */
  readonly nodeArgs?: Readonly<Record<string, readonly string[]>>;
  /** The bootstrap admin key every node gets (default ADMIN_KEY); null: no --admin-key at all. */
  readonly adminKey?: string | null;
  /** The nodes' ports (default: free ones); a test that puts something in front of a node picks them first. */
  readonly ports?: readonly number[];
  /** Do not wait for a leader (a test that expects the nodes to refuse to start). */
  readonly noWait?: boolean;
  /** A backup file: every node's data folder is seeded from it (`ratequeue restore`) before the nodes start. */
  readonly restoreFrom?: string;
  /** How to launch particular nodes, by id (e.g. under `faketime`); the others run plainly. */
  readonly launch?: Readonly<Record<string, NodeLaunch>>;
}

/**
 * How one node process is launched, beyond its flags. With a `prefix` the node runs as
 * `prefix... node ratequeue.mjs start ...` (say `faketime -f +3m`), in a process group of its own: a wrapper may fork
 * the node rather than exec it (faketime does), so every signal goes to the whole group, and the process counts as
 * exited once the node itself has closed its output.
 */
export interface NodeLaunch {
  readonly prefix?: readonly string[];
  /** Variables added to the environment (e.g. LD_PRELOAD and FAKETIME_* for libfaketime). */
  readonly env?: Readonly<Record<string, string>>;
  /** Called with the launched process's pid once it is gone (a wrapper killed with the node leaves files behind). */
  readonly cleanup?: (pid: number) => void;
}

/** What one `ratequeue` command printed, and its exit code (-1 if it was killed). */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs this checkout's `ratequeue` with `args`, as an operator would. RATEQUEUE_URL and RATEQUEUE_ADMIN_KEY are
 * cleared unless `env` sets them, so nothing leaks in from the shell that runs the tests.
 */
export function runCli(args: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, RATEQUEUE_URL: "", RATEQUEUE_ADMIN_KEY: "", ...options.env }, timeout: options.timeoutMs ?? 60_000 },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout, stderr }),
    );
  });
}

/** A node's GET /v1/status body (declared once, in packages/protocol/src/http.ts). */
export type NodeStatus = StatusBody;

/**
 * Every node process this test process started and has not seen exit. When the test process exits (a failed
 * start, a crashed or timed-out test file), they are killed with it rather than left running without a parent.
 */
const live = new Map<ChildProcess, (signal: NodeJS.Signals) => void>();
/** Data folders of clusters not stopped yet: removed at exit too. */
const roots = new Set<string>();
process.once("exit", () => {
  for (const kill of live.values()) kill("SIGKILL");
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** One `ratequeue start` process. */
export class NodeProcess {
  proc: ChildProcess | null = null;
  /** Everything the process wrote, for failure reports. */
  output = "";
  /** How the next start() launches it (a test may change it between restarts). */
  launch: NodeLaunch = {};
  /** A process started in a group of its own (with a prefix): signalled as a group, done when its output closes. */
  #grouped = false;
  #closed = false;

  constructor(
    readonly id: string,
    readonly port: number,
    readonly dataDir: string,
    private args: readonly string[],
    private readonly execArgv: readonly string[] = [],
    /** The `ratequeue` script to run (default: this checkout's packages/node/bin/ratequeue.mjs). */
    private readonly bin: string = BIN,
  ) {}

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    if (this.proc === null) return false;
    if (this.#grouped) return !this.#closed;
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.id} is already running`);
    const prefix = this.launch.prefix ?? [];
    const command = [...prefix, process.execPath, ...this.execArgv, this.bin, "start", ...this.args];
    const grouped = prefix.length > 0;
    const proc = spawn(command[0]!, command.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      env: this.launch.env === undefined ? process.env : { ...process.env, ...this.launch.env },
      detached: grouped,
    });
    proc.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    proc.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
    this.#grouped = grouped;
    this.#closed = false;
    live.set(proc, (signal) => signalProcess(proc, grouped, signal));
    // A wrapper may exit before the node it forked: the node is gone once it has closed the pipes it inherited.
    const cleanup = this.launch.cleanup;
    proc.once(grouped ? "close" : "exit", () => {
      live.delete(proc);
      if (this.proc === proc) this.#closed = true;
      if (cleanup !== undefined && proc.pid !== undefined) cleanup(proc.pid);
    });
    this.proc = proc;
  }

  /** Sends a signal to the process (its whole group when launched with a prefix), without waiting. */
  signal(signal: NodeJS.Signals): void {
    if (this.proc !== null && this.running) signalProcess(this.proc, this.#grouped, signal);
  }

  /**
   * Sets a `ratequeue start` flag for the next start: a value, `true` for a flag without one, or null to remove
   * it. Every earlier occurrence is removed (what a restart with a changed command line does).
   *
   * @example node.setFlag("--cluster-secret", NEW_SECRET); node.setFlag("--previous-cluster-secret", OLD_SECRET);
   */
  setFlag(flag: string, value: string | true | null): void {
    const args: string[] = [];
    for (let i = 0; i < this.args.length; i++) {
      if (this.args[i] !== flag) args.push(this.args[i]!);
      else if (i + 1 < this.args.length && !this.args[i + 1]!.startsWith("--")) i++; // its value goes too
    }
    if (value === true) args.push(flag);
    else if (value !== null) args.push(flag, value);
    this.args = args;
  }

  /** Kills the process (SIGKILL by default: no clean shutdown) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const proc = this.proc;
    if (proc === null || !this.running) return;
    const exited = new Promise<void>((resolve) => proc.once(this.#grouped ? "close" : "exit", () => resolve()));
    signalProcess(proc, this.#grouped, signal);
    await exited;
  }

  /** Waits (bounded) until the process has written a line matching `pattern`; returns that line. */
  async waitForOutput(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    let line: string | undefined;
    await waitFor(
      () => {
        line = this.output.split("\n").find((l) => pattern.test(l));
        return line !== undefined;
      },
      { timeoutMs, what: `${this.id} to log ${pattern}`, dump: () => this.output.split("\n").slice(-40).join("\n") },
    );
    return line!;
  }

  /** Resolves with the exit code (null if killed by a signal) when the process exits. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const proc = this.proc;
    if (proc === null) throw new Error(`${this.id} was never started`);
    if (!this.running) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode as NodeJS.Signals | null });
    return new Promise((resolve) => proc.once(this.#grouped ? "close" : "exit", (code, signal) => resolve({ code, signal })));
  }

  async status(): Promise<NodeStatus | null> {
    try {
      const res = await fetch(`${this.httpUrl}/v1/status`, { signal: AbortSignal.timeout(1_000) });
      return (await res.json()) as NodeStatus;
    } catch {
      return null;
    }
  }
}

/** A real cluster of `ratequeue start` processes on free loopback ports, with temporary data folders. */
export class Cluster {
  private constructor(
    readonly nodes: NodeProcess[],
    /** The temporary folder holding every node's data (removed by stop()); nodes added later keep theirs here too. */
    readonly root: string,
  ) {}

  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const size = options.size ?? 3;
    const root = await mkdtemp(join(tmpdir(), "rq-cluster-"));
    roots.add(root);
    const ports = options.ports ?? (await freePorts(size));
    const ids = ports.map((_, i) => `n${i + 1}`);
    const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(",");
    const configFile = join(root, "config.json");
    await writeFile(configFile, JSON.stringify({ resources: options.resources ?? {} }));
    const nodes = ids.map((id, i) => {
      const dataDir = join(root, id);
      const args = [
        "--config", configFile,
        "--id", id,
        "--listen", `127.0.0.1:${ports[i]}`,
        "--peers", peers,
        "--data", dataDir,
        "--cluster-secret", CLUSTER_SECRET,
        ...(options.adminKey === null ? [] : ["--admin-key", options.adminKey ?? ADMIN_KEY]),
        "--log-level", "info",
        "--tick-ms", String(options.tickMs ?? 50),
        "--election-ticks", String(options.electionTicks ?? 10),
        ...(options.snapshotEntries === undefined ? [] : ["--snapshot-entries", String(options.snapshotEntries)]),
        ...(options.sessionTtlMs === undefined ? [] : ["--session-ttl-ms", String(options.sessionTtlMs)]),
        ...(options.extraArgs ?? []),
        ...(options.nodeArgs?.[id] ?? []),
      ];
      const node = new NodeProcess(id, ports[i]!, dataDir, args, options.execArgv);
      node.launch = options.launch?.[id] ?? {};
      return node;
    });
    const cluster = new Cluster(nodes, root);
    if (options.restoreFrom !== undefined) {
      const runs = await Promise.all(
        nodes.map((n) => runCli(["restore", "--file", options.restoreFrom!, "--data", n.dataDir, "--id", n.id, "--peers", peers])),
      );
      const failed = runs.find((r) => r.code !== 0);
      if (failed !== undefined) {
        await cluster.stop();
        throw new Error(`ratequeue restore failed (${failed.code}): ${failed.stderr}${failed.stdout}`);
      }
    }
    for (const n of nodes) n.start();
    if (options.noWait === true) return cluster;
    try {
      // Three processes starting through tsx on a busy 2-core machine can take a while before the first election.
      await cluster.waitForLeader(45_000);
    } catch (err) {
      await cluster.stop(); // nobody else holds this cluster: a failed start must not leave processes behind
      throw err;
    }
    return cluster;
  }

  node(id: string): NodeProcess {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /**
   * A new node (not started, not yet in `nodes`) that joins this cluster with `--join joinUrls`, asking to be added
   * itself when `adminKey` is set. Its data folder is in the cluster's folder: a folder left by another cluster's
   * node of the same id would hold that cluster's log.
   */
  joiner(id: string, port: number, joinUrls: string, adminKey: boolean): NodeProcess {
    const dataDir = join(this.root, id);
    return new NodeProcess(id, port, dataDir, [
      "--id", id,
      "--listen", `127.0.0.1:${port}`,
      "--join", joinUrls,
      "--data", dataDir,
      "--cluster-secret", CLUSTER_SECRET,
      ...(adminKey ? ["--admin-key", ADMIN_KEY] : []),
      "--tick-ms", "50",
      "--election-ticks", "10",
    ]);
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /**
   * Waits until every running member reports the same leader and that leader is running; returns it. A running node
   * whose status does not list itself among the members (a joiner not added yet, a removed node) has no leader to
   * agree on and is left out; one that does not answer at all still counts (it may be starting).
   */
  async waitForLeader(timeoutMs = 20_000, except?: string): Promise<NodeProcess> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const running = this.nodes.filter((n) => n.running);
      const statuses = (await Promise.all(running.map((n) => n.status()))).filter((s) => s === null || s.peers.some((p) => p.id === s.id));
      const leaders = new Set(statuses.map((s) => s?.leader ?? null));
      const [leader] = [...leaders];
      if (leaders.size === 1 && leader != null && leader !== except) {
        const node = this.nodes.find((n) => n.id === leader);
        const self = statuses.find((s) => s?.id === leader);
        if (node?.running === true && self?.role === "leader") return node;
      }
      await sleep(50);
    }
    throw new Error(`no agreed leader within ${timeoutMs} ms\n${this.dump()}`);
  }

  /** Admin API call on a node (the leader by default) with the admin key; returns status and parsed JSON. */
  async admin(method: string, path: string, body?: unknown, node?: NodeProcess): Promise<{ status: number; json: any }> {
    return httpCall(node ?? (await this.waitForLeader()), ADMIN_KEY, method, path, body);
  }

  /** GET /v1/resources/{name} on the leader (or `node`); throws unless 200. */
  async resource(name: string, node?: NodeProcess): Promise<ResourceJson> {
    const r = await this.admin("GET", `/v1/resources/${encodeURIComponent(name)}`, undefined, node);
    if (r.status !== 200) throw new Error(`GET resource ${name}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json as ResourceJson;
  }

  /** Starts every node that is not running (after kills) and waits for a leader. */
  async restartAll(): Promise<NodeProcess> {
    for (const n of this.nodes) if (!n.running) n.start();
    return this.waitForLeader();
  }

  dump(): string {
    return this.nodes.map((n) => `--- ${n.id} (port ${n.port}) ---\n${n.output.split("\n").slice(-40).join("\n")}`).join("\n");
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill("SIGKILL")));
    await rm(this.root, { recursive: true, force: true });
    roots.delete(this.root);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** What GET /v1/resources/{name} answers. */
export interface ResourceJson {
  name: string;
  limits: Record<string, unknown>[];
  lanes: Record<string, { weight: number }>;
  lanePolicy: string;
  usage: (Record<string, unknown> & { kind: string; limit: number; used: number })[];
  leasesHeld: number;
  queued: Record<string, number>;
  cooldownUntil: number | null;
}

/** Signals a process, or its whole process group when it was started detached (as the group's leader). */
function signalProcess(proc: ChildProcess, grouped: boolean, signal: NodeJS.Signals): void {
  try {
    if (grouped && proc.pid !== undefined) process.kill(-proc.pid, signal);
    else proc.kill(signal);
  } catch {
    // Already gone.
  }
}

/** Polls `check` every `everyMs` until it returns true; throws after `timeoutMs` naming `what`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; everyMs?: number; what: string; dump?: () => string },
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${options.what}${options.dump === undefined ? "" : `\n${options.dump()}`}`);
    }
    await sleep(options.everyMs ?? 50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A JSON call to a node's HTTP API with `key` as bearer; returns the status and the parsed body (null when empty). */
export async function httpCall(node: NodeProcess, key: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${node.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === "" ? null : JSON.parse(text) };
}

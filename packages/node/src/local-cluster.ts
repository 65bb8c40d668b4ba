import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { StatusBody } from "@ratequeue/protocol/http";

const BIN = fileURLToPath(new URL("../bin/ratequeue.mjs", import.meta.url));

export interface LocalClusterOptions {
  /** Number of nodes (default 3). */
  readonly size?: number;
  /** First node's port; the others follow. Default: free ports chosen by the OS. */
  readonly basePort?: number;
  /** Keep data here; default a fresh temporary folder removed by `stop()`. */
  readonly dataDir?: string;
  readonly adminKey?: string;
  /** Resources created when the cluster is first bootstrapped (SPEC's resource bodies). */
  readonly resources?: Readonly<Record<string, unknown>>;
  /** Extra `ratequeue start` flags for every node, e.g. ["--log-level", "warn"]. */
  readonly extraArgs?: readonly string[];
  /** Where node output goes: "inherit" (dev), "ignore", or "pipe" (kept in `output`). Default "pipe". */
  readonly stdio?: "inherit" | "ignore" | "pipe";
  /** Serve wss:// and https:// with this certificate; `caFile` is what the nodes (and `waitForLeader`) trust. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  /** Extra environment variables for the node processes. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface LocalNode {
  readonly id: string;
  readonly port: number;
  /** ws://127.0.0.1:port */
  readonly url: string;
  /** http://127.0.0.1:port */
  readonly httpUrl: string;
  readonly dataDir: string;
  process: ChildProcess | null;
  /** Resolves when the current process exits. */
  exited: Promise<void>;
  /** What the process printed (with stdio "pipe"), for diagnostics. */
  output: string;
}

/**
 * A cluster of real `ratequeue start` processes on this machine: what
 * `ratequeue dev`, the examples and the benchmarks run. Every node fsyncs
 * its log as in production.
 */
export class LocalCluster {
  private constructor(
    readonly nodes: LocalNode[],
    readonly adminKey: string,
    readonly root: string,
    private readonly keepData: boolean,
    private readonly argsOf: (node: LocalNode) => string[],
    private readonly stdio: "inherit" | "ignore" | "pipe",
    private readonly env: NodeJS.ProcessEnv,
    private readonly ca: Buffer | undefined,
  ) {}

  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const size = options.size ?? 3;
    const keepData = options.dataDir !== undefined;
    const root = keepData ? resolve(options.dataDir!) : await mkdtemp(join(tmpdir(), "ratequeue-"));
    await mkdir(root, { recursive: true });
    const ports = options.basePort === undefined ? await freePorts(size) : Array.from({ length: size }, (_, i) => options.basePort! + i);
    const adminKey = options.adminKey ?? `rq_local_${randomBytes(12).toString("hex")}`;
    const clusterSecret = randomBytes(24).toString("hex");
    const ids = ports.map((_, i) => `n${i + 1}`);
    const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(",");
    const configFile = join(root, "bootstrap.json");
    await writeFile(configFile, JSON.stringify({ resources: options.resources ?? {} }, null, 2));
    const secure = options.tls !== undefined;
    const nodes: LocalNode[] = ids.map((id, i) => ({
      id,
      port: ports[i]!,
      url: `${secure ? "wss" : "ws"}://127.0.0.1:${ports[i]}`,
      httpUrl: `${secure ? "https" : "http"}://127.0.0.1:${ports[i]}`,
      dataDir: join(root, id),
      process: null,
      exited: Promise.resolve(),
      output: "",
    }));
    const argsOf = (n: LocalNode): string[] => [
      BIN, "start",
      "--config", configFile,
      "--id", n.id,
      "--listen", `127.0.0.1:${n.port}`,
      "--peers", peers,
      "--data", n.dataDir,
      "--cluster-secret", clusterSecret,
      "--admin-key", adminKey,
      ...(options.tls === undefined ? [] : ["--tls-cert", options.tls.certFile, "--tls-key", options.tls.keyFile]),
      ...(options.extraArgs ?? []),
    ];
    // A private CA reaches every TLS client in the node (peer links, admin forwarding, the dashboard's polling).
    const env = { ...process.env, ...options.env, ...(options.tls === undefined ? {} : { NODE_EXTRA_CA_CERTS: options.tls.caFile }) };
    const ca = options.tls === undefined ? undefined : await readFile(options.tls.caFile);
    const cluster = new LocalCluster(nodes, adminKey, root, keepData, argsOf, options.stdio ?? "pipe", env, ca);
    for (const n of nodes) cluster.startNode(n.id);
    return cluster;
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  node(id: string): LocalNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  isRunning(id: string): boolean {
    const p = this.node(id).process;
    return p !== null && p.exitCode === null && p.signalCode === null;
  }

  /** Starts (or restarts) one node's process. */
  startNode(id: string): void {
    const n = this.node(id);
    if (this.isRunning(id)) throw new Error(`${id} is already running`);
    const proc = spawn(process.execPath, this.argsOf(n), { stdio: ["ignore", this.stdio, this.stdio], env: this.env });
    if (this.stdio === "pipe") {
      const keep = (d: Buffer): void => {
        n.output = (n.output + d.toString()).slice(-200_000);
      };
      proc.stdout!.on("data", keep);
      proc.stderr!.on("data", keep);
    }
    n.process = proc;
    n.exited = new Promise((r) => proc.once("exit", () => r()));
  }

  /** Kills one node (SIGKILL by default: a crash, no clean shutdown) and waits for it to exit. */
  async kill(id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const node = this.node(id);
    if (node.process === null || !this.isRunning(id)) return;
    node.process.kill(signal);
    await node.exited;
  }

  /** The leader every running node agrees on, once there is one (polls /v1/status). */
  async waitForLeader(options: { timeoutMs?: number; not?: string } = {}): Promise<LocalNode> {
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    while (Date.now() < deadline) {
      const running = this.nodes.filter((n) => this.isRunning(n.id));
      const statuses = await Promise.all(running.map((n) => status(n, this.ca)));
      const leaders = new Set(statuses.map((s) => s?.leader ?? null));
      const [leader] = [...leaders];
      if (leaders.size === 1 && typeof leader === "string" && leader !== options.not && this.isRunning(leader)) {
        if (statuses.find((s) => s?.id === leader)?.role === "leader") return this.node(leader);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no agreed leader within ${options.timeoutMs ?? 20_000} ms`);
  }

  /** Stops every node (SIGTERM, then SIGKILL after 5 s) and removes temporary data. */
  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        if (!this.isRunning(n.id)) return;
        const timer = setTimeout(() => n.process?.kill("SIGKILL"), 5_000);
        await this.kill(n.id, "SIGTERM");
        clearTimeout(timer);
      }),
    );
    if (!this.keepData) await rm(this.root, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A node's /v1/status, or null if it does not answer within a second. */
function status(n: LocalNode, ca: Buffer | undefined): Promise<StatusBody | null> {
  return new Promise((resolve) => {
    const get = n.httpUrl.startsWith("https:") ? httpsGet : httpGet;
    const req = get(`${n.httpUrl}/v1/status`, { timeout: 1_000, ...(ca === undefined ? {} : { ca }) }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => {
        try {
          resolve(JSON.parse(body) as StatusBody);
        } catch {
          resolve(null);
        }
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(null));
  });
}

/** Ports the OS reports free right now (bound, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import("node:net").Server>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADMIN_KEY, CLUSTER_SECRET, freePorts, NodeProcess, sleep, type NodeStatus } from "../cluster/harness.js";
import { PeerLink, PeerProxy } from "./peer-proxy.js";

export interface ChaosClusterOptions {
  readonly resources: Record<string, unknown>;
  readonly sessionTtlMs?: number;
  /** More `ratequeue start` flags, for every node. */
  readonly extraArgs?: readonly string[];
}

/**
 * Three real `ratequeue start` processes, each behind a TCP proxy that every
 * node advertises and dials as that node's address (so the replicated member
 * addresses are the proxies too). A proxy tells the dialling node by its peer
 * upgrade header, so each directed link can be cut alone, one way or both.
 *
 * Nothing is ever compacted (--snapshot-entries is huge) so that, after the
 * run, every node's whole log can be read back from its data folder and
 * compared (see log-dump.ts).
 */
export class ChaosCluster {
  private constructor(
    readonly nodes: NodeProcess[],
    /** proxies.get(`${from}>${to}`): the link `from` dials to reach `to`. */
    readonly proxies: Map<string, PeerLink>,
    private readonly servers: PeerProxy[],
    readonly root: string,
  ) {}

  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const ids = ["n1", "n2", "n3"];
    const root = await mkdtemp(join(tmpdir(), "rq-nemesis-"));
    const ports = await freePorts(ids.length);
    const portOf = new Map(ids.map((id, i) => [id, ports[i]!]));
    const servers = new Map<string, PeerProxy>();
    for (const to of ids) servers.set(to, await PeerProxy.start({ to, targetPort: portOf.get(to)! }));
    const proxies = new Map<string, PeerLink>();
    for (const from of ids) {
      for (const to of ids) if (from !== to) proxies.set(`${from}>${to}`, new PeerLink(from, servers.get(to)!));
    }
    // Every node's own entry is its proxy too, so it advertises the proxy (to peers and in the member table).
    const peers = ids.map((p) => `${p}=127.0.0.1:${servers.get(p)!.port}`).join(",");
    const configFile = join(root, "config.json");
    await writeFile(configFile, JSON.stringify({ resources: options.resources }));
    // Every node's flags but its membership: founders add --peers, nodes added later --join and --advertise.
    const flags = (id: string, port: number, dataDir: string): string[] => [
      "--config", configFile,
      "--id", id,
      "--listen", `127.0.0.1:${port}`,
      "--data", dataDir,
      "--cluster-secret", CLUSTER_SECRET,
      "--admin-key", ADMIN_KEY,
      "--log-level", "info",
      "--tick-ms", "50",
      "--election-ticks", "10",
      "--snapshot-entries", "100000000",
      "--session-ttl-ms", String(options.sessionTtlMs ?? 5_000),
      ...(options.extraArgs ?? []),
    ];
    const nodes = ids.map((id) => {
      const dataDir = join(root, id);
      return new NodeProcess(id, portOf.get(id)!, dataDir, [...flags(id, portOf.get(id)!, dataDir), "--peers", peers]);
    });
    const cluster = new ChaosCluster(nodes, proxies, [...servers.values()], root);
    cluster.#template = flags;
    for (const n of nodes) n.start();
    await cluster.waitForLeader(30_000);
    return cluster;
  }

  /** `ratequeue start` flags for a node added later (joiners add --join and --advertise). */
  #template: (id: string, port: number, dataDir: string) => string[] = () => [];
  /** Nodes removed from the membership (stopped for good; their data stays for the checker). */
  readonly retired = new Set<string>();

  /**
   * Starts a new node that joins the cluster (--join through the running nodes' proxies, with the admin key, so it
   * asks to be added itself), behind a proxy of its own that it advertises: its links to and from every node can be
   * cut like the founders'. Resolves once it is started, not once it is a member.
   */
  async addNode(id: string): Promise<NodeProcess> {
    if (this.servers.some((p) => p.to === id)) throw new Error(`${id} exists already`);
    const [port] = await freePorts(1);
    const server = await PeerProxy.start({ to: id, targetPort: port! });
    for (const other of this.servers) {
      this.proxies.set(`${other.to}>${id}`, new PeerLink(other.to, server));
      this.proxies.set(`${id}>${other.to}`, new PeerLink(id, other));
    }
    this.servers.push(server);
    const portOf = (nodeId: string): number => this.servers.find((p) => p.to === nodeId)!.port;
    const via = this.nodes.filter((n) => n.running).map((n) => `127.0.0.1:${portOf(n.id)}`).join(",");
    const dataDir = join(this.root, id);
    const node = new NodeProcess(id, port!, dataDir, [...this.#template(id, port!, dataDir), "--join", via, "--advertise", `127.0.0.1:${server.port}`]);
    this.nodes.push(node);
    node.start();
    return node;
  }

  /** Stops a removed member for good (SIGTERM): it is never restarted, and waits leave it out. */
  async retire(id: string): Promise<void> {
    this.retired.add(id);
    const node = this.node(id);
    node.proc?.kill("SIGCONT");
    await node.kill("SIGTERM");
  }

  /** Admin call on one node's real port: status and JSON, or null when it does not answer within `timeoutMs`. */
  async admin(id: string, method: string, path: string, timeoutMs = 2_000): Promise<{ status: number; json: any } | null> {
    try {
      const res = await fetch(`${this.node(id).httpUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      return { status: res.status, json: text === "" ? null : JSON.parse(text) };
    } catch {
      return null;
    }
  }

  get ids(): string[] {
    return this.nodes.map((n) => n.id);
  }

  /** The nodes' real client URLs (not the proxies). */
  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  node(id: string): NodeProcess {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** The leader that every reachable node names, once there is one; null after `timeoutMs`. */
  async waitForLeader(timeoutMs: number): Promise<NodeProcess | null> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const statuses = (await Promise.all(this.nodes.filter((n) => n.running).map((n) => n.status()))).filter(
        (s): s is NodeStatus => s !== null,
      );
      const self = statuses.find((s) => s.role === "leader");
      if (self !== undefined && statuses.length >= 2 && statuses.every((s) => s.leader === self.id)) return this.node(self.id);
      await sleep(100);
    }
    return null;
  }

  /** Current leader as one reachable node reports it about itself, without waiting. */
  async currentLeader(): Promise<string | null> {
    const statuses = await Promise.all(this.nodes.filter((n) => n.running).map((n) => n.status()));
    return statuses.find((s) => s?.role === "leader")?.id ?? null;
  }

  /** Cuts what `id` sends ("out"), what it receives ("in"), or both. */
  isolate(id: string, direction: "out" | "in" | "both"): void {
    for (const p of this.proxies.values()) {
      if ((direction !== "in" && p.from === id) || (direction !== "out" && p.to === id)) p.cut();
    }
  }

  healAll(): void {
    for (const p of this.proxies.values()) p.heal();
  }

  pause(id: string): void {
    this.node(id).proc?.kill("SIGSTOP");
  }

  resume(id: string): void {
    this.node(id).proc?.kill("SIGCONT");
  }

  /** Admin GET on one node's real port; null when it does not answer 200 within 2 s. */
  async adminGet(id: string, path: string): Promise<any> {
    const answer = await this.admin(id, "GET", path);
    return answer?.status === 200 ? answer.json : null;
  }

  dump(lines = 30): string {
    return this.nodes.map((n) => `--- ${n.id} ---\n${n.output.split("\n").slice(-lines).join("\n")}`).join("\n");
  }

  /** Stops every node with SIGTERM (SIGCONT first, in case it is paused) so their logs are closed cleanly. */
  async stopNodes(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        if (!n.running) return;
        n.proc?.kill("SIGCONT");
        const timer = setTimeout(() => n.proc?.kill("SIGKILL"), 12_000);
        await n.kill("SIGTERM");
        clearTimeout(timer);
      }),
    );
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes) n.proc?.kill("SIGCONT");
    await Promise.all(this.nodes.map((n) => n.kill("SIGKILL")));
    await Promise.all(this.servers.map((p) => p.close()));
    await rm(this.root, { recursive: true, force: true });
  }
}

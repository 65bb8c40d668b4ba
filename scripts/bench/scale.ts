/**
 * Scale benchmark: what grows with what. A real three-node cluster (`ratequeue start` processes on loopback,
 * LevelDB with fsync on) is loaded with one kind of bulk at a time, each in a fresh cluster:
 *
 * - baseline: nothing but the measuring loops.
 * - resources: `--resources` resources (default 10,000) created through the admin API, `--puts` at a time; the
 *   measuring loops then pick a resource at random for every acquire.
 * - clients: `--clients` connected clients (default 10,000 minus the measuring connections: a node holds at most
 *   10,000), each with its own session, idle; the leader renews their sessions.
 * - waiting: `--waiting` acquires (default 100,000) queued on one resource whose 100 concurrency slots are held,
 *   sent by `--waiters` connections; then the slots are released and every waiter releases as soon as it is
 *   granted, so the queue drains through 100 chains of grant and release.
 *
 * Reported per phase: how long the bulk took to build and its rate, the leader's and a follower's resident memory
 * (VmRSS from /proc) before and after, and the grant rate and acquire p50/p99 of `--loops` acquire+release loops
 * on `--connections` connections measured over `--seconds` with the bulk in place; for `waiting`, the drain rate too.
 * Nothing is asserted (shared, noisy machines).
 *
 *   npx tsx --conditions=source scripts/bench/scale.ts [--phases baseline,resources,clients,waiting] [--resources 10000]
 *     [--clients 9996] [--waiting 100000] [--waiters 100] [--loops 64] [--connections 4] [--seconds 3]
 */
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
// ws and the protocol package resolve from test/ (the workspace package that depends on them), hence these imports.
import { ADMIN_KEY, Cluster, type NodeProcess } from "../../test/cluster/harness.js";
import { LeanClient } from "../../test/cluster/lean-client.js";
import { acquireReleaseLoops, format, type PhaseFigures } from "./cluster.js";

export type ScalePhase = "baseline" | "resources" | "clients" | "waiting";

export interface ScaleOptions {
  readonly phases?: readonly ScalePhase[];
  readonly resources?: number;
  readonly resourcePutsInFlight?: number;
  readonly clients?: number;
  readonly waiting?: number;
  readonly waiters?: number;
  readonly loops?: number;
  readonly connections?: number;
  readonly seconds?: number;
  readonly log?: (line: string) => void;
}

export interface ScalePhaseResult {
  readonly phase: ScalePhase;
  /** What was built: "10000 resources", and so on. */
  readonly bulk: string;
  /** Seconds to build the bulk, and items per second. */
  readonly buildSeconds: number;
  readonly buildPerSecond: number;
  /** Resident memory in MiB before the bulk and with it, leader and one follower. */
  readonly leaderRssMiB: readonly [number, number];
  readonly followerRssMiB: readonly [number, number];
  /** Acquire+release loops measured with the bulk in place. */
  readonly loops: PhaseFigures;
  /** waiting only: grants per second while the queue drains. */
  readonly drainPerSecond?: number;
}

const MEASURED = "bench";
const QUEUE = "queue";
const QUEUE_SLOTS = 100;
/** Sessions heartbeat as the SDK's do: three times per TTL (the node's default TTL is 10 s). */
const HEARTBEAT_MS = 3_333;
const CLIENT_CONNECTIONS_MAX = 10_000;
/** Every measured resource has what an LLM quota has: requests and tokens per minute, and concurrency (none binds). */
const LIMITS = [
  { kind: "rate", limit: 1_000_000_000, windowMs: 60_000 },
  { kind: "load", limit: 1_000_000_000_000, windowMs: 60_000 },
  { kind: "concurrency", limit: 1_000_000 },
];
/** Every measured acquire carries 100 tokens. */
const LOAD = { load: 100 };

export async function runScaleBench(options: ScaleOptions = {}): Promise<ScalePhaseResult[]> {
  const phases = options.phases ?? ["baseline", "resources", "clients", "waiting"];
  const loops = options.loops ?? 64;
  const connections = options.connections ?? 4;
  const seconds = options.seconds ?? 3;
  const log = options.log ?? (() => undefined);
  const results: ScalePhaseResult[] = [];
  for (const phase of phases) {
    const cluster = await Cluster.start({
      resources: {
        [MEASURED]: { limits: LIMITS },
        [QUEUE]: { limits: [{ kind: "concurrency", limit: QUEUE_SLOTS }] },
      },
    });
    try {
      const leader = await cluster.waitForLeader();
      const follower = cluster.nodes.find((n) => n !== leader)!;
      await acquireReleaseLoops(cluster, { loops: 4, connections: 1, seconds: 0.5, resources: [MEASURED], load: LOAD }); // warm up
      const before = [await rssMiB(leader), await rssMiB(follower)] as const;
      let bulk = "nothing";
      let count = 0;
      let buildSeconds = 0;
      let measuredResources = [MEASURED];
      let drainPerSecond: number | undefined;
      let afterBulk: (() => Promise<void>) | null = null;
      const t0 = performance.now();
      if (phase === "resources") {
        count = options.resources ?? 10_000;
        measuredResources = await createResources(cluster, leader, count, options.resourcePutsInFlight ?? 16, log);
        bulk = `${count} resources`;
      } else if (phase === "clients") {
        count = options.clients ?? CLIENT_CONNECTIONS_MAX - connections;
        const idle = await connectClients(cluster, count, log);
        bulk = `${count} idle clients`;
        afterBulk = async () => {
          for (const c of idle) c.close();
        };
      } else if (phase === "waiting") {
        count = options.waiting ?? 100_000;
        const queue = await queueWaiters(cluster, leader, count, options.waiters ?? 100, log);
        bulk = `${count} waiting acquires`;
        afterBulk = async () => {
          drainPerSecond = await queue.drain();
          log(`waiting: drained ${count} at ${drainPerSecond.toFixed(0)} grants/s`);
        };
      }
      buildSeconds = (performance.now() - t0) / 1000;
      const after = [await rssMiB(leader), await rssMiB(follower)] as const;
      const figures = await acquireReleaseLoops(cluster, { loops, connections, seconds, resources: measuredResources, load: LOAD });
      log(`${phase}: ${bulk} in ${buildSeconds.toFixed(1)} s; leader ${before[0]} -> ${after[0]} MiB; ${format(figures)}`);
      if (afterBulk !== null) await afterBulk();
      results.push({
        phase,
        bulk,
        buildSeconds,
        buildPerSecond: count === 0 ? 0 : count / buildSeconds,
        leaderRssMiB: [before[0], after[0]],
        followerRssMiB: [before[1], after[1]],
        loops: figures,
        ...(drainPerSecond === undefined ? {} : { drainPerSecond }),
      });
    } finally {
      await cluster.stop();
    }
  }
  return results;
}

// ---------------------------------------------------------------------------

async function rssMiB(node: NodeProcess): Promise<number> {
  const pid = node.proc?.pid;
  if (pid === undefined) return NaN;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return kb === undefined ? NaN : Math.round(Number(kb) / 1024);
}

/** Creates `count` resources (the measured resource's limits) through the admin API; returns their names. */
async function createResources(cluster: Cluster, leader: NodeProcess, count: number, inFlight: number, log: (line: string) => void): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `model-${i}`);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const i = next++;
      const r = await cluster.admin(
        "PUT",
        `/v1/resources/${names[i]}`,
        { limits: LIMITS },
        leader,
      );
      if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ${names[i]}: ${r.status} ${JSON.stringify(r.json)}`);
      if ((i + 1) % 2000 === 0) log(`resources: ${i + 1}/${count}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return names;
}

/** Connects `count` clients, each with its own session, 200 handshakes at a time. */
async function connectClients(cluster: Cluster, count: number, log: (line: string) => void): Promise<LeanClient[]> {
  const clients: LeanClient[] = [];
  const urls = [(await cluster.waitForLeader()).url];
  while (clients.length < count) {
    const batch = Math.min(200, count - clients.length);
    const connected = await Promise.all(Array.from({ length: batch }, () => LeanClient.connect(urls, ADMIN_KEY, undefined, 120_000)));
    for (const c of connected) c.heartbeat(HEARTBEAT_MS);
    clients.push(...connected);
    if (clients.length % 2000 === 0) log(`clients: ${clients.length}/${count}`);
  }
  return clients;
}

interface Queue {
  /** Releases the held slots; every waiter releases its grant at once; resolves with grants per second. */
  drain(): Promise<number>;
}

/** Holds every slot of the queue resource, then queues `count` acquires on it over `connections` connections. */
async function queueWaiters(cluster: Cluster, leader: NodeProcess, count: number, connections: number, log: (line: string) => void): Promise<Queue> {
  const holder = await LeanClient.connect([leader.url], ADMIN_KEY);
  const held: string[] = [];
  for (let i = 0; i < QUEUE_SLOTS; i++) {
    const g = await holder.request((requestId) => ({ type: "acquire", requestId, resource: QUEUE }));
    if (g.type !== "granted") throw new Error(`expected a grant, got ${JSON.stringify(g)}`);
    held.push(g.lease.id);
  }
  const clients = await Promise.all(Array.from({ length: connections }, () => LeanClient.connect([leader.url], ADMIN_KEY)));
  for (const c of [holder, ...clients]) c.heartbeat(HEARTBEAT_MS);
  const closes: string[] = [];
  for (const [i, c] of [holder, ...clients].entries()) {
    c.ws.on("close", (code: number, reason: Buffer) => closes.push(`${i === 0 ? "holder" : `waiter ${i}`}: ${code} ${reason.toString()}`));
  }
  let granted = 0;
  let firstGrantAt = 0;
  let allGranted!: () => void;
  const done = new Promise<void>((resolve) => {
    allGranted = resolve;
  });
  for (let i = 0; i < count; i++) {
    // Yield now and then: a client that stops reading for seconds misses the node's pings and is cut off.
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    const client = clients[i % connections]!;
    void client
      .request((requestId) => ({ type: "acquire", requestId, resource: QUEUE }))
      .then(async (g) => {
        if (g.type !== "granted") throw new Error(`expected a grant, got ${JSON.stringify(g)}`);
        if (granted++ === 0) firstGrantAt = performance.now();
        if (granted === count) allGranted();
        await client.request((requestId) => ({ type: "release", requestId, leaseId: g.lease.id }));
      });
  }
  // Queued once the leader reports them all waiting; a queue that stops growing for 30 s is a failure.
  let last = -1;
  let lastChangeAt = performance.now();
  for (;;) {
    const r = await cluster.resource(QUEUE);
    const waiting = Object.values(r.queued).reduce((a, b) => a + b, 0);
    if (waiting >= count) break;
    if (waiting !== last) [last, lastChangeAt] = [waiting, performance.now()];
    else if (performance.now() - lastChangeAt > 30_000) {
      throw new Error(`the queue stopped at ${waiting}/${count} (${granted} granted; closed: ${closes.slice(0, 3).join(", ") || "none"}); the nodes said:\n${cluster.nodes.map((n) => n.output.split("\n").filter((l) => /"level":[456]0|leadership|expired|closed|snapshot/.test(l)).slice(-8).join("\n")).join("\n")}`);
    }
    log(`waiting: ${waiting}/${count} queued`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  return {
    async drain() {
      const t0 = performance.now();
      await Promise.all(held.map((leaseId) => holder.request((requestId) => ({ type: "release", requestId, leaseId }))));
      await done;
      const s = (performance.now() - (firstGrantAt || t0)) / 1000;
      for (const c of [holder, ...clients]) c.close();
      return count / s;
    },
  };
}

const PHASES: readonly ScalePhase[] = ["baseline", "resources", "clients", "waiting"];

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: {
      phases: { type: "string" },
      resources: { type: "string" },
      puts: { type: "string" },
      clients: { type: "string" },
      waiting: { type: "string" },
      waiters: { type: "string" },
      loops: { type: "string" },
      connections: { type: "string" },
      seconds: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) {
    console.log("usage: npx tsx --conditions=source scripts/bench/scale.ts [--phases baseline,resources,clients,waiting] [--resources N] [--puts N]");
    console.log("         [--clients N] [--waiting N] [--waiters N] [--loops N] [--connections N] [--seconds S]");
    process.exit(0);
  }
  const positive = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) {
      console.error(`--${name} must be a positive number, got ${JSON.stringify(v)}`);
      process.exit(2);
    }
    return n;
  };
  const phases = values.phases?.split(",").map((p) => p.trim()) ?? [...PHASES];
  const unknown = phases.filter((p) => !PHASES.includes(p as ScalePhase));
  if (unknown.length > 0) {
    console.error(`unknown phase(s) ${unknown.join(", ")}; phases are ${PHASES.join(", ")}`);
    process.exit(2);
  }
  const connections = positive("connections", values.connections);
  const clients = positive("clients", values.clients);
  if (clients !== undefined && clients + (connections ?? 4) > CLIENT_CONNECTIONS_MAX) {
    console.error(`--clients plus --connections must be at most ${CLIENT_CONNECTIONS_MAX} (a node's connection cap)`);
    process.exit(2);
  }
  const opt = <K extends string>(key: K, v: number | undefined): Partial<Record<K, number>> => (v === undefined ? {} : ({ [key]: v } as Record<K, number>));
  const results = await runScaleBench({
    phases: phases as ScalePhase[],
    ...opt("resources", positive("resources", values.resources)),
    ...opt("resourcePutsInFlight", positive("puts", values.puts)),
    ...opt("clients", clients),
    ...opt("waiting", positive("waiting", values.waiting)),
    ...opt("waiters", positive("waiters", values.waiters)),
    ...opt("loops", positive("loops", values.loops)),
    ...opt("connections", connections),
    ...opt("seconds", positive("seconds", values.seconds)),
    log: (line) => console.error(line),
  });
  console.log("scale: 3 nodes on loopback, fsync on; each phase on a fresh cluster");
  console.log("| phase | bulk | built in | per second | leader RSS | follower RSS | grants/s | acquire p50 | acquire p99 | drain grants/s |");
  console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of results) {
    console.log(
      `| ${r.phase} | ${r.bulk} | ${r.buildSeconds.toFixed(1)} s | ${r.buildPerSecond.toFixed(0)} | ${r.leaderRssMiB[0]} -> ${r.leaderRssMiB[1]} MiB | ${r.followerRssMiB[0]} -> ${r.followerRssMiB[1]} MiB | ${r.loops.grantsPerSecond.toFixed(0)} | ${r.loops.p50Ms.toFixed(2)} ms | ${r.loops.p99Ms.toFixed(2)} ms | ${r.drainPerSecond?.toFixed(0) ?? ""} |`,
    );
  }
}

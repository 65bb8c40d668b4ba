import { spawn } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Prng } from "@ratequeue/testkit";
import { ADMIN_KEY, sleep } from "../cluster/harness.js";
import { ChaosCluster } from "./chaos-cluster.js";
import { check, type AdminSample, type CheckedLimits, type CheckReport } from "./checker.js";
import type { ClientHistory } from "./history.js";
import { appliedEffects, readNodeLog, type NodeLog } from "./log-dump.js";
import type { WorkerOptions } from "./client-worker.js";

const WORKER = fileURLToPath(new URL("./client-worker.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface ChaosOptions {
  readonly durationMs: number;
  readonly seed: number;
  readonly clients?: number;
  /** Concurrent acquire loops per client process. */
  readonly concurrency?: number;
  readonly log?: (line: string) => void;
  /** The SDK the client processes load (a module path); default "@ratequeue/sdk". */
  readonly sdkModule?: string;
}

export interface ChaosResult extends CheckReport {
  readonly seed: number;
  readonly faults: Record<string, number>;
  readonly replay: string;
}

const RESOURCES = {
  chat: { limits: [{ kind: "rate", limit: 25, windowMs: 1_000 }, { kind: "concurrency", limit: 4 }] },
  tokens: { limits: [{ kind: "load", limit: 400, windowMs: 1_000 }] },
};
const LIMITS: Record<string, CheckedLimits> = {
  chat: { rate: { limit: 25, windowMs: 1_000 }, concurrency: 4 },
  tokens: { load: { limit: 400, windowMs: 1_000 } },
};
const ACQUIRE_TIMEOUTS_MS = [150, 1_000, 3_000, 3_000];
/** Faults stop this long before the clients do: the healed cluster must then finish every request (liveness). */
const HEALED_TAIL_MS = 12_000;
const FAULT_KINDS = ["killLeader", "killFollower", "pauseLeader", "pauseFollower", "isolateBoth", "isolateOut", "isolateIn", "replaceFollower", "replaceLeader"] as const;
/** Longest a node added by replaceFollower or replaceLeader may take to start, catch up and be promoted. */
const JOIN_TIMEOUT_MS = 60_000;
type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * One chaos run: a three-node cluster of real processes behind peer proxies (a follower may be replaced by a new
 * node on the way),
 * `clients` SDK client processes, and a nemesis that injects one fault at a
 * time (chosen by `seed`), heals it, and waits for a leader before the next.
 * Then every node is stopped and the checker reads their logs.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const sdkFlag = options.sdkModule === undefined ? "" : ` --sdk ${options.sdkModule}`;
  const replay = `npx tsx scripts/nemesis.ts --seed ${options.seed} --minutes ${(options.durationMs / 60_000).toFixed(2)}${sdkFlag}`;
  log(`nemesis: seed ${options.seed} (replay the fault schedule: ${replay})`);
  const prng = new Prng(options.seed);
  const faults: Record<string, number> = {};
  const livenessFailures: string[] = [];
  /** Node processes that exited without the nemesis killing them: each is a violation (and is restarted). */
  const crashes: string[] = [];
  const cluster = await ChaosCluster.start({ resources: RESOURCES, sessionTtlMs: 5_000 });
  try {
    const workers = startWorkers(cluster, options, prng);
    const samples: AdminSample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const n of cluster.nodes.filter((x) => x.running)) {
          const view = await cluster.adminGet(n.id, "/v1/resources/chat");
          if (view !== null) samples.push({ node: n.id, resource: "chat", leasesHeld: view.leasesHeld });
        }
        await sleep(500);
      }
    })();

    const faultsEndAt = Date.now() + Math.max(0, options.durationMs - HEALED_TAIL_MS);
    let leaderChanges = 0;
    // Faults come in rounds, each a shuffle of every kind, so even a short run injects each kind once.
    const round: FaultKind[] = [];
    while (Date.now() < faultsEndAt) {
      crashes.push(...restartCrashed(cluster));
      if (round.length === 0) round.push(...shuffle([...FAULT_KINDS], prng));
      const kind = round.pop()!;
      const holdMs = prng.int(500, 4_000);
      const before = await cluster.currentLeader();
      const target = await inject(cluster, kind, holdMs, prng, livenessFailures);
      const leader = await cluster.waitForLeader(20_000);
      if (leader === null) livenessFailures.push(`liveness: no leader within 20 s after healing ${kind} of ${target}`);
      if (leader !== null && leader.id !== before) leaderChanges++;
      if (target !== null) {
        faults[kind] = (faults[kind] ?? 0) + 1;
        log(`nemesis: ${kind} ${target} for ${holdMs} ms; leader ${before} -> ${leader?.id ?? "none"}`);
      }
      await sleep(prng.int(300, 1_500));
    }
    cluster.healAll();
    const histories = await Promise.all(workers);
    sampling = false;
    await sampler;
    crashes.push(...restartCrashed(cluster));

    // Let every node catch up before the stop, so the logs compare over as long a prefix as possible.
    await waitForSameApplied(cluster, 20_000);
    await cluster.stopNodes();
    const logs: NodeLog[] = [];
    for (const n of cluster.nodes) logs.push(await readNodeLog({ dataDir: n.dataDir, id: n.id }));
    const longest = logs.reduce((a, b) => (b.commit > a.commit ? b : a));
    const effects = appliedEffects(longest);
    const report = check({
      logs,
      effects,
      histories,
      limits: LIMITS,
      samples,
      endBoundMs: 8_000,
    });
    report.violations.push(...crashes, ...livenessFailures);
    report.stats.leaderChanges = leaderChanges;
    const totalFaults = Object.values(faults).reduce((s, n) => s + n, 0);
    log(`nemesis: ${report.stats.ops} operations (${report.stats.granted} granted), ${totalFaults} faults ${JSON.stringify(faults)}`);
    log(`nemesis: stats ${JSON.stringify(report.stats)}`);
    log(`nemesis: ${report.violations.length} violations${report.violations.length === 0 ? "" : `\n  ${report.violations.join("\n  ")}`}`);
    if (report.violations.length > 0) {
      // Keep the evidence: the replayed grant log and every client's history, for the excerpt a bug report needs.
      const evidence = await mkdtemp(join(tmpdir(), `rq-nemesis-evidence-${options.seed}-`));
      await writeFile(join(evidence, "effects.jsonl"), effects.map((e) => JSON.stringify(e)).join("\n"));
      await writeFile(join(evidence, "histories.json"), JSON.stringify(histories));
      await writeFile(join(evidence, "nodes.log"), cluster.nodes.map((n) => n.output).join("\n"));
      log(`nemesis: evidence (grant log, histories, node logs) kept in ${evidence}`);
      log(`nemesis: replay with ${replay}`);
    }
    return { ...report, seed: options.seed, faults, replay };
  } catch (err) {
    log(`nemesis: run failed (seed ${options.seed}, replay: ${replay})\n${cluster.dump()}`);
    throw err;
  } finally {
    await cluster.destroy();
  }
}

/**
 * Every node the nemesis did not stop is running: it restarts whatever it killed before returning. A node found
 * down here crashed by itself; returns one violation per such node, with what it printed that was not a JSON log line
 * (a stack trace), and restarts it so the run goes on.
 */
function restartCrashed(cluster: ChaosCluster): string[] {
  const found: string[] = [];
  for (const n of cluster.nodes) {
    if (n.running || n.proc === null || cluster.retired.has(n.id)) continue;
    const lastWords = n.output.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("{")).slice(0, 12).join("\n    ");
    found.push(`crash: ${n.id} exited by itself (code ${n.proc.exitCode}, signal ${n.proc.signalCode}):\n    ${lastWords}`);
    n.output = n.output.split("\n").filter((l) => l.startsWith("{")).join("\n"); // report each crash once
    n.start();
  }
  return found;
}

/** Injects one fault, holds it, heals it. Returns the target's id, or null when the fault could not apply now. */
async function inject(cluster: ChaosCluster, kind: FaultKind, holdMs: number, prng: Prng, failures: string[]): Promise<string | null> {
  const leader = await cluster.currentLeader();
  if (leader === null) return null;
  if (kind === "replaceFollower" || kind === "replaceLeader") return replaceMember(cluster, leader, kind === "replaceLeader", prng, failures);
  const followers = cluster.ids.filter((id) => id !== leader && cluster.node(id).running);
  const onLeader = kind === "killLeader" || kind === "pauseLeader" || (kind.startsWith("isolate") && prng.chance(0.5));
  const target = onLeader ? leader : followers[prng.int(0, Math.max(0, followers.length - 1))];
  if (target === undefined) return null;
  switch (kind) {
    case "killLeader":
    case "killFollower":
      await cluster.node(target).kill("SIGKILL");
      await sleep(holdMs);
      cluster.node(target).start();
      break;
    case "pauseLeader":
    case "pauseFollower":
      cluster.pause(target);
      await sleep(holdMs);
      cluster.resume(target);
      break;
    case "isolateBoth":
    case "isolateOut":
    case "isolateIn":
      cluster.isolate(target, kind === "isolateBoth" ? "both" : kind === "isolateOut" ? "out" : "in");
      await sleep(holdMs);
      cluster.healAll();
      break;
  }
  return target;
}

/**
 * A membership change under load: removes a follower (or the leader, which hands leadership over first) through
 * the admin API, stops it for good, and starts a new node (a new id, an empty data folder, behind its own proxy)
 * that joins with --join and asks to be added; waits until it is a voter. Returns "old by new", or null when the removal was refused now (RQ_QUORUM while another
 * node is behind, a change still in progress, leadership moving): that is the admin API working, not a fault.
 */
async function replaceMember(cluster: ChaosCluster, leader: string, onLeader: boolean, prng: Prng, failures: string[]): Promise<string | null> {
  const followers = cluster.ids.filter((id) => id !== leader && cluster.node(id).running && !cluster.retired.has(id));
  const target = onLeader ? leader : followers[prng.int(0, Math.max(0, followers.length - 1))];
  if (target === undefined) return null;
  // Refusals right after another fault are normal (RQ_QUORUM while a voter is still behind, RQ_CHANGE_IN_PROGRESS):
  // the removal is retried for a while, through whichever node answers.
  let answer: { status: number; json: any } | null = null;
  const tryUntil = Date.now() + 15_000;
  for (;;) {
    const via = cluster.nodes.find((n) => n.running && !cluster.retired.has(n.id) && n.id !== target)?.id ?? leader;
    answer = await cluster.admin(via, "DELETE", `/v1/members/${target}`, 15_000);
    if (answer?.status === 200 || answer?.status === 404 || Date.now() > tryUntil) break;
    await sleep(500);
  }
  // Whatever the answer (a timeout may still apply), the membership the leader reports decides.
  const isMember = async (id: string, voter: boolean): Promise<boolean | null> => {
    for (const n of cluster.nodes.filter((x) => x.running && !cluster.retired.has(x.id) && x.id !== id)) {
      const list = await cluster.admin(n.id, "GET", "/v1/members");
      if (list?.status === 200 && list.json.leader === n.id) {
        return (list.json.members as { id: string; voter: boolean }[]).some((m) => m.id === id && (!voter || m.voter));
      }
    }
    return null;
  };
  const deadline = Date.now() + 10_000;
  let still = await isMember(target, false);
  while (still !== false && Date.now() < deadline) {
    await sleep(200);
    still = await isMember(target, false);
  }
  if (still !== false) return null; // refused (or not known yet): the node stays
  await cluster.retire(target);
  const fresh = await cluster.addNode(`n${cluster.nodes.length + 1}`);
  const joinedBy = Date.now() + JOIN_TIMEOUT_MS;
  while ((await isMember(fresh.id, true)) !== true) {
    if (Date.now() > joinedBy || !fresh.running) {
      failures.push(`liveness: ${fresh.id} (replacing ${target}, removal answered ${answer?.status ?? "nothing"}) was not a voter within ${JOIN_TIMEOUT_MS} ms`);
      break;
    }
    await sleep(250);
  }
  return `${target} by ${fresh.id}`;
}

function shuffle<T>(items: T[], prng: Prng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = prng.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function startWorkers(cluster: ChaosCluster, options: ChaosOptions, prng: Prng): Promise<ClientHistory>[] {
  const clients = options.clients ?? 3;
  return Array.from({ length: clients }, async (_, i) => {
    const client = `c${i + 1}`;
    const worker: WorkerOptions = {
      client,
      // Each client starts from a different node, so clients meet followers and notLeader answers too.
      urls: cluster.urls.slice(i % 3).concat(cluster.urls.slice(0, i % 3)),
      apiKey: ADMIN_KEY,
      durationMs: options.durationMs,
      concurrency: options.concurrency ?? 3,
      seed: prng.u32(),
      outFile: join(cluster.root, `${client}.json`),
      resources: [
        { name: "chat", loadMax: 0 },
        { name: "tokens", loadMax: 60 },
      ],
      timeoutsMs: ACQUIRE_TIMEOUTS_MS,
      cancelShare: 0.05,
      holdMaxMs: 200,
      sessionTtlMs: 5_000,
      unavailableAfterMs: 15_000,
      drainMs: 40_000,
      ...(options.sdkModule === undefined ? {} : { sdkModule: options.sdkModule }),
    };
    // --conditions=source: the workspace SDK from its TypeScript source, so the run needs no build of it first.
    const proc = spawn(process.execPath, ["--conditions=source", "--import", "tsx", WORKER, JSON.stringify(worker)], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    proc.stdout.on("data", (d: Buffer) => (output += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const killer = setTimeout(() => proc.kill("SIGKILL"), options.durationMs + 60_000);
    const code = await new Promise<number | null>((resolve) => proc.once("exit", (c) => resolve(c)));
    clearTimeout(killer);
    if (code !== 0) throw new Error(`client ${client} exited with ${code}:\n${output.slice(-4_000)}`);
    return JSON.parse(await readFile(worker.outFile, "utf8")) as ClientHistory;
  });
}

async function waitForSameApplied(cluster: ChaosCluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const statuses = await Promise.all(cluster.nodes.filter((n) => !cluster.retired.has(n.id)).map((n) => n.status()));
    const applied = statuses.map((s) => s?.appliedIndex ?? -1);
    if (applied.every((a) => a >= 0 && a === applied[0])) return;
    await sleep(200);
  }
}

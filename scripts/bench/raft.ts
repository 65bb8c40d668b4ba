/**
 * Raft core benchmark: microseconds per committed proposal in a 3-node
 * in-memory cluster (messages delivered in-process, MemoryStorage), with
 * proposals one by one (each waits for its commit) and in batches of 64
 * (proposed together, then committed together).
 *
 * For comparison: etcd's raft publishes about 5.9 µs per proposal for 3 nodes
 * in memory. Figures are medians of several runs on a shared machine.
 *
 *   npx tsx --conditions=source scripts/bench/raft.ts [--proposals 20000] [--runs 5]
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { MemoryStorage, RawNode, bootstrapSnapshot, createRng, type Message } from "@ratequeue/raft";

export interface RaftBenchOptions {
  /** Proposals committed per run and per mode. */
  readonly proposals?: number;
  /** Runs per mode; the median is reported. */
  readonly runs?: number;
  /** Payload size of each proposal. */
  readonly payloadBytes?: number;
}

export interface RaftBenchResult {
  readonly name: "raft";
  readonly proposals: number;
  readonly runs: number;
  readonly oneByOneUsPerProposal: number;
  readonly batch64UsPerProposal: number;
  /** Every run's figure, for the curious. */
  readonly samples: { readonly oneByOne: readonly number[]; readonly batch64: readonly number[] };
}

interface BenchNode {
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
  appliedIndex: number;
}

/** A 3-node cluster whose messages are delivered synchronously, in order. */
class InProcessCluster {
  readonly nodes = new Map<string, BenchNode>();
  private queue: Message[] = [];

  constructor() {
    const voters = ["n1", "n2", "n3"];
    voters.forEach((id, i) => {
      const storage = new MemoryStorage();
      storage.applySnapshot(bootstrapSnapshot({ voters }));
      const raw = new RawNode({ id, storage, rng: createRng(i + 1), maxInflightMsgs: 4096 });
      this.nodes.set(id, { raw, storage, appliedIndex: 1 });
    });
    const n1 = this.get("n1");
    for (let i = 0; i < 100 && n1.raw.status().role !== "leader"; i++) {
      n1.raw.tick();
      this.pump();
    }
    if (n1.raw.status().role !== "leader") throw new Error("bench: n1 did not become leader");
  }

  get(id: string): BenchNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`bench: no node ${id}`);
    return node;
  }

  /** Runs Readies and deliveries until nothing is left to do. */
  pump(): void {
    for (;;) {
      let busy = false;
      for (const node of this.nodes.values()) {
        if (!node.raw.hasReady()) continue;
        busy = true;
        const rd = node.raw.ready();
        for (const m of rd.messagesNow) this.queue.push(m);
        if (rd.snapshot !== null) node.storage.applySnapshot(rd.snapshot);
        if (rd.entries.length > 0) node.storage.append(rd.entries);
        if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
        for (const m of rd.messagesAfterPersist) this.queue.push(m);
        const last = rd.committedEntries[rd.committedEntries.length - 1];
        if (last !== undefined) node.appliedIndex = last.index;
        node.raw.advance();
      }
      if (this.queue.length > 0) {
        busy = true;
        const batch = this.queue;
        this.queue = [];
        for (const m of batch) this.get(m.to).raw.step(m);
      }
      if (!busy) return;
    }
  }
}

function measure(proposals: number, batch: number, payload: Uint8Array): number {
  const cluster = new InProcessCluster();
  const leader = cluster.get("n1");
  const start = performance.now();
  for (let done = 0; done < proposals; ) {
    let lastIndex = 0;
    const n = Math.min(batch, proposals - done);
    for (let i = 0; i < n; i++) {
      const r = leader.raw.propose(payload);
      if (r.outcome !== "accepted") throw new Error(`bench: proposal ${r.outcome}`);
      lastIndex = r.index;
    }
    cluster.pump();
    if (leader.appliedIndex < lastIndex) throw new Error(`bench: ${lastIndex} not committed (applied ${leader.appliedIndex})`);
    done += n;
  }
  const elapsedMs = performance.now() - start;
  return (elapsedMs * 1000) / proposals;
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs the benchmark; a bench runner can call this and print or compare the result. */
export function runRaftBench(options: RaftBenchOptions = {}): RaftBenchResult {
  const proposals = options.proposals ?? 20_000;
  const runs = options.runs ?? 5;
  const payload = new Uint8Array(options.payloadBytes ?? 128).fill(7);
  // Warm up the JIT so that the first measured run is not an outlier.
  measure(Math.min(proposals, 5_000), 1, payload);
  measure(Math.min(proposals, 5_000), 64, payload);
  const oneByOne: number[] = [];
  const batch64: number[] = [];
  for (let i = 0; i < runs; i++) {
    oneByOne.push(measure(proposals, 1, payload));
    batch64.push(measure(proposals, 64, payload));
  }
  return {
    name: "raft",
    proposals,
    runs,
    oneByOneUsPerProposal: median(oneByOne),
    batch64UsPerProposal: median(batch64),
    samples: { oneByOne, batch64 },
  };
}

function argValue(name: string): number | undefined {
  const i = process.argv.indexOf(name);
  const raw = i >= 0 ? process.argv[i + 1] : undefined;
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = runRaftBench({ proposals: argValue("--proposals"), runs: argValue("--runs") });
  const etcdUs = 5.9;
  console.log(`raft: 3 nodes in memory, ${result.proposals} proposals x ${result.runs} runs (medians)`);
  console.log(`  one by one : ${result.oneByOneUsPerProposal.toFixed(2)} µs/proposal`);
  console.log(
    `  batches of 64: ${result.batch64UsPerProposal.toFixed(2)} µs/proposal (${(result.batch64UsPerProposal / etcdUs).toFixed(2)}x etcd's ${etcdUs} µs)`,
  );
}

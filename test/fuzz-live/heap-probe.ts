/**
 * Investigation tool (not a test): runs the fuzz-live rounds against a cluster whose nodes run with --inspect, and
 * after each round forces a full GC in the leader through the inspector and prints its heap after GC, its RSS,
 * its active handles, and (with --snapshots DIR) writes a heap snapshot per round for diffing with heap-diff.ts.
 *
 *   npx tsx test/fuzz-live/heap-probe.ts [--rounds 4] [--snapshots /tmp/rq-heap] [--only badFrames,...]
 */
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import WebSocket from "ws";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, sleep, waitFor } from "../cluster/harness.js";
import { badFrames, connectionFlood, garbageAndPeerProbes, halfOpenSockets, oversizedFrames, slowReaders } from "./attacks.js";

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const ROUNDS = Number(arg("rounds") ?? 4);
const SNAPSHOTS = arg("snapshots");
const ONLY = arg("only")?.split(",");
const SEED = Number(arg("seed") ?? 1234);
const SETTLE_MS = Number(arg("settle") ?? 3_000);

class Inspector {
  #ws: WebSocket;
  #id = 0;
  #waiting = new Map<number, (r: any) => void>();
  onEvent: (method: string, params: any) => void = () => undefined;
  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on("message", (data) => {
      const m = JSON.parse(data.toString());
      if (m.id !== undefined) {
        this.#waiting.get(m.id)?.(m);
        this.#waiting.delete(m.id);
      } else this.onEvent(m.method, m.params);
    });
  }
  static async connect(url: string): Promise<Inspector> {
    const ws = new WebSocket(url, { maxPayload: 1 << 30 });
    await new Promise((res, rej) => {
      ws.once("open", res);
      ws.once("error", rej);
    });
    return new Inspector(ws);
  }
  call(method: string, params: object = {}): Promise<any> {
    const id = ++this.#id;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, (m) => (m.error ? reject(new Error(JSON.stringify(m.error))) : resolve(m.result)));
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }
  async eval(expression: string): Promise<any> {
    const r = await this.call("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(JSON.stringify(r.exceptionDetails));
    return r.result.value;
  }
  async gc(): Promise<void> {
    for (let i = 0; i < 3; i++) await this.call("HeapProfiler.collectGarbage");
  }
  async snapshot(file: string): Promise<void> {
    const out = createWriteStream(file);
    this.onEvent = (method, params) => {
      if (method === "HeapProfiler.addHeapSnapshotChunk") out.write(params.chunk);
    };
    await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    await new Promise<void>((r) => out.end(r));
    this.onEvent = () => undefined;
  }
  close(): void {
    this.#ws.close();
  }
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.replace(/\D+/g, "")) / 1024;
}

const PROBE = `(() => {
  const m = process.memoryUsage();
  const res = {};
  for (const r of process.getActiveResourcesInfo()) res[r] = (res[r] ?? 0) + 1;
  const mb = (x) => +(x / 1048576).toFixed(1);
  return { heapUsedMb: mb(m.heapUsed), heapTotalMb: mb(m.heapTotal), externalMb: mb(m.external), arrayBuffersMb: mb(m.arrayBuffers), rssMb: mb(m.rss), resources: res };
})()`;

async function main(): Promise<void> {
  if (SNAPSHOTS !== undefined) mkdirSync(SNAPSHOTS, { recursive: true });
  const cluster = await Cluster.start({
    sessionTtlMs: 2_000,
    snapshotEntries: 100_000_000,
    execArgv: ["--inspect=127.0.0.1:0"],
    resources: {
      good: { limits: [{ kind: "concurrency", limit: 4 }, { kind: "rate", limit: 100_000, windowMs: 1_000 }] },
      target: { limits: [{ kind: "concurrency", limit: 2 }, { kind: "load", limit: 5_000, windowMs: 60_000 }] },
    },
  });
  try {
    const leader = await cluster.waitForLeader();
    const url = /ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+/.exec(leader.output)![0];
    const insp = await Inspector.connect(url);
    const key = await cluster.admin("POST", "/v1/keys", { name: "fuzzer", scope: { acquire: ["target"] } });
    const target = { host: "127.0.0.1", port: leader.port, fuzzKey: key.json.secret as string };
    const good = new RateQueue({ url: cluster.urls, apiKey: ADMIN_KEY, clientName: "well-behaved" });
    let stop = false;
    let grants = 0;
    const loop = (async () => {
      while (!stop) {
        try {
          {
            await using _lease = await good.acquire("good", { timeoutMs: 10_000 });
            grants++;
          }
          await sleep(20);
        } catch {
          await sleep(50);
        }
      }
    })();
    await waitFor(() => grants >= 20, { what: "first grants", timeoutMs: 30_000 });
    const measure = async (label: string): Promise<void> => {
      await insp.gc();
      const probe = await insp.eval(PROBE);
      const status = await leader.status();
      console.log(JSON.stringify({ label, rssProcMb: +rssMb(leader.proc!.pid!).toFixed(1), lastIndex: status?.lastIndex, sessions: status?.sessions, grants, ...probe }));
      if (SNAPSHOTS !== undefined) await insp.snapshot(`${SNAPSHOTS}/${label}.heapsnapshot`);
    };
    await measure("r0");
    const want = (name: string): boolean => ONLY === undefined || ONLY.includes(name);
    for (let round = 1; round <= ROUNDS; round++) {
      const seed = SEED + round * 7;
      if (want("badFrames")) await badFrames(target, { count: 300, seed });
      if (want("oversizedFrames")) await oversizedFrames(target, { count: 20 });
      if (want("connectionFlood")) await connectionFlood(target, { connections: 1_000, holdMs: 3_000 });
      if (want("halfOpenSockets")) await halfOpenSockets(target, { sockets: 300, holdMs: 4_000 });
      if (want("slowReaders")) await slowReaders(target, { readers: 3, frames: 1_000, messagesPerFrame: 200, gapMs: 3 });
      if (want("garbage")) await garbageAndPeerProbes(target, { count: 50, seed: seed + 1 });
      await sleep(SETTLE_MS);
      await measure(`r${round}`);
    }
    stop = true;
    await loop;
    await good.close();
    insp.close();
  } finally {
    await cluster.stop();
  }
}

await main();

/**
 * RateQueue next to the Redis-backed limiters a Node.js user would pick
 * instead, measured in the same run on the same machine:
 *
 * - RateQueue: a three-node cluster (real processes, fsync on), driven through
 *   the SDK's callback form, `acquire(resource, options, fn)`: a grant, then a
 *   release (two replicated, synced log entries; the call returns once the
 *   release is sent, as it does for every user of that form).
 * - RateQueue, handle form: `acquire(resource, options)`, then an awaited
 *   `lease.release()` (the release's round trip is in the loop).
 * - The Redis wiring a team would build for the same quota with
 *   rate-limiter-flexible: a concurrency slot as a Redis counter (INCR, DECR
 *   back if over the limit), then `consume()` on an RPM limiter and on a TPM
 *   limiter; the release is a DECR of the counter (awaited).
 * - rate-limiter-flexible + Redis: `consume()` alone (one Redis script; no
 *   queue, no concurrency slot, nothing replicated).
 * - bottleneck + Redis ("clustering" datastore): `schedule()` around an empty
 *   job (acquire and release of a slot through Redis scripts).
 *
 * Each is driven by the same number of worker processes, each running the
 * same number of concurrent loops for the same time. Reported: operations
 * per second, and latency p50/p99 of the acquire step.
 *
 * `--only a,b` runs a subset of the contenders (names as in the table).
 *
 *   npx tsx --conditions=source scripts/bench/compare.ts [--processes 4] [--concurrency 16] [--seconds 5] [--runs 3] [--only ratequeue,...]
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import { LocalCluster, freePorts } from "@ratequeue/node";

export type Contender = "ratequeue" | "ratequeue-handle" | "rlf-wiring" | "rate-limiter-flexible" | "bottleneck";

export const CONTENDERS: readonly Contender[] = ["ratequeue", "ratequeue-handle", "rlf-wiring", "rate-limiter-flexible", "bottleneck"];

export interface CompareOptions {
  readonly processes?: number;
  readonly concurrency?: number;
  readonly seconds?: number;
  readonly runs?: number;
  /** The contenders to run (default: all, in CONTENDERS order). */
  readonly contenders?: readonly Contender[];
  readonly log?: (line: string) => void;
}

export interface CompareRow {
  readonly contender: Contender;
  readonly what: string;
  /** Median over runs. */
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly runs: number;
}

interface WorkerResult {
  count: number;
  latenciesMs: number[];
  errors: number;
}

const SELF = fileURLToPath(import.meta.url);
const RESOURCE = "bench";
const WHAT: Record<Contender, string> = {
  ratequeue: "acquire(fn): grant + release, 3 nodes, Raft + fsync",
  "ratequeue-handle": "acquire(), then await release(), 3 nodes, Raft + fsync",
  "rlf-wiring": "INCR slot, consume() RPM + TPM, await DECR; Redis",
  "rate-limiter-flexible": "consume(), Redis, no queue",
  bottleneck: "schedule(), Redis clustering",
};

/** Runs the comparison and returns one row per contender (medians over runs). */
export async function runCompareBench(options: CompareOptions = {}): Promise<CompareRow[]> {
  const processes = options.processes ?? 4;
  const concurrency = options.concurrency ?? 16;
  const seconds = options.seconds ?? 5;
  const runs = options.runs ?? 3;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  execFileSync("bash", [fileURLToPath(new URL("../setup/debian-packages.sh", import.meta.url)), "redis-server"], { stdio: "inherit" });

  const redis = await startRedis();
  const cluster = await LocalCluster.start({
    resources: {
      [RESOURCE]: {
        limits: [
          { kind: "rate", limit: 1_000_000_000, windowMs: 60_000 },
          { kind: "load", limit: 1_000_000_000, windowMs: 60_000 },
          { kind: "concurrency", limit: 1_000_000 },
        ],
      },
    },
    extraArgs: ["--log-level", "warn"],
  });
  try {
    await cluster.waitForLeader();
    const rows: CompareRow[] = [];
    const samples = new Map<Contender, { ops: number[]; p50: number[]; p99: number[] }>();
    const contenders = options.contenders ?? CONTENDERS;
    // Interleave contenders run by run, so that noise on this shared machine hits all of them alike.
    for (let run = 1; run <= runs; run++) {
      for (const contender of contenders) {
        const env = {
          RQ_BENCH_URLS: cluster.urls.join(","),
          RQ_BENCH_KEY: cluster.adminKey,
          RQ_BENCH_REDIS_PORT: String(redis.port),
          RQ_BENCH_RUN: String(run),
        };
        const results = await runWorkers(contender, processes, concurrency, seconds * 1000, env);
        const count = results.reduce((a, r) => a + r.count, 0);
        const errors = results.reduce((a, r) => a + r.errors, 0);
        const lat = results.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
        const s = samples.get(contender) ?? { ops: [], p50: [], p99: [] };
        s.ops.push(count / seconds);
        s.p50.push(quantile(lat, 0.5));
        s.p99.push(quantile(lat, 0.99));
        samples.set(contender, s);
        log(
          `run ${run}/${runs} ${contender.padEnd(22)} ${Math.round(count / seconds).toString().padStart(7)} ops/s  ` +
            `p50 ${quantile(lat, 0.5).toFixed(2)} ms  p99 ${quantile(lat, 0.99).toFixed(2)} ms${errors > 0 ? `  (${errors} errors)` : ""}`,
        );
      }
    }
    for (const contender of contenders) {
      const s = samples.get(contender)!;
      rows.push({ contender, what: WHAT[contender], opsPerSec: median(s.ops), p50Ms: median(s.p50), p99Ms: median(s.p99), runs });
    }
    return rows;
  } finally {
    await cluster.stop();
    await redis.stop();
  }
}

export function formatCompareTable(rows: readonly CompareRow[]): string {
  const lines = [
    "| limiter | what one operation is | ops/s (median) | acquire p50 | acquire p99 |",
    "| --- | --- | ---: | ---: | ---: |",
    ...rows.map(
      (r) => `| ${r.contender} | ${r.what} | ${Math.round(r.opsPerSec).toLocaleString("en-US")} | ${r.p50Ms.toFixed(2)} ms | ${r.p99Ms.toFixed(2)} ms |`,
    ),
  ];
  return lines.join("\n");
}

async function runWorkers(
  contender: Contender,
  processes: number,
  concurrency: number,
  durationMs: number,
  env: Record<string, string>,
): Promise<WorkerResult[]> {
  const children: ChildProcess[] = [];
  const results = await Promise.all(
    Array.from({ length: processes }, (_, i) => {
      const child = fork(SELF, ["--worker", contender, "--concurrency", String(concurrency), "--duration-ms", String(durationMs), "--index", String(i)], {
        env: { ...process.env, ...env },
        execArgv: ["--conditions=source", "--import", "tsx"],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      children.push(child);
      return new Promise<WorkerResult>((resolve, reject) => {
        child.once("message", (m) => resolve(m as WorkerResult));
        child.once("exit", (code) => (code === 0 ? undefined : reject(new Error(`${contender} worker exited with ${code}`))));
      });
    }),
  );
  await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once("exit", r)))));
  return results;
}

// ---------------------------------------------------------------------------
// Worker side: one process, `concurrency` loops, for `durationMs`.

async function worker(contender: Contender, concurrency: number, durationMs: number, index: number): Promise<WorkerResult> {
  const op = await makeOp(contender, index);
  // Warm up connections and code paths before measuring.
  for (let i = 0; i < 20; i++) await op.run();
  const latenciesMs: number[] = [];
  let count = 0;
  let errors = 0;
  const end = performance.now() + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          const ms = await op.run();
          count++;
          if (latenciesMs.length < 200_000) latenciesMs.push(ms);
        } catch {
          errors++;
        }
      }
    }),
  );
  await op.close();
  return { count, latenciesMs, errors };
}

interface Op {
  /** One operation; resolves with the acquire step's latency in ms. */
  run(): Promise<number>;
  close(): Promise<void>;
}

async function makeOp(contender: Contender, index: number): Promise<Op> {
  const redisPort = Number(process.env.RQ_BENCH_REDIS_PORT);
  const run = process.env.RQ_BENCH_RUN ?? "1";
  switch (contender) {
    case "ratequeue": {
      const { RateQueue } = await import("@ratequeue/sdk");
      const rq = new RateQueue({ url: process.env.RQ_BENCH_URLS!, apiKey: process.env.RQ_BENCH_KEY, clientName: `bench-${index}` });
      return {
        async run() {
          const t0 = performance.now();
          let ms = 0;
          // The SPEC's callback form: the lease is held while the job runs and released when it returns.
          await rq.acquire(RESOURCE, { load: 1 }, () => {
            ms = performance.now() - t0;
          });
          return ms;
        },
        close: () => rq.close(),
      };
    }
    case "ratequeue-handle": {
      const { RateQueue } = await import("@ratequeue/sdk");
      const rq = new RateQueue({ url: process.env.RQ_BENCH_URLS!, apiKey: process.env.RQ_BENCH_KEY, clientName: `bench-${index}` });
      return {
        async run() {
          const t0 = performance.now();
          const lease = await rq.acquire(RESOURCE, { load: 1 });
          const ms = performance.now() - t0;
          await lease.release();
          return ms;
        },
        close: () => rq.close(),
      };
    }
    case "rlf-wiring": {
      const { Redis } = await import("ioredis");
      const { RateLimiterRedis } = await import("rate-limiter-flexible");
      const client = new Redis({ port: redisPort, enableOfflineQueue: true, lazyConnect: false });
      const rpm = new RateLimiterRedis({ storeClient: client, keyPrefix: `wiring-rpm-${run}`, points: 1_000_000_000, duration: 60 });
      const tpm = new RateLimiterRedis({ storeClient: client, keyPrefix: `wiring-tpm-${run}`, points: 1_000_000_000, duration: 60 });
      const slots = `wiring-slots-${run}:${RESOURCE}`;
      const concurrencyLimit = 1_000_000;
      return {
        async run() {
          const t0 = performance.now();
          // The concurrency slot: take one; over the limit, give it back and fail (the caller would retry).
          if ((await client.incr(slots)) > concurrencyLimit) {
            await client.decr(slots);
            throw new Error("no concurrency slot");
          }
          try {
            await rpm.consume(RESOURCE, 1);
            await tpm.consume(RESOURCE, 1);
          } catch (err) {
            await client.decr(slots);
            throw err;
          }
          const ms = performance.now() - t0;
          await client.decr(slots); // the release
          return ms;
        },
        close: async () => void client.disconnect(),
      };
    }
    case "rate-limiter-flexible": {
      const { Redis } = await import("ioredis");
      const { RateLimiterRedis } = await import("rate-limiter-flexible");
      const client = new Redis({ port: redisPort, enableOfflineQueue: true, lazyConnect: false });
      const limiter = new RateLimiterRedis({ storeClient: client, keyPrefix: `rlf-${run}`, points: 1_000_000_000, duration: 60 });
      return {
        async run() {
          const t0 = performance.now();
          await limiter.consume(RESOURCE, 1);
          return performance.now() - t0;
        },
        close: async () => void client.disconnect(),
      };
    }
    case "bottleneck": {
      const { default: Bottleneck } = await import("bottleneck");
      const limiter = new Bottleneck({
        id: `bench-${run}`,
        datastore: "ioredis",
        clientOptions: { port: redisPort },
        clearDatastore: false,
        maxConcurrent: 1_000_000,
      });
      await limiter.ready();
      return {
        async run() {
          const t0 = performance.now();
          let ms = 0;
          // The job starts once the slot is acquired; schedule() resolves after its release.
          await limiter.schedule(async () => {
            ms = performance.now() - t0;
          });
          return ms;
        },
        close: () => limiter.disconnect(true),
      };
    }
  }
}

// ---------------------------------------------------------------------------

async function startRedis(): Promise<{ port: number; stop(): Promise<void> }> {
  const [port] = await freePorts(1);
  const dir = await mkdtemp(join(tmpdir(), "rq-redis-"));
  // Default persistence (RDB snapshots, no AOF): how these libraries are usually deployed.
  const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""], { stdio: "ignore" });
  const { Redis } = await import("ioredis");
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (Date.now() > deadline) throw new Error("redis-server did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port: port!,
    async stop() {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// ---------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    worker: { type: "string" },
    concurrency: { type: "string" },
    "duration-ms": { type: "string" },
    index: { type: "string" },
    processes: { type: "string" },
    seconds: { type: "string" },
    runs: { type: "string" },
    only: { type: "string" },
    help: { type: "boolean" },
  },
  strict: false,
});

if (values.worker !== undefined) {
  const result = await worker(values.worker as Contender, Number(values.concurrency), Number(values["duration-ms"]), Number(values.index));
  process.send!(result, () => process.exit(0));
} else if (process.argv[1] === SELF) {
  if (values.help === true) {
    process.stdout.write(
      "usage: npx tsx --conditions=source scripts/bench/compare.ts [--processes 4] [--concurrency 16] [--seconds 5] [--runs 3] [--only a,b]\n" +
        `  --only  comma-separated contenders to run, of: ${CONTENDERS.join(", ")} (default: all)\n`,
    );
  } else {
    const only = typeof values.only === "string" ? values.only.split(",").map((s) => s.trim()) : undefined;
    const unknown = only?.filter((c) => !(CONTENDERS as readonly string[]).includes(c)) ?? [];
    if (unknown.length > 0) throw new Error(`--only: unknown contender(s) ${unknown.join(", ")}; known: ${CONTENDERS.join(", ")}`);
    const rows = await runCompareBench({
      ...(only === undefined ? {} : { contenders: only as Contender[] }),
      processes: Number(values.processes ?? 4),
      concurrency: Number(values.concurrency ?? 16),
      seconds: Number(values.seconds ?? 5),
      runs: Number(values.runs ?? 3),
    });
    process.stdout.write(`\n${formatCompareTable(rows)}\n`);
    const ops = (c: Contender): number | undefined => rows.find((r) => r.contender === c)?.opsPerSec;
    for (const form of ["ratequeue-handle", "ratequeue"] as const) {
      const a = ops(form);
      const b = ops("rlf-wiring");
      if (a !== undefined && b !== undefined) process.stdout.write(`${form} / rlf-wiring: ${(a / b).toFixed(2)}x\n`);
    }
  }
}

/**
 * One load-generating client process for the chaos run: `concurrency` loops
 * that acquire, hold a few ms and release, through the SDK, for `durationMs`;
 * then it waits (bounded) for every call to end, closes its client, and
 * writes its whole history as JSON to `outFile`.
 *
 * Usage: tsx test/nemesis/client-worker.ts '<WorkerOptions as JSON>'
 */
import { writeFileSync } from "node:fs";
import type * as Sdk from "@ratequeue/sdk";
import type { AcquireRecord, ClientHistory } from "./history.js";

export interface WorkerOptions {
  readonly client: string;
  readonly urls: readonly string[];
  readonly apiKey: string;
  readonly durationMs: number;
  readonly concurrency: number;
  readonly seed: number;
  readonly outFile: string;
  /** Each acquire picks one; a load of 1..loadMax when loadMax > 0. */
  readonly resources: readonly { readonly name: string; readonly loadMax: number }[];
  /** Each acquire waits at most one of these (the server times it out); short ones make timeouts happen. */
  readonly timeoutsMs: readonly number[];
  /** Each grant is held 0..holdMaxMs before its release. */
  readonly holdMaxMs: number;
  /** Share of acquires cancelled through an AbortSignal after 0-300 ms. */
  readonly cancelShare: number;
  readonly sessionTtlMs: number;
  readonly unavailableAfterMs: number;
  /** The SDK to load (a module path); default "@ratequeue/sdk". Lets the run check another build of the SDK. */
  readonly sdkModule?: string;
  /** After durationMs, the longest the worker waits for its calls to end before it writes its history anyway. */
  readonly drainMs: number;
}

const options = JSON.parse(process.argv[2] ?? "") as WorkerOptions;
const { RateQueue, RateQueueError } = (await import(options.sdkModule ?? "@ratequeue/sdk")) as typeof Sdk;
let seed = options.seed >>> 0;
/** mulberry32: the workload's own seeded stream (the cluster's behaviour is not seeded, only our choices). */
const random = (): number => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const rq = new RateQueue({
  url: [...options.urls],
  apiKey: options.apiKey,
  sessionTtlMs: options.sessionTtlMs,
  unavailableAfterMs: options.unavailableAfterMs,
  clientName: options.client,
});
const records: AcquireRecord[] = [];
const stopAt = Date.now() + options.durationMs;
let nextOp = 0;

async function loop(): Promise<void> {
  while (Date.now() < stopAt) {
    const spec = options.resources[Math.floor(random() * options.resources.length)]!;
    const load = spec.loadMax > 0 ? 1 + Math.floor(random() * spec.loadMax) : 0;
    const timeoutMs = options.timeoutsMs[Math.floor(random() * options.timeoutsMs.length)]!;
    const abort = random() < options.cancelShare ? new AbortController() : null;
    const abortTimer = abort === null ? null : setTimeout(() => abort.abort(), Math.floor(random() * 300));
    const record: AcquireRecord = {
      client: options.client,
      op: nextOp++,
      resource: spec.name,
      load,
      timeoutMs,
      startMs: Date.now(),
      endMs: null,
      outcome: null,
    };
    records.push(record);
    try {
      const lease = await rq.acquire(spec.name, { timeoutMs, ...(load > 0 ? { load } : {}), ...(abort === null ? {} : { signal: abort.signal }) });
      record.endMs = Date.now();
      record.outcome = "granted";
      record.sessionId = lease.sessionId;
      record.leaseId = lease.id;
      record.grantedAt = lease.grantedAt;
      record.releaseEndMs = null;
      // Hold it a while, as a real call to a provider would: the longer leases are held, the more a slot freed
      // behind its holder's back shows up as more holders than the concurrency limit (see the checker).
      await new Promise((r) => setTimeout(r, Math.floor(random() * options.holdMaxMs)));
      record.releaseStartMs = Date.now();
      try {
        await lease.release();
      } catch (err) {
        record.releaseError = String(err);
      }
      record.releaseEndMs = Date.now();
    } catch (err) {
      record.endMs = Date.now();
      record.outcome = "failed";
      record.code = err instanceof RateQueueError ? err.code : "NOT_AN_RQ_ERROR";
      record.message = err instanceof Error ? err.message : String(err);
      if (err instanceof RateQueueError && err.request !== null) record.failedRequest = { ...err.request };
      await new Promise((r) => setTimeout(r, 20)); // do not spin while no node is reachable
    } finally {
      if (abortTimer !== null) clearTimeout(abortTimer);
    }
  }
}

const loops = Promise.all(Array.from({ length: options.concurrency }, () => loop()));
const drained = await Promise.race([
  loops.then(() => true),
  new Promise<boolean>((r) => setTimeout(() => r(false), options.durationMs + options.drainMs).unref()),
]);
const history: ClientHistory = { client: options.client, records };
writeFileSync(options.outFile, JSON.stringify(history));
await Promise.race([rq.close(), new Promise((r) => setTimeout(r, 3_000).unref())]);
process.stdout.write(`${JSON.stringify({ client: options.client, ops: records.length, drained })}\n`);
process.exit(0);

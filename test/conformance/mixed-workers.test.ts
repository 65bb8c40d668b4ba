/**
 * A Python worker (the Python SDK, its own process) and a Node worker (the
 * Node SDK) share one concurrency limit of 3: the intervals each held a lease
 * (from after the grant to before the release is sent, so a conservative
 * view) never overlap more than 3 deep, and both made progress.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, sleep } from "../cluster/harness.js";

const LIMIT = 3;
const TASKS = 4;
const ROUNDS = 8;
const HOLD_MS = 20;

describe("a Python and a Node worker share one concurrency limit", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ resources: { shared: { limits: [{ kind: "concurrency", limit: LIMIT }] } } });
  }, 60_000);
  afterAll(async () => cluster?.stop());

  it("never exceeds it together", async () => {
    const src = fileURLToPath(new URL("../../packages/python/src", import.meta.url));
    const worker = fileURLToPath(new URL("./python-worker.py", import.meta.url));
    const python = promisify(execFile)(
      "/usr/bin/python3",
      [worker, cluster.urls.join(","), ADMIN_KEY, "shared", String(TASKS), String(ROUNDS), String(HOLD_MS)],
      { env: { ...process.env, PYTHONPATH: src } },
    );
    const rq = new RateQueue({ url: cluster.urls.join(","), apiKey: ADMIN_KEY });
    const nodeIntervals: number[][] = [];
    await Promise.all(
      Array.from({ length: TASKS }, async () => {
        for (let i = 0; i < ROUNDS; i++) {
          await rq.acquire("shared", { timeoutMs: 60_000 }, async () => {
            const start = Date.now();
            await sleep(HOLD_MS);
            nodeIntervals.push([start, Date.now()]);
          });
        }
      }),
    );
    await rq.close();
    const pythonIntervals = JSON.parse((await python).stdout) as number[][];
    expect(pythonIntervals.length).toBe(TASKS * ROUNDS);
    expect(nodeIntervals.length).toBe(TASKS * ROUNDS);
    // Sweep: at equal times an end comes before a start (the release precedes the next grant).
    const events = [...pythonIntervals, ...nodeIntervals].flatMap(([s, e]) => [[s!, 1], [e!, -1]] as const);
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let depth = 0;
    let deepest = 0;
    for (const [, d] of events) {
      depth += d;
      deepest = Math.max(deepest, depth);
    }
    expect(deepest).toBeLessThanOrEqual(LIMIT);
  }, 120_000);
});

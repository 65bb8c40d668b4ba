/**
 * Each example end to end against one real local cluster (three
 * `ratequeue start` processes), for a few seconds, with small limits over a
 * compressed 10 s window so that the provider's buckets are exhausted early
 * and the run is bound by their refill: RateQueue is what keeps the 429s away,
 * as the uncoordinated control run shows. No wall-clock assertions: durations
 * only bound how much work is done.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run as runAnthropic } from "../../examples/anthropic-workers.js";
import { run as runFleet } from "../../examples/fleet.js";
import { startLocalCluster, type LocalCluster } from "../../examples/local-cluster.js";
import { run as runOpenAi } from "../../examples/openai-workers.js";
import { run as runPython } from "../../examples/python-workers.js";

const DURATION_MS = Number(process.env.RQ_EXAMPLE_DURATION_MS ?? 5_000);
const LIMITS = { rpm: 600, tpm: 4_000, itpm: 4_000, otpm: 3_000, concurrency: 6, windowMs: 10_000 };
// A 1 s delivery margin: this machine may be loaded, and the trip to the provider must stay within it.
const COMMON = { durationMs: DURATION_MS, limits: LIMITS, latencyMs: 50, marginMs: 1_000, maxTokens: { min: 32, max: 256 } };

let cluster: LocalCluster;
beforeAll(async () => {
  cluster = await startLocalCluster();
}, 60_000);
afterAll(async () => {
  await cluster?.close();
});

describe("examples against a local cluster and the provider simulator", () => {
  it("openai-workers: 10 workers, zero 429s, the provider saw what the workers saw, and the TPM bucket was exhausted", async () => {
    const r = await runOpenAi({ ...COMMON, workers: 10, cluster: { url: cluster.url, apiKey: cluster.adminKey } });
    expect(r.limited).toBe(0);
    expect(r.provider.limited).toBe(0);
    expect(r.requests).toBeGreaterThan(0);
    expect(r.requests).toBe(r.provider.completed);
    expect(r.inputTokens + r.outputTokens).toBe(r.provider.totalTokens);
    // More than a full bucket went through: the run reached the refill-bound phase where coordination matters.
    expect(r.provider.totalTokens).toBeGreaterThan(LIMITS.tpm);
    expect(r.tpmShare).toBeLessThanOrEqual(1);
    expect(r.provider.maxInFlight).toBeLessThanOrEqual(LIMITS.concurrency);
  });

  it("openai-workers against a sliding-log provider behind a variable network delay: zero 429s", async () => {
    const r = await runOpenAi({ ...COMMON, algorithm: "sliding", networkDelayMs: 2, networkJitterMs: 30, workers: 10, resource: "openai-sliding", cluster: { url: cluster.url, apiKey: cluster.adminKey } });
    expect(r.limited).toBe(0);
    expect(r.provider.limited).toBe(0);
    expect(r.requests).toBe(r.provider.completed);
    expect(r.provider.maxInFlight).toBeLessThanOrEqual(LIMITS.concurrency);
  });

  it("openai-workers against a fixed-window provider (windows aligned to its clock): zero 429s", async () => {
    // RateQueue's fixed windows are aligned to log time, which a young cluster keeps within milliseconds of the
    // wall clock: the limiter README ("Fixed windows and the provider's clock") says why an old one may not.
    // 2 s windows, so the run crosses at least one of the provider's boundaries, where a misaligned count would bite.
    const limits = { ...LIMITS, tpm: 2_000, windowMs: 2_000 };
    const r = await runOpenAi({ ...COMMON, limits, marginMs: 500, algorithm: "fixed", networkDelayMs: 5, networkJitterMs: 20, workers: 8, resource: "openai-fixed", cluster: { url: cluster.url, apiKey: cluster.adminKey } });
    expect(r.limited).toBe(0);
    expect(r.provider.limited).toBe(0);
    expect(r.requests).toBeGreaterThan(0);
    expect(r.requests).toBe(r.provider.completed);
    expect(r.provider.maxInFlight).toBeLessThanOrEqual(limits.concurrency);
  });

  it("control: the same workload without RateQueue does get 429s (so the zero above means something)", async () => {
    const r = await runOpenAi({ ...COMMON, workers: 10, coordinate: false });
    expect(r.limited).toBeGreaterThan(0);
    expect(r.provider.limited).toBe(r.limited);
  });

  it("anthropic-workers: input and output dimensions, zero 429s when the resource matches the provider", async () => {
    const r = await runAnthropic({ ...COMMON, workers: 10, cluster: { url: cluster.url, apiKey: cluster.adminKey } });
    expect(r.limited).toBe(0);
    expect(r.provider.limited).toBe(0);
    expect(r.requests).toBe(r.provider.completed);
    expect(r.inputTokens).toBe(r.provider.inputTokens);
    expect(r.outputTokens).toBe(r.provider.outputTokens);
    expect(r.provider.outputTokens).toBeGreaterThan(LIMITS.otpm); // the output bucket was the binding limit
  });

  it("anthropic-workers --squeeze-pct 40: the provider is tighter than the resource, each 429 is reported with reportLimited", async () => {
    const r = await runAnthropic({
      ...COMMON,
      workers: 10,
      squeezePct: 40,
      resource: "anthropic-squeezed",
      cluster: { url: cluster.url, apiKey: cluster.adminKey },
    });
    expect(r.limited).toBeGreaterThan(0);
    expect(r.cooldownsReported).toBe(r.limited);
    expect(r.provider.limited).toBe(r.limited);
    expect(r.requests).toBeGreaterThan(0);
    expect(r.providerLimits.otpm).toBe(Math.floor(LIMITS.otpm * 0.6));
  });

  it("fleet: worker processes share one quota through the cluster with zero 429s", async () => {
    const r = await runFleet({ ...COMMON, processes: 2, workersPerProcess: 4, cluster: { url: cluster.url, apiKey: cluster.adminKey } });
    expect(r.limited).toBe(0);
    expect(r.provider.limited).toBe(0);
    expect(r.requests).toBe(r.provider.completed);
    expect(r.provider.totalTokens).toBeGreaterThan(LIMITS.tpm);
  });

  it("python-workers: asyncio workers with ratequeue.aio and httpx, zero 429s, the provider saw what they saw", async () => {
    const r = await runPython({ ...COMMON, workers: 8, cluster: { url: cluster.url, apiKey: cluster.adminKey } });
    expect(r.limited).toBe(0);
    expect(r.provider.limited).toBe(0);
    expect(r.requests).toBeGreaterThan(0);
    expect(r.requests).toBe(r.provider.completed);
    expect(r.inputTokens + r.outputTokens).toBe(r.provider.totalTokens);
    expect(r.provider.maxInFlight).toBeLessThanOrEqual(LIMITS.concurrency);
  });
});

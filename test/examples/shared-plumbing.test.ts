/**
 * The helpers in examples/lib that the examples and the demo share since the
 * clean-up (flags, result rows, the OpenAI request, child-process messages,
 * defaults): each checked on its own, so a change to one shows here and not
 * only as a changed printout.
 */
import { EventEmitter } from "node:events";
import type { ChildProcess } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { limitFlags, stringFlags, UsageError } from "../../examples/lib/cli.js";
import { bucketShare, exampleFlags, exampleFlagsHelp, exampleSettings, tpmExampleResult } from "../../examples/lib/example-run.js";
import { emptyFigures, formatRows, formatSeconds } from "../../examples/lib/figures.js";
import { nextMessage, withTimeout } from "../../examples/lib/fork.js";
import { randomInt, seededRandom } from "../../examples/lib/prng.js";
import { contextText, randomOpenAiRequest, randomPrompt } from "../../examples/lib/prompts.js";
import { countChatTokens, countTokens } from "../../examples/lib/tokens.js";
import { bucketBudget, DEFAULT_LIMITS, startProviderSim } from "../../examples/provider-sim.js";
import { checkProperty } from "@ratequeue/testkit";

const FILE = "test/examples/shared-plumbing.test.ts";

describe("flags", () => {
  it("stringFlags gives parseArgs specs", () => {
    expect(stringFlags(["seed", "window-ms"])).toEqual({ seed: { type: "string" }, "window-ms": { type: "string" } });
  });

  it("limitFlags reads only the named limits and --window-ms; absent ones stay absent", () => {
    expect(limitFlags({ rpm: "10", tpm: "200", "window-ms": "5000" }, ["rpm", "tpm"])).toEqual({ rpm: 10, tpm: 200, windowMs: 5000 });
    expect(limitFlags({ rpm: "10", itpm: "7" } as { rpm?: string }, ["rpm"])).toEqual({ rpm: 10 });
    expect(limitFlags({}, ["rpm", "concurrency"])).toEqual({});
  });

  it("limitFlags names the bad flag in a UsageError", () => {
    expect(() => limitFlags({ concurrency: "0" }, ["concurrency"])).toThrow(UsageError);
    expect(() => limitFlags({ concurrency: "0" }, ["concurrency"])).toThrow(/--concurrency must be an integer from 1/);
    expect(() => limitFlags({ "window-ms": "1.5" }, [])).toThrow(/--window-ms/);
  });

  it("exampleFlags maps the common flags onto ExampleOptions", () => {
    const o = exampleFlags({ "duration-ms": "3000", "latency-ms": "0", "margin-ms": "500", resource: "r", seed: "7", tpm: "100" }, ["tpm"]);
    expect(o).toMatchObject({ durationMs: 3000, latencyMs: 0, marginMs: 500, resource: "r", seed: 7, limits: { tpm: 100 } });
    expect(() => exampleFlags({ "latency-ms": "-1" }, [])).toThrow(/--latency-ms/);
  });
});

describe("exampleSettings", () => {
  it("fills the documented defaults and keeps what is given", () => {
    const s = exampleSettings({}, { resource: "x-sim" });
    expect(s).toMatchObject({ durationMs: 15_000, limits: DEFAULT_LIMITS, latencyMs: 200, seed: 1, marginMs: undefined, algorithm: "bucket", maxTokens: { min: 64, max: 512 }, resource: "x-sim" });
    const t = exampleSettings({ limits: { tpm: 5 }, resource: "mine", seed: 0 }, { resource: "x-sim" });
    expect(t.limits).toEqual({ ...DEFAULT_LIMITS, tpm: 5 });
    expect(t.resource).toBe("mine");
    expect(t.seed).toBe(0);
  });

  it("bucketShare is tokens over bucketBudget", () => {
    const bucket = { limit: 60_000, windowMs: 60_000, elapsedMs: 3_000 };
    expect(bucketShare({ tokens: 6_300, ...bucket })).toBeCloseTo(6_300 / bucketBudget(bucket), 12);
  });

  it("tpmExampleResult keeps the figures and the simulator's counters and adds the TPM share", async () => {
    const sim = await startProviderSim({ limits: DEFAULT_LIMITS, latencyMs: 0, seed: 1 });
    try {
      const provider = { ...sim.stats().openai, totalTokens: 1_234 };
      const figures = { ...emptyFigures(), requests: 3, inputTokens: 1_000, outputTokens: 234 };
      const r = tpmExampleResult({ figures, elapsedMs: 2_000, limits: DEFAULT_LIMITS, provider });
      expect(r).toMatchObject({ ...figures, elapsedMs: 2_000, limits: DEFAULT_LIMITS, provider });
      expect(r.tpmShare).toBe(bucketShare({ tokens: 1_234, limit: DEFAULT_LIMITS.tpm, windowMs: DEFAULT_LIMITS.windowMs, elapsedMs: 2_000 }));
    } finally {
      await sim.close();
    }
  });

  it("exampleFlagsHelp names the resource default", () => {
    expect(exampleFlagsHelp({ resource: "fleet-sim" })).toContain("--resource <name>    RateQueue resource (default fleet-sim)\n");
  });
});

describe("formatRows", () => {
  it("prints the examples' rows as before the clean-up (values two spaces after the longest label)", () => {
    expect(formatRows([["requests done", "89"], ["share of TPM used", "31.3%"], ["elapsed", formatSeconds(3_150)]])).toBe(
      ["requests done:      89", "share of TPM used:  31.3%", "elapsed:            3.1 s"].join("\n"),
    );
    expect(() => formatRows([])).toThrow(RangeError);
  });

  it("every value starts in the same column, right after its padded label", () => {
    const label = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !s.includes("\n"));
    const value = fc.string({ maxLength: 30 }).filter((s) => !s.includes("\n"));
    checkProperty({ file: FILE, name: "every value starts in the same column" }, fc.property(fc.array(fc.tuple(label, value), { minLength: 1, maxLength: 8 }), (rows) => {
      const column = Math.max(...rows.map(([l]) => l.length)) + 3;
      const lines = formatRows(rows).split("\n");
      if (lines.length !== rows.length) throw new Error(`${lines.length} lines for ${rows.length} rows`);
      rows.forEach(([l, v], i) => {
        const expected = `${l}:${" ".repeat(column - l.length - 1)}${v}`;
        if (lines[i] !== expected) throw new Error(`line ${i}: ${JSON.stringify(lines[i])} !== ${JSON.stringify(expected)}`);
      });
    }));
  });
});

describe("randomOpenAiRequest", () => {
  it("draws like the workers did before it existed (prompt, then max_tokens) and reserves prompt tokens + max_tokens", () => {
    for (let seed = 0; seed < 20; seed++) {
      const range = { min: 64, max: 512 };
      const r = randomOpenAiRequest(seededRandom(seed), range);
      const old = seededRandom(seed);
      const { system, user } = randomPrompt(old);
      const maxTokens = randomInt(old, range.min, range.max);
      expect(r.messages).toEqual([
        { role: "system", content: system },
        { role: "user", content: user },
      ]);
      expect(r.maxTokens).toBe(maxTokens);
      expect(r.reserveTokens).toBe(countChatTokens(r.messages) + maxTokens);
    }
  });

  it("with contextTokens: the same prompt and max_tokens, the user message starts with n tokens of context, and reserves them", () => {
    for (let seed = 0; seed < 10; seed++) {
      const plain = randomOpenAiRequest(seededRandom(seed), { min: 16, max: 64 });
      const big = randomOpenAiRequest(seededRandom(seed), { min: 16, max: 64 }, { min: 100, max: 300 });
      expect(big.maxTokens).toBe(plain.maxTokens);
      expect(big.messages[1]!.content.endsWith(plain.messages[1]!.content)).toBe(true);
      const added = big.reserveTokens - plain.reserveTokens;
      expect(added).toBeGreaterThanOrEqual(100 + 2); // "Context:" and the blank line cost a few tokens more
      expect(added).toBeLessThanOrEqual(300 + 4);
    }
    expect(countTokens(contextText(seededRandom(1), 500))).toBe(500);
    expect(() => contextText(seededRandom(1), -1)).toThrow(/context tokens must be an integer >= 0/);
  });
});

describe("child-process messages", () => {
  type Message = { readonly type: "ready" } | { readonly type: "done"; readonly n: number };
  const fakeChild = (): ChildProcess => new EventEmitter() as unknown as ChildProcess;

  it("nextMessage skips other types, resolves with the first of its type and stops listening", async () => {
    const child = fakeChild();
    const done = nextMessage<Extract<Message, { type: "done" }>>(child, { type: "done", who: "worker 1" });
    child.emit("message", { type: "ready" });
    child.emit("message", { type: "done", n: 3 });
    await expect(done).resolves.toEqual({ type: "done", n: 3 });
    expect(child.listenerCount("message") + child.listenerCount("exit")).toBe(0);
  });

  it("nextMessage rejects, naming the child, when it exits first", async () => {
    const child = fakeChild();
    const ready = nextMessage<Message>(child, { type: "ready", who: "worker 2" });
    child.emit("exit", 1, null);
    await expect(ready).rejects.toThrow('worker 2 exited (code 1, signal null) before it sent "ready"');
    expect(child.listenerCount("message") + child.listenerCount("exit")).toBe(0);
  });

  it("withTimeout passes a settled promise through and rejects with its message when the time runs out", async () => {
    await expect(withTimeout(Promise.resolve(5), 60_000, "never")).resolves.toBe(5);
    await expect(withTimeout(Promise.reject(new Error("inner")), 60_000, "never")).rejects.toThrow("inner");
    await expect(withTimeout(new Promise(() => undefined), 1, "not ready in time")).rejects.toThrow("not ready in time");
  });
});

import { afterEach, describe, expect, it } from "vitest";
import { Anthropic, OpenAI } from "../../examples/lib/provider-clients.js";
import { countChatTokens } from "../../examples/lib/tokens.js";
import { startProviderSim, type ProviderSim, type ProviderSimOptions } from "../../examples/provider-sim.js";

// The buckets read this fake clock, so refill happens only when a test moves it.
let clockMs = 1_000_000;
const now = (): number => clockMs;
let sim: ProviderSim | null = null;

async function start(options: ProviderSimOptions): Promise<ProviderSim> {
  sim = await startProviderSim({ latencyMs: 0, now, ...options });
  return sim;
}

afterEach(async () => {
  await sim?.close();
  sim = null;
});

const user = (content: string) => [{ role: "user", content }];

async function post(path: string, body: unknown): Promise<{ status: number; headers: Headers; json: any }> {
  const res = await fetch(`${sim!.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

const chat = (maxTokens: number, content = "Hello there") => post("/v1/chat/completions", { model: "m", messages: user(content), max_tokens: maxTokens });

describe("provider simulator", () => {
  it("a burst beyond RPM gets 429 with retry-after (seconds) and OpenAI's error shape; the bucket refills continuously", async () => {
    await start({ limits: { rpm: 5, concurrency: 100 } });
    for (let i = 0; i < 5; i++) expect((await chat(10)).status).toBe(200);
    const limited = await chat(10);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("12"); // 5 per minute: one more in 12 s
    expect(limited.json.error).toMatchObject({ type: "requests", code: "rate_limit_exceeded", param: null });
    expect(limited.json.error.message).toMatch(/RPM/);
    clockMs += 11_999;
    expect((await chat(10)).status).toBe(429);
    clockMs += 1;
    expect((await chat(10)).status).toBe(200);
    const stats = sim!.stats().openai;
    expect(stats).toMatchObject({ requests: 8, completed: 6, limited: 2, limitedBy: { rpm: 2 } });
  });

  it("sliding log: a request is refused while the window ending at its arrival is full, admitted once the oldest leaves", async () => {
    await start({ limits: { rpm: 3, concurrency: 100 }, algorithm: "sliding" });
    expect(sim!.algorithm).toBe("sliding");
    expect((await chat(10)).status).toBe(200); // at t
    clockMs += 20_000;
    expect((await chat(10)).status).toBe(200); // t + 20 s
    expect((await chat(10)).status).toBe(200);
    const limited = await chat(10);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("40"); // the first leaves at t + 60 s
    clockMs += 39_999;
    expect((await chat(10)).status).toBe(429); // a bucket would have refilled 2.9 requests by now
    clockMs += 1;
    expect((await chat(10)).status).toBe(200);
    expect((await chat(10)).status).toBe(429);
  });

  it("fixed window: clock-aligned, so the count resets at each minute boundary", async () => {
    clockMs = 60_000 * 1000 + 59_000; // one second before a boundary
    await start({ limits: { rpm: 2, concurrency: 100 }, algorithm: "fixed" });
    expect((await chat(10)).status).toBe(200);
    expect((await chat(10)).status).toBe(200);
    const limited = await chat(10);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
    clockMs += 1_000;
    expect((await chat(10)).status).toBe(200);
    expect((await chat(10)).status).toBe(200); // 4 within 1 s across the boundary: what fixed windows allow
    expect((await chat(10)).status).toBe(429);
  });

  it("a network delay lies between the worker and the provider, each way", async () => {
    sim = await startProviderSim({ latencyMs: 0, networkDelayMs: 5, networkJitterMs: 40, seed: 7, limits: { concurrency: 100 } });
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      expect((await chat(10)).status).toBe(200);
      times.push(performance.now() - t0);
    }
    expect(Math.min(...times)).toBeGreaterThanOrEqual(8); // two crossings of at least 5 ms each (a lower bound only)
  });

  it("refuses an unknown algorithm", async () => {
    await expect(startProviderSim({ algorithm: "leaky" as never })).rejects.toThrow(/algorithm must be one of bucket, sliding, fixed/);
  });

  it("counts TPM as prompt tokens + max_tokens at arrival, and corrects to the actual usage when the reply is sent", async () => {
    await start({ limits: { tpm: 1_000, concurrency: 100 }, latencyMs: 300 });
    const promptTokens = countChatTokens(user("Hello there"));
    const maxTokens = 1_000 - promptTokens - 5;
    const first = chat(maxTokens); // holds prompt + max_tokens while it "generates"
    await waitUntil(() => sim!.stats().openai.inFlight === 1);
    expect(sim!.stats().openai.available.tpm).toBe(5);
    const second = await chat(5); // prompt + 5 does not fit in 5
    expect(second.status).toBe(429);
    expect(second.json.error.type).toBe("tokens");
    expect(sim!.stats().openai.limitedBy).toEqual({ tpm: 1 });
    const reply = (await first).json;
    expect(reply.usage.prompt_tokens).toBe(promptTokens);
    expect(reply.usage.completion_tokens).toBeGreaterThanOrEqual(1);
    expect(reply.usage.completion_tokens).toBeLessThanOrEqual(maxTokens);
    expect(reply.usage.total_tokens).toBe(promptTokens + reply.usage.completion_tokens);
    // Unused max_tokens came back; the clock did not move, so nothing else did.
    expect(sim!.stats().openai.available.tpm).toBe(1_000 - reply.usage.total_tokens);
    expect(sim!.stats().openai.totalTokens).toBe(reply.usage.total_tokens);
  });

  it("enforces concurrency: a request beyond the requests in flight gets 429", async () => {
    await start({ limits: { concurrency: 2 }, latencyMs: 1_000 });
    const held = [chat(10), chat(10)];
    await waitUntil(() => sim!.stats().openai.inFlight === 2);
    const third = await chat(10);
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("1");
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    expect(sim!.stats().openai).toMatchObject({ maxInFlight: 2, inFlight: 0, limitedBy: { concurrency: 1 } });
  });

  it("Anthropic-style: input and output tokens limited separately, max_tokens reserved as output, Anthropic's error shape", async () => {
    await start({ limits: { itpm: 100, otpm: 50, concurrency: 100 } });
    const client = new Anthropic({ apiKey: "k", baseURL: sim!.url, maxRetries: 0 });
    const messages = [{ role: "user" as const, content: "Hi" }];
    const reply = await client.messages.create({ model: "claude-sonnet-5-5", max_tokens: 40, system: "Be brief.", messages });
    expect(reply.usage.input_tokens).toBe(countChatTokens(messages, "Be brief."));
    expect(reply.usage.output_tokens).toBeLessThanOrEqual(40);
    const available = sim!.stats().anthropic.available;
    expect(available.otpm).toBe(50 - reply.usage.output_tokens);
    // More output than is left: a 429 on OTPM, whatever the input.
    const err = await client.messages.create({ model: "claude-sonnet-5-5", max_tokens: available.otpm! + 1, messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    const rateErr = err as InstanceType<typeof Anthropic.RateLimitError>;
    expect(rateErr.error).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
    expect(Number(rateErr.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(sim!.stats().anthropic.limitedBy).toEqual({ otpm: 1 });
    // The OpenAI endpoint has its own buckets.
    expect(sim!.stats().openai.available.rpm).toBe(600);
  });

  it("the real openai client sees a 429 as RateLimitError with the retry-after header", async () => {
    await start({ limits: { rpm: 1 } });
    const client = new OpenAI({ apiKey: "k", baseURL: `${sim!.url}/v1`, maxRetries: 0 });
    const reply = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }], max_tokens: 20 });
    expect(reply.usage?.completion_tokens).toBeLessThanOrEqual(20);
    const err = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers?.get("retry-after")).toBe("60");
  });

  it("completion lengths are seeded: the same seed gives the same replies", async () => {
    const lengths = async (seed: number): Promise<number[]> => {
      await start({ seed, limits: { concurrency: 100 } });
      const out: number[] = [];
      for (let i = 0; i < 8; i++) out.push((await chat(500)).json.usage.completion_tokens);
      await sim!.close();
      return out;
    };
    const a = await lengths(7);
    expect(await lengths(7)).toEqual(a);
    expect(await lengths(8)).not.toEqual(a);
  });

  it("bad input gets a 400 with a specific message and changes nothing", async () => {
    await start({});
    const before = sim!.stats();
    const cases: [string, unknown, RegExp][] = [
      ["/v1/chat/completions", "{not json", /not valid JSON/],
      ["/v1/chat/completions", { messages: user("x") }, /model/],
      ["/v1/chat/completions", { model: "m", messages: [] }, /messages/],
      ["/v1/chat/completions", { model: "m", messages: [{ role: "wizard", content: "x" }] }, /role/],
      ["/v1/chat/completions", { model: "m", messages: user("x"), max_tokens: -1 }, /max_tokens/],
      ["/v1/chat/completions", { model: "m", messages: user("x"), max_tokens: 70_000 }, /never be admitted/],
      ["/v1/messages", { model: "m", messages: user("x") }, /max_tokens/],
      ["/v1/messages", { model: "m", messages: user("x"), max_tokens: 5, system: 3 }, /system/],
    ];
    for (const [path, body, message] of cases) {
      const r = await post(path, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      const text = path === "/v1/messages" ? r.json.error.message : r.json.error.message;
      expect(text).toMatch(message);
      if (path === "/v1/messages") expect(r.json.type).toBe("error");
    }
    const after = sim!.stats();
    expect(after.openai.available).toEqual(before.openai.available);
    expect(after.anthropic.available).toEqual(before.anthropic.available);
    expect(after.openai.requests + after.anthropic.requests).toBe(1); // only the too-large one was a well-formed request
    expect(after.openai.invalid + after.anthropic.invalid).toBe(cases.length);
  });

  it("GET /stats answers what stats() returns; an unknown route is a 404; bad options are refused", async () => {
    await start({});
    const res = await fetch(`${sim!.url}/stats`);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(sim!.stats())));
    expect((await fetch(`${sim!.url}/v1/nothing`, { method: "POST" })).status).toBe(404);
    await expect(startProviderSim({ limits: { tpm: 0 } })).rejects.toThrow(/limits.tpm must be an integer >= 1/);
    await expect(startProviderSim({ latencyMs: -1 })).rejects.toThrow(/latencyMs/);
  });
});

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error("condition not reached within 5 s");
}

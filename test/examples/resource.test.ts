import { describe, expect, it } from "vitest";
import { validateResourceConfig } from "@ratequeue/limiter";
import { anthropicResource } from "../../examples/anthropic-workers.js";
import { openAiResource } from "../../examples/openai-workers.js";
import { DEFAULT_LIMITS } from "../../examples/provider-sim.js";

describe("the examples' resources: the provider's own numbers and algorithm", () => {
  it("OpenAI-style: RPM and TPM with the provider's limit, window and algorithm; the margin left to RateQueue unless given", () => {
    const config = openAiResource(DEFAULT_LIMITS, undefined, "sliding");
    expect(config).toEqual({
      limits: [
        { kind: "rate", limit: 600, windowMs: 60_000, window: "sliding" },
        { kind: "load", limit: 60_000, windowMs: 60_000, window: "sliding" },
        { kind: "concurrency", limit: 8 },
      ],
    });
    const v = validateResourceConfig(config);
    expect(v.ok && v.config.limits.map((l) => ("deliveryMarginMs" in l ? l.deliveryMarginMs : null))).toEqual([1000, 1000, null]);
  });

  it("Anthropic-style: input and output dimensions; an explicit margin applies to every windowed limit", () => {
    const config = anthropicResource({ ...DEFAULT_LIMITS, windowMs: 10_000 }, 300);
    expect(config.deliveryMarginMs).toBe(300);
    const v = validateResourceConfig(config);
    expect(v.ok && v.config.limits.map((l) => [l.kind, "dimension" in l ? l.dimension : null, "window" in l ? l.window : null, "deliveryMarginMs" in l ? l.deliveryMarginMs : null])).toEqual([
      ["rate", null, "bucket", 300],
      ["load", "input", "bucket", 300],
      ["load", "output", "bucket", 300],
      ["concurrency", null, null, null],
    ]);
  });
});

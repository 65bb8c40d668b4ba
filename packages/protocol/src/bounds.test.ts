import { describe, expect, it } from "vitest";
import { Bounds } from "./bounds.js";
import {
  MAX_LOAD,
  MAX_LOAD_DIMENSIONS,
  MAX_NAME_CHARS,
  MAX_PRIORITY,
  MAX_RESOURCE_NAME_CHARS,
  MAX_RETRY_AFTER_MS,
  MAX_TIMEOUT_MS,
  MAX_TTL_MS,
} from "./limits.js";

describe("the bounds table and the decoders' caps", () => {
  it("decoders never refuse, as a bad frame, a value the bounds table allows", () => {
    expect(MAX_PRIORITY).toBeGreaterThanOrEqual(Bounds.priorityMax);
    expect(MAX_LOAD).toBeGreaterThanOrEqual(Bounds.unitsMax);
    expect(MAX_LOAD_DIMENSIONS).toBeGreaterThanOrEqual(Bounds.dimensionsMax);
    expect(MAX_NAME_CHARS).toBeGreaterThanOrEqual(Bounds.nameLengthMax);
    expect(MAX_RESOURCE_NAME_CHARS).toBeGreaterThanOrEqual(Bounds.nameLengthMax);
    expect(MAX_TIMEOUT_MS).toBeGreaterThanOrEqual(Bounds.timeoutMsMax);
    expect(MAX_RETRY_AFTER_MS).toBeGreaterThanOrEqual(Bounds.retryAfterMsMax);
    expect(MAX_TTL_MS).toBeGreaterThanOrEqual(Bounds.ttlMsMax);
  });

  it("keeps every sum of bounded units exact in float64", () => {
    expect(Bounds.unitsMax * (Bounds.limitsMax + 1)).toBeLessThan(Number.MAX_SAFE_INTEGER);
    expect(Bounds.atMax + Bounds.windowMsMax + Bounds.timeoutMsMax).toBeLessThan(Number.MAX_SAFE_INTEGER);
  });
});

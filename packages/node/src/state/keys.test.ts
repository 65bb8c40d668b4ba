import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { acquireRefusal, canAcquire, canSee, hashSecret, keyFromSecret, KeyTable, matchesPattern, newKeySecret, parseKeyScope, ttlRefusal, validateKeyBody } from "./keys.js";

/** The obvious, slow definition of a `*` glob, to check the fast one against. */
function referenceMatch(pattern: string, s: string): boolean {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\/]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`, "s").test(s);
}

describe("API keys", () => {
  it("matches scope patterns exactly like the obvious regular expression", () => {
    const alphabet = fc.constantFrom("a", "b", "-", ".", "*");
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 8 }), fc.string({ unit: fc.constantFrom("a", "b", "-", "."), maxLength: 10 }), (p, s) => {
        expect(matchesPattern(p, s)).toBe(referenceMatch(p, s));
      }),
      { numRuns: 5_000 },
    );
  });

  it("an acquire key reaches only its patterns; an admin key reaches everything", () => {
    expect(canAcquire({ acquire: ["openai-*"] }, "openai-gpt4o")).toBe(true);
    expect(canAcquire({ acquire: ["openai-*"] }, "anthropic-claude")).toBe(false);
    expect(canAcquire("admin", "anything")).toBe(true);
  });

  it("a metrics key sees every resource and may acquire on none; an acquire key sees only its patterns", () => {
    expect(parseKeyScope("metrics")).toEqual({ ok: true, scope: "metrics" });
    expect(canAcquire("metrics", "anything")).toBe(false);
    expect(acquireRefusal("metrics", { resource: "r", priority: 10, lane: null, load: 1 })).toMatch(/may not acquire/);
    expect(canSee("metrics", "anything")).toBe(true);
    expect(canSee("admin", "anything")).toBe(true);
    expect(canSee({ acquire: ["team-a-*"] }, "team-a-chat")).toBe(true);
    expect(canSee({ acquire: ["team-a-*"] }, "team-b-chat")).toBe(false);
  });

  it("derives a chosen secret's id from the secret, and counts admin keys", () => {
    const a = keyFromSecret("bootstrap-secret-0123", "bootstrap admin", "admin");
    expect(keyFromSecret("bootstrap-secret-0123", "other name", "admin").id).toBe(a.id);
    expect(keyFromSecret("another-secret-0123456", "bootstrap admin", "admin").id).not.toBe(a.id);
    const table = new KeyTable();
    expect(table.adminCount).toBe(0);
    table.add(a);
    table.add(keyFromSecret("worker-secret-0123456", "w", { acquire: ["*"] }));
    expect(table.adminCount).toBe(1);
    expect(table.get(a.id)).toEqual(a);
  });

  it("stores only hashes and verifies a secret against them", () => {
    const { id, secret } = newKeySecret();
    const table = new KeyTable();
    table.add({ id, name: "workers", scope: { acquire: ["*"] }, hash: hashSecret(secret), createdAt: 1 });
    expect(JSON.stringify(table.toJSON())).not.toContain(secret);
    expect(table.verify(secret)?.id).toBe(id);
    expect(table.verify(`${secret}x`)).toBeNull();
    expect(table.remove(id)).toBe(true);
    expect(table.verify(secret)).toBeNull();
  });

  it("validates key bodies with specific errors", () => {
    expect(validateKeyBody({ name: "w", scope: { acquire: ["openai-*"] } })).toEqual({ ok: true, name: "w", scope: { acquire: ["openai-*"] } });
    expect(validateKeyBody({ name: "", scope: "root", extra: 1 })).toEqual({
      ok: false,
      errors: ['unknown field "extra"', "name must be a string of 1-128 characters", 'scope must be "admin", "metrics" or { "acquire": ["pattern", ...] }'],
    });
    expect(validateKeyBody([])).toEqual({ ok: false, errors: ["body must be a JSON object"] });
  });

  describe("scope bounds", () => {
    const bounded = { acquire: ["team-a-*"], priorityMax: 20, lanes: ["batch"], ttlMsMax: 30_000, loadMax: 4_000 };
    const ask = { resource: "team-a-1", priority: 10, lane: "batch", load: 100 };

    it("allows what is within every bound, and forbids each bound crossed by one", () => {
      expect(acquireRefusal(bounded, ask)).toBeNull();
      expect(acquireRefusal(bounded, { ...ask, priority: 20 })).toBeNull();
      expect(acquireRefusal(bounded, { ...ask, priority: 21 })).toMatch(/priority up to 20/);
      expect(acquireRefusal(bounded, { ...ask, lane: "interactive" })).toMatch(/lane "interactive"/);
      expect(acquireRefusal(bounded, { ...ask, lane: null })).toBeNull(); // a resource without lanes
      expect(acquireRefusal(bounded, { ...ask, load: 4_000 })).toBeNull();
      expect(acquireRefusal(bounded, { ...ask, load: 4_001 })).toMatch(/at most 4000/);
      expect(acquireRefusal(bounded, { ...ask, load: { input: 10, output: 4_001 } })).toMatch(/not 4001/);
      expect(acquireRefusal(bounded, { ...ask, load: undefined })).toBeNull();
      expect(acquireRefusal(bounded, { ...ask, resource: "team-b-1" })).toMatch(/may not acquire/);
      expect(acquireRefusal("admin", { ...ask, priority: 1_000, lane: "x", load: 1e9 })).toBeNull();
      expect(ttlRefusal(bounded, 30_000)).toBeNull();
      expect(ttlRefusal(bounded, 30_001)).toMatch(/at most 30000 ms/);
      expect(ttlRefusal({ acquire: ["*"] }, 86_400_000)).toBeNull();
    });

    it("parses bounds and refuses bad ones, naming each", () => {
      expect(parseKeyScope(bounded)).toEqual({ ok: true, scope: bounded });
      expect(parseKeyScope({ acquire: ["*"] })).toEqual({ ok: true, scope: { acquire: ["*"] } });
      const bad = parseKeyScope({ acquire: ["*"], priorityMax: 1.5, lanes: [], ttlMsMax: 10, loadMax: -1, quota: 3 });
      expect(bad.ok).toBe(false);
      if (!bad.ok) {
        expect(bad.errors.join("\n")).toMatch(/priorityMax/);
        expect(bad.errors.join("\n")).toMatch(/lanes/);
        expect(bad.errors.join("\n")).toMatch(/ttlMsMax/);
        expect(bad.errors.join("\n")).toMatch(/loadMax/);
        expect(bad.errors.join("\n")).toMatch(/unknown field "quota"/);
      }
      expect(validateKeyBody({ name: "w", scope: { acquire: ["a"], loadMax: Number.NaN } }).ok).toBe(false);
    });
  });
});

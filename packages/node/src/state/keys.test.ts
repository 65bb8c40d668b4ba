import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { canAcquire, hashSecret, KeyTable, matchesPattern, newKeySecret, validateKeyBody } from "./keys.js";

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

  it("stores only hashes and verifies a secret against them", () => {
    const { id, secret } = newKeySecret();
    const table = new KeyTable();
    table.add({ id, name: "workers", scope: { acquire: ["*"] }, hash: hashSecret(secret), createdAt: 1 });
    expect(JSON.stringify(table.toJSON())).not.toContain(secret);
    expect(table.verify(secret)?.id).toBe(id);
    expect(table.verify(secret + "x")).toBeNull();
    expect(table.remove(id)).toBe(true);
    expect(table.verify(secret)).toBeNull();
  });

  it("validates key bodies with specific errors", () => {
    expect(validateKeyBody({ name: "w", scope: { acquire: ["openai-*"] } })).toEqual({ ok: true, name: "w", scope: { acquire: ["openai-*"] } });
    expect(validateKeyBody({ name: "", scope: "root", extra: 1 })).toEqual({
      ok: false,
      errors: ['unknown field "extra"', "name must be a string of 1-128 characters", 'scope must be "admin" or { "acquire": ["pattern", ...] }'],
    });
    expect(validateKeyBody([])).toEqual({ ok: false, errors: ["body must be a JSON object"] });
  });
});

import { describe, expect, it } from "vitest";
import { checkKey, readAccess, viewerAccess, type KeyUse } from "./auth.js";
import { keyFromSecret, KeyTable, type KeyScope } from "./keys.js";

const SCOPES: Record<string, KeyScope> = { admin: "admin", metrics: "metrics", acquire: { acquire: ["openai-*"] } };

function table(): KeyTable {
  const keys = new KeyTable();
  for (const [name, scope] of Object.entries(SCOPES)) keys.add(keyFromSecret(`secret-${name}`, name, scope));
  return keys;
}

describe("checkKey: one decision for every door a key opens", () => {
  // Which scope may use which door: [use, admin, metrics, acquire].
  const allowed: [KeyUse, boolean, boolean, boolean][] = [
    ["session", true, false, true],
    ["admin", true, false, false],
    ["read", true, true, true],
  ];
  it.each(allowed)("%s: admin %s, metrics %s, acquire %s", (use, ...expected) => {
    const keys = table();
    Object.keys(SCOPES).forEach((name, i) => {
      const check = checkKey(keys, `secret-${name}`, use);
      expect(check.ok).toBe(expected[i]);
      if (!check.ok) expect(check).toMatchObject({ code: "RQ_FORBIDDEN", key: { name } });
    });
  });

  it("refuses an unknown or revoked key as RQ_UNAUTHORIZED whatever the use", () => {
    const keys = table();
    keys.remove(keyFromSecret("secret-admin", "admin", "admin").id);
    for (const use of ["session", "admin", "read"] as const) {
      for (const secret of ["nope", "secret-admin"]) {
        expect(checkKey(keys, secret, use)).toEqual({ ok: false, code: "RQ_UNAUTHORIZED", message: "unknown or revoked API key", key: null });
      }
    }
  });

  it("lets readers see every resource with an admin or metrics key, an acquire key's own otherwise", () => {
    expect(readAccess("admin")).toBe("all");
    expect(readAccess("metrics")).toBe("all");
    const access = readAccess(SCOPES.acquire!);
    expect(access !== "all" && access("openai-gpt") && !access("anthropic")).toBe(true);
    const keys = table();
    expect(viewerAccess(keys, "secret-admin")).toBe("admin");
    expect(viewerAccess(keys, "nope")).toBeNull();
    const viewer = viewerAccess(keys, "secret-acquire");
    expect(viewer !== null && viewer !== "admin" && viewer.canRead("openai-x") && !viewer.canRead("other")).toBe(true);
  });
});

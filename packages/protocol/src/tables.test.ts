import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { TABLES_JSON_PATH, tablesJson } from "./tables.js";

describe("the tables JSON for other languages", () => {
  it("holds exactly the code and bounds tables (run `pnpm tables` after changing them)", () => {
    const file = fileURLToPath(new URL(`../../../${TABLES_JSON_PATH}`, import.meta.url));
    expect(readFileSync(file, "utf8")).toBe(tablesJson());
  });
});

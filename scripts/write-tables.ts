/**
 * Writes packages/protocol/tables.json from the protocol package's code and
 * bounds tables (the Python SDK's tests check their own copies against it).
 * Usage: `pnpm tables`.
 */
import { writeFileSync } from "node:fs";
import { TABLES_JSON_PATH, tablesJson } from "@ratequeue/protocol";

if (process.argv.includes("--help")) {
  console.log("usage: pnpm tables\nWrites packages/protocol/tables.json from packages/protocol/src/codes.ts and bounds.ts.");
} else {
  writeFileSync(TABLES_JSON_PATH, tablesJson());
  console.log(`wrote ${TABLES_JSON_PATH}`);
}

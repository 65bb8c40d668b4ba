import { Bounds, NAME_PATTERN } from "./bounds.js";
import { ErrorCode, HttpErrorCode, LIMITER_WIRE_CODE } from "./codes.js";
import { DELIVERY_BUCKETS_MS } from "./limits.js";

/** Where `tables()` is kept as JSON, for the clients in other languages (packages/python's tests read it). */
export const TABLES_JSON_PATH = "packages/protocol/tables.json";

/**
 * The code and bounds tables as plain JSON data: what an SDK in another
 * language must agree with. `tables.test.ts` checks that TABLES_JSON_PATH
 * holds exactly this; `pnpm tables` rewrites it.
 */
export function tables(): Record<string, unknown> {
  return {
    note: "Generated from packages/protocol/src/codes.ts and bounds.ts by `pnpm tables`; do not edit.",
    errorCodes: Object.values(ErrorCode),
    limiterWireCodes: LIMITER_WIRE_CODE,
    httpErrorCodes: Object.values(HttpErrorCode),
    bounds: Bounds,
    namePattern: NAME_PATTERN.source,
    deliveryBucketsMs: DELIVERY_BUCKETS_MS,
  };
}

/** The JSON text of `tables()`, as the file holds it. */
export function tablesJson(): string {
  return `${JSON.stringify(tables(), null, 2)}\n`;
}

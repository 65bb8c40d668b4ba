import { validateResourceConfig } from "@ratequeue/limiter";

/** Checks an admin resource body before it is proposed, so a bad body never reaches the log. */
export function checkResourceBody(body: unknown): { ok: true } | { ok: false; details: string[] } {
  const result = validateResourceConfig(body);
  if (result.ok) return { ok: true };
  return { ok: false, details: result.errors.map((i) => (i.path === "" ? i.message : `${i.path}: ${i.message}`)) };
}

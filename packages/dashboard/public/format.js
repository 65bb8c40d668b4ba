// Formatting for the dashboard page: plain functions of plain data, no DOM.

const numberFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

/** 1234.5 -> "1,234.5"; null -> "–". */
export function formatNumber(n) {
  return n === null || n === undefined ? "–" : numberFormat.format(n);
}

/** A duration in words a newcomer reads at a glance: "500 ms", "2 s", "1.5 min", "1 h". */
export function formatDuration(ms) {
  if (ms < 1000) return `${formatNumber(ms)} ms`;
  if (ms < 60_000) return `${formatNumber(ms / 1000)} s`;
  if (ms < 3_600_000) return `${formatNumber(ms / 60_000)} min`;
  return `${formatNumber(ms / 3_600_000)} h`;
}

/** "per 1 min, sliding window" for a windowed limit; "at once" for concurrency. */
export function limitRule(u) {
  if (u.kind === "concurrency") return "at once";
  const how = { sliding: "sliding window", fixed: "fixed window", bucket: "token bucket" }[u.window] ?? u.window;
  return `per ${formatDuration(u.windowMs)}, ${how}`;
}

/** What a limit counts: "Requests", "Tokens (input)", "Concurrent requests". */
export function limitTitle(u) {
  if (u.kind === "rate") return "Requests";
  if (u.kind === "concurrency") return "Concurrent requests";
  return u.dimension === "load" ? "Load" : `Load: ${u.dimension}`;
}

/** Share of the limit in use, 0..1 (a settle that reported more than charged may exceed the limit: capped at 1). */
export function usageFraction(used, limit) {
  if (!(limit > 0)) return used > 0 ? 1 : 0;
  return Math.min(1, Math.max(0, used / limit));
}

/** Colour band of a usage bar. */
export function usageTone(fraction) {
  return fraction >= 1 ? "full" : fraction >= 0.8 ? "high" : "ok";
}

/** Sum of the last `seconds` entries of a per-second series. */
export function lastSeconds(series, seconds) {
  let sum = 0;
  for (let i = Math.max(0, series.length - seconds); i < series.length; i++) sum += series[i];
  return sum;
}

/** A limit typed in a form: a whole number from `min`, or an error to show. */
export function parseWholeNumber(text, min) {
  const trimmed = String(text).trim().replaceAll(",", "").replaceAll("_", "");
  if (!/^\d+$/.test(trimmed)) return { ok: false, error: "enter a whole number" };
  const value = Number(trimmed);
  if (!Number.isSafeInteger(value)) return { ok: false, error: "that number is too large" };
  if (value < min) return { ok: false, error: `must be at least ${min}` };
  return { ok: true, value };
}

/** "14:03:07 UTC": the time of day of a log time (ms since the epoch, as the log's dates read). */
export function clockTime(ms) {
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}

/** "in 3 s" for a cooldown ending at `untilMs`, seen at `nowMs` (both log time). */
export function remaining(untilMs, nowMs) {
  return formatDuration(Math.max(0, Math.ceil((untilMs - nowMs) / 100) * 100));
}

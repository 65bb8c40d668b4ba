/**
 * Validation of everything that enters the machine: resource configurations
 * (the admin API body), names, loads and every command field. The machine
 * calls these before it touches its state, so a bad command changes nothing.
 */
import type {
  Command,
  LaneConfig,
  LimitConfig,
  LoadVector,
  Reserved,
  ResourceConfig,
  ValidationIssue,
  WindowAlgorithm,
} from "./types.js";
import { Bounds, NAME_PATTERN } from "@ratequeue/protocol/bounds";

/** The bounds of every input (one table for all layers): arithmetic stays exact in float64 integers. */
export { Bounds };

export const DEFAULT_PRIORITY = 10;
export const DEFAULT_TTL_MS = 10_000;

/**
 * The delivery margin a windowed limit gets when neither it nor its resource
 * names one: 1 s (a failover and the trip to the provider), but never more
 * than 1/40 of the window, so it never costs more than 1/41 (2.4%) of the
 * quota. README, "Fidelity".
 */
export function defaultDeliveryMarginMs(windowMs: number): number {
  return Math.min(1000, Math.floor(windowMs / 40));
}

/** True for a valid resource, lane, dimension, session or request name. */
export function isValidName(value: unknown): value is string {
  return nameProblem(value) === null;
}

/** Why `value` is not a valid name, or null when it is. */
export function nameProblem(value: unknown): string | null {
  if (typeof value !== "string") return "must be a string";
  if (value.length === 0 || value.length > Bounds.nameLengthMax) return "must be 1 to 128 characters";
  if (!NAME_PATTERN.test(value)) return "may contain only A-Z a-z 0-9 . _ : / -";
  // Names become object keys (loads, lanes, reserved); this one would set a prototype instead.
  if (value === "__proto__") return 'must not be "__proto__"';
  return null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function intProblem(value: unknown, min: number, max: number): string | null {
  if (typeof value !== "number" || !Number.isFinite(value)) return "must be a finite number";
  if (!Number.isInteger(value)) return "must be an integer";
  if (value < min || value > max) return `must be between ${min} and ${max}`;
  return null;
}

export type ConfigResult =
  | { readonly ok: true; readonly config: ResourceConfig }
  | { readonly ok: false; readonly errors: readonly ValidationIssue[] };

const LIMIT_KEYS: Record<string, readonly string[]> = {
  rate: ["kind", "limit", "windowMs", "window", "deliveryMarginMs", "reserved"],
  load: ["kind", "limit", "windowMs", "window", "deliveryMarginMs", "dimension", "reserved"],
  concurrency: ["kind", "limit", "reserved"],
};

/**
 * Validates the body of `PUT /v1/resources/{name}` and returns a normalized
 * config (defaults filled in: window "sliding", dimension "load", policy
 * "shared", default lane = the first lane, each windowed limit's
 * `deliveryMarginMs` from the resource's or {@link defaultDeliveryMarginMs})
 * or every problem found.
 *
 * @example
 * const r = validateResourceConfig({ limits: [{ kind: "rate", limit: 2, windowMs: 1000 }] });
 * if (!r.ok) console.log(r.errors); // [{ path, message }]
 */
export function validateResourceConfig(input: unknown, options: { readonly allowDeadLanes?: boolean } = {}): ConfigResult {
  const errors: ValidationIssue[] = [];
  const fail = (path: string, message: string): void => {
    errors.push({ path, message });
  };
  if (!isPlainObject(input)) {
    return { ok: false, errors: [{ path: "", message: "must be an object" }] };
  }
  for (const key of Object.keys(input)) {
    if (!["limits", "lanes", "lanePolicy", "defaultLane", "deliveryMarginMs"].includes(key)) fail(key, "unknown field");
  }
  let resourceMargin: number | null = null;
  if (input.deliveryMarginMs !== undefined) {
    const mp = intProblem(input.deliveryMarginMs, 0, Bounds.windowMsMax);
    if (mp) fail("deliveryMarginMs", mp);
    else resourceMargin = input.deliveryMarginMs as number;
  }

  const lanes: LaneConfig[] = [];
  if (input.lanes !== undefined) {
    if (!isPlainObject(input.lanes)) fail("lanes", "must be an object of lane name to { weight }");
    else {
      const names = Object.keys(input.lanes);
      if (names.length > Bounds.lanesMax) fail("lanes", `at most ${Bounds.lanesMax} lanes`);
      for (const name of names) {
        const path = `lanes/${name}`;
        const problem = nameProblem(name);
        if (problem) fail(path, `lane name ${problem}`);
        const lane = input.lanes[name];
        if (!isPlainObject(lane)) {
          fail(path, "must be an object { weight }");
          continue;
        }
        for (const key of Object.keys(lane)) if (key !== "weight") fail(`${path}/${key}`, "unknown field");
        const weight = lane.weight ?? 1;
        const wp = intProblem(weight, 1, Bounds.weightMax);
        if (wp) fail(`${path}/weight`, wp);
        else lanes.push({ name, weight: weight as number });
      }
    }
  }
  const laneNames = new Set(lanes.map((l) => l.name));

  let lanePolicy: "shared" | "strict" = "shared";
  if (input.lanePolicy !== undefined) {
    if (input.lanePolicy !== "shared" && input.lanePolicy !== "strict") {
      fail("lanePolicy", 'must be "shared" or "strict"');
    } else lanePolicy = input.lanePolicy;
  }

  let defaultLane: string | null = lanes[0]?.name ?? null;
  if (input.defaultLane !== undefined) {
    if (typeof input.defaultLane !== "string" || !laneNames.has(input.defaultLane)) {
      fail("defaultLane", "must name one of the declared lanes");
    } else defaultLane = input.defaultLane;
  }

  const limits: LimitConfig[] = [];
  if (!Array.isArray(input.limits)) fail("limits", "must be an array of limits");
  else {
    if (input.limits.length === 0) fail("limits", "must hold at least one limit");
    if (input.limits.length > Bounds.limitsMax) fail("limits", `at most ${Bounds.limitsMax} limits`);
    input.limits.forEach((raw: unknown, i: number) => {
      const limit = validateLimit(raw, `limits/${i}`, laneNames, resourceMargin, fail);
      if (limit) limits.push(limit);
    });
  }
  if (errors.length === 0 && options.allowDeadLanes !== true) deadLaneProblems(limits, lanes, lanePolicy, fail);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, config: { limits, lanes, lanePolicy, defaultLane } };
}

/**
 * A lane that could never be granted anything is refused, not accepted and
 * then answered RQ_UNGRANTABLE forever: a `strict` lane whose share
 * floor(limit * weight / total weight) of some limit rounds down to 0, or a
 * lane that the other lanes' reserved units leave no capacity. (A snapshot
 * written before this rule restores with `allowDeadLanes`.)
 */
function deadLaneProblems(limits: readonly LimitConfig[], lanes: readonly LaneConfig[], policy: "shared" | "strict", fail: (path: string, message: string) => void): void {
  if (lanes.length < 2) return;
  const totalWeight = lanes.reduce((sum, l) => sum + l.weight, 0);
  limits.forEach((limit, i) => {
    const reservedTotal = Object.values(limit.reserved).reduce((sum, u) => sum + u, 0);
    for (const lane of lanes) {
      const cap = limit.limit - (reservedTotal - (Object.hasOwn(limit.reserved, lane.name) ? (limit.reserved[lane.name] as number) : 0));
      if (cap <= 0) {
        fail(`limits/${i}/reserved`, `leaves lane "${lane.name}" no capacity (the other lanes reserve all ${limit.limit} units): every request in it would be RQ_UNGRANTABLE`);
        return;
      }
      // floor(limit * weight / totalWeight) >= 1  <=>  limit * weight >= totalWeight
      if (policy === "strict" && limit.limit * lane.weight < totalWeight) {
        const need = Math.ceil(totalWeight / Math.min(...lanes.map((l) => l.weight)));
        fail(
          `limits/${i}/limit`,
          `strict lane "${lane.name}" gets floor(${limit.limit} * ${lane.weight} / ${totalWeight}) = 0 of this limit: every request in it would be RQ_UNGRANTABLE (raise the limit to at least ${need}, change the weights, or use lanePolicy "shared")`,
        );
        return;
      }
    }
  });
}

function validateLimit(
  raw: unknown,
  path: string,
  laneNames: ReadonlySet<string>,
  resourceMargin: number | null,
  fail: (path: string, message: string) => void,
): LimitConfig | null {
  if (!isPlainObject(raw)) {
    fail(path, "must be an object");
    return null;
  }
  const kind = raw.kind;
  if (kind !== "rate" && kind !== "load" && kind !== "concurrency") {
    fail(`${path}/kind`, 'must be "rate", "load" or "concurrency"');
    return null;
  }
  const before = new Set<string>();
  const mark = (p: string, m: string): void => {
    before.add(p);
    fail(p, m);
  };
  for (const key of Object.keys(raw)) {
    if (!(LIMIT_KEYS[kind] ?? []).includes(key)) mark(`${path}/${key}`, `unknown field for a ${kind} limit`);
  }
  const lp = intProblem(raw.limit, 1, Bounds.unitsMax);
  if (lp) mark(`${path}/limit`, lp);
  const limit = raw.limit as number;

  const reserved: Record<string, number> = {};
  if (raw.reserved !== undefined) {
    if (!isPlainObject(raw.reserved)) mark(`${path}/reserved`, "must be an object of lane name to units");
    else {
      let total = 0;
      for (const [lane, units] of Object.entries(raw.reserved)) {
        if (!laneNames.has(lane)) mark(`${path}/reserved/${lane}`, "names no declared lane");
        const up = intProblem(units, 0, Bounds.unitsMax);
        if (up) mark(`${path}/reserved/${lane}`, up);
        else {
          reserved[lane] = units as number;
          total += units as number;
        }
      }
      if (!lp && total > limit) mark(`${path}/reserved`, `reserves ${total} units, more than the limit ${limit}`);
    }
  }
  if (kind === "concurrency") {
    return before.size > 0 ? null : { kind, limit, reserved: reserved as Reserved };
  }

  const wp = intProblem(raw.windowMs, 1, Bounds.windowMsMax);
  if (wp) mark(`${path}/windowMs`, wp);
  const windowMs = raw.windowMs as number;
  const window = (raw.window ?? "sliding") as WindowAlgorithm;
  if (window !== "sliding" && window !== "fixed" && window !== "bucket") {
    mark(`${path}/window`, 'must be "sliding", "fixed" or "bucket"');
  }
  // The margin may not exceed the window: a fixed window then carries a grant into one next bucket at most,
  // and a bucket holds back at most its whole capacity.
  const deliveryMarginMs = raw.deliveryMarginMs ?? resourceMargin ?? (wp ? 0 : defaultDeliveryMarginMs(windowMs));
  const mp = intProblem(deliveryMarginMs, 0, wp ? Bounds.windowMsMax : windowMs);
  if (mp) {
    if (raw.deliveryMarginMs !== undefined) mark(`${path}/deliveryMarginMs`, `${mp} (at most the limit's windowMs)`);
    else mark(path, `the resource's deliveryMarginMs ${mp} (at most this limit's windowMs)`);
  }
  let dimension = "load";
  if (kind === "load" && raw.dimension !== undefined) {
    const dp = nameProblem(raw.dimension);
    if (dp) mark(`${path}/dimension`, `dimension ${dp}`);
    else dimension = raw.dimension as string;
  }
  if (before.size > 0) return null;
  const margin = deliveryMarginMs as number;
  return kind === "rate"
    ? { kind, limit, windowMs, window, deliveryMarginMs: margin, reserved }
    : { kind, limit, windowMs, window, deliveryMarginMs: margin, dimension, reserved };
}

/** Why a load (number or object of dimension to units) is invalid, or null. Allocates nothing. */
export function loadInputProblem(load: unknown): string | null {
  if (typeof load === "number") {
    const p = loadProblem(load);
    return p === null ? null : `load ${p}`;
  }
  if (!isPlainObject(load)) return "load must be a number or an object of dimension to units";
  let n = 0;
  for (const key in load) {
    if (++n > Bounds.dimensionsMax) return `load has more than ${Bounds.dimensionsMax} dimensions`;
    const np = nameProblem(key);
    if (np) return `load dimension "${key}" ${np}`;
    const p = loadProblem(load[key]);
    if (p) return `load.${key} ${p}`;
  }
  return null;
}

/** Normalizes a load (number or object) to a fresh vector, or returns why it is invalid. */
export function normalizeLoad(load: unknown): { ok: true; load: LoadVector } | { ok: false; message: string } {
  if (load === undefined) return { ok: true, load: {} };
  const problem = loadInputProblem(load);
  if (problem !== null) return { ok: false, message: problem };
  return { ok: true, load: typeof load === "number" ? { load } : { ...(load as LoadVector) } };
}

function loadProblem(value: unknown): string | null {
  if (typeof value !== "number") return "must be a number";
  if (Number.isNaN(value)) return "is NaN";
  if (!Number.isFinite(value)) return "is not finite";
  if (value < 0) return "is negative";
  if (!Number.isInteger(value)) return "must be a whole number of units";
  if (value > Bounds.unitsMax) return `exceeds ${Bounds.unitsMax}`;
  return null;
}

const COMMAND_FIELDS: Record<Command["type"], ReadonlySet<string>> = {
  putResource: new Set(["type", "at", "name", "config"]),
  deleteResource: new Set(["type", "at", "name"]),
  openSession: new Set(["type", "at", "sessionId", "ttlMs"]),
  heartbeat: new Set(["type", "at", "sessionId"]),
  closeSession: new Set(["type", "at", "sessionId"]),
  renewSessions: new Set(["type", "at"]),
  acquire: new Set(["type", "at", "sessionId", "requestId", "resource", "load", "priority", "lane", "timeoutMs"]),
  release: new Set(["type", "at", "sessionId", "leaseId"]),
  settle: new Set(["type", "at", "sessionId", "leaseId", "actual"]),
  cancel: new Set(["type", "at", "sessionId", "requestId"]),
  cooldown: new Set(["type", "at", "resource", "untilMs", "retryAfterMs", "by"]),
  tick: new Set(["type", "at"]),
};

const NAME_FIELDS = ["name", "sessionId", "requestId", "resource"] as const;

/** A free-text label (a client's name): 1 to nameLengthMax characters, none of them a control character. */
function isLabel(value: unknown): boolean {
  if (typeof value !== "string" || value.length < 1 || value.length > Bounds.nameLengthMax) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false; // control characters
  }
  return true;
}

function optionalIntProblem(command: Record<string, unknown>, key: string, min: number, max: number): string | null {
  if (command[key] === undefined) return null;
  const p = intProblem(command[key], min, max);
  return p ? `${String(command.type)}: ${key} ${p}` : null;
}

/**
 * Checks a command's shape and every field's type and range (not whether the
 * session or resource exists: that depends on state). Returns the problem or
 * null. Loads are checked here too; the config body is checked by putResource.
 * On the hot path: allocates nothing for a valid command.
 */
export function commandProblem(command: unknown): string | null {
  if (!isPlainObject(command)) return "command must be an object";
  const type = command.type;
  if (typeof type !== "string" || !Object.hasOwn(COMMAND_FIELDS, type)) return `unknown command type ${JSON.stringify(type)}`;
  const fields = COMMAND_FIELDS[type as Command["type"]];
  for (const key in command) {
    if (!fields.has(key)) return `${type}: unknown field "${key}"`;
  }
  const ap = intProblem(command.at, 0, Bounds.atMax);
  if (ap) return `${type}: at ${ap}`;
  for (const key of NAME_FIELDS) {
    if (!fields.has(key)) continue;
    const p = nameProblem(command[key]);
    if (p) return `${type}: ${key} ${p}`;
  }
  switch (type) {
    case "putResource":
      return null; // the body is validated by validateResourceConfig
    case "openSession":
      return optionalIntProblem(command, "ttlMs", 1, Bounds.ttlMsMax);
    case "acquire": {
      if (command.lane !== undefined) {
        const p = nameProblem(command.lane);
        if (p) return `acquire: lane ${p}`;
      }
      if (command.load !== undefined) {
        const lp = loadInputProblem(command.load);
        if (lp) return `acquire: ${lp}`;
      }
      return optionalIntProblem(command, "priority", 0, Bounds.priorityMax) ?? optionalIntProblem(command, "timeoutMs", 0, Bounds.timeoutMsMax);
    }
    case "release":
    case "settle": {
      const p = intProblem(command.leaseId, 1, Number.MAX_SAFE_INTEGER);
      if (p) return `${type}: leaseId ${p}`;
      if (type === "settle") {
        if (command.actual === undefined) return "settle: actual is required";
        const lp = loadInputProblem(command.actual);
        if (lp) return `settle: actual ${lp}`;
      }
      return null;
    }
    case "cooldown": {
      const hasUntil = command.untilMs !== undefined;
      const hasAfter = command.retryAfterMs !== undefined;
      if (hasUntil === hasAfter) return "cooldown: give exactly one of untilMs and retryAfterMs";
      if (command.by !== undefined && !isLabel(command.by)) {
        return `cooldown: by must be a string of 1 to ${Bounds.nameLengthMax} printable characters`;
      }
      return optionalIntProblem(command, "untilMs", 0, Bounds.atMax) ?? optionalIntProblem(command, "retryAfterMs", 0, Bounds.retryAfterMsMax);
    }
    default:
      return null;
  }
}

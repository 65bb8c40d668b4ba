/**
 * @ratequeue/limiter: the deterministic limit state machine.
 * Commands in (each stamped with the leader's time), effects out; no clock,
 * no randomness, no I/O. See README.md for the command/effect table.
 */
export { Limiter, type LimiterOptions } from "./limiter.js";
export { SnapshotError } from "./codec.js";
export {
  Bounds,
  commandProblem,
  DEFAULT_PRIORITY,
  DEFAULT_TTL_MS,
  defaultDeliveryMarginMs,
  isValidName,
  nameProblem,
  validateResourceConfig,
  type ConfigResult,
} from "./validate.js";
export {
  ErrorCode,
  type Command,
  type CommandType,
  type Effect,
  type LaneConfig,
  type LanePolicy,
  type LimitConfig,
  type LimitUsage,
  type Load,
  type LoadVector,
  type Reserved,
  type ResourceConfig,
  type ResourceView,
  type ValidationIssue,
  type WindowAlgorithm,
} from "./types.js";

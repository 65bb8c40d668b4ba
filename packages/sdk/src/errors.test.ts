import { ErrorCode as WireCode } from "@ratequeue/protocol";
import { describe, expect, it } from "vitest";
import {
  CancelledError,
  ErrorCode,
  errorFor,
  ForbiddenError,
  InvalidError,
  RateQueueError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
  UngrantableError,
  UnknownResourceError,
} from "./errors.js";

const CLASSES = [
  [TimeoutError, "TimeoutError", "RQ_TIMEOUT"],
  [CancelledError, "CancelledError", "RQ_CANCELLED"],
  [UnknownResourceError, "UnknownResourceError", "RQ_UNKNOWN_RESOURCE"],
  [UngrantableError, "UngrantableError", "RQ_UNGRANTABLE"],
  [InvalidError, "InvalidError", "RQ_INVALID"],
  [UnauthorizedError, "UnauthorizedError", "RQ_UNAUTHORIZED"],
  [ForbiddenError, "ForbiddenError", "RQ_FORBIDDEN"],
  [UnavailableError, "UnavailableError", "RQ_UNAVAILABLE"],
] as const;

describe("the SDK's error classes", () => {
  it("cover every SDK code, each a wire code of the protocol table", () => {
    expect(new Set(CLASSES.map(([, , code]) => code))).toEqual(new Set(Object.values(ErrorCode)));
    for (const code of Object.values(ErrorCode)) expect(Object.values(WireCode)).toContain(code);
  });

  it.each(CLASSES)("%o keeps its name, code and instanceof", (cls, name, code) => {
    const err = new cls("m", { request: { sessionId: "s", requestId: 1 } });
    expect(err).toBeInstanceOf(cls);
    expect(err).toBeInstanceOf(RateQueueError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe(name);
    expect(cls.name).toBe(name);
    expect(err.code).toBe(code);
    expect(err.request).toEqual({ sessionId: "s", requestId: 1 });
    expect(String(err)).toBe(`${name}: m`);
    const received = errorFor(code, "m");
    expect(received).toBeInstanceOf(cls);
    expect(received.code).toBe(code);
    for (const [other] of CLASSES) if (other !== cls) expect(received).not.toBeInstanceOf(other);
  });

  it("turns a code it has no class for into InvalidError, and an expired session into UnavailableError", () => {
    expect(errorFor("RQ_NOPE", "m")).toBeInstanceOf(InvalidError);
    expect(errorFor(WireCode.RQ_SESSION_EXPIRED, "m")).toBeInstanceOf(UnavailableError);
    expect(errorFor(WireCode.RQ_TIMEOUT, "m").message).toBe("m: no capacity within the timeout; retry later or raise timeoutMs");
    expect(errorFor(WireCode.RQ_CANCELLED, "m").message).toBe("m");
  });
});

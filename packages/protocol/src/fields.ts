/**
 * Readers for wire values. Each reads one field of a decoded record, checks
 * its type, range and length, and returns a clean value, or throws a
 * FieldError naming the field. FieldError never leaves this package: the
 * frame decoder turns it into a returned ProtocolError.
 */
import { isErrorCode, type ErrorCode, type ProtocolErrorCode } from "./codes.js";
import {
  MAX_API_KEY_CHARS,
  MAX_CLIENT_INFO_CHARS,
  MAX_ERROR_MESSAGE_CHARS,
  MAX_ID_CHARS,
  MAX_LOAD,
  MAX_LOAD_DIMENSIONS,
  MAX_NAME_CHARS,
  MAX_NODE_ID_CHARS,
  MAX_REQUEST_ID,
  MAX_RESOURCE_NAME_CHARS,
  MAX_URL_CHARS,
} from "./limits.js";
import type { Load } from "./types.js";

/** A decoded record: a plain object (msgpackr records and maps both decode to one). */
export type Wire = Record<string, unknown>;

/**
 * A field that failed validation. Not an Error subclass on purpose: it is
 * thrown and caught inside one decode call, so a stack trace is wasted work.
 */
export class FieldError {
  constructor(
    /** Dotted path from the message, e.g. `load.input` or `entries[3].data`. */
    public path: string,
    readonly message: string,
    readonly code: ProtocolErrorCode = "RQ_PROTOCOL",
  ) {}

  /** Prefixes the path while unwinding out of a nested record or array. */
  within(segment: string): FieldError {
    this.path = this.path === "" ? segment : this.path.startsWith("[") ? segment + this.path : `${segment}.${this.path}`;
    return this;
  }
}

/** Runs `read` on a nested value, prefixing any failure's path with `segment`. */
export function nested<T>(segment: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof FieldError) throw error.within(segment);
    throw error;
  }
}

/** A short, safe description of a bad value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (typeof value === "string") return value.length > 32 ? `a string of ${value.length} chars` : JSON.stringify(value);
  if (typeof value === "number") return String(value);
  // Bigints are at most 512 bits here (bigint-guard.ts), so printing one is cheap.
  if (typeof value === "bigint") return `${value}n (bigint)`;
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  return typeof value === "object" ? "an object" : typeof value;
}

function bad(field: string, expected: string, value: unknown): never {
  throw new FieldError(field, `expected ${expected}, got ${describe(value)}`);
}

export function isPlainObject(value: unknown): value is Wire {
  if (typeof value !== "object" || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function readRecord(value: unknown, field: string): Wire {
  if (!isPlainObject(value)) bad(field, "a record", value);
  return value;
}

export function readInt(w: Wire, field: string, min: number, max: number): number {
  const value = w[field];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    bad(field, `an integer in [${min}, ${max}]`, value);
  }
  return value;
}

export function readOptionalInt(w: Wire, field: string, min: number, max: number): number | undefined {
  const value = w[field];
  return value === null || value === undefined ? undefined : readInt(w, field, min, max);
}

export function readBoolean(w: Wire, field: string): boolean {
  const value = w[field];
  if (typeof value !== "boolean") bad(field, "a boolean", value);
  return value;
}

export function readOptionalBoolean(w: Wire, field: string): boolean | undefined {
  const value = w[field];
  return value === null || value === undefined ? undefined : readBoolean(w, field);
}

/** A kind of string on the wire: a length cap (checked first) and an alphabet. */
export interface StringKind {
  readonly what: string;
  readonly maxChars: number;
  readonly pattern: RegExp;
}

export function checkString(value: unknown, field: string, kind: StringKind): string {
  if (typeof value !== "string") bad(field, kind.what, value);
  if (value.length > kind.maxChars) {
    throw new FieldError(field, `expected ${kind.what}, got a string of ${value.length} chars (max ${kind.maxChars})`);
  }
  if (!kind.pattern.test(value)) bad(field, kind.what, value);
  return value;
}

export function readString(w: Wire, field: string, kind: StringKind): string {
  return checkString(w[field], field, kind);
}

export function readOptionalString(w: Wire, field: string, kind: StringKind): string | undefined {
  const value = w[field];
  return value === null || value === undefined ? undefined : checkString(value, field, kind);
}

export function readNullableString(w: Wire, field: string, kind: StringKind): string | null {
  const value = w[field];
  return value === null ? null : checkString(value, field, kind);
}

/** How a reader is being used: decoding a frame, or checking a message before encoding it. */
export interface ReadContext {
  /**
   * Decoding: return byte fields as fresh plain Uint8Arrays, never views into
   * the frame (a view would pin the whole frame in memory and alias it) and
   * never Buffers (so decoded messages compare equal to the originals).
   * Checking before encoding: the result is thrown away, so skip the copy.
   */
  readonly copyBytes: boolean;
}

/** Bytes of at most `maxBytes` (see ReadContext for when they are copied). */
export function readBytes(w: Wire, field: string, maxBytes: number, context: ReadContext): Uint8Array {
  return checkBytes(w[field], field, maxBytes, context);
}

export function checkBytes(value: unknown, field: string, maxBytes: number, context: ReadContext): Uint8Array {
  if (!(value instanceof Uint8Array)) bad(field, "bytes", value);
  if (value.byteLength > maxBytes) throw new FieldError(field, `expected at most ${maxBytes} bytes, got ${value.byteLength}`);
  return context.copyBytes ? new Uint8Array(value) : value;
}

export function readArray(w: Wire, field: string, maxItems: number): unknown[] {
  const value = w[field];
  if (!Array.isArray(value)) bad(field, "an array", value);
  if (value.length > maxItems) throw new FieldError(field, `expected at most ${maxItems} items, got ${value.length}`);
  return value;
}

// --- The protocol's named value kinds --------------------------------------

/** SPEC.md resource names. */
export const RESOURCE_NAME: StringKind = {
  what: "a resource name (1-128 of A-Z a-z 0-9 . _ : / -)",
  maxChars: MAX_RESOURCE_NAME_CHARS,
  pattern: /^[A-Za-z0-9._:/-]+$/,
};
/** Ids the node assigns (session, lease): the resource-name alphabet. */
export const ID: StringKind = { what: "an id (1-128 of A-Z a-z 0-9 . _ : / -)", maxChars: MAX_ID_CHARS, pattern: /^[A-Za-z0-9._:/-]+$/ };
/** Node ids: the same rule as packages/node's config. */
export const NODE_ID: StringKind = { what: "a node id (1-64 of A-Z a-z 0-9 _ -)", maxChars: MAX_NODE_ID_CHARS, pattern: /^[A-Za-z0-9_-]+$/ };
/** Lanes and load dimensions: the resource-name alphabet, as packages/limiter names them. */
export const LANE: StringKind = { what: "a lane name (1-128 of A-Z a-z 0-9 . _ : / -)", maxChars: MAX_NAME_CHARS, pattern: /^[A-Za-z0-9._:/-]+$/ };
export const DIMENSION: StringKind = {
  what: "a dimension name (1-128 of A-Z a-z 0-9 . _ : / -)",
  maxChars: MAX_NAME_CHARS,
  pattern: /^[A-Za-z0-9._:/-]+$/,
};
export const API_KEY: StringKind = { what: "an API key (1-256 printable ASCII, no spaces)", maxChars: MAX_API_KEY_CHARS, pattern: /^[\x21-\x7e]+$/ };
export const CLIENT_INFO: StringKind = { what: "1-64 printable ASCII characters", maxChars: MAX_CLIENT_INFO_CHARS, pattern: /^[\x20-\x7e]+$/ };
/** The hello's frame encodings (frame.ts FrameEncoding). */
export const ENCODING: StringKind = { what: 'an encoding ("records" or "plain")', maxChars: 7, pattern: /^(?:records|plain)$/ };
export const WS_URL: StringKind = { what: "a ws:// or wss:// URL", maxChars: MAX_URL_CHARS, pattern: /^wss?:\/\/[\x21-\x7e]+$/ };

export const readRequestId = (w: Wire, field = "requestId"): number => readInt(w, field, 1, MAX_REQUEST_ID);

/** A lone UTF-16 surrogate: it cannot survive UTF-8, so such a string would not round-trip. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

export function readErrorMessage(w: Wire, field: string): string {
  const value = w[field];
  const what = `a message of at most ${MAX_ERROR_MESSAGE_CHARS} chars`;
  if (typeof value !== "string") bad(field, what, value);
  if (value.length > MAX_ERROR_MESSAGE_CHARS) throw new FieldError(field, `expected ${what}, got a string of ${value.length} chars (max ${MAX_ERROR_MESSAGE_CHARS})`);
  if (LONE_SURROGATE.test(value)) throw new FieldError(field, "expected well-formed Unicode text, got a lone surrogate");
  return value;
}

export function readErrorCode(w: Wire, field: string): ErrorCode {
  const value = w[field];
  if (!isErrorCode(value)) bad(field, "a known RQ_* error code", value);
  return value;
}

function checkAmount(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > MAX_LOAD) {
    bad(field, `a finite load in [0, ${MAX_LOAD}]`, value);
  }
  return value;
}

/**
 * A load travels as a number, or as a flat array of name/amount pairs
 * (`["input", 1200, "output", 1024]`): compact, and it keeps arbitrary
 * dimension names out of msgpackr's record table.
 */
export function readLoad(w: Wire, field: string): Load {
  const value = w[field];
  if (typeof value === "number") return checkAmount(value, field);
  if (!Array.isArray(value)) bad(field, "a number or dimension/amount pairs", value);
  if (value.length === 0 || value.length % 2 !== 0 || value.length > 2 * MAX_LOAD_DIMENSIONS) {
    throw new FieldError(field, `expected 1-${MAX_LOAD_DIMENSIONS} dimension/amount pairs, got an array of ${value.length}`);
  }
  const load: Record<string, number> = {};
  for (let i = 0; i < value.length; i += 2) {
    const name = checkString(value[i], `${field}[${i}]`, DIMENSION);
    // Assigning "__proto__" on a plain object would set its prototype instead of adding a dimension.
    if (name === "__proto__") throw new FieldError(`${field}[${i}]`, 'the dimension name "__proto__" is reserved');
    if (Object.hasOwn(load, name)) throw new FieldError(`${field}.${name}`, `dimension "${name}" appears twice`);
    load[name] = checkAmount(value[i + 1], `${field}.${name}`);
  }
  return load;
}

export function readOptionalLoad(w: Wire, field: string): Load | undefined {
  const value = w[field];
  return value === null || value === undefined ? undefined : readLoad(w, field);
}

/**
 * The wire form of a load (the inverse of readLoad). Total: a value that is
 * not a load passes through unchanged, for the reader to refuse.
 */
export function loadToWire(load: unknown): unknown {
  if (!isPlainObject(load)) return load;
  const pairs: unknown[] = [];
  for (const name of Object.keys(load)) pairs.push(name, load[name]);
  return pairs;
}

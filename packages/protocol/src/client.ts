/**
 * Client -> node messages (/v1/client): their wire records and readers.
 */
import type { ProtocolError } from "./codes.js";
import {
  checkMessage,
  decodeFrame,
  defineDirection,
  encodeFrame,
  readVersion,
  type DecodeOptions,
  type EncodeOptions,
  type FrameEncoding,
  type MessageCodec,
} from "./frame.js";
import {
  API_KEY,
  CLIENT_INFO,
  describe,
  ENCODING,
  FieldError,
  ID,
  loadToWire,
  LANE,
  readInt,
  readLoad,
  readOptionalBoolean,
  readOptionalInt,
  readOptionalLoad,
  readOptionalString,
  readArray,
  readRequestId,
  readString,
  RESOURCE_NAME,
  type Wire,
} from "./fields.js";
import {
  DELIVERY_BUCKETS_MS,
  MAX_DELIVERY_MS,
  MAX_FRAME_BYTES,
  MAX_PRIORITY,
  MAX_REPORT_COUNT,
  MAX_RETRY_AFTER_MS,
  MAX_TIMEOUT_MS,
  MAX_TTL_MS,
  MIN_TTL_MS,
} from "./limits.js";
import type {
  Acquire,
  Cancel,
  ClientMessage,
  Cooldown,
  DecodeResult,
  Goodbye,
  Heartbeat,
  Hello,
  Release,
  Report,
  Settle,
} from "./types.js";

const hello: MessageCodec<Hello> = {
  type: "hello",
  tag: 1,
  fields: ["protocolVersion", "apiKey", "clientName", "clientVersion", "resume", "ttlMs", "encoding"],
  handshake: true,
  toWire: (m) => ({
    t: 1,
    protocolVersion: m.protocolVersion,
    apiKey: m.apiKey,
    clientName: m.clientName ?? null,
    clientVersion: m.clientVersion ?? null,
    resume: m.resume ?? null,
    ttlMs: m.ttlMs ?? null,
    encoding: m.encoding ?? null,
  }),
  read: (w) => {
    const message: { -readonly [K in keyof Hello]: Hello[K] } = {
      type: "hello",
      protocolVersion: readVersion(w),
      apiKey: readString(w, "apiKey", API_KEY),
    };
    const clientName = readOptionalString(w, "clientName", CLIENT_INFO);
    if (clientName !== undefined) message.clientName = clientName;
    const clientVersion = readOptionalString(w, "clientVersion", CLIENT_INFO);
    if (clientVersion !== undefined) message.clientVersion = clientVersion;
    const resume = readOptionalString(w, "resume", ID);
    if (resume !== undefined) message.resume = resume;
    const ttlMs = readOptionalInt(w, "ttlMs", MIN_TTL_MS, MAX_TTL_MS);
    if (ttlMs !== undefined) message.ttlMs = ttlMs;
    const encoding = readOptionalString(w, "encoding", ENCODING);
    if (encoding !== undefined) message.encoding = encoding as FrameEncoding;
    return message;
  },
};

const acquire: MessageCodec<Acquire> = {
  type: "acquire",
  tag: 2,
  fields: ["requestId", "resource", "load", "priority", "lane", "timeoutMs", "try"],
  handshake: false,
  toWire: (m) => ({
    t: 2,
    requestId: m.requestId,
    resource: m.resource,
    load: m.load === undefined ? null : loadToWire(m.load),
    priority: m.priority ?? null,
    lane: m.lane ?? null,
    timeoutMs: m.timeoutMs ?? null,
    try: m.try ?? null,
  }),
  read: (w) => {
    const message: { -readonly [K in keyof Acquire]: Acquire[K] } = {
      type: "acquire",
      requestId: readRequestId(w),
      resource: readString(w, "resource", RESOURCE_NAME),
    };
    const load = readOptionalLoad(w, "load");
    if (load !== undefined) message.load = load;
    const priority = readOptionalInt(w, "priority", -MAX_PRIORITY, MAX_PRIORITY);
    if (priority !== undefined) message.priority = priority;
    const lane = readOptionalString(w, "lane", LANE);
    if (lane !== undefined) message.lane = lane;
    const timeoutMs = readOptionalInt(w, "timeoutMs", 0, MAX_TIMEOUT_MS);
    if (timeoutMs !== undefined) message.timeoutMs = timeoutMs;
    const tryOnly = readOptionalBoolean(w, "try");
    if (tryOnly !== undefined) message.try = tryOnly;
    return message;
  },
};

const release: MessageCodec<Release> = {
  type: "release",
  tag: 3,
  fields: ["requestId", "leaseId"],
  handshake: false,
  toWire: (m) => ({ t: 3, requestId: m.requestId, leaseId: m.leaseId }),
  read: (w) => ({ type: "release", requestId: readRequestId(w), leaseId: readString(w, "leaseId", ID) }),
};

const settle: MessageCodec<Settle> = {
  type: "settle",
  tag: 4,
  fields: ["requestId", "leaseId", "actual"],
  handshake: false,
  toWire: (m) => ({ t: 4, requestId: m.requestId, leaseId: m.leaseId, actual: loadToWire(m.actual) }),
  read: (w) => ({ type: "settle", requestId: readRequestId(w), leaseId: readString(w, "leaseId", ID), actual: readLoad(w, "actual") }),
};

const cancel: MessageCodec<Cancel> = {
  type: "cancel",
  tag: 5,
  fields: ["requestId"],
  handshake: false,
  toWire: (m) => ({ t: 5, requestId: m.requestId }),
  read: (w) => ({ type: "cancel", requestId: readRequestId(w) }),
};

const cooldown: MessageCodec<Cooldown> = {
  type: "cooldown",
  tag: 6,
  fields: ["requestId", "resource", "retryAfterMs"],
  handshake: false,
  toWire: (m) => ({ t: 6, requestId: m.requestId, resource: m.resource, retryAfterMs: m.retryAfterMs }),
  read: (w) => ({
    type: "cooldown",
    requestId: readRequestId(w),
    resource: readString(w, "resource", RESOURCE_NAME),
    retryAfterMs: readInt(w, "retryAfterMs", 0, MAX_RETRY_AFTER_MS),
  }),
};

/** The histogram bucket a delay of `ms` falls in: the first bound it does not exceed, or the last bucket. */
export function deliveryBucket(ms: number): number {
  for (let i = 0; i < DELIVERY_BUCKETS_MS.length; i++) if (ms <= DELIVERY_BUCKETS_MS[i]!) return i;
  return DELIVERY_BUCKETS_MS.length;
}

/**
 * A report's fields are checked against each other, not only one by one: the buckets hold exactly `count`
 * delays, the largest delay lies in the last bucket that holds any, and the sum lies between the largest delay
 * and `count` times it. A report that could not come from any set of delays is refused whole.
 */
function readReport(w: Wire): Report {
  const count = readInt(w, "count", 1, MAX_REPORT_COUNT);
  const maxMs = readInt(w, "maxMs", 0, MAX_DELIVERY_MS);
  const sumMs = readInt(w, "sumMs", 0, MAX_REPORT_COUNT * MAX_DELIVERY_MS);
  if (sumMs < maxMs || sumMs > maxMs * count) {
    throw new FieldError("sumMs", `expected the sum of ${count} delays of at most maxMs ${maxMs} (from ${maxMs} to ${maxMs * count}), got ${sumMs}`);
  }
  const items = readArray(w, "buckets", DELIVERY_BUCKETS_MS.length + 1);
  if (items.length !== DELIVERY_BUCKETS_MS.length + 1) {
    throw new FieldError("buckets", `expected ${DELIVERY_BUCKETS_MS.length + 1} counts (one per bound of DELIVERY_BUCKETS_MS, then one above), got ${items.length}`);
  }
  const buckets = new Array<number>(items.length);
  let total = 0;
  let last = -1;
  for (let i = 0; i < items.length; i++) {
    const n = items[i];
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0 || n > count) {
      throw new FieldError(`buckets[${i}]`, `expected an integer in [0, ${count}], got ${describe(n)}`);
    }
    buckets[i] = n;
    total += n;
    if (n > 0) last = i;
  }
  if (total !== count) throw new FieldError("buckets", `expected counts that add up to count ${count}, got ${total}`);
  if (last !== deliveryBucket(maxMs)) {
    throw new FieldError("maxMs", `expected the largest delay to fall in the last non-empty bucket (${last}), but ${maxMs} ms falls in bucket ${deliveryBucket(maxMs)}`);
  }
  return { type: "report", requestId: readRequestId(w), resource: readString(w, "resource", RESOURCE_NAME), count, sumMs, maxMs, buckets };
}

const report: MessageCodec<Report> = {
  type: "report",
  tag: 9,
  fields: ["requestId", "resource", "count", "sumMs", "maxMs", "buckets"],
  handshake: false,
  toWire: (m) => ({ t: 9, requestId: m.requestId, resource: m.resource, count: m.count, sumMs: m.sumMs, maxMs: m.maxMs, buckets: m.buckets }),
  read: readReport,
};

const heartbeat: MessageCodec<Heartbeat> = {
  type: "heartbeat",
  tag: 7,
  fields: [],
  handshake: false,
  toWire: () => ({ t: 7 }),
  read: () => ({ type: "heartbeat" }),
};

const goodbye: MessageCodec<Goodbye> = {
  type: "goodbye",
  tag: 8,
  fields: [],
  handshake: false,
  toWire: () => ({ t: 8 }),
  read: () => ({ type: "goodbye" }),
};

export const clientDirection = defineDirection<ClientMessage>({
  name: "client",
  maxFrameBytes: MAX_FRAME_BYTES,
  codecs: [hello, acquire, release, settle, cancel, cooldown, heartbeat, goodbye, report] as MessageCodec<ClientMessage>[],
});

/**
 * Encodes client messages as one frame (send everything issued in the same
 * tick together). Throws ProtocolEncodeError if a message would be refused.
 * `{ encoding: "plain" }` writes MessagePack maps instead of msgpackr records.
 *
 * @example
 * ws.send(encodeClientFrame([{ type: "acquire", requestId: 7, resource: "openai-gpt4o", load: 1200 }]));
 */
export function encodeClientFrame(messages: readonly ClientMessage[], options?: EncodeOptions): Uint8Array {
  return encodeFrame(clientDirection, messages, options);
}

/**
 * Decodes and validates one client frame. Never throws. Pass
 * `{ maxFrameBytes: MAX_HELLO_FRAME_BYTES }` for a connection's first frame,
 * which is decoded before the client is authenticated.
 *
 * @example
 * const result = decodeClientFrame(data, conn.helloDone ? {} : { maxFrameBytes: MAX_HELLO_FRAME_BYTES });
 * if (!result.ok) return ws.close(1008, result.error.message.slice(0, 120));
 */
export function decodeClientFrame(bytes: Uint8Array, options?: DecodeOptions): DecodeResult<ClientMessage> {
  return decodeFrame(clientDirection, bytes, options);
}

/**
 * Why a node would refuse this message, or null. The SDK checks each request
 * before batching it, so one bad request is refused alone (RQ_INVALID) instead
 * of making its whole frame unsendable. Never throws.
 *
 * @example
 * const problem = checkClientMessage({ type: "acquire", requestId: 1, resource: "r", load: -5 });
 * // { code: "RQ_PROTOCOL", path: "load", message: "load: expected a finite load in [0, 9007199254740991], got -5" }
 */
export function checkClientMessage(message: ClientMessage): ProtocolError | null {
  return checkMessage(clientDirection, message);
}

/**
 * Frames: one WebSocket binary message = one MessagePack array of messages
 * (a batch). Each message is a msgpackr record `{ t: <tag>, ...fields }`
 * whose shape is in the fixed record table (structures.ts), so an ordinary frame
 * carries no field names at all, and no side keeps per-connection codec
 * state: any frame decodes on its own, in any order, on any connection.
 *
 * Handshake messages (hello, welcome, error, peer hello) are instead encoded
 * self-describing (msgpackr writes their record definitions inline), so a
 * node and a client that disagree about the table can still read each
 * other's version and refuse cleanly.
 *
 * The `plain` encoding (docs/protocol.md) is for clients without msgpackr: every
 * record is a MessagePack map with string keys, with the same values. Both
 * encodings decode to the same records and are validated by the same readers.
 * They must be decoded apart: msgpackr's record table claims the bytes
 * 0x40-0x59, which plain MessagePack uses for the integers 64-89. A plain
 * decoder (no table) reads plain frames and self-describing ones, so it also
 * reads the first frame of every connection (a hello, never table-encoded).
 */
import { Packr, Unpackr } from "msgpackr";
import "./bigint-guard.js";
import { ProtocolEncodeError, type ProtocolError, type ProtocolErrorCode } from "./codes.js";
import { describe, FieldError, isPlainObject, type ReadContext, type Wire } from "./fields.js";
import { MAX_MESSAGES_PER_FRAME, PROTOCOL_VERSION } from "./limits.js";
import { assertInTable, RECORD_TABLE } from "./structures.js";
import type { DecodeResult } from "./types.js";

/** How one message type is written and read. */
export interface MessageCodec<M extends { readonly type: string }> {
  readonly type: M["type"];
  /** The wire tag (`t`), unique within a direction. */
  readonly tag: number;
  /** Field order on the wire after `t`; part of the record table, so part of the version. */
  readonly fields: readonly string[];
  /** Frames holding a handshake message are encoded self-describing (see above). */
  readonly handshake: boolean;
  /**
   * The wire record, keys exactly `t` then `fields` in order (so msgpackr
   * matches the shared record), absent optional fields as null.
   */
  toWire(message: M): Wire;
  /** Validates a decoded record (throws FieldError) and returns a fresh, clean message. */
  read(wire: Wire, context: ReadContext): M;
}

/** Every message codec of one direction (client -> node, node -> client, peer -> peer). */
export interface Direction<M extends { readonly type: string }> {
  readonly name: string;
  readonly maxFrameBytes: number;
  readonly byType: ReadonlyMap<string, MessageCodec<M>>;
  readonly byTag: ReadonlyMap<number, MessageCodec<M>>;
}

export function defineDirection<M extends { readonly type: string }>(options: {
  name: string;
  maxFrameBytes: number;
  codecs: readonly MessageCodec<M>[];
  /** Nested record shapes (e.g. a lease inside `granted`), which must be in the table too. */
  nestedShapes?: readonly (readonly string[])[];
}): Direction<M> {
  const byType = new Map<string, MessageCodec<M>>();
  const byTag = new Map<number, MessageCodec<M>>();
  for (const shape of options.nestedShapes ?? []) assertInTable(shape, `a nested ${options.name} record`);
  for (const codec of options.codecs) {
    if (byType.has(codec.type) || byTag.has(codec.tag)) throw new Error(`duplicate message ${codec.type}/${codec.tag}`);
    if (!codec.handshake) assertInTable(["t", ...codec.fields], codec.type);
    byType.set(codec.type, codec);
    byTag.set(codec.tag, codec);
  }
  return { name: options.name, maxFrameBytes: options.maxFrameBytes, byType, byTag };
}

// --- The record table --------------------------------------------------------

const TABLE_SIZE = RECORD_TABLE.length;

// shouldShareStructure: never grow the table: a shape outside it is written inline, per frame.
const sharedPackr = new Packr({
  structures: RECORD_TABLE.map((shape) => shape.slice()),
  maxSharedStructures: TABLE_SIZE,
  shouldShareStructure: () => false,
});
const selfDescribingPackr = new Packr({ useRecords: true });
// Plain MessagePack: every record written as a map with string keys, no msgpackr extension.
const plainPackr = new Packr({ useRecords: false });

/** The decoder's table, and the original record objects to put back after every frame. */
const decoderTable: string[][] = RECORD_TABLE.map((shape) => shape.slice());
const pristineTable: readonly string[][] = decoderTable.slice();
const unpackr = new Unpackr({
  structures: decoderTable,
  maxSharedStructures: TABLE_SIZE,
  // Plain maps (from other encoders) decode to plain objects; msgpackr renames a `__proto__` key.
  mapsAsObjects: true,
  // 64-bit integers decode as bigints, which every reader refuses: our encoder writes integers
  // above 32 bits as float64, and every integer we accept fits in 2^53.
  // Byte fields arrive as views into the frame; readBytes copies each one exactly once.
  // No cyclic or shared references: a frame is a tree.
  structuredClone: false,
});

/**
 * Without a shared table: reads plain MessagePack, and msgpackr records only
 * where the frame defines them inline (which msgpackr 2.1.4 forgets after
 * each frame when the Unpackr was given no table).
 */
const plainUnpackr = new Unpackr({ mapsAsObjects: true, structuredClone: false });

/**
 * Decodes a frame's bytes, then puts the record table back as it was. A
 * frame may define records inline under ids that our table uses (every
 * self-describing frame does); msgpackr 2.1.4 keeps such definitions in the
 * table it was given, which would change how every later frame on every
 * connection decodes. Restoring after each frame keeps decoding stateless.
 */
function unpackStateless(bytes: Uint8Array, encoding: FrameEncoding): unknown {
  if (encoding === "plain") return plainUnpackr.unpack(bytes);
  try {
    return unpackr.unpack(bytes);
  } finally {
    for (let i = 0; i < TABLE_SIZE; i++) {
      if (decoderTable[i] !== pristineTable[i]) decoderTable[i] = pristineTable[i] as string[];
    }
    if (decoderTable.length !== TABLE_SIZE) decoderTable.length = TABLE_SIZE;
  }
}

// --- Encode and decode -------------------------------------------------------

const DECODING: ReadContext = { copyBytes: true };
const CHECKING: ReadContext = { copyBytes: false };

/**
 * Error messages are printable ASCII (anything else escaped as \uXXXX), so
 * any prefix of n characters is n bytes: a node can put `message.slice(0, 120)`
 * in a WebSocket close reason, which ws refuses (throws) above 123 bytes.
 */
function ascii(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function problem(code: ProtocolErrorCode, message: string, path?: string): ProtocolError {
  return path === undefined ? { code, message: ascii(message) } : { code, message: ascii(`${path}: ${message}`), path: ascii(path) };
}

/** The text of anything thrown, without risking a second throw. */
function errorText(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return "an unprintable error";
  }
}

/** `prefix` is where the message sits (`messages[3]`), or "" when a single message is checked. */
function messageError(prefix: string, error: unknown): ProtocolError {
  const join = (path: string): string => (prefix === "" ? path : path === "" ? prefix : `${prefix}.${path}`);
  if (error instanceof FieldError) return problem(error.code, error.message, join(error.path));
  // A reader bug or a malformed object handed to an encoder; still a returned error.
  return problem("RQ_PROTOCOL", `unreadable message: ${errorText(error)}`, prefix === "" ? undefined : prefix);
}

type Checked = { readonly ok: true; readonly wire: Wire; readonly handshake: boolean } | { readonly ok: false; readonly error: ProtocolError };

/** The wire record of `message`, validated exactly as the receiver will validate it. */
function toCheckedWire<M extends { readonly type: string }>(direction: Direction<M>, message: unknown, prefix: string): Checked {
  const type: unknown = typeof message === "object" && message !== null ? (message as { type?: unknown }).type : undefined;
  const codec = typeof type === "string" ? direction.byType.get(type) : undefined;
  if (codec === undefined) {
    const path = prefix === "" ? "type" : `${prefix}.type`;
    return { ok: false, error: problem("RQ_PROTOCOL", `expected a ${direction.name} message type, got ${describe(type)}`, path) };
  }
  try {
    const wire = codec.toWire(message as M);
    codec.read(wire, CHECKING);
    return { ok: true, wire, handshake: codec.handshake };
  } catch (error) {
    return { ok: false, error: messageError(prefix, error) };
  }
}

/** Why the receiver would refuse `message`, or null if it would accept it. Never throws. */
export function checkMessage<M extends { readonly type: string }>(direction: Direction<M>, message: unknown): ProtocolError | null {
  const checked = toCheckedWire(direction, message, "");
  return checked.ok ? null : checked.error;
}

/**
 * Validates every message (exactly as the receiver will) and encodes them as
 * one frame. Throws ProtocolEncodeError for a message the receiver would
 * refuse, or a frame over the cap: both are caller bugs. The frame owns its
 * bytes, so the caller may queue it for as long as it likes.
 */
export function encodeFrame<M extends { readonly type: string }>(
  direction: Direction<M>,
  messages: readonly M[],
  options: EncodeOptions = {},
): Uint8Array {
  if (messages.length === 0 || messages.length > MAX_MESSAGES_PER_FRAME) {
    throw new ProtocolEncodeError(problem("RQ_PROTOCOL", `a frame carries 1-${MAX_MESSAGES_PER_FRAME} messages, not ${messages.length}`));
  }
  const wires: Wire[] = new Array<Wire>(messages.length);
  let handshake = false;
  for (let i = 0; i < messages.length; i++) {
    const checked = toCheckedWire(direction, messages[i], `messages[${i}]`);
    if (!checked.ok) throw new ProtocolEncodeError(checked.error);
    wires[i] = checked.wire;
    handshake ||= checked.handshake;
  }
  const packr = options.encoding === "plain" ? plainPackr : handshake ? selfDescribingPackr : sharedPackr;
  const bytes = packr.pack(wires);
  if (bytes.byteLength > direction.maxFrameBytes) {
    throw new ProtocolEncodeError(problem("RQ_FRAME_TOO_LARGE", `frame of ${bytes.byteLength} bytes exceeds ${direction.maxFrameBytes}`));
  }
  // A copy: msgpackr returns a view into its pack buffer, which every encoder in the process shares and which grows
  // to fit the largest frame. A frame queued for a slow reader would keep that whole buffer alive, full of other
  // connections' frames (test/fuzz-live checks the bound; scripts/fuzz-live/pin-probe.ts measures it). The copy
  // costs about 25 ns a frame.
  return new Uint8Array(bytes);
}

/**
 * How records are written: `records` (msgpackr's shared record table, the
 * default and the Node SDK's) or `plain` (MessagePack maps with string keys,
 * readable by any MessagePack library). Decoders read both.
 */
export type FrameEncoding = "records" | "plain";

export interface EncodeOptions {
  /** Default `records` (frames holding a handshake message are then self-describing). */
  readonly encoding?: FrameEncoding;
}

export interface DecodeOptions {
  /**
   * Default `records`. Use `plain` for every frame from a client whose hello asked for it, and for a
   * connection's first frame (a hello is never table-encoded, and a plain one may hold the integers 64-89).
   */
  readonly encoding?: FrameEncoding;
  /** A lower byte cap for this frame than the direction's, e.g. MAX_HELLO_FRAME_BYTES for a first frame. */
  readonly maxFrameBytes?: number;
}

/** Decodes and validates one frame. Never throws. */
export function decodeFrame<M extends { readonly type: string }>(
  direction: Direction<M>,
  bytes: unknown,
  options: DecodeOptions = {},
): DecodeResult<M> {
  if (!(bytes instanceof Uint8Array)) return { ok: false, error: problem("RQ_PROTOCOL", "a frame must be a Uint8Array") };
  // The cap is checked first: a frame over it costs no decoding work at all.
  const maxFrameBytes = Math.min(direction.maxFrameBytes, options.maxFrameBytes ?? Infinity);
  if (bytes.byteLength > maxFrameBytes) {
    return { ok: false, error: problem("RQ_FRAME_TOO_LARGE", `frame of ${bytes.byteLength} bytes exceeds the ${maxFrameBytes}-byte cap`) };
  }
  if (bytes.byteLength === 0) return { ok: false, error: problem("RQ_PROTOCOL", "empty frame") };
  let value: unknown;
  try {
    value = unpackStateless(bytes, options.encoding ?? "records");
  } catch (error) {
    return { ok: false, error: problem("RQ_PROTOCOL", `not a MessagePack frame: ${errorText(error).slice(0, 200)}`) };
  }
  if (!Array.isArray(value)) return { ok: false, error: problem("RQ_PROTOCOL", "a frame must be an array of messages") };
  if (value.length === 0 || value.length > MAX_MESSAGES_PER_FRAME) {
    return { ok: false, error: problem("RQ_PROTOCOL", `a frame carries 1-${MAX_MESSAGES_PER_FRAME} messages, not ${value.length}`) };
  }
  const messages: M[] = new Array<M>(value.length);
  for (let i = 0; i < value.length; i++) {
    const wire: unknown = value[i];
    if (!isPlainObject(wire)) return { ok: false, error: problem("RQ_PROTOCOL", "expected a message record", `messages[${i}]`) };
    const tag = wire.t;
    const codec = typeof tag === "number" ? direction.byTag.get(tag) : undefined;
    if (codec === undefined) {
      return { ok: false, error: problem("RQ_PROTOCOL", `unknown ${direction.name} message type ${describe(tag)}`, `messages[${i}].t`) };
    }
    try {
      messages[i] = codec.read(wire, DECODING);
    } catch (error) {
      return { ok: false, error: messageError(`messages[${i}]`, error) };
    }
  }
  return { ok: true, messages };
}

/** The protocolVersion field of every handshake message. A different version is RQ_PROTOCOL_VERSION. */
export function readVersion(w: Wire, field = "protocolVersion"): number {
  const value = w[field];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new FieldError(field, `expected a protocol version (a positive integer), got ${describe(value)}`);
  }
  if (value !== PROTOCOL_VERSION) {
    throw new FieldError(field, `protocol version ${value} is not spoken here (this side speaks ${PROTOCOL_VERSION})`, "RQ_PROTOCOL_VERSION");
  }
  return value;
}

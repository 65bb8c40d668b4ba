/**
 * The protocol version and every cap the decoders enforce. A value outside a
 * cap is refused with RQ_PROTOCOL (or RQ_FRAME_TOO_LARGE for the byte caps).
 * Caps are small enough that a hostile frame cannot make a node allocate or
 * loop without bound, and never stricter than the bounds table (bounds.ts,
 * which the limiter, the node and the SDK use): a request out of those bounds
 * is refused alone, as RQ_INVALID, by the node before it reaches the log, not
 * by closing its connection as a bad frame. bounds.test.ts checks this.
 */

import { Bounds } from "./bounds.js";

/**
 * Bumped whenever a message, a field or the record table (structures.ts)
 * changes. A node answers a hello of another version with RQ_PROTOCOL_VERSION.
 */
export const PROTOCOL_VERSION = 1;

/** Largest client or server frame, checked before any decoding work. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/**
 * Cap for a client connection's first frame (its hello), which a node decodes
 * before it knows who is talking: decoding costs CPU in proportion to the
 * bytes (hostile frames up to ~0.3 ms per KiB), so unauthenticated input stays
 * small. Pass it as `decodeClientFrame(bytes, { maxFrameBytes })`.
 */
export const MAX_HELLO_FRAME_BYTES = 4096;
/** Largest peer frame (Raft appends and snapshot chunks), checked before any decoding work. */
export const MAX_PEER_FRAME_BYTES = 64 * 1024 * 1024;
/** Most messages in one frame (a frame is a batch). */
export const MAX_MESSAGES_PER_FRAME = 4096;

/** Resource names: SPEC.md, 1 to 128 characters of `A-Z a-z 0-9 . _ : / -`. */
export const MAX_RESOURCE_NAME_CHARS = Bounds.nameLengthMax;
/** Ids the node assigns (session, lease): same alphabet as resource names. */
export const MAX_ID_CHARS = Bounds.nameLengthMax;
/** Lane names and load dimension names (the resource-name alphabet, as in packages/limiter). */
export const MAX_NAME_CHARS = Bounds.nameLengthMax;
/** Node ids (as packages/node's config). */
export const MAX_NODE_ID_CHARS = 64;
/** API keys: printable ASCII, no spaces. */
export const MAX_API_KEY_CHARS = 256;
/** Client name and version in the hello: printable ASCII. */
export const MAX_CLIENT_INFO_CHARS = 64;
/** Human-readable error messages. */
export const MAX_ERROR_MESSAGE_CHARS = 1024;
/** Client URLs of nodes (in welcome and notLeader). */
export const MAX_URL_CHARS = 2048;

/** Request ids: client-chosen integers 1..2^53-1, unique per session. */
export const MAX_REQUEST_ID = Number.MAX_SAFE_INTEGER;
/** Most dimensions in one load (`{ input, output, ... }`). */
export const MAX_LOAD_DIMENSIONS = Bounds.dimensionsMax;
/**
 * Largest load amount a frame may carry (finite, >= 0). Looser than `Bounds.unitsMax` on purpose: a load
 * over the bounds is refused for that request alone (RQ_INVALID), not by closing the connection.
 */
export const MAX_LOAD = Number.MAX_SAFE_INTEGER;
/**
 * Priorities a frame may carry: integers in [-MAX_PRIORITY, MAX_PRIORITY]. Looser than `Bounds.priorityMax`
 * on purpose, as MAX_LOAD is.
 */
export const MAX_PRIORITY = 1_000_000;
/** Longest queue wait a request may ask for (2^31 ms, about 24.8 days; 0 is allowed). */
export const MAX_TIMEOUT_MS = Bounds.timeoutMsMax;
/** Longest cooldown a client may report (2^31 ms). */
export const MAX_RETRY_AFTER_MS = Bounds.retryAfterMsMax;
/** Session TTLs a client may ask for and a node may grant (up to one day). */
export const MIN_TTL_MS = 1;
export const MAX_TTL_MS = Bounds.ttlMsMax;
/**
 * Grant-to-send delay reports (the `report` message): upper bounds, in ms, of the histogram buckets every client
 * sorts its delays into; `buckets` holds one count per bound and a last one for delays above the largest. Part of
 * the protocol: a node and its clients must agree on them.
 */
export const DELIVERY_BUCKETS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
/** Longest delay one grant may report: a client clamps a longer one to this (a day). */
export const MAX_DELIVERY_MS = 86_400_000;
/** Most grants one report may cover, so that `sumMs` (at most count x MAX_DELIVERY_MS) stays an exact integer. */
export const MAX_REPORT_COUNT = 100_000_000;
/** Most nodes listed in a welcome and in a Raft membership list. */
export const MAX_NODES = 64;
/** Most ever-removed node ids carried in a membership list. */
export const MAX_REMOVED_NODES = 4096;

/** Most entries in one Raft append. */
export const MAX_ENTRIES_PER_MESSAGE = 16_384;
/** Largest payload of one Raft entry. */
export const MAX_ENTRY_BYTES = 4 * 1024 * 1024;
/** Largest snapshot chunk, read-index context or other byte field of a Raft message. */
export const MAX_CHUNK_BYTES = 32 * 1024 * 1024;

/**
 * @ratequeue/protocol: the wire format shared by the node and the SDK.
 * Pure code: no sockets, no clock. See README.md.
 */
export { Bounds, NAME_PATTERN } from "./bounds.js";
export { ErrorCode, HttpErrorCode, isErrorCode, LIMITER_WIRE_CODE, LimiterErrorCode, ProtocolEncodeError, wireCodeOf } from "./codes.js";
export type { ProtocolError, ProtocolErrorCode } from "./codes.js";
export { bearerSecret } from "./http.js";
export type { StatusBody, StatusPeer } from "./http.js";
export { TABLES_JSON_PATH, tables, tablesJson } from "./tables.js";
export type { DecodeOptions, EncodeOptions, FrameEncoding } from "./frame.js";
export {
  PROTOCOL_VERSION,
  MAX_FRAME_BYTES,
  MAX_HELLO_FRAME_BYTES,
  MAX_PEER_FRAME_BYTES,
  MAX_MESSAGES_PER_FRAME,
  MAX_RESOURCE_NAME_CHARS,
  MAX_ID_CHARS,
  MAX_NAME_CHARS,
  MAX_NODE_ID_CHARS,
  MAX_API_KEY_CHARS,
  MAX_CLIENT_INFO_CHARS,
  MAX_ERROR_MESSAGE_CHARS,
  MAX_URL_CHARS,
  MAX_REQUEST_ID,
  MAX_LOAD_DIMENSIONS,
  MAX_LOAD,
  MAX_PRIORITY,
  MAX_TIMEOUT_MS,
  MAX_RETRY_AFTER_MS,
  MIN_TTL_MS,
  MAX_TTL_MS,
  MAX_NODES,
  MAX_REMOVED_NODES,
  MAX_ENTRIES_PER_MESSAGE,
  MAX_ENTRY_BYTES,
  MAX_CHUNK_BYTES,
  DELIVERY_BUCKETS_MS,
  MAX_DELIVERY_MS,
  MAX_REPORT_COUNT,
} from "./limits.js";
export { encodeClientFrame, decodeClientFrame, checkClientMessage, deliveryBucket } from "./client.js";
export { encodeServerFrame, decodeServerFrame, checkServerMessage } from "./server.js";
export { encodePeerFrame, decodePeerFrame, PEER_PROOF_BYTES } from "./peer.js";
export type { ClockEcho, ClockProbe, PeerHello, PeerMessage } from "./peer.js";
export type {
  Ack,
  Acquire,
  Cancel,
  ClientMessage,
  Cooldown,
  DecodeResult,
  ErrorMessage,
  Goodbye,
  Granted,
  Heartbeat,
  Hello,
  Lease,
  Load,
  NodeInfo,
  NotLeader,
  Queued,
  Rejected,
  Release,
  Report,
  ServerMessage,
  Settle,
  Welcome,
} from "./types.js";

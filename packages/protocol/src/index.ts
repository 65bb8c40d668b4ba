/**
 * @ratequeue/protocol: the wire format shared by the node and the SDK.
 * Pure code: no sockets, no clock. See README.md.
 */
export { ErrorCode, isErrorCode, ProtocolEncodeError } from "./codes.js";
export type { ProtocolError, ProtocolErrorCode } from "./codes.js";
export type { DecodeOptions } from "./frame.js";
export * from "./limits.js";
export { encodeClientFrame, decodeClientFrame, checkClientMessage } from "./client.js";
export { encodeServerFrame, decodeServerFrame, checkServerMessage } from "./server.js";
export { encodePeerFrame, decodePeerFrame } from "./peer.js";
export type { PeerHello, PeerMessage } from "./peer.js";
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
  ServerMessage,
  Settle,
  Welcome,
} from "./types.js";

/**
 * @ratequeue/node/testing: the node's internals that the simulators, the live
 * fuzzer, the nemesis tools and the benchmarks drive directly (workspace only:
 * not part of the published package). The store conformance suite, which
 * needs vitest, is `@ratequeue/node/testing/log-store-suite`.
 */
export { ClientSessions, type ClientConnection } from "./core/client-sessions.js";
export { ClusterState, type OpResult } from "./core/cluster-state.js";
export type { ClientLink, NodeEnv, TimerHandle } from "./core/env.js";
export { NodeCore, checkResourceBody, type NodeCoreOptions } from "./core/node-core.js";
export { decodePayload, type Op } from "./core/ops.js";
export { MemberChanges } from "./membership/changes.js";
export { newNonce, parseNonce, PEER_AUTH_CLOSE_CODE, PEER_HEADER, peerProof } from "./peer/handshake.js";
export { keyFromSecret } from "./state/keys.js";
export { LevelStore } from "./storage/level-store.js";
export { StorageError, type LogStore, type LogWrite, type PersistedState } from "./storage/types.js";

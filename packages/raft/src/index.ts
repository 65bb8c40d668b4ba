/**
 * @ratequeue/raft: a deterministic Raft consensus core with no I/O, no clock
 * and no randomness of its own. See README.md for the persistence contract.
 */
export { RawNode } from "./raw-node.js";
export type { RaftConfig } from "./config.js";
export { MemoryStorage, bootstrapSnapshot, entrySizeBytes, type Storage } from "./storage.js";
export { createRng, type Rng } from "./rng.js";
export { encodeConfChange, decodeConfChange } from "./conf-change.js";
export { RaftError, RaftConfigError, RaftErrorCode } from "./errors.js";
export type * from "./types.js";

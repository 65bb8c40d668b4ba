export { LevelStore, type LevelStoreOptions } from "./level-store.js";
export { MemoryStore } from "./memory-store.js";
export { StorageError, type LogStore, type LogWrite, type PersistedState } from "./types.js";

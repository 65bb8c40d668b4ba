/**
 * @ratequeue/protocol/testing: arbitraries for every message, a plain
 * MessagePack reader and writer (what a client in another language sends), and
 * the codec benchmark (workspace only).
 */
export * from "./arbitraries.js";
export { readStandard, writeStandard } from "./standard-msgpack.js";
export { runProtocolBench, type CodecBenchRow } from "./codec.bench.js";

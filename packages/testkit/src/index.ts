/**
 * @ratequeue/testkit: what the tests and scripts of every package share.
 * - `checkProperty`, `checkAsyncProperty`: the fast-check runner (run counts,
 *   replay from a seed), for synchronous and asynchronous properties.
 * - `Prng`: the seeded generator of the simulators, fuzzers and nemesis runs
 *   (the Raft core's own generator is `createRng` in packages/raft).
 * - `Inspector`: a client of a node process's V8 inspector (heap after a full
 *   GC, heap snapshots), for the live fuzzer and its investigation scripts.
 */
export { checkAsyncProperty, checkProperty, DEFAULT_RUNS, propertyRuns, type PropertyOptions } from "./property.js";
export { Prng } from "./prng.js";
export { Inspector, inspectorUrl, type HeapAfterGc } from "./inspector.js";

/**
 * The full-node simulator (see README.md): test files and scripts/node-sim.ts import from here.
 */
export { RESOURCES } from "./fixtures.js";
export { NodeSimWorld, runNodeSim, LIVENESS_BOUND_MS, RESTART_BOUND_MS, SESSION_TTL_MS, type RunResult, type RunStats, type Sabotage } from "./world.js";
export { MAX_SEED, KNOB_FLAGS, scenarioFromSeed, replayCommand, applyOverrides, checkScenario, type Knobs, type Scenario } from "./scenario.js";
export { SimLogStore, type DiskScheduler, type SimLogStoreOptions } from "./sim-log-store.js";
export { SimClient } from "./sim-client.js";
export { LimitChecker, type LimitSpec, type ResourceSpec } from "./checkers/limits.js";
export { OutcomeChecker } from "./checkers/outcomes.js";
export { Agreement } from "./checkers/agreement.js";

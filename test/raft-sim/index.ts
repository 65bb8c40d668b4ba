/**
 * The deterministic cluster simulator (see README.md). Test files and
 * scripts/sim.ts import from here.
 */
export { SimCluster, LivenessFailure, type ClusterOptions } from "./cluster.js";
export { runScenario, clusterOptions, LIVENESS_BOUND_MS, type RunResult, type RunStats } from "./run.js";
export { MAX_SEED, scenarioFromSeed, replayCommand, applyOverrides, encodeFaults, decodeFaults, describeFaults, type Scenario, type Knobs, type Fault } from "./scenario.js";
export { ELECTION_BOUND_MS, scriptedCluster, waitForLeader, elect, proposeAndCommit, proposeOnly, ApplyRecorder } from "./scripted.js";
export { createCheckers, SafetyViolation, type Checker, type ClusterView, type NodeView } from "./checkers/index.js";
export { Prng } from "@ratequeue/testkit";
export { SimNetwork, CALM_NETWORK, type NetworkFaults } from "./sim-network.js";
export { SimDisk, RELIABLE_DISK, type DiskFaults } from "./sim-disk.js";

/**
 * @ratequeue/node: the RateQueue node (the `ratequeue` binary) as a library:
 * start a node in this process, or a local cluster of node processes.
 */
export { startNode, runNode, type RunningNode } from "./run.js";
export { resolveConfig, settingsFromEnv, settingsFromFile, ConfigError, type NodeConfig, type RawSettings } from "./config.js";
export { LocalCluster, freePorts, type LocalClusterOptions, type LocalNode } from "./local-cluster.js";

import { Command, InvalidArgumentError } from "commander";
import { keysCommand, membersCommand, resourcesCommand, statusCommand } from "./cli/admin-commands.js";
import { backupCommand, recoverCommand, restoreCommand } from "./cli/backup-commands.js";
import { CliError } from "./cli/admin-client.js";
import { ConfigError, resolveConfig, settingsFromEnv, settingsFromFile, type RawSettings } from "./config.js";

const VERSION = "0.1.0";

/** The `ratequeue` command line. */
export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command()
    .name("ratequeue")
    .description("RateQueue: a replicated control plane for shared API quotas (RPM, TPM, concurrency).")
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)");

  program
    .command("start")
    .description("Run one node of a cluster. Every setting may also come from RATEQUEUE_* variables or --config.")
    .option("--config <file>", "JSON config file (same names as the flags in camelCase, plus resources and keys)")
    .option("--id <id>", "this node's id, e.g. n1 (RATEQUEUE_ID)")
    .option("--listen <host:port>", "address to serve clients, peers and HTTP on (RATEQUEUE_LISTEN)")
    .option("--peers <list>", "to found a new cluster: every voter, n1=host:port,... including this node; ignored once the data folder holds a cluster (RATEQUEUE_PEERS)")
    .option("--join <urls>", "to join a running cluster from an empty data folder: host:port of one or more of its nodes; with --admin-key the node asks to be added (RATEQUEUE_JOIN)")
    .option("--advertise <host:port>", "the address peers and clients reach this node at (default: --listen) (RATEQUEUE_ADVERTISE)")
    .option("--data <dir>", "data folder (RATEQUEUE_DATA)")
    .option("--cluster-secret <secret>", "shared by all nodes, 16+ characters (RATEQUEUE_CLUSTER_SECRET)")
    .option("--previous-cluster-secret <secret>", "while rotating the cluster secret: the old one, still accepted from peers (RATEQUEUE_PREVIOUS_CLUSTER_SECRET)")
    .option("--admin-key <key>", "bootstrap admin key, 16+ characters: seeds the replicated key table when it holds no admin key; required to found a cluster (RATEQUEUE_ADMIN_KEY)")
    .option("--tick-ms <ms>", "Raft tick in ms (default 50)")
    .option("--election-ticks <n>", "election timeout in ticks (default 10)")
    .option("--heartbeat-ticks <n>", "leader heartbeat interval in ticks (default 1)")
    .option("--session-ttl-ms <ms>", "default client session TTL (default 10000)")
    .option("--leader-wait-ms <ms>", "how long a node without a live leader holds a client's hello for an election to end (default 2 election timeouts)")
    .option("--snapshot-entries <n>", "snapshot and compact the log every n entries (default 10000)")
    .option("--clock-warn-ms <ms>", "warn when a peer's wall clock differs from this node's by more than this, 1 to 86400000 (default 500; limits never read wall clocks) (RATEQUEUE_CLOCK_WARN_MS)")
    .option("--log-level <level>", "trace, debug, info, warn, error, fatal or silent (default info)")
    .option("--pretty-logs", "human-readable logs instead of JSON lines")
    .option("--public-metrics", "serve every resource's series in /metrics without a key (default: only to a key that may see them) (RATEQUEUE_PUBLIC_METRICS)")
    .option("--tls-cert <file>", "PEM certificate: serve wss:// and https://")
    .option("--tls-key <file>", "PEM private key for --tls-cert")
    .option("--tls-peer-ca <file>", "PEM CA: peer links must present a client certificate it signed (mutual TLS); this node presents --tls-cert (RATEQUEUE_TLS_PEER_CA)")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const { config: file, ...flags } = opts;
      const config = resolveConfig(
        flags as RawSettings,
        settingsFromEnv(process.env),
        typeof file === "string" ? settingsFromFile(file) : {},
      );
      const { runNode } = await import("./run.js");
      await runNode(config);
      // Exit now rather than when the event loop drains: a second signal arriving in that drain (Ctrl-C twice)
      // would find Node's handlers already torn down and kill an otherwise clean exit.
      process.exit(process.exitCode ?? 0);
    });

  program
    .command("dev")
    .description("Start a local three-node cluster (three processes) with a demo resource; Ctrl-C stops all three.")
    .option("--base-port <port>", "first node's port; the others follow", parsePort, 7401)
    .option("--data <dir>", "keep data here (default: a fresh temporary folder, removed on exit)")
    .option("--admin-key <key>", "admin key to use (default: a random one, printed)")
    .action(async (opts: { basePort: number; data?: string; adminKey?: string }) => {
      const { runDev } = await import("./dev.js");
      await runDev(opts);
    });

  program.addCommand(resourcesCommand());
  program.addCommand(keysCommand());
  program.addCommand(statusCommand());
  program.addCommand(membersCommand());
  program.addCommand(backupCommand());
  program.addCommand(restoreCommand());
  program.addCommand(recoverCommand());

  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof CliError) {
      process.stderr.write(`ratequeue: ${err.message}\n`);
      process.exit(err instanceof CliError ? err.exitCode : 2);
    }
    throw err;
  }
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65_533) throw new InvalidArgumentError("must be a port from 1 to 65533");
  return port;
}

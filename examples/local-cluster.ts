/**
 * Start a local RateQueue cluster programmatically for the examples, their
 * tests and the demo: `LocalCluster` from `@ratequeue/node` (real
 * `ratequeue start` processes, the binary `ratequeue dev` runs, on free
 * loopback ports, a fresh temporary data folder, a random admin key and
 * cluster secret), started and waited on until every node agrees on a leader.
 * `close()` stops the nodes and removes the data; if this process exits
 * without it (an uncaught error, Ctrl-C in a CLI), the nodes are killed anyway.
 *
 * @example
 * await using cluster = await startLocalCluster();
 * const rq = new RateQueue({ url: cluster.url, apiKey: cluster.adminKey });
 */
import { rmSync } from "node:fs";
import { LocalCluster as NodeCluster } from "@ratequeue/node";

export interface LocalClusterOptions {
  /** Nodes (default 3). */
  readonly size?: number;
  /** Longest wait for an agreed leader (default 30 s: a loaded laptop starts three tsx processes slowly). */
  readonly startTimeoutMs?: number;
  /** The nodes' --log-level (default "warn"). */
  readonly logLevel?: string;
  /** More `ratequeue start` flags for every node, e.g. ["--tick-ms", "50"]. */
  readonly extraArgs?: readonly string[];
}

export interface LocalCluster {
  /** Comma-separated WebSocket URLs, as RATEQUEUE_URL takes them. */
  readonly url: string;
  /** Every node's HTTP base URL (admin API, /v1/status); writes on a follower are forwarded to the leader. */
  readonly httpUrls: readonly string[];
  readonly adminKey: string;
  /** The running nodes, to kill or restart one (the demo's leader kill). */
  readonly nodes: NodeCluster;
  /** The last output of every node, for error reports. */
  output(): string;
  /** Stops every node (SIGTERM, then SIGKILL after 5 s) and removes the data folder. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const OUTPUT_LINES_SHOWN = 30;

export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const size = options.size ?? 3;
  if (!Number.isInteger(size) || size < 1 || size > 7) throw new RangeError(`size must be an integer from 1 to 7, got ${size}`);
  const nodes = await NodeCluster.start({ size, extraArgs: ["--log-level", options.logLevel ?? "warn", ...(options.extraArgs ?? [])] });
  // LocalCluster.stop() needs the event loop; "exit" handlers run synchronously, so they kill and clean up directly.
  const killOnExit = (): void => {
    for (const n of nodes.nodes) n.process?.kill("SIGKILL");
    rmSync(nodes.root, { recursive: true, force: true });
  };
  process.once("exit", killOnExit);
  const output = (): string =>
    nodes.nodes.map((n) => `--- ${n.id} (port ${n.port}) ---\n${n.output.split("\n").slice(-OUTPUT_LINES_SHOWN).join("\n")}`).join("\n");
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await nodes.stop();
      process.removeListener("exit", killOnExit);
    })();
    return closing;
  };
  try {
    await waitForStart(nodes, options.startTimeoutMs ?? 30_000);
  } catch (err) {
    await close();
    throw new Error(`${(err as Error).message}\n${output()}`);
  }
  return {
    url: nodes.urls.join(","),
    httpUrls: nodes.nodes.map((n) => n.httpUrl),
    adminKey: nodes.adminKey,
    nodes,
    output,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** An agreed leader, or an error as soon as a node exits during start-up (a bad flag, a port taken) instead of waiting out the timeout. */
async function waitForStart(nodes: NodeCluster, timeoutMs: number): Promise<void> {
  let stopWatching = (): void => undefined;
  const exited = new Promise<never>((_, reject) => {
    const listeners = nodes.nodes.map((n) => {
      const onExit = (): void => reject(new Error(`node ${n.id} exited during start-up`));
      n.process?.once("exit", onExit);
      return () => n.process?.off("exit", onExit);
    });
    stopWatching = () => {
      for (const off of listeners) off();
    };
  });
  try {
    await Promise.race([nodes.waitForLeader({ timeoutMs }), exited]);
  } finally {
    stopWatching();
  }
}

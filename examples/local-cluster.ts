/**
 * Start a local RateQueue cluster programmatically: `size` real
 * `ratequeue start` processes (the same binary `ratequeue dev` runs) on free
 * loopback ports, with a fresh temporary data folder, a random admin key and
 * cluster secret. `close()` stops them and removes the data.
 *
 * @example
 * await using cluster = await startLocalCluster();
 * const rq = new RateQueue({ url: cluster.url, apiKey: cluster.adminKey });
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// The binary of the @ratequeue/node dependency (its package exports no subpaths, so we go through node_modules).
const BIN = fileURLToPath(new URL("./node_modules/@ratequeue/node/bin/ratequeue.mjs", import.meta.url));
const OUTPUT_KEPT_CHARS = 20_000;

export interface LocalClusterOptions {
  /** Nodes (default 3). */
  readonly size?: number;
  /** Longest wait for an agreed leader (default 30 s: a loaded laptop starts three tsx processes slowly). */
  readonly startTimeoutMs?: number;
  /** The nodes' --log-level (default "warn"). */
  readonly logLevel?: string;
}

export interface LocalCluster {
  /** Comma-separated WebSocket URLs, as RATEQUEUE_URL takes them. */
  readonly url: string;
  /** Every node's HTTP base URL (admin API, /v1/status); writes on a follower are forwarded to the leader. */
  readonly httpUrls: readonly string[];
  readonly adminKey: string;
  /** The last output of every node, for error reports. */
  output(): string;
  /** Stops every node (SIGTERM, then SIGKILL after 5 s) and removes the data folder. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const size = options.size ?? 3;
  if (!Number.isInteger(size) || size < 1 || size > 7) throw new RangeError(`size must be an integer from 1 to 7, got ${size}`);
  const root = await mkdtemp(join(tmpdir(), "rq-examples-"));
  const ports = await freePorts(size);
  const ids = ports.map((_, i) => `n${i + 1}`);
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(",");
  const adminKey = `rq_local_${randomBytes(12).toString("hex")}`;
  const clusterSecret = randomBytes(24).toString("hex");
  const outputs = ids.map(() => "");
  const children: ChildProcess[] = ids.map((id, i) => {
    const child = spawn(
      process.execPath,
      [
        BIN, "start",
        "--id", id,
        "--listen", `127.0.0.1:${ports[i]}`,
        "--peers", peers,
        "--data", join(root, id),
        "--cluster-secret", clusterSecret,
        "--admin-key", adminKey,
        "--log-level", options.logLevel ?? "warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const keep = (d: Buffer): void => {
      outputs[i] = (outputs[i] + d.toString()).slice(-OUTPUT_KEPT_CHARS);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    return child;
  });
  // If this process exits without close() (an uncaught error, Ctrl-C in a CLI), leave no node running and no data behind.
  const killOnExit = (): void => {
    children.forEach((c) => c.kill("SIGKILL"));
    rmSync(root, { recursive: true, force: true });
  };
  process.once("exit", killOnExit);

  const httpUrls = ports.map((p) => `http://127.0.0.1:${p}`);
  const output = (): string => ids.map((id, i) => `--- ${id} (port ${ports[i]}) ---\n${outputs[i]!.split("\n").slice(-30).join("\n")}`).join("\n");
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
      const exited = running.map((c) => new Promise<void>((resolve) => c.once("exit", () => resolve())));
      for (const c of running) c.kill("SIGTERM");
      const timer = setTimeout(() => running.forEach((c) => c.kill("SIGKILL")), 5_000);
      await Promise.all(exited);
      clearTimeout(timer);
      process.removeListener("exit", killOnExit);
      await rm(root, { recursive: true, force: true });
    })();
    return closing;
  };
  const cluster: LocalCluster = {
    url: ports.map((p) => `ws://127.0.0.1:${p}`).join(","),
    httpUrls,
    adminKey,
    output,
    close,
    [Symbol.asyncDispose]: close,
  };
  try {
    await waitForLeader(httpUrls, children, options.startTimeoutMs ?? 30_000);
  } catch (err) {
    await close();
    throw new Error(`${(err as Error).message}\n${output()}`);
  }
  return cluster;
}

/** Waits until every node names the same leader and that node says it leads. */
async function waitForLeader(httpUrls: readonly string[], children: readonly ChildProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const dead = children.findIndex((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead !== -1) throw new Error(`node n${dead + 1} exited during start-up`);
    const statuses = await Promise.all(httpUrls.map(status));
    const leaders = new Set(statuses.map((s) => s?.leader ?? null));
    const [leader] = leaders;
    if (leaders.size === 1 && leader != null && statuses.some((s) => s?.id === leader && s.role === "leader")) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the local cluster agreed on no leader within ${timeoutMs} ms`);
}

async function status(httpUrl: string): Promise<{ id: string; role: string; leader: string | null } | null> {
  try {
    const res = await fetch(`${httpUrl}/v1/status`, { signal: AbortSignal.timeout(1_000) });
    return res.ok ? ((await res.json()) as { id: string; role: string; leader: string | null }) : null;
  } catch {
    return null; // not listening yet
  }
}

/** Ports the OS says are free right now (bound, then released). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<import("node:net").Server>((resolve, reject) => {
        const s = createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => resolve(s));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

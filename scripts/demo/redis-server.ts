/**
 * A throwaway redis-server for the demo's rate-limiter-flexible run: the
 * Debian package (installed by scripts/setup/debian-packages.sh when missing
 * and we are root), on a free loopback port, with no persistence (the
 * limiter's counters live for one run), stopped by `stop()`.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePorts } from "@ratequeue/node";
import { Redis } from "ioredis";

const SETUP_SCRIPT = fileURLToPath(new URL("../setup/debian-packages.sh", import.meta.url));
const START_TIMEOUT_MS = 10_000;

export interface RedisServer {
  readonly port: number;
  stop(): Promise<void>;
}

/** Installs redis-server if it is missing (throws the setup script's advice if it cannot). */
export function ensureRedisInstalled(): void {
  try {
    execFileSync("bash", [SETUP_SCRIPT, "redis-server"], { stdio: ["ignore", "inherit", "pipe"] });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? "").trim();
    throw new Error(`redis-server is needed for the rate-limiter-flexible run: ${stderr || (err as Error).message}`);
  }
}

export async function startRedisServer(): Promise<RedisServer> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error("invariant: freePorts(1) returned no port");
  const dir = await mkdtemp(join(tmpdir(), "rq-demo-redis-"));
  const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => undefined); // refused while the server starts: the connect() below reports it
    try {
      await probe.connect();
      await probe.ping();
      return { port, stop };
    } catch {
      if (proc.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`redis-server did not start on port ${port} within ${START_TIMEOUT_MS} ms`);
      }
      await sleep(100);
    } finally {
      probe.disconnect();
    }
  }
}

// Helpers for the tests whose nodes run with wrong or jumping wall clocks (libfaketime): a workload that keeps one
// rate limit saturated and notes each grant on the test's own monotonic clock (true time, as a provider measures it),
// the two checks on those notes, and a way to hand leadership to a chosen node.
import { existsSync, readdirSync, rmSync } from "node:fs";
import { expect } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, sleep, waitFor, type Cluster, type NodeLaunch, type NodeProcess } from "./harness.js";

/** A sliding limit short enough to see several windows per test, with a delivery margin that covers a loaded machine. */
export const LIMIT = 5;
export const WINDOW_MS = 3_000;
export const MARGIN_MS = 1_500;
export const RESOURCE = { limits: [{ kind: "rate", limit: LIMIT, windowMs: WINDOW_MS, deliveryMarginMs: MARGIN_MS }] };
/** A used-up limit must grant again within this much true time after its window (failovers included). */
export const UNFREEZE_SLACK_MS = 10_000;

/** Debian's faketime wrapper, failing loudly when it is missing (scripts/setup/debian-packages.sh faketime installs it). */
export function faketime(offset: string): NodeLaunch {
  if (!existsSync("/usr/bin/faketime")) {
    throw new Error("faketime not found: install Debian's faketime (scripts/setup/debian-packages.sh faketime, or apt-get install -y faketime)");
  }
  // --exclude-monotonic: a wrong wall clock leaves CLOCK_MONOTONIC alone, as the kernel does.
  return {
    prefix: ["/usr/bin/faketime", "-m", "--exclude-monotonic", "-f", offset],
    // The wrapper removes its shared-memory files when its child exits; killed along with it, it leaves them.
    cleanup: (pid) => {
      for (const name of [`faketime_shm_${pid}`, `sem.faketime_sem_${pid}`]) rmSync(`/dev/shm/${name}`, { force: true });
    },
  };
}

/**
 * libfaketime preloaded directly, reading its offset from `file` (re-read every second), so a test can make the
 * clock jump while the node runs. Not through the faketime wrapper: the FAKETIME variable it sets takes precedence
 * over FAKETIME_TIMESTAMP_FILE.
 */
export function faketimeFromFile(file: string): NodeLaunch {
  const dir = ["/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime", "/usr/lib/faketime"].find((d) =>
    existsSync(d) && readdirSync(d).includes("libfaketimeMT.so.1"),
  );
  if (dir === undefined) throw new Error("libfaketime not found: install Debian's faketime (scripts/setup/debian-packages.sh faketime)");
  return {
    // A prefix puts the node in a process group of its own, signalled as a whole like the faketime wrapper's.
    prefix: ["/usr/bin/env"],
    env: {
      LD_PRELOAD: `${dir}/libfaketimeMT.so.1`,
      FAKETIME_TIMESTAMP_FILE: file,
      FAKETIME_CACHE_DURATION: "1",
      FAKETIME_DONT_FAKE_MONOTONIC: "1",
    },
  };
}

/**
 * `LIMIT` workers acquire in a loop from the moment `start()` is called until `stop()`: the limit stays saturated,
 * and every grant's arrival at the worker is noted on this process's monotonic clock.
 */
export class SaturatingWorkload {
  readonly grantsAtMs: number[] = [];
  readonly errors: string[] = [];
  #running = false;
  #loops: Promise<void>[] = [];
  readonly #rq: RateQueue;

  constructor(
    cluster: Cluster,
    readonly resource: string,
  ) {
    this.#rq = new RateQueue({ url: cluster.urls, apiKey: ADMIN_KEY });
  }

  start(): void {
    this.#running = true;
    this.#loops = Array.from({ length: LIMIT }, async () => {
      while (this.#running) {
        try {
          await this.#rq.acquire(this.resource, { timeoutMs: 120_000 }, async () => void this.grantsAtMs.push(performance.now()));
        } catch (err) {
          this.errors.push((err as { code?: string }).code ?? String(err));
          await sleep(100);
        }
      }
    });
  }

  /** Waits (bounded) until `n` more grants than now have arrived. */
  async grants(n: number, what: string, timeoutMs = WINDOW_MS + MARGIN_MS + UNFREEZE_SLACK_MS + 5_000): Promise<void> {
    const target = this.grantsAtMs.length + n;
    await waitFor(() => this.grantsAtMs.length >= target, { timeoutMs, what: `${n} grants ${what} (have ${this.grantsAtMs.length})` });
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#rq.close();
    await Promise.allSettled(this.#loops);
  }
}

/**
 * The provider's view: no window of true length WINDOW_MS holds more than LIMIT grants (each grant arrived within
 * MARGIN_MS of its stamp, so this holds whenever log time never runs ahead of true time), and no used-up limit stays
 * frozen: the grant LIMIT places later comes within WINDOW_MS + MARGIN_MS + UNFREEZE_SLACK_MS.
 */
export function expectProviderWindowsHold(grantsAtMs: readonly number[]): void {
  const t = [...grantsAtMs].sort((a, b) => a - b);
  for (let i = 0; i + LIMIT < t.length; i++) {
    const gapMs = t[i + LIMIT]! - t[i]!;
    expect(gapMs, `grants ${i} and ${i + LIMIT} arrived ${gapMs.toFixed(0)} true ms apart: ${LIMIT + 1} in one ${WINDOW_MS} ms window`).toBeGreaterThanOrEqual(WINDOW_MS);
    expect(gapMs, `grants ${i} and ${i + LIMIT} arrived ${gapMs.toFixed(0)} true ms apart: the limit stayed frozen`).toBeLessThanOrEqual(
      WINDOW_MS + MARGIN_MS + UNFREEZE_SLACK_MS,
    );
  }
}

/**
 * Makes `target` the leader, by a clean stop of the current leader while the third node is paused: the stopping
 * leader hands over to its most caught-up follower, which the pause makes `target`. The stopped node is started
 * again; returns when every running node agrees `target` leads.
 */
export async function makeLeader(cluster: Cluster, target: NodeProcess): Promise<void> {
  for (let attempt = 0; attempt < 4; attempt++) {
    const leader = await cluster.waitForLeader();
    if (leader === target) return;
    const third = cluster.nodes.find((n) => n !== leader && n !== target)!;
    third.signal("SIGSTOP");
    try {
      // One entry the paused node does not get: the target is now strictly the most caught-up follower.
      const put = await cluster.admin("PUT", "/v1/resources/handover-marker", { limits: [{ kind: "concurrency", limit: attempt + 1 }] }, leader);
      expect(put.status).toBeLessThan(300);
      const stopped = leader.kill("SIGTERM");
      await waitFor(async () => (await target.status())?.role === "leader", { timeoutMs: 10_000, what: `${target.id} to take over from ${leader.id}` }).catch(() => undefined);
      third.signal("SIGCONT");
      await stopped;
    } finally {
      third.signal("SIGCONT");
    }
    leader.start();
  }
  const leader = await cluster.waitForLeader();
  expect(leader.id, `could not make ${target.id} the leader`).toBe(target.id);
}

/** Polls a node's /v1/status until its estimate of `peer`'s clock offset satisfies `ok`; returns that offset (ms). */
export async function waitForClockOffset(node: NodeProcess, peer: string, ok: (offsetMs: number) => boolean, what: string): Promise<number> {
  let offset: number | null = null;
  await waitFor(
    async () => {
      const s = (await node.status()) as { peers?: { id: string; clockOffsetMs?: number | null }[] } | null;
      offset = s?.peers?.find((p) => p.id === peer)?.clockOffsetMs ?? null;
      return offset !== null && ok(offset);
    },
    { timeoutMs: 20_000, everyMs: 250, what: `${node.id} to see ${peer}'s clock ${what} (last estimate ${offset} ms)` },
  );
  return offset!;
}

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Cluster, sleep, waitFor } from "./harness.js";
import { RawClient } from "./raw-client.js";

const BIN = fileURLToPath(new URL("../../packages/node/bin/ratequeue.mjs", import.meta.url));

describe("clean shutdown", () => {
  it("SIGTERM stops each node cleanly (exit 0, 'node stopped'), even when the signal comes twice", async () => {
    const cluster = await Cluster.start({});
    try {
      const [a, b, c] = [cluster.nodes[0]!, cluster.nodes[1]!, cluster.nodes[2]!];
      // Twice, a few ms apart: what a Ctrl-C in a terminal plus `ratequeue dev` forwarding it does.
      const aExit = a.exited();
      a.proc!.kill("SIGTERM");
      await sleep(5);
      a.proc!.kill("SIGTERM");
      expect(await aExit).toEqual({ code: 0, signal: null });
      expect(a.output).toMatch(/node stopped/);
      // The other two stop while their peers are going away (no quorum any more for the last one).
      const rest = [b, c];
      const exits = rest.map((n) => n.exited());
      for (const n of rest) n.proc!.kill("SIGTERM");
      expect(await Promise.all(exits)).toEqual([
        { code: 0, signal: null },
        { code: 0, signal: null },
      ]);
      for (const n of rest) expect(n.output).toMatch(/node stopped/);
    } finally {
      await cluster.stop();
    }
  });

  it("`ratequeue dev`: Ctrl-C (SIGINT to the process group) stops all three nodes cleanly and removes the temp data", async () => {
    const basePort = await freeConsecutivePorts(3);
    const dev = spawn(process.execPath, [BIN, "dev", "--base-port", String(basePort)], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    let output = "";
    dev.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    dev.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      dev.once("exit", (code, signal) => resolve({ code, signal })),
    );
    try {
      await waitFor(() => /leadership changed.*"role":"leader"/.test(output), { timeoutMs: 30_000, what: "a dev leader", dump: () => output });
      const data = /data: +(\S+) \(removed on exit\)/.exec(output)?.[1];
      expect(data).toBeDefined();
      expect(existsSync(data!)).toBe(true);
      // What it prints is enough to use it: the URLs and the admin key serve the demo resource.
      const urls = /RATEQUEUE_URL=(\S+)/.exec(output)?.[1]?.split(",");
      const key = /RATEQUEUE_API_KEY=(\S+)/.exec(output)?.[1];
      expect(urls).toEqual([0, 1, 2].map((i) => `ws://127.0.0.1:${basePort + i}`));
      const c = await RawClient.connectToLeader(urls!, key!);
      expect(await c.outcome(c.acquire("demo", { load: 100 }))).toMatchObject({ type: "granted", lease: { resource: "demo" } });
      c.close();
      process.kill(-dev.pid!, "SIGINT"); // the whole group, as a terminal's Ctrl-C does
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(output.match(/node stopped/g)).toHaveLength(3);
      expect(existsSync(data!)).toBe(false);
    } finally {
      if (dev.exitCode === null && dev.signalCode === null) process.kill(-dev.pid!, "SIGKILL");
    }
  });
});

describe("bad configuration", () => {
  const start = (args: string[]): Promise<{ code: number | null; stderr: string }> =>
    new Promise((resolve) => {
      const proc = spawn(process.execPath, [BIN, "start", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH } });
      let stderr = "";
      proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      proc.once("exit", (code) => resolve({ code, stderr }));
    });

  it("missing and invalid settings: exit 2 listing every problem, naming the flag and the variable", async () => {
    const r = await start(["--id", "n1", "--listen", "nowhere", "--cluster-secret", "short", "--tick-ms", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid configuration/);
    expect(r.stderr).toMatch(/data is required/);
    expect(r.stderr).toMatch(/listen "nowhere" must be host:port/);
    expect(r.stderr).toMatch(/clusterSecret must be at least 16 characters/);
    expect(r.stderr).toMatch(/tickMs must be an integer/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // a message, not a stack trace
  });
});

/** The first of `count` consecutive loopback ports that are free right now. */
async function freeConsecutivePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ok = await Promise.all(Array.from({ length: count }, (_, i) => isFree(base + i)));
    if (ok.every(Boolean)) return base;
  }
  throw new Error("no consecutive free ports found");
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

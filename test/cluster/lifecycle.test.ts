import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Cluster, sleep, waitFor } from "./harness.js";

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
      process.kill(-dev.pid!, "SIGINT"); // the whole group, as a terminal's Ctrl-C does
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(output.match(/node stopped/g)).toHaveLength(3);
      expect(existsSync(data!)).toBe(false);
    } finally {
      if (dev.exitCode === null && dev.signalCode === null) process.kill(-dev.pid!, "SIGKILL");
    }
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

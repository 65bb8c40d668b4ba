/**
 * The release: `npm pack` of @ratequeue/node, installed into an empty folder with npm as a user would, runs a
 * three-node cluster from compiled JavaScript (no TypeScript sources, no tsx) that grants an acquire.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, CLUSTER_SECRET, NodeProcess, freePorts, waitFor } from "./harness.js";

const run = promisify(execFile);
const NODE_PKG = fileURLToPath(new URL("../../packages/node/", import.meta.url));

describe("the packed ratequeue release", () => {
  let dir: string;
  let bin: string;
  const nodes: NodeProcess[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rq-release-"));
    await run(process.execPath, ["build.mjs"], { cwd: NODE_PKG });
    const { stdout } = await run("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: NODE_PKG });
    const tarball = join(dir, stdout.trim().split("\n").pop()!);
    const app = join(dir, "app");
    await run("mkdir", ["-p", app]);
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "app", private: true }));
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], { cwd: app, timeout: 240_000 });
    bin = join(app, "node_modules", "@ratequeue", "node", "bin", "ratequeue.mjs");
  }, 300_000);
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill("SIGKILL")));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("installs without sources, tsx or workspace packages", () => {
    const installed = join(dir, "app", "node_modules");
    const pkg = join(installed, "@ratequeue", "node");
    expect(readdirSync(pkg).sort()).toEqual(["README.md", "bin", "dist", "package.json", "public"]);
    expect(existsSync(join(pkg, "dist", "cli.js"))).toBe(true);
    expect(existsSync(join(pkg, "dist", "index.d.ts"))).toBe(true);
    expect(existsSync(join(installed, "tsx"))).toBe(false);
    expect(readdirSync(join(installed, "@ratequeue"))).toEqual(["node"]);
  });

  it("runs a three-node cluster that grants, and its admin CLI works", async () => {
    const ports = await freePorts(3);
    const peers = ports.map((p, i) => `n${i + 1}=127.0.0.1:${p}`).join(",");
    const config = join(dir, "config.json");
    await writeFile(config, JSON.stringify({ resources: { demo: { limits: [{ kind: "concurrency", limit: 1 }] } } }));
    for (const [i, port] of ports.entries()) {
      const id = `n${i + 1}`;
      const data = join(dir, "data", id);
      const node = new NodeProcess(id, port, data, [
        "--config", config, "--id", id, "--listen", `127.0.0.1:${port}`, "--peers", peers, "--data", data,
        "--cluster-secret", CLUSTER_SECRET, "--admin-key", ADMIN_KEY,
      ], [], bin);
      nodes.push(node);
      node.start();
    }
    await waitFor(async () => (await Promise.all(nodes.map((n) => n.status()))).some((s) => s?.role === "leader"), {
      timeoutMs: 30_000,
      what: "a leader",
      dump: () => nodes.map((n) => n.output).join("\n"),
    });
    const rq = new RateQueue({ url: nodes.map((n) => n.url), apiKey: ADMIN_KEY });
    try {
      const out = await rq.acquire("demo", { load: 100, timeoutMs: 20_000 }, async (lease) => `granted ${lease.resource}`);
      expect(out).toBe("granted demo");
    } finally {
      await rq.close();
    }
    const { stdout } = await run(process.execPath, [bin, "resources", "list", "--url", nodes[0]!.httpUrl, "--admin-key", ADMIN_KEY]);
    expect(stdout).toMatch(/demo\s+concurrency 0\/1/);
    const version = await run(process.execPath, [bin, "--version"]);
    expect(version.stdout.trim()).toBe("0.1.0");
    // The dashboard's page and its vendored modules are served from the installed package.
    const page = await fetch(`${nodes[0]!.httpUrl}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
  });
});

/**
 * The README's commands, run exactly as written (`npx tsx --conditions=source
 * examples/<file>.ts`) from the repository root.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function npxTsx(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npx", ["tsx", "--conditions=source", ...args], {
      cwd: ROOT,
      env: { ...process.env, RATEQUEUE_URL: "", RATEQUEUE_API_KEY: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

const SCRIPTS = ["provider-sim", "openai-workers", "anthropic-workers", "fleet", "python-workers"];

describe("example command lines", () => {
  it("--help on each prints its usage line and exits 0", async () => {
    const results = await Promise.all(SCRIPTS.map((s) => npxTsx([`examples/${s}.ts`, "--help"])));
    results.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: npx tsx --conditions=source examples/${SCRIPTS[i]}\\.ts`));
    });
  });

  it("a bad flag gets one clear line and exit code 2, before anything starts", async () => {
    const [bad, unknown, env] = await Promise.all([
      npxTsx(["examples/openai-workers.ts", "--workers", "many"]),
      npxTsx(["examples/fleet.ts", "--colour", "blue"]),
      npxTsx(["examples/anthropic-workers.ts"], { RATEQUEUE_URL: "ws://127.0.0.1:1" }),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--workers must be an integer from 1 to 1000, got "many"/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--colour/);
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/RATEQUEUE_API_KEY is not/);
  });

  it("openai-workers with no cluster given starts its own, runs, prints its figures with zero 429s and stops everything", async () => {
    const r = await npxTsx(["examples/openai-workers.ts", "--duration-ms", "3000", "--tpm", "6000", "--window-ms", "10000", "--latency-ms", "50"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/starting a local three-node RateQueue cluster/);
    const requests = Number(/requests done:\s+([\d,]+)/.exec(r.stdout)?.[1]?.replace(/,/g, ""));
    const limited = Number(/429s received:\s+([\d,]+)/.exec(r.stdout)?.[1]);
    expect(requests).toBeGreaterThan(0);
    expect(limited).toBe(0);
    expect(r.stdout).toMatch(/share of TPM used:\s+\d+\.\d%/);
  });
});

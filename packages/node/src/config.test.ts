import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, resolveConfig, settingsFromEnv, settingsFromFile } from "./config.js";

const base = {
  id: "n1",
  listen: "127.0.0.1:7401",
  peers: "n1=127.0.0.1:7401,n2=127.0.0.1:7402,n3=127.0.0.1:7403",
  data: "./data/n1",
  clusterSecret: "a-cluster-secret-of-length",
};

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe("node configuration", () => {
  it("parses the SPEC's start command settings and fills defaults", () => {
    const c = resolveConfig(base);
    expect(c.id).toBe("n1");
    expect(c.listen).toEqual({ host: "127.0.0.1", port: 7401 });
    expect([...c.peers.keys()]).toEqual(["n1", "n2", "n3"]);
    expect(c.peers.get("n3")).toEqual({ host: "127.0.0.1", port: 7403 });
    expect(c.sessionTtlMs).toBe(10_000);
    expect(c.leaderWaitMs).toBe(1_000); // two election timeouts of 10 ticks x 50 ms
    expect(c.adminKey).toBeNull();
    expect(c.tls).toBeNull();
  });

  it("flags override the environment, which overrides the config file", () => {
    const env = settingsFromEnv({ RATEQUEUE_ID: "n2", RATEQUEUE_TICK_MS: "20", RATEQUEUE_UNRELATED: "x" });
    const c = resolveConfig({ id: "n1" }, env, { ...base, id: "n3", tickMs: 99, electionTicks: 12 });
    expect(c.id).toBe("n1");
    expect(c.tickMs).toBe(20);
    expect(c.electionTicks).toBe(12);
    expect(c.leaderWaitMs).toBe(2 * 12 * 20); // follows the election timeout unless set
    expect(resolveConfig({ leaderWaitMs: "250" }, {}, base).leaderWaitMs).toBe(250);
    expect(problemsOf(() => resolveConfig({ leaderWaitMs: "-1" }, {}, base))).toEqual([expect.stringContaining("leaderWaitMs must be an integer")]);
  });

  it("--clock-warn-ms: default 500 ms, from flag, environment or file, an integer from 1 to 86400000", () => {
    expect(resolveConfig(base).clockWarnMs).toBe(500);
    expect(resolveConfig({ clockWarnMs: "2000" }, {}, base).clockWarnMs).toBe(2_000);
    expect(resolveConfig({}, settingsFromEnv({ RATEQUEUE_CLOCK_WARN_MS: "750" }), base).clockWarnMs).toBe(750);
    expect(resolveConfig({}, {}, { ...base, clockWarnMs: 1 }).clockWarnMs).toBe(1);
    for (const bad of ["0", "-5", "1.5", "soon", "86400001", 0]) {
      expect(problemsOf(() => resolveConfig({ clockWarnMs: bad }, {}, base))).toEqual([
        `clockWarnMs must be an integer from 1 to 86400000, got ${JSON.stringify(bad)}`,
      ]);
    }
  });

  it("lists every problem at once, each naming its setting", () => {
    const problems = problemsOf(() =>
      resolveConfig({ id: "bad id!", listen: "nowhere", peers: "n1=127.0.0.1:99999", clusterSecret: "short", tickMs: "-5" }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('id "bad id!"'),
        expect.stringContaining('listen "nowhere"'),
        expect.stringContaining("peers entry n1"),
        expect.stringContaining("data is required"),
        expect.stringContaining("clusterSecret must be at least 16"),
        expect.stringContaining("tickMs must be an integer"),
      ]),
    );
  });

  it("requires the node's own id among the peers", () => {
    expect(problemsOf(() => resolveConfig({ ...base, id: "n9" }))).toEqual([expect.stringContaining('own id "n9"')]);
  });

  it("refuses half a TLS setting and a heartbeat not shorter than the election timeout", () => {
    const problems = problemsOf(() => resolveConfig({ ...base, tlsCert: "cert.pem", heartbeatTicks: "10" }));
    expect(problems).toEqual([
      expect.stringContaining("heartbeatTicks must be smaller"),
      expect.stringContaining("tlsCert and tlsKey"),
    ]);
  });

  it("reads a JSON config file with bootstrap resources and keys, and refuses unknown settings", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rq-config-"));
    try {
      const good = join(dir, "good.json");
      await writeFile(
        good,
        JSON.stringify({
          ...base,
          resources: { "openai-gpt4o": { limits: [{ kind: "rate", limit: 10, windowMs: 1000 }] } },
          keys: [{ name: "workers", secret: "worker-secret-0123456789", scope: { acquire: ["openai-*"] } }],
        }),
      );
      const c = resolveConfig(settingsFromFile(good));
      expect(Object.keys(c.bootstrapResources)).toEqual(["openai-gpt4o"]);
      expect(c.bootstrapKeys[0]?.scope).toEqual({ acquire: ["openai-*"] });

      const bad = join(dir, "bad.json");
      await writeFile(bad, JSON.stringify({ ...base, pears: "n1=x" }));
      expect(() => settingsFromFile(bad)).toThrow(/unknown setting "pears"/);
      await writeFile(bad, "{ not json");
      expect(() => settingsFromFile(bad)).toThrow(/not valid JSON/);
      expect(() => settingsFromFile(join(dir, "missing.json"))).toThrow(ConfigError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

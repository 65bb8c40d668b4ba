/**
 * `ratequeue resources|keys|status` as an operator runs them: the real binary against a real three-node cluster,
 * pointed at a follower as often as at the leader.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster, runCli, type CliRun } from "./harness.js";


function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(args, { env });
}

describe("ratequeue admin CLI", () => {
  let cluster: Cluster;
  let dir: string;
  let follower: string;
  beforeAll(async () => {
    cluster = await Cluster.start();
    dir = await mkdtemp(join(tmpdir(), "rq-cli-"));
    const leader = await cluster.waitForLeader();
    follower = cluster.nodes.find((n) => n.id !== leader.id)!.httpUrl;
  });
  afterAll(async () => {
    await cluster?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("puts, lists, gets and deletes a resource through a follower, with the key from RATEQUEUE_ADMIN_KEY", async () => {
    const file = join(dir, "gpt.json");
    await writeFile(file, JSON.stringify({ limits: [{ kind: "rate", limit: 60, windowMs: 60_000 }, { kind: "concurrency", limit: 4 }] }));
    const env = { RATEQUEUE_ADMIN_KEY: ADMIN_KEY };
    const put = await cli(["resources", "put", "openai-gpt4o", "--file", file, "--url", follower], env);
    expect(put.stderr).toBe("");
    expect(put.stdout).toBe("resource openai-gpt4o created\n");
    expect((await cli(["resources", "put", "openai-gpt4o", "-f", file, "--url", follower], env)).stdout).toBe("resource openai-gpt4o replaced\n");

    const list = await cli(["resources", "list", "--url", follower], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+LIMITS\s+LEASES\s+QUEUED/);
    expect(list.stdout).toMatch(/openai-gpt4o\s+rate 0\/60 per 60000 ms; concurrency 0\/4\s+0\s+0/);

    const get = await cli(["resources", "get", "openai-gpt4o", "--url", follower], env);
    expect(JSON.parse(get.stdout)).toMatchObject({ name: "openai-gpt4o", leasesHeld: 0, limits: [{ kind: "rate", limit: 60 }, { kind: "concurrency", limit: 4 }] });

    expect((await cli(["resources", "delete", "openai-gpt4o", "--url", follower], env)).stdout).toBe("resource openai-gpt4o deleted\n");
    const gone = await cli(["resources", "get", "openai-gpt4o", "--url", follower], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe('ratequeue: RQ_UNKNOWN_RESOURCE: no resource named "openai-gpt4o"\n');
  });

  it("refuses a bad resource file with the cluster's own reasons, and a broken one before sending anything", async () => {
    const bad = join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ limits: [{ kind: "rate", limit: -1, windowMs: 1000 }] }));
    const r = await cli(["resources", "put", "x", "-f", bad, "--url", follower, "--admin-key", ADMIN_KEY]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ratequeue: RQ_INVALID: invalid resource body\n {2}- \S*limit/);

    const broken = join(dir, "broken.json");
    await writeFile(broken, "limits: []\n");
    const b = await cli(["resources", "put", "x", "-f", broken, "--url", follower, "--admin-key", ADMIN_KEY]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/broken\.json: not valid JSON .*resource files are JSON/);
    expect((await cluster.admin("GET", "/v1/resources/x")).status).toBe(404);
  });

  it("creates an acquire key (secret shown once), lists it without the secret, and revokes it", async () => {
    const url = cluster.urls.join(","); // ws:// URLs, as the SDK takes them
    const created = await cli(["keys", "create", "--name", "workers", "--acquire", "openai-*,anthropic-*", "--url", url, "--admin-key", ADMIN_KEY, "--json"]);
    expect(created.code, created.stderr).toBe(0);
    const key = JSON.parse(created.stdout) as { id: string; secret: string };
    expect(key.secret.length).toBeGreaterThanOrEqual(16);

    const list = await cli(["keys", "list", "--url", url, "--admin-key", ADMIN_KEY]);
    expect(list.stdout).toContain(key.id);
    expect(list.stdout).toMatch(/workers\s+acquire openai-\*,anthropic-\*/);
    expect(list.stdout).not.toContain(key.secret);

    // The new key is not an admin key.
    const refused = await cli(["keys", "list", "--url", url, "--admin-key", key.secret]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/RQ_FORBIDDEN/);

    // A bounded worker key, and a metrics key for Prometheus.
    const bounded = await cli(["keys", "create", "--name", "bounded", "--acquire", "openai-*", "--priority-max", "20", "--lanes", "batch", "--ttl-ms-max", "30000", "--load-max", "4000", "--url", url, "--admin-key", ADMIN_KEY, "--json"]);
    expect(bounded.code, bounded.stderr).toBe(0);
    expect(JSON.parse(bounded.stdout).scope).toEqual({ acquire: ["openai-*"], priorityMax: 20, lanes: ["batch"], ttlMsMax: 30_000, loadMax: 4_000 });
    expect((await cli(["keys", "create", "--name", "prom", "--metrics", "--url", url, "--admin-key", ADMIN_KEY])).code).toBe(0);
    const listed = (await cli(["keys", "list", "--url", url, "--admin-key", ADMIN_KEY])).stdout;
    expect(listed).toMatch(/bounded\s+acquire openai-\* priorityMax=20 lanes=batch ttlMsMax=30000 loadMax=4000/);
    expect(listed).toMatch(/prom\s+metrics/);
    expect(listed).toMatch(/bootstrap admin\s+admin/);
    const badBound = await cli(["keys", "create", "--name", "x", "--acquire", "a", "--priority-max", "high", "--url", url, "--admin-key", ADMIN_KEY]);
    expect(badBound).toMatchObject({ code: 1 });
    expect(badBound.stderr).toMatch(/RQ_INVALID[\s\S]*priorityMax must be an integer/);

    expect((await cli(["keys", "revoke", key.id, "--url", url, "--admin-key", ADMIN_KEY])).stdout).toBe(`key ${key.id} revoked\n`);
    expect((await cli(["keys", "list", "--url", url, "--admin-key", ADMIN_KEY])).stdout).not.toContain(key.id);
  });

  it("shows every member in the status table, even when the first URL given is down", async () => {
    const r = await cli(["status", "--url", `http://127.0.0.1:9,${follower}`]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^NODE\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LAG\s+ADDRESS$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0]).sort()).toEqual(["n1", "n2", "n3"]);
    expect(lines.filter((l) => /^\S+\s+leader\s/.test(l))).toHaveLength(1);
  });

  it("says clearly what is wrong with the command itself", async () => {
    const noKey = await cli(["resources", "list", "--url", follower]);
    expect(noKey).toMatchObject({ code: 2, stderr: "ratequeue: no admin key: pass --admin-key <key> or set RATEQUEUE_ADMIN_KEY\n" });
    const wrongKey = await cli(["resources", "list", "--url", follower, "--admin-key", "not-a-key-at-all-0000"]);
    expect(wrongKey).toMatchObject({ code: 1, stderr: "ratequeue: RQ_UNAUTHORIZED: unknown or revoked API key\n" });
    const both = await cli(["keys", "create", "--name", "x", "--url", follower, "--admin-key", ADMIN_KEY]);
    expect(both).toMatchObject({ code: 2, stderr: "ratequeue: give exactly one of --acquire <patterns>, --admin or --metrics\n" });
    const badUrl = await cli(["status", "--url", "ftp://x"]);
    expect(badUrl).toMatchObject({ code: 2, stderr: 'ratequeue: --url: "ftp://x" must be http://, https://, ws:// or wss://\n' });
    const help = await cli(["keys", "revoke", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: ratequeue keys revoke \[options\] <id>/);
  });
});

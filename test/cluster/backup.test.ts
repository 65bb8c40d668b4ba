/**
 * `ratequeue backup` and `ratequeue restore` on real processes: a backup taken through a follower while SDK workers
 * acquire, restored into a fresh three-node cluster on new ports, which then enforces the same usage (a used-up
 * limit stays used up), knows the same keys, and holds every grant acknowledged before the backup began. Damaged
 * and newer-version files, and restores over existing or live data, are refused with specific codes; `--file -` pipes.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, runCli, sleep } from "./harness.js";
import { concurrencyLoad } from "./sdk-load.js";

const CAPPED = 20;
const RESOURCES = {
  capped: { limits: [{ kind: "rate", limit: CAPPED, windowMs: 600_000 }] },
  counter: { limits: [{ kind: "rate", limit: 1_000_000, windowMs: 600_000 }] },
  pool: { limits: [{ kind: "concurrency", limit: 3 }] },
};

describe("backup and restore", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rq-backup-"));
  });
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("backs up under SDK load and restores into a fresh cluster that enforces the same usage", async () => {
    const file = join(dir, "cluster.rqbackup");
    let keySecret: string;
    let ackedBefore: number;
    let ackedAfter: number;
    {
      await using a = await Cluster.start({ resources: RESOURCES });
      const key = await a.admin("POST", "/v1/keys", { name: "workers", scope: { acquire: ["*"] } });
      expect(key.status).toBe(201);
      keySecret = key.json.secret;
      const rq = new RateQueue({ url: a.urls, apiKey: ADMIN_KEY });
      // Use `capped` up: 20 grants, then none.
      for (let i = 0; i < CAPPED; i++) expect(await rq.tryAcquire("capped")).not.toBeNull();
      expect(await rq.tryAcquire("capped")).toBeNull();

      // Load while the backup is taken: leases on `pool`, and a count of acknowledged grants on `counter`.
      const pool = concurrencyLoad(a.urls, { resource: "pool", workers: 4 });
      let acked = 0;
      let stop = false;
      const counterFailures: string[] = [];
      const counters = Array.from({ length: 3 }, async () => {
        while (!stop) {
          try {
            await rq.acquire("counter", { timeoutMs: 30_000 });
            acked++;
          } catch (err) {
            counterFailures.push((err as Error).message);
          }
        }
      });
      try {
        await sleep(1_000);
        const leader = await a.waitForLeader();
        const follower = a.nodes.find((n) => n.id !== leader.id)!;
        ackedBefore = acked;
        const backup = await runCli(["backup", "--file", file, "--url", follower.httpUrl], { env: { RATEQUEUE_ADMIN_KEY: ADMIN_KEY } });
        ackedAfter = acked;
        expect(backup.stderr, a.dump()).toBe("");
        expect(backup.code).toBe(0);
        // Two keys: the bootstrap admin key (in the replicated table) and "workers".
        expect(backup.stdout).toMatch(new RegExp(`^backup of ${leader.id} at index \\d+ \\(term \\d+, log time \\d+\\): 3 resources, 2 keys, \\d+ sessions, \\d+ leases -> `));
        await sleep(500);
      } finally {
        stop = true;
        await Promise.all(counters);
        const stats = await pool.stop();
        await rq.close();
        expect(counterFailures).toEqual([]);
        expect(stats.failures).toEqual([]);
        expect(stats.grants).toBeGreaterThan(20);
      }
      expect(ackedAfter).toBeGreaterThan(ackedBefore); // the backup was taken while grants were being acknowledged
      expect(ackedBefore).toBeGreaterThan(0);

      // `--file -` writes the same kind of file to stdout (for a pipe), the summary to stderr.
      const piped = await runCli(["backup", "--file", "-", "--url", a.nodes[0]!.httpUrl], { env: { RATEQUEUE_ADMIN_KEY: ADMIN_KEY } });
      expect(piped.code).toBe(0);
      expect(JSON.parse(piped.stdout)).toMatchObject({ format: "ratequeue-backup", version: 1, counts: { resources: 3, keys: 2 } });
      expect(piped.stderr).toMatch(/^backup of n\d at index \d+/);

      // A restore never writes over a data folder that holds a cluster.
      const n3 = a.node("n3");
      await n3.kill("SIGKILL");
      const over = await runCli(["restore", "--file", file, "--data", n3.dataDir, "--id", "n3", "--peers", "n3=127.0.0.1:1"]);
      expect(over.code).toBe(2);
      expect(over.stderr).toMatch(/^ratequeue: RQ_DATA_NOT_EMPTY: data folder .* already holds a cluster/);
    }

    // Damaged files are refused before anything is written (every refusal of the file check: backup-file.test.ts).
    const text = await readFile(file, "utf8");
    const good = JSON.parse(text);
    const flipped = good.state[10] === "A" ? "B" : "A";
    const cases: [string, string, RegExp][] = [
      ["tampered", JSON.stringify({ ...good, state: good.state.slice(0, 10) + flipped + good.state.slice(11) }), /RQ_BACKUP_CHECKSUM: .* is damaged: its state has SHA-256 [0-9a-f]{64}, the header says/],
      ["newer", JSON.stringify({ ...good, version: 2 }), /RQ_BACKUP_VERSION: .* is backup version 2; this ratequeue reads version 1 \(the file is from a newer ratequeue/],
    ];
    for (const [name, body, error] of cases) {
      const bad = join(dir, `${name}.rqbackup`);
      await writeFile(bad, body);
      const data = join(dir, `data-${name}`);
      const r = await runCli(["restore", "--file", bad, "--data", data, "--id", "n1", "--peers", "n1=127.0.0.1:1"]);
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toMatch(error);
      expect(existsSync(data), name).toBe(false);
    }

    await using b = await Cluster.start({ restoreFrom: file });
    // The new cluster's members are the new nodes at their new addresses.
    const members = await b.admin("GET", "/v1/members");
    expect(members.json.members.map((m: { id: string; address: string }) => `${m.id}=${m.address}`).sort()).toEqual(
      b.nodes.map((n) => `${n.id}=127.0.0.1:${n.port}`).sort(),
    );
    // Same usage: `capped` is used up and stays so; `counter` holds every grant acknowledged before the backup began.
    const capped = await b.resource("capped");
    expect(capped.usage[0]!.used).toBe(CAPPED);
    const counter = await b.resource("counter");
    expect(counter.usage[0]!.used).toBeGreaterThanOrEqual(ackedBefore);
    expect(counter.usage[0]!.used).toBeLessThanOrEqual(ackedAfter + 3); // at most one grant per worker was in flight
    // The key created on the old cluster works on the new one; the used-up limit refuses it.
    const worker = new RateQueue({ url: b.urls, apiKey: keySecret });
    try {
      expect(await worker.tryAcquire("capped")).toBeNull();
      expect(await worker.tryAcquire("counter")).not.toBeNull();
    } finally {
      await worker.close();
    }
    expect((await b.resource("capped")).usage[0]!.used).toBe(CAPPED);

    // A data folder a node is running on is refused too.
    const live = b.nodes[0]!;
    const busy = await runCli(["restore", "--file", file, "--data", live.dataDir, "--id", live.id, "--peers", `${live.id}=127.0.0.1:${live.port}`]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/RQ_DATA_IN_USE: data folder .* is in use: stop the node running on it first/);
  });
});

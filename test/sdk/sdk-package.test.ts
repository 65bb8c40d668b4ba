import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster } from "../cluster/harness.js";

const run = promisify(execFile);
const SDK_DIR = fileURLToPath(new URL("../../packages/sdk/", import.meta.url));
const TEST_DIR = fileURLToPath(new URL("../", import.meta.url));

/** The built package, loaded the way users load it: `require` from CommonJS and `import` from ESM. */
describe("the published SDK build", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    await run(process.execPath, ["build.mjs"], { cwd: SDK_DIR });
    cluster = await Cluster.start({ resources: { demo: { limits: [{ kind: "concurrency", limit: 2 }] } } });
  });
  afterAll(async () => cluster?.stop());

  const script = (load: string): string => `
    ${load}
    const rq = new RateQueue({ url: process.env.URLS, apiKey: process.env.KEY });
    (async () => {
      const out = await rq.acquire("demo", { load: 100, timeoutMs: 10000 }, async (lease) => "granted " + lease.resource);
      await rq.close();
      console.log(out, typeof RateQueueError);
    })().catch((e) => { console.error(e); process.exit(1); });`;

  for (const [kind, args, load] of [
    ["CommonJS require()", ["-e"], 'const { RateQueue, RateQueueError } = require("@ratequeue/sdk");'],
    ["ESM import", ["--input-type=module", "-e"], 'import { RateQueue, RateQueueError } from "@ratequeue/sdk";'],
  ] as const) {
    it(`works for a ${kind} consumer`, async () => {
      const { stdout } = await run(process.execPath, [...args, script(load)], {
        cwd: TEST_DIR,
        env: { ...process.env, URLS: cluster.urls.join(","), KEY: ADMIN_KEY, NODE_OPTIONS: "" },
      });
      expect(stdout.trim()).toBe("granted demo function");
    });
  }
});

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../bin/ratequeue.mjs", import.meta.url));

/** The resource every dev cluster starts with: a small LLM-like quota. */
export const DEMO_RESOURCE = {
  limits: [
    { kind: "rate", limit: 60, windowMs: 60_000, window: "sliding" },
    { kind: "load", limit: 100_000, windowMs: 60_000, window: "bucket" },
    { kind: "concurrency", limit: 4 },
  ],
};

export interface DevOptions {
  readonly basePort: number;
  readonly data?: string;
  readonly adminKey?: string;
}

/** `ratequeue dev`: three local node processes, stopped together on Ctrl-C. */
export async function runDev(options: DevOptions): Promise<void> {
  const ids = ["n1", "n2", "n3"];
  const ports = ids.map((_, i) => options.basePort + i);
  const keep = options.data !== undefined;
  const root = keep ? resolve(options.data!) : await mkdtemp(join(tmpdir(), "ratequeue-dev-"));
  await mkdir(root, { recursive: true });
  const adminKey = options.adminKey ?? `rq_dev_${randomBytes(12).toString("hex")}`;
  const clusterSecret = randomBytes(24).toString("hex");
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(",");
  const configFile = join(root, "dev-config.json");
  await writeFile(configFile, JSON.stringify({ resources: { demo: DEMO_RESOURCE } }, null, 2));

  const children: ChildProcess[] = ids.map((id, i) =>
    spawn(
      process.execPath,
      [
        BIN, "start",
        "--config", configFile,
        "--id", id,
        "--listen", `127.0.0.1:${ports[i]}`,
        "--peers", peers,
        "--data", join(root, id),
        "--cluster-secret", clusterSecret,
        "--admin-key", adminKey,
        "--pretty-logs",
      ],
      { stdio: ["ignore", "inherit", "inherit"] },
    ),
  );

  const urls = ports.map((p) => `ws://127.0.0.1:${p}`).join(",");
  process.stdout.write(
    [
      "",
      "RateQueue dev cluster: three nodes on this machine.",
      `  RATEQUEUE_URL=${urls}`,
      `  RATEQUEUE_API_KEY=${adminKey}   (admin key)`,
      `  status:     http://127.0.0.1:${ports[0]}/v1/status`,
      `  dashboard:  http://127.0.0.1:${ports[0]}/`,
      `  resource:   demo (60 requests/min, 100,000 tokens/min, 4 concurrent)`,
      `  try:        curl -H "Authorization: Bearer ${adminKey}" http://127.0.0.1:${ports[0]}/v1/resources/demo`,
      `  data:       ${root}${keep ? "" : " (removed on exit)"}`,
      "Ctrl-C stops all three.",
      "",
    ].join("\n") + "\n",
  );

  let stopping: Promise<void> | null = null;
  const exited = children.map((c) => new Promise<number | null>((r) => c.once("exit", (code) => r(code))));
  // One stop, whoever asks first (a signal or a node that died); every caller waits for the same one.
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const c of children) c.kill("SIGTERM");
      const timer = setTimeout(() => children.forEach((c) => c.kill("SIGKILL")), 5_000);
      await Promise.all(exited);
      clearTimeout(timer);
      if (!keep) await rm(root, { recursive: true, force: true });
    })());
  // `on`, not `once`: a second signal (Ctrl-C twice, or `timeout` signalling us and then our group) must not
  // kill this process before its children have stopped and the temporary data folder is removed.
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
  // If any node dies on its own, stop the others too: a dev cluster is all or nothing.
  await Promise.race(exited);
  await stop();
}

import { LocalCluster } from "./local-cluster.js";

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
  const cluster = await LocalCluster.start({
    basePort: options.basePort,
    ...(options.data === undefined ? {} : { dataDir: options.data }),
    ...(options.adminKey === undefined ? {} : { adminKey: options.adminKey }),
    resources: { demo: DEMO_RESOURCE },
    extraArgs: ["--pretty-logs"],
    stdio: "inherit",
  });
  const first = cluster.nodes[0]!;
  process.stdout.write(
    `${[
      "",
      "RateQueue dev cluster: three nodes on this machine.",
      `  RATEQUEUE_URL=${cluster.urls.join(",")}`,
      `  RATEQUEUE_API_KEY=${cluster.adminKey}   (admin key)`,
      `  status:     ${first.httpUrl}/v1/status`,
      `  dashboard:  ${first.httpUrl}/`,
      `  resource:   demo (60 requests/min, 100,000 tokens/min, 4 concurrent)`,
      `  try:        curl -H "Authorization: Bearer ${cluster.adminKey}" ${first.httpUrl}/v1/resources/demo`,
      `  data:       ${cluster.root}${options.data === undefined ? " (removed on exit)" : ""}`,
      "Ctrl-C stops all three.",
      "",
    ].join("\n")}\n`,
  );

  // One stop, whoever asks first (a signal or a node that died); every caller waits for the same one.
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => (stopping ??= cluster.stop());
  // `on`, not `once`: a second signal (Ctrl-C twice, or `timeout` signalling us and then our group) must not
  // kill this process before its children have stopped and the temporary data folder is removed.
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
  // If any node dies on its own, stop the others too: a dev cluster is all or nothing.
  await Promise.race(cluster.nodes.map((n) => n.exited));
  await stop();
}

/**
 * What every example needs before its workers start: a RateQueue cluster
 * (RATEQUEUE_URL / RATEQUEUE_API_KEY, or a local three-node one started
 * here), its resource created through the admin API, and an API key that
 * may only acquire on that resource, for the workers.
 */
import { startLocalCluster, type LocalCluster } from "../local-cluster.js";

export interface ClusterTarget {
  /** Comma-separated node URLs (ws:// or wss://). */
  readonly url: string;
  /** An admin key: the example creates its resource and a worker key with it. */
  readonly apiKey: string;
}

export interface Environment {
  /** Node URLs for the workers' RateQueue clients. */
  readonly url: string;
  /** A key that may acquire on the example's resource only. */
  readonly workerKey: string;
  /** Where the cluster came from, for the printout. */
  readonly origin: string;
  /** Deletes the worker key; stops the cluster if this started it. */
  close(): Promise<void>;
}

/** RATEQUEUE_URL and RATEQUEUE_API_KEY, if set. */
export function clusterFromEnv(env: NodeJS.ProcessEnv = process.env): ClusterTarget | undefined {
  const url = env.RATEQUEUE_URL;
  if (url === undefined || url === "") return undefined;
  const apiKey = env.RATEQUEUE_API_KEY;
  if (apiKey === undefined || apiKey === "") throw new RangeError("RATEQUEUE_URL is set but RATEQUEUE_API_KEY is not: the examples need an admin key");
  return { url, apiKey };
}

export async function prepareEnvironment(options: {
  readonly resource: string;
  readonly config: unknown;
  /** A running cluster; undefined starts a local one. */
  readonly cluster: ClusterTarget | undefined;
  readonly log: (line: string) => void;
}): Promise<Environment> {
  let local: LocalCluster | null = null;
  let target = options.cluster;
  if (target === undefined) {
    options.log("starting a local three-node RateQueue cluster...");
    local = await startLocalCluster();
    target = { url: local.url, apiKey: local.adminKey };
  }
  const httpUrl = adminBaseUrl(target.url);
  const admin = adminClient(httpUrl, target.apiKey);
  try {
    await admin("PUT", `/v1/resources/${encodeURIComponent(options.resource)}`, options.config);
    const key = (await admin("POST", "/v1/keys", { name: `example ${options.resource}`, scope: { acquire: [options.resource] } })) as {
      id: string;
      secret: string;
    };
    return {
      url: target.url,
      workerKey: key.secret,
      origin: local === null ? `the cluster at ${target.url}` : `a local cluster at ${target.url}`,
      close: async () => {
        if (local !== null) return local.close();
        await admin("DELETE", `/v1/keys/${encodeURIComponent(key.id)}`).catch(() => undefined); // best effort
      },
    };
  } catch (err) {
    await local?.close();
    throw err;
  }
}

/** The admin API is served on each node's client port: ws://host:port -> http://host:port. */
function adminBaseUrl(urls: string): string {
  const first = urls.split(",")[0]!.trim();
  const url = new URL(first);
  if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new RangeError(`RATEQUEUE_URL entries must be ws:// or wss:// URLs, got "${first}"`);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  return url.origin;
}

/** A JSON admin call; retries a 503 (no leader yet, e.g. right after a start) for up to 15 s. */
function adminClient(httpUrl: string, apiKey: string): (method: string, path: string, body?: unknown) => Promise<unknown> {
  return async (method, path, body) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await fetch(`${httpUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      if (res.ok) return text === "" ? null : JSON.parse(text);
      if (res.status === 503 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      throw new Error(`admin ${method} ${path} on ${httpUrl}: ${res.status} ${text}`);
    }
  };
}

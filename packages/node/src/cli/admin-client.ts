/** A failure the command line reports in one line and exits on (2: the command was wrong; 1: the cluster said no). */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/** An answer of the admin API. */
export interface AdminAnswer {
  readonly status: number;
  readonly json: unknown;
  /** The base URL that answered. */
  readonly url: string;
}

/** How long one HTTP call may take before the next URL is tried. */
const REQUEST_TIMEOUT_MS = 20_000;

/**
 * The admin API over HTTP: tries each node URL in turn until one answers (a node that is down or refuses the
 * connection is skipped; any HTTP answer, even an error, is final: followers forward writes to the leader).
 */
export class AdminClient {
  readonly urls: readonly string[];

  constructor(
    urls: readonly string[],
    readonly adminKey: string | null,
  ) {
    if (urls.length === 0) throw new CliError("--url names no node", 2);
    this.urls = urls;
  }

  async request(method: string, path: string, body?: unknown, options: { auth?: boolean } = {}): Promise<AdminAnswer> {
    const auth = options.auth ?? true;
    if (auth && this.adminKey === null) {
      throw new CliError("no admin key: pass --admin-key <key> or set RATEQUEUE_ADMIN_KEY", 2);
    }
    const failures: string[] = [];
    for (const url of this.urls) {
      let res: Response;
      try {
        res = await fetch(new URL(path, url), {
          method,
          headers: {
            ...(auth ? { authorization: `Bearer ${this.adminKey}` } : {}),
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      } catch (err) {
        failures.push(`${url}: ${describeFetchError(err)}`);
        continue;
      }
      const text = await res.text();
      let json: unknown = null;
      if (text !== "") {
        try {
          json = JSON.parse(text);
        } catch {
          json = { error: { code: "RQ_BAD_ANSWER", message: `not JSON (HTTP ${res.status}): ${text.slice(0, 200)}` } };
        }
      }
      return { status: res.status, json, url };
    }
    throw new CliError(`no node answered:\n  ${failures.join("\n  ")}`);
  }

  /** Like `request`, but any answer outside 2xx becomes a CliError carrying the API's code, message and details. */
  async ok(method: string, path: string, body?: unknown, options: { auth?: boolean } = {}): Promise<AdminAnswer> {
    const answer = await this.request(method, path, body, options);
    if (answer.status >= 200 && answer.status < 300) return answer;
    throw new CliError(apiErrorText(answer));
  }
}

/** `RQ_CODE: message` plus the details, one per line, from an admin API error body. */
export function apiErrorText(answer: AdminAnswer): string {
  const error = (answer.json as { error?: { code?: string; message?: string; details?: string[] } } | null)?.error;
  if (error === undefined) return `HTTP ${answer.status} from ${answer.url}`;
  const details = Array.isArray(error.details) ? error.details.map((d) => `\n  - ${d}`).join("") : "";
  return `${error.code ?? `HTTP ${answer.status}`}: ${error.message ?? "(no message)"}${details}`;
}

/**
 * The node URLs from `--url` (or RATEQUEUE_URL): a comma-separated list of http(s):// or ws(s):// base URLs
 * or bare host:port; ws URLs (what the SDK takes) are turned into their HTTP form.
 */
export function parseUrls(text: string): string[] {
  const urls: string[] = [];
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const withScheme = /^[a-z]+:\/\//i.test(part) ? part : `http://${part}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new CliError(`--url: "${part}" is not a URL (e.g. http://127.0.0.1:7401)`, 2);
    }
    const scheme = { "http:": "http:", "https:": "https:", "ws:": "http:", "wss:": "https:" }[url.protocol];
    if (scheme === undefined) throw new CliError(`--url: "${part}" must be http://, https://, ws:// or wss://`, 2);
    urls.push(`${scheme}//${url.host}`);
  }
  if (urls.length === 0) throw new CliError("--url names no node", 2);
  return urls;
}

function describeFetchError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError") return `no answer within ${REQUEST_TIMEOUT_MS} ms`;
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

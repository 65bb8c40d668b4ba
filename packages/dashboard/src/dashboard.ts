/**
 * The dashboard's HTTP side: serves the page and its modules, and pushes a
 * snapshot to every open page on GET /v1/stream every `pushIntervalMs`.
 *
 * The stream is Server-Sent Events read with fetch(): EventSource cannot send
 * an Authorization header, and a key in the URL would end up in logs and
 * history. One timer serves every viewer; it runs only while someone watches.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCode, HttpErrorCode } from "@ratequeue/protocol/codes";
import { bearerSecret } from "@ratequeue/protocol/http";
import { ASSET_PREFIX, loadAssets, type Asset, type AssetTable } from "./assets.js";
import { GrantHistory } from "./grant-history.js";
import { buildShared, forViewer, type DashboardAccess, type DashboardSnapshot, type ResourceViewLike } from "./snapshot.js";
import { StatusPoller, type StatusFetcher } from "./status-poller.js";

export const STREAM_PATH = "/v1/stream";

export interface DashboardOptions {
  /** This node's id. */
  readonly nodeId: string;
  /** Every node's HTTP base URL (this one included): the page shows each node's own /v1/status. */
  readonly nodeUrls: ReadonlyMap<string, string>;
  /** Every resource's live view as of `atMs` (log time); the limiter's `resource(name, atMs)`. */
  readonly resources: (atMs: number) => readonly ResourceViewLike[];
  /** The latest applied log time. */
  readonly logTime: () => number;
  /** What a key may see, or null for an unknown or revoked key. Asked again on every push. */
  readonly authorize: (secret: string) => DashboardAccess | null;
  /** Told about failures that must not reach the node (a push or an apply listener that threw). */
  readonly onError?: (err: unknown, context: string) => void;
  readonly pushIntervalMs?: number;
  /** Most open streams; more are refused with 503 (each costs a snapshot per push). */
  readonly streamsMax?: number;
  readonly statusIntervalMs?: number;
  /** The wall clock (ms); replaceable in tests. */
  readonly now?: () => number;
  readonly fetchStatus?: StatusFetcher;
  readonly history?: GrantHistory;
}

/** One applied operation's effects, as the node's `onApply` listener receives them. */
export interface AppliedResult {
  readonly effects: readonly { readonly type: string; readonly resource?: string; readonly name?: string; readonly untilMs?: number; readonly by?: string }[];
}

export interface Dashboard {
  /** The node's HTTP hook: serves the request and returns true, or returns false for a path it does not own. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Feed for the node's `core.onApply`: counts grants per resource and second. Never throws. */
  readonly onApply: (results: readonly AppliedResult[], atMs: number) => void;
  readonly history: GrantHistory;
  /** Open streams right now. */
  readonly streamCount: number;
  /** Ends every stream and stops the timers. */
  close(): void;
}

interface Viewer {
  readonly res: ServerResponse;
  /** The key the viewer sent, asked about again on every push (a revoked key ends the stream); null for none. */
  readonly secret: string | null;
}

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
} as const;

export function createDashboard(options: DashboardOptions): Dashboard {
  return new DashboardServer(options);
}

class DashboardServer implements Dashboard {
  readonly history: GrantHistory;
  readonly #o: DashboardOptions;
  readonly #assets: AssetTable;
  readonly #now: () => number;
  readonly #poller: StatusPoller;
  readonly #viewers = new Set<Viewer>();
  readonly #pushIntervalMs: number;
  readonly #streamsMax: number;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: DashboardOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.history = options.history ?? new GrantHistory();
    this.#pushIntervalMs = options.pushIntervalMs ?? 500;
    this.#streamsMax = options.streamsMax ?? 64;
    if (!(this.#pushIntervalMs >= 10)) throw new RangeError(`pushIntervalMs must be at least 10, got ${this.#pushIntervalMs}`);
    if (!Number.isInteger(this.#streamsMax) || this.#streamsMax < 1) throw new RangeError(`streamsMax must be a positive integer`);
    if (!options.nodeUrls.has(options.nodeId)) throw new Error(`nodeUrls must include this node (${options.nodeId})`);
    this.#assets = loadAssets();
    this.#poller = new StatusPoller({
      nodeUrls: options.nodeUrls,
      now: this.#now,
      ...(options.statusIntervalMs === undefined ? {} : { intervalMs: options.statusIntervalMs }),
      ...(options.fetchStatus === undefined ? {} : { fetchStatus: options.fetchStatus }),
    });
  }

  get streamCount(): number {
    return this.#viewers.size;
  }

  readonly onApply = (results: readonly AppliedResult[], atMs: number): void => {
    // This runs inside the node's apply loop: a throw here would stop the node, so nothing may escape.
    try {
      for (const r of results) {
        for (const e of r.effects) {
          if (e.type === "granted" && e.resource !== undefined) this.history.record(e.resource, atMs);
          else if (e.type === "resourceDeleted" && e.name !== undefined) this.history.forget(e.name);
          else if (e.type === "cooldown" && e.resource !== undefined && e.untilMs !== undefined) this.history.recordCooldown(e.resource, e.untilMs, e.by);
        }
      }
    } catch (err) {
      this.#o.onError?.(err, "counting grants");
    }
  };

  readonly handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = new URL(req.url ?? "/", "http://node").pathname;
    if (path === "/") return this.#serveAsset(req, res, this.#assets.page, true);
    if (path.startsWith(ASSET_PREFIX)) {
      const asset = this.#assets.files.get(path);
      if (asset === undefined) return sendError(res, 404, HttpErrorCode.RQ_NOT_FOUND, `no dashboard file ${path}`);
      return this.#serveAsset(req, res, asset, false);
    }
    if (path === STREAM_PATH) return this.#openStream(req, res);
    return false;
  };

  close(): void {
    this.#closed = true;
    for (const v of this.#viewers) v.res.end();
    this.#viewers.clear();
    this.#stopTimers();
  }

  #serveAsset(req: IncomingMessage, res: ServerResponse, asset: Asset, isPage: boolean): true {
    if (req.method !== "GET" && req.method !== "HEAD") return sendError(res, 405, ErrorCode.RQ_INVALID, `method ${req.method} not allowed here (allowed: GET, HEAD)`);
    const headers: Record<string, string | number> = {
      ...SECURITY_HEADERS,
      "content-type": asset.contentType,
      // Revalidate every time (a cheap 304): an upgraded node must never run with an old page.
      "cache-control": "no-cache",
      etag: asset.etag,
      ...(isPage ? { "content-security-policy": this.#assets.contentSecurityPolicy } : {}),
    };
    if (req.headers["if-none-match"] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    res.writeHead(200, { ...headers, "content-length": asset.body.length });
    res.end(req.method === "HEAD" ? undefined : asset.body);
    return true;
  }

  #openStream(req: IncomingMessage, res: ServerResponse): true {
    if (req.method !== "GET") return sendError(res, 405, ErrorCode.RQ_INVALID, `method ${req.method} not allowed here (allowed: GET)`);
    if (this.#closed) return sendError(res, 503, ErrorCode.RQ_UNAVAILABLE, "the node is shutting down");
    const header = req.headers.authorization;
    let secret: string | null = null;
    if (header !== undefined) {
      secret = bearerSecret(header);
      if (secret === null) return sendError(res, 401, ErrorCode.RQ_UNAUTHORIZED, "send the API key as Authorization: Bearer <key>");
      if (this.#o.authorize(secret) === null) return sendError(res, 401, ErrorCode.RQ_UNAUTHORIZED, "unknown or revoked API key");
    }
    if (this.#viewers.size >= this.#streamsMax) {
      return sendError(res, 503, ErrorCode.RQ_UNAVAILABLE, `this node already serves ${this.#streamsMax} dashboard streams; try another node`);
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      // Reverse proxies (nginx) buffer responses by default, which would hold pushes back.
      "x-accel-buffering": "no",
    });
    const viewer: Viewer = { res, secret };
    this.#viewers.add(viewer);
    res.on("close", () => {
      this.#viewers.delete(viewer);
      if (this.#viewers.size === 0) this.#stopTimers();
    });
    this.#startTimers();
    this.#push([viewer]);
    return true;
  }

  #startTimers(): void {
    if (this.#timer !== null) return;
    this.#poller.start();
    this.#timer = setInterval(() => this.#push(this.#viewers), this.#pushIntervalMs);
    this.#timer.unref();
  }

  #stopTimers(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#poller.stop();
  }

  #push(viewers: Iterable<Viewer>): void {
    try {
      // Never draw the chart's right edge before the latest grant: a follower's clock may lag the leader's stamps.
      const nowMs = Math.max(this.#now(), this.history.latestMs, this.#o.logTime());
      const shared = buildShared({
        nodeId: this.#o.nodeId,
        nowMs,
        polled: this.#poller.latest(),
        views: this.#o.resources(nowMs),
        history: this.history,
      });
      // Viewers without a key, and admins, all get the same bytes: encode those once per push.
      const sharedFrames = new Map<"none" | "admin", string>();
      const frameFor = (access: DashboardAccess | null): string => {
        if (access !== null && access !== "admin") return snapshotFrame(forViewer(shared, access));
        const kind = access ?? "none";
        let frame = sharedFrames.get(kind);
        if (frame === undefined) {
          frame = snapshotFrame(forViewer(shared, access));
          sharedFrames.set(kind, frame);
        }
        return frame;
      };
      for (const v of [...viewers]) {
        const access = v.secret === null ? null : this.#o.authorize(v.secret);
        if (v.secret !== null && access === null) {
          v.res.end(REVOKED_FRAME);
          continue;
        }
        // A viewer that does not keep up misses pushes instead of making this node buffer them.
        if (v.res.writableNeedDrain) continue;
        v.res.write(frameFor(access));
      }
    } catch (err) {
      this.#o.onError?.(err, "pushing a dashboard snapshot");
    }
  }
}

const REVOKED_FRAME = `event: end\ndata: ${JSON.stringify({ code: ErrorCode.RQ_UNAUTHORIZED, message: "the API key was revoked" })}\n\n`;

/** One SSE event. JSON.stringify never emits a raw newline, so the data fits on one `data:` line. */
function snapshotFrame(snapshot: DashboardSnapshot): string {
  return `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;
}

function sendError(res: ServerResponse, status: number, code: ErrorCode | HttpErrorCode, message: string): true {
  const text = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
  return true;
}

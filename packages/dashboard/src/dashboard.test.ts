import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createDashboard, type Dashboard, type DashboardOptions } from "./dashboard.js";
import type { DashboardSnapshot, ResourceViewLike } from "./snapshot.js";

const ADMIN = "admin-secret";
const READER = "reader-secret";

function view(name: string, used = 0): ResourceViewLike {
  const limit = { kind: "concurrency", limit: 4, reserved: {} } as const;
  return {
    name,
    config: { limits: [limit], lanes: [], lanePolicy: "shared", defaultLane: null },
    usage: [{ config: limit, used }],
    leasesHeld: used,
    queued: { default: 0 },
    cooldownUntil: null,
  };
}

interface Harness {
  readonly url: string;
  readonly dashboard: Dashboard;
  readonly keys: Set<string>;
  readonly errors: unknown[];
  close(): Promise<void>;
}

const open: Harness[] = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

/** A real HTTP server whose only routes are the dashboard's (anything else: 404 "not the dashboard's"). */
async function start(overrides: Partial<DashboardOptions> = {}): Promise<Harness> {
  const keys = new Set([ADMIN, READER]);
  const errors: unknown[] = [];
  let server: Server | null = null;
  const urls = new Map([["n1", "http://127.0.0.1:1"]]);
  const dashboard = createDashboard({
    nodeId: "n1",
    nodeUrls: urls,
    resources: () => [view("team-a/chat", 1), view("team-b/embed")],
    logTime: () => 5_000,
    authorize: (secret) => (!keys.has(secret) ? null : secret === ADMIN ? "admin" : { canRead: (r) => r.startsWith("team-a/") }),
    onError: (err) => errors.push(err),
    pushIntervalMs: 20,
    now: () => 10_000,
    fetchStatus: async () => ({ id: "n1", role: "leader", term: 3, leader: "n1", commitIndex: 9, appliedIndex: 9, peers: [] }),
    ...overrides,
  });
  server = createServer((req, res) => {
    if (!dashboard.handle(req, res)) {
      res.writeHead(404);
      res.end("not the dashboard's");
    }
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const h: Harness = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    dashboard,
    keys,
    errors,
    close: async () => {
      dashboard.close();
      server!.closeAllConnections();
      await new Promise((r) => server!.close(r));
    },
  };
  open.push(h);
  return h;
}

/** Reads events from a stream until `count` arrive or the stream ends. */
async function readEvents(res: Response, count: number): Promise<{ event: string; data: unknown }[]> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const out: { event: string; data: unknown }[] = [];
  let buffer = "";
  while (out.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    for (let end = buffer.indexOf("\n\n"); end >= 0 && out.length < count; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? "null";
      out.push({ event, data: JSON.parse(data) });
    }
  }
  await reader.cancel().catch(() => undefined);
  return out;
}

/** GET with the path sent exactly as written. */
function rawGet(url: string): Promise<{ status: number; body: string }> {
  const { port } = new URL(url);
  const path = url.slice(url.indexOf("/", "http://".length));
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "GET" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function waitUntil(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("dashboard HTTP: the page and its files", () => {
  it("serves the page with a CSP that allows exactly its inline import map, and every mapped module", async () => {
    const h = await start();
    const res = await fetch(`${h.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await res.text();
    const inline = /<script type="importmap">(.*?)<\/script>/s.exec(html)?.[1];
    expect(inline).toBeDefined();
    const hash = createHash("sha256").update(inline!).digest("base64");
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain(`script-src 'self' 'sha256-${hash}'`);
    expect(csp).toContain("default-src 'none'");
    // No script runs inline but the import map: every other script is a file from this node.
    expect([...html.matchAll(/<script(?![^>]*type="importmap")[^>]*>([^<]*)<\/script>/g)].map((m) => m[1])).toEqual([""]);
    const targets = Object.values((JSON.parse(inline!) as { imports: Record<string, string> }).imports);
    expect(targets).toHaveLength(4);
    for (const target of [...targets, "./dashboard/app.js", "./dashboard/format.js", "./dashboard/stream-client.js"]) {
      const r = await fetch(new URL(target, `${h.url}/`));
      expect(r.status, target).toBe(200);
      expect(r.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      expect((await r.text()).length).toBeGreaterThan(100);
    }
    expect((await fetch(`${h.url}/dashboard/style.css`)).headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  it("our page code never builds HTML from strings (Preact escapes everything it renders)", () => {
    for (const file of ["app.js", "format.js", "stream-client.js"]) {
      const code = readFileSync(new URL(`../public/${file}`, import.meta.url), "utf8");
      expect(code, file).not.toMatch(/innerHTML|outerHTML|dangerouslySetInnerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    }
  });

  it("answers a matching If-None-Match with 304 and HEAD without a body", async () => {
    const h = await start();
    const first = await fetch(`${h.url}/dashboard/app.js`);
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^".+"$/);
    const again = await fetch(`${h.url}/dashboard/app.js`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    const head = await fetch(`${h.url}/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("refuses unknown files, path tricks and other methods with JSON errors; leaves other paths to the node", async () => {
    const h = await start();
    for (const path of ["/dashboard/nope.js", "/dashboard/vendor/preact/package.json", "/dashboard/vendor/preact/src/index.js", "/dashboard/index.html"]) {
      const r = await fetch(`${h.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("RQ_NOT_FOUND");
    }
    // Raw paths (fetch would normalize them): whatever the dots, only listed files are ever served.
    for (const path of ["/dashboard/../package.json", "/dashboard/%2e%2e/src/index.ts", "/dashboard/vendor/../../package.json", "/dashboard//etc/passwd"]) {
      const r = await rawGet(`${h.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.body, path).not.toContain('"name"');
    }
    const post = await fetch(`${h.url}/`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(((await post.json()) as { error: { message: string } }).error.message).toContain("allowed: GET, HEAD");
    expect((await fetch(`${h.url}/v1/stream`, { method: "POST" })).status).toBe(405);
    const other = await fetch(`${h.url}/v1/resources`);
    expect(await other.text()).toBe("not the dashboard's");
  });
});

describe("dashboard HTTP: the snapshot stream", () => {
  it("without a key: cluster only, pushed repeatedly", async () => {
    const h = await start();
    const res = await fetch(`${h.url}/v1/stream`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const events = await readEvents(res, 3);
    expect(events.map((e) => e.event)).toEqual(["snapshot", "snapshot", "snapshot"]);
    const last = events[2]!.data as DashboardSnapshot;
    expect(last).toMatchObject({ v: 1, nodeId: "n1", access: "none", resources: null, nowMs: 10_000 });
    expect(last.nodes).toEqual([expect.objectContaining({ id: "n1", self: true, role: "leader", term: 3, commitIndex: 9, lag: 0 })]);
  });

  it("an admin key sees every resource; an acquire key only those its scope covers", async () => {
    const h = await start();
    const admin = (await readEvents(await fetch(`${h.url}/v1/stream`, { headers: { authorization: `Bearer ${ADMIN}` } }), 1))[0]!.data as DashboardSnapshot;
    expect(admin.access).toBe("admin");
    expect(admin.resources!.map((r) => r.name)).toEqual(["team-a/chat", "team-b/embed"]);
    const reader = (await readEvents(await fetch(`${h.url}/v1/stream`, { headers: { authorization: `Bearer ${READER}` } }), 1))[0]!.data as DashboardSnapshot;
    expect(reader.access).toBe("read");
    expect(reader.resources!.map((r) => r.name)).toEqual(["team-a/chat"]);
  });

  it("refuses a malformed header and an unknown key with 401 and a specific message", async () => {
    const h = await start();
    const malformed = await fetch(`${h.url}/v1/stream`, { headers: { authorization: "Basic abc" } });
    expect(malformed.status).toBe(401);
    expect(((await malformed.json()) as { error: { message: string } }).error.message).toBe("send the API key as Authorization: Bearer <key>");
    const unknown = await fetch(`${h.url}/v1/stream`, { headers: { authorization: "Bearer nope" } });
    expect(unknown.status).toBe(401);
    expect(((await unknown.json()) as { error: { code: string; message: string } }).error).toEqual({ code: "RQ_UNAUTHORIZED", message: "unknown or revoked API key" });
    expect(h.dashboard.streamCount).toBe(0);
  });

  it("ends a stream with an `end` event when its key is revoked", async () => {
    const h = await start();
    const res = await fetch(`${h.url}/v1/stream`, { headers: { authorization: `Bearer ${READER}` } });
    const events = readEvents(res, 10);
    await waitUntil(() => h.dashboard.streamCount === 1, "the stream to open");
    h.keys.delete(READER);
    const got = await events;
    expect(got.at(-1)).toEqual({ event: "end", data: { code: "RQ_UNAUTHORIZED", message: "the API key was revoked" } });
    expect(got.slice(0, -1).every((e) => e.event === "snapshot")).toBe(true);
    await waitUntil(() => h.dashboard.streamCount === 0, "the stream to be dropped");
  });

  it("serves at most streamsMax streams, frees a slot when a viewer leaves, and ends all on close", async () => {
    const h = await start({ streamsMax: 2 });
    const a = new AbortController();
    const first = await fetch(`${h.url}/v1/stream`, { signal: a.signal });
    const second = await fetch(`${h.url}/v1/stream`);
    const third = await fetch(`${h.url}/v1/stream`);
    expect([first.status, second.status, third.status]).toEqual([200, 200, 503]);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe("RQ_UNAVAILABLE");
    a.abort();
    await waitUntil(() => h.dashboard.streamCount === 1, "the aborted stream to be dropped");
    expect((await fetch(`${h.url}/v1/stream`)).status).toBe(200);
    h.dashboard.close();
    expect(h.dashboard.streamCount).toBe(0);
    expect((await fetch(`${h.url}/v1/stream`)).status).toBe(503);
    await expect(second.text()).resolves.toContain("event: snapshot"); // ended cleanly
  });

  it("a source that throws is reported through onError, never to the node; the stream stays open", async () => {
    let fail = false;
    const h = await start({
      resources: () => {
        if (fail) throw new Error("boom");
        return [view("x")];
      },
    });
    const res = await fetch(`${h.url}/v1/stream`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const events = readEvents(res, 4);
    await waitUntil(() => h.dashboard.streamCount === 1, "the stream to open");
    fail = true;
    await waitUntil(() => h.errors.length >= 2, "errors to be reported");
    fail = false;
    expect((await events).length).toBe(4);
  });
});

describe("dashboard: counting grants from applied entries", () => {
  it("counts granted effects per resource at the entry's log time and forgets deleted resources", async () => {
    const h = await start();
    h.dashboard.onApply(
      [
        { effects: [{ type: "granted", resource: "team-a/chat" }, { type: "queued", resource: "team-a/chat" }] },
        { effects: [{ type: "granted", resource: "team-a/chat" }, { type: "granted", resource: "team-b/embed" }] },
      ],
      9_500,
    );
    expect(h.dashboard.history.total("team-a/chat")).toBe(2);
    const snap = (await readEvents(await fetch(`${h.url}/v1/stream`, { headers: { authorization: `Bearer ${ADMIN}` } }), 1))[0]!.data as DashboardSnapshot;
    const chat = snap.resources!.find((r) => r.name === "team-a/chat")!;
    expect(chat.grantsTotal).toBe(2);
    expect(chat.grantsPerSecond.at(-1)).toBe(0); // second 10 (now)
    expect(chat.grantsPerSecond.at(-2)).toBe(2); // second 9
    h.dashboard.onApply([{ effects: [{ type: "resourceDeleted", name: "team-a/chat" }] }], 9_600);
    expect(h.dashboard.history.total("team-a/chat")).toBe(0);
  });

  it("never throws into the node's apply loop: a bad stamp goes to onError", async () => {
    const h = await start();
    expect(() => h.dashboard.onApply([{ effects: [{ type: "granted", resource: "x" }] }], Number.NaN)).not.toThrow();
    expect(String(h.errors[0])).toContain("atMs must be a finite time");
  });

  it("refuses nonsense options at construction", () => {
    const base = { nodeId: "n1", nodeUrls: new Map([["n1", "http://x"]]), resources: () => [], logTime: () => 0, authorize: () => null };
    expect(() => createDashboard({ ...base, pushIntervalMs: 0 })).toThrow(/pushIntervalMs/);
    expect(() => createDashboard({ ...base, streamsMax: 0 })).toThrow(/streamsMax/);
    expect(() => createDashboard({ ...base, nodeId: "n9" })).toThrow(/must include this node/);
  });
});

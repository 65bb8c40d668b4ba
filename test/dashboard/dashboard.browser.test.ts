// The dashboard in a real headless Chromium against a real three-node cluster: the page loads from a node (no
// CDN), shows the cluster, shows grants rising while a client acquires (pushed, no reload), and an admin's edit
// of a limit changes the resource on the cluster and the grants that follow.
//
// Needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium), or RQ_CHROMIUM=<path>.
// RQ_DASHBOARD_SCREENSHOT=<file.png> saves a full-page screenshot of the page with live traffic.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, waitFor, type NodeProcess } from "../cluster/harness.js";

const CHROMIUM = process.env.RQ_CHROMIUM ?? "/usr/bin/chromium";
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe("the dashboard in headless Chromium", () => {
  let cluster: Cluster;
  let browser: BrowserContext;
  let userDataDir: string;
  let rq: RateQueue;
  let page: Page;
  /** Console errors and uncaught exceptions of the current page (a CSP violation shows up here). */
  let pageProblems: string[];

  beforeAll(async () => {
    // Fail loudly, never skip: a missing browser must not look like a passing dashboard.
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium not found at ${CHROMIUM}. The dashboard test drives a real browser: install it with \`apt-get install -y chromium\` (or set RQ_CHROMIUM to its path).`);
    }
    cluster = await Cluster.start({
      resources: {
        traffic: { limits: [{ kind: "rate", limit: 10_000, windowMs: 60_000 }, { kind: "concurrency", limit: 4 }] },
        editable: { limits: [{ kind: "rate", limit: 1_000, windowMs: 60_000 }, { kind: "concurrency", limit: 1 }] },
        "team-a/chat": { limits: [{ kind: "concurrency", limit: 2 }], lanes: { interactive: { weight: 3 }, batch: { weight: 1 } } },
      },
    });
    userDataDir = await mkdtemp(join(tmpdir(), "rq-chromium-"));
    // A persistent context is how Playwright takes a fresh --user-data-dir of our choosing.
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1280, height: 900 },
    });
    rq = new RateQueue({ url: cluster.urls.join(","), apiKey: ADMIN_KEY, clientName: "worker-7" });
  });

  afterAll(async () => {
    await rq?.close();
    await browser?.close();
    await cluster?.stop();
    if (userDataDir !== undefined) await rm(userDataDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    pageProblems = [];
    page = await browser.newPage();
    page.on("console", (m) => {
      if (m.type() === "error") pageProblems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => pageProblems.push(`page error: ${e.message}`));
  });

  afterEach(async () => {
    await page.evaluate("localStorage.clear()").catch(() => undefined);
    await page.close();
  });

  const follower = async (): Promise<NodeProcess> => {
    const leader = await cluster.waitForLeader();
    return cluster.nodes.find((n) => n.id !== leader.id)!;
  };

  const signIn = async (key: string): Promise<void> => {
    await page.fill("#api-key", key);
    await page.click("form.key-form button[type=submit]");
  };

  const card = (name: string) => page.locator(`article[data-resource="${name}"]`);

  const grantsTotal = async (name: string): Promise<number> => Number((await card(name).getByTestId("grants-total").textContent())!.replaceAll(",", ""));

  it("loads from a follower with no CDN, shows every node with one leader, and asks for a key", async () => {
    const node = await follower();
    const external: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(node.httpUrl) && !r.url().startsWith("data:")) external.push(r.url());
    });
    await page.goto(`${node.httpUrl}/`);
    await page.locator(".conn-live").waitFor();
    await waitFor(async () => (await page.locator("tr[data-node] .role-leader").count()) === 1, { what: "one leader in the cluster table" });
    expect(await page.locator("tr[data-node]").count()).toBe(3);
    const leader = await cluster.waitForLeader();
    await expect(page.locator(`tr[data-node="${leader.id}"] .role`).textContent()).resolves.toBe("leader");
    await expect(page.locator(`tr[data-node="${node.id}"] .tag`).textContent()).resolves.toBe("this node");
    // Resources need a key: the form is shown and no resource is.
    expect(await page.locator("#api-key").isVisible()).toBe(true);
    expect(await page.locator("article[data-resource]").count()).toBe(0);
    expect(external).toEqual([]);
    expect(pageProblems).toEqual([]);
  });

  it("shows the grant count rising while a client acquires, pushed without a reload", async () => {
    await page.goto(`${(await follower()).httpUrl}/`);
    await signIn(ADMIN_KEY);
    await card("traffic").waitFor();
    // A marker on window survives only if the page is never reloaded. (Browser code as strings: no DOM types here.)
    await page.evaluate("window.noReload = true");
    const before = await grantsTotal("traffic");
    const seen = [before];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 5; j++) await rq.acquire("traffic", {}, async () => undefined);
      const target = before + 5 * (i + 1);
      await waitFor(async () => (await grantsTotal("traffic")) >= target, { what: `the page to count ${target} grants` });
      seen.push(await grantsTotal("traffic"));
    }
    expect(seen[3]).toBe(before + 15);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);
    // The chart counted them in its last seconds as well.
    const lastMinute = Number(await card("traffic").locator("dt:text('Last minute') + dd").textContent());
    expect(lastMinute).toBeGreaterThanOrEqual(15);
    expect(await page.evaluate("window.noReload")).toBe(true);

    const screenshot = process.env.RQ_DASHBOARD_SCREENSHOT;
    if (screenshot !== undefined) {
      await using _held = await rq.acquire("team-a/chat", {});
      await new Promise((r) => setTimeout(r, 1_200));
      await page.screenshot({ path: screenshot, fullPage: true });
    }
    expect(pageProblems).toEqual([]);
  });

  it("an admin edits a limit: the cluster has the new limit and grants follow it", async () => {
    // Before: concurrency 1, so a second lease is refused while one is held.
    {
      await using _first = await rq.acquire("editable", {});
      expect(await rq.tryAcquire("editable")).toBeNull();
    }
    await page.goto(`${(await follower()).httpUrl}/`);
    await signIn(ADMIN_KEY);
    const editable = card("editable");
    await editable.getByRole("button", { name: "Edit limits" }).click();

    // Bad input is refused with a clear message and changes nothing: first in the page, then by the node.
    await editable.locator("input[name=limit-1]").fill("three");
    await editable.getByRole("button", { name: "Save limits" }).click();
    await expect(editable.locator("[role=alert]").textContent()).resolves.toContain("limit enter a whole number");
    await editable.locator("input[name=limit-1]").fill("3");
    await editable.locator("input[name=windowMs-0]").fill("99999999999");
    await editable.getByRole("button", { name: "Save limits" }).click();
    await waitFor(async () => /windowMs/.test((await editable.locator("[role=alert]").textContent()) ?? ""), { what: "the node's refusal" });
    expect((await cluster.resource("editable")).limits).toEqual([
      { kind: "rate", limit: 1_000, windowMs: 60_000, window: "sliding", deliveryMarginMs: 1_000, reserved: {} },
      { kind: "concurrency", limit: 1, reserved: {} },
    ]);

    // A good edit, made on a follower: the node forwards it to the leader.
    await editable.locator("input[name=windowMs-0]").fill("60000");
    await editable.getByRole("button", { name: "Save limits" }).click();
    await editable.locator(".limit[data-kind=concurrency] [data-testid=usage]").waitFor();
    await waitFor(async () => /\/ 3$/.test((await editable.locator(".limit[data-kind=concurrency] [data-testid=usage]").textContent()) ?? ""), {
      what: "the page to show the new limit",
    });

    // The admin API on every node agrees, and acquires follow the new limit: three leases at once, not a fourth.
    for (const n of cluster.nodes) {
      await waitFor(async () => (await cluster.resource("editable", n)).limits[1]?.limit === 3, { what: `${n.id} to apply the new limit` });
    }
    const leases = await Promise.all([1, 2, 3].map(() => rq.acquire("editable", { timeoutMs: 5_000 })));
    expect(await rq.tryAcquire("editable")).toBeNull();
    await waitFor(async () => (await editable.getByTestId("leases").textContent()) === "3", { what: "the page to show 3 leases" });
    await Promise.all(leases.map((l) => l.release()));
    // The browser logs the refused PUT; nothing else went wrong.
    expect(pageProblems).toEqual([expect.stringContaining("status of 400 (Bad Request)")]);
  });

  it("shows leases, the queue per lane and a cooldown as they happen", async () => {
    await page.goto(`${(await cluster.waitForLeader()).httpUrl}/`);
    await signIn(ADMIN_KEY);
    const chat = card("team-a/chat");
    await chat.waitFor();
    const held = [await rq.acquire("team-a/chat", { lane: "interactive" }), await rq.acquire("team-a/chat", { lane: "interactive" })];
    const waiting = rq.acquire("team-a/chat", { lane: "batch", timeoutMs: 30_000 });
    const laneCount = async (lane: string): Promise<string | null> => chat.locator(`[data-lane="${lane}"] b`).textContent();
    await waitFor(async () => (await laneCount("batch")) === "1" && (await chat.getByTestId("leases").textContent()) === "2", {
      what: "the page to show 2 leases and 1 waiting in lane batch",
    });
    expect(await laneCount("interactive")).toBe("0");
    expect(await chat.getByTestId("queued").textContent()).toBe("1");
    await held[0]!.release();
    const granted = await waiting;
    await waitFor(async () => (await laneCount("batch")) === "0", { what: "the waiter to leave the queue on the page" });
    await Promise.all([held[1]!.release(), granted.release()]);

    // A worker's 429: the resource cools down on every node, and the page says until when, who reported it, until it ends.
    expect(await card("traffic").getByTestId("cooldown").count()).toBe(0);
    await rq.reportLimited("traffic", { retryAfterMs: 2_000 });
    await expect(card("traffic").getByTestId("cooldown").textContent()).resolves.toMatch(/^Cooling down until \d\d:\d\d:\d\d UTC · [\d.,]+ m?s left · reported by worker-7$/);
    await waitFor(async () => (await card("traffic").getByTestId("cooldown").count()) === 0, { what: "the cooldown to end on the page" });
    expect(pageProblems).toEqual([]);
  });

  it("a key with an acquire scope sees only its resources and cannot edit; revoking it ends the stream", async () => {
    const created = await cluster.admin("POST", "/v1/keys", { name: "dashboard viewer", scope: { acquire: ["team-a/*"] } });
    expect(created.status).toBe(201);
    await page.goto(`${(await cluster.waitForLeader()).httpUrl}/`);
    await signIn(created.json.secret as string);
    await card("team-a/chat").waitFor();
    expect(await page.locator("article[data-resource]").count()).toBe(1);
    expect(await page.getByRole("button", { name: "Edit limits" }).count()).toBe(0);
    await expect(page.locator(".key-state").textContent()).resolves.toContain("Read-only key");

    expect((await cluster.admin("DELETE", `/v1/keys/${created.json.id}`)).status).toBe(204);
    // Within a push or two the node ends the stream; the page forgets the key and keeps showing the cluster.
    await expect(page.locator("form.key-form [role=alert]").textContent()).resolves.toBe("the API key was revoked");
    expect(await page.locator("article[data-resource]").count()).toBe(0);
    expect(await page.evaluate('localStorage.getItem("ratequeue.apiKey")')).toBeNull();
    await page.locator(".conn-live").waitFor();
    await waitFor(async () => (await page.locator("tr[data-node]").count()) === 3, { what: "the cluster table without a key" });
  });

  it("an unknown key is refused with a message, and the page keeps asking", async () => {
    await page.goto(`${(await follower()).httpUrl}/`);
    await signIn("rq_not-a-real-key");
    await expect(page.locator("form.key-form [role=alert]").textContent()).resolves.toBe("unknown or revoked API key");
    expect(await page.evaluate('localStorage.getItem("ratequeue.apiKey")')).toBeNull();
    await waitFor(async () => (await page.locator("tr[data-node]").count()) === 3, { what: "the cluster table without a key" });
    expect(await page.locator("article[data-resource]").count()).toBe(0);
  });

  it("formats numbers, durations, limits and typed limits as the page shows them (format.js, in the browser)", async () => {
    await page.goto(`${(await cluster.waitForLeader()).httpUrl}/`);
    const got = await page.evaluate(`(async () => {
      const f = await import("./dashboard/format.js");
      return {
        numbers: [f.formatNumber(1234.56), f.formatNumber(null), f.formatNumber(0)],
        durations: [f.formatDuration(500), f.formatDuration(2000), f.formatDuration(90000), f.formatDuration(7200000)],
        rules: [
          f.limitRule({ kind: "rate", windowMs: 60000, window: "sliding" }),
          f.limitRule({ kind: "load", windowMs: 1000, window: "bucket" }),
          f.limitRule({ kind: "concurrency" }),
        ],
        titles: [f.limitTitle({ kind: "rate" }), f.limitTitle({ kind: "load", dimension: "load" }), f.limitTitle({ kind: "load", dimension: "input" })],
        fractions: [f.usageFraction(5, 10), f.usageFraction(15, 10), f.usageFraction(0, 0), f.usageFraction(1, 0)],
        tones: [f.usageTone(0.5), f.usageTone(0.85), f.usageTone(1)],
        last: f.lastSeconds([1, 2, 3, 4], 2),
        parsed: ["1,000", " 42 ", "0", "1.5", "-3", "abc", "99999999999999999999"].map((t) => f.parseWholeNumber(t, 1)),
        remaining: f.remaining(10_050, 8_000),
        clock: f.clockTime(Date.UTC(2026, 11, 6, 14, 3, 7, 900)),
      };
    })()`);
    expect(got).toEqual({
      numbers: ["1,234.6", "–", "0"],
      durations: ["500 ms", "2 s", "1.5 min", "2 h"],
      rules: ["per 1 min, sliding window", "per 1 s, token bucket", "at once"],
      titles: ["Requests", "Load", "Load: input"],
      fractions: [0.5, 1, 0, 1],
      tones: ["ok", "high", "full"],
      last: 7,
      parsed: [
        { ok: true, value: 1000 },
        { ok: true, value: 42 },
        { ok: false, error: "must be at least 1" },
        { ok: false, error: "enter a whole number" },
        { ok: false, error: "enter a whole number" },
        { ok: false, error: "enter a whole number" },
        { ok: false, error: "that number is too large" },
      ],
      remaining: "2.1 s",
      clock: "14:03:07 UTC",
    });
  });

  // Last: it kills a node of the shared cluster.
  it("shows a node that goes down as unreachable while the page stays live", async () => {
    const leader = await cluster.waitForLeader();
    const [down] = cluster.nodes.filter((n) => n.id !== leader.id);
    await page.goto(`${leader.httpUrl}/`);
    await waitFor(async () => (await page.locator("tr[data-node] .role-leader").count()) === 1, { what: "the cluster table" });
    await down!.kill();
    const role = page.locator(`tr[data-node="${down!.id}"] .role`);
    await waitFor(async () => (await role.textContent()) === "unreachable", { what: `${down!.id} to show as unreachable` });
    expect(await page.locator(`tr[data-node="${down!.id}"] .err`).textContent()).not.toBe("");
    expect(await page.locator(".conn-live").count()).toBe(1);
  });
});

import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import type { StatusBody } from "@ratequeue/protocol/http";
import { AdminClient, CliError, parseUrls } from "./admin-client.js";
import { formatTable } from "./table.js";

/** Options every admin command takes. */
interface AdminOptions {
  url?: string;
  adminKey?: string;
  json?: boolean;
}

const DEFAULT_URL = "http://127.0.0.1:7401";

/** Adds `--url`, `--admin-key` and `--json` to an admin subcommand. */
function adminOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--url <urls>", "node URLs, comma-separated (http(s)://, ws(s):// or host:port); tried in turn").env("RATEQUEUE_URL"),
    )
    .addOption(new Option("--admin-key <key>", "an admin API key").env("RATEQUEUE_ADMIN_KEY"))
    .option("--json", "print the API's JSON answer instead of a table");
}

function clientOf(opts: AdminOptions): AdminClient {
  // An empty variable (RATEQUEUE_ADMIN_KEY="") counts as unset.
  return new AdminClient(parseUrls(opts.url || DEFAULT_URL), opts.adminKey || null);
}

function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** Reads a JSON file (or stdin for "-"), with the file name in every error. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (err) {
    throw new CliError(`${path}: ${(err as Error).message}`, 2);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliError(`${path}: not valid JSON (${(err as Error).message.replace(/\s+/g, " ")}); resource files are JSON`, 2);
  }
}

/** `ratequeue resources list|get|put|delete`. */
export function resourcesCommand(): Command {
  const cmd = new Command("resources").description("List, show, create or replace, and delete resources (quotas).");
  adminOptions(cmd.command("list").description("List every resource with its live usage."))
    .action(async (_o: AdminOptions, c: Command) => {
      const opts = c.optsWithGlobals<AdminOptions>();
      const { json } = await clientOf(opts).ok("GET", "/v1/resources");
      if (opts.json) return printJson(json);
      const resources = (json as { resources: ResourceJson[] }).resources;
      if (resources.length === 0) return print("no resources");
      print(
        formatTable(
          ["NAME", "LIMITS", "LEASES", "QUEUED", "COOLDOWN UNTIL"],
          resources.map((r) => [r.name, usageText(r), String(r.leasesHeld), String(queuedTotal(r)), r.cooldownUntil === null ? "-" : new Date(r.cooldownUntil).toISOString()]),
        ),
      );
    });
  adminOptions(cmd.command("get").description("Show one resource: its limits, live usage, leases and queue (JSON).").argument("<name>"))
    .action(async (name: string, _o: AdminOptions, c: Command) => {
      const { json } = await clientOf(c.optsWithGlobals<AdminOptions>()).ok("GET", `/v1/resources/${encodeURIComponent(name)}`);
      printJson(json);
    });
  adminOptions(
    cmd
      .command("put")
      .description("Create or replace a resource from a JSON file (the body of PUT /v1/resources/{name}; YAML is not supported).")
      .argument("<name>")
      .requiredOption("-f, --file <file>", 'JSON file with { "limits": [...], "lanes"?: {...}, "lanePolicy"?: ... } ("-" reads stdin)'),
  ).action(async (name: string, _o: AdminOptions, c: Command) => {
    const opts = c.optsWithGlobals<AdminOptions & { file: string }>();
    const body = readJsonFile(opts.file);
    const { status, json } = await clientOf(opts).ok("PUT", `/v1/resources/${encodeURIComponent(name)}`, body);
    if (opts.json) return printJson(json);
    print(`resource ${name} ${status === 201 ? "created" : "replaced"}`);
  });
  adminOptions(cmd.command("delete").description("Delete a resource (its leases and waiters end).").argument("<name>"))
    .action(async (name: string, _o: AdminOptions, c: Command) => {
      await clientOf(c.optsWithGlobals<AdminOptions>()).ok("DELETE", `/v1/resources/${encodeURIComponent(name)}`);
      print(`resource ${name} deleted`);
    });
  return cmd;
}

/** `ratequeue keys list|create|revoke`. */
export function keysCommand(): Command {
  const cmd = new Command("keys").description("List, create and revoke API keys.");
  adminOptions(cmd.command("list").description("List API keys (never their secrets).")).action(async (_o: AdminOptions, c: Command) => {
    const opts = c.optsWithGlobals<AdminOptions>();
    const { json } = await clientOf(opts).ok("GET", "/v1/keys");
    if (opts.json) return printJson(json);
    const keys = (json as { keys: { id: string; name: string; scope: "admin" | "metrics" | ({ acquire: string[] } & Record<string, unknown>) }[] }).keys;
    if (keys.length === 0) return print("no keys");
    print(formatTable(["ID", "NAME", "SCOPE"], keys.map((k) => [k.id, k.name, scopeText(k.scope)])));
  });
  adminOptions(
    cmd
      .command("create")
      .description("Create an API key; its secret is printed once and never again.")
      .requiredOption("--name <name>", "a label for the key (1-128 characters)")
      .option("--acquire <patterns>", "comma-separated resource patterns it may acquire on (* is a wildcard)")
      .option("--admin", "an admin key (may use the admin API) instead of an acquire key")
      .option("--metrics", "a key that may read /metrics (every resource) and nothing else: for Prometheus")
      .option("--priority-max <n>", "with --acquire: the highest priority it may ask for")
      .option("--lanes <names>", "with --acquire: comma-separated lanes it may use")
      .option("--ttl-ms-max <ms>", "with --acquire: the longest session TTL it may hold")
      .option("--load-max <n>", "with --acquire: the largest load of one request, in any dimension"),
  ).action(async (_o: AdminOptions, c: Command) => {
    const opts = c.optsWithGlobals<
      AdminOptions & { name: string; acquire?: string; admin?: boolean; metrics?: boolean; priorityMax?: string; lanes?: string; ttlMsMax?: string; loadMax?: string }
    >();
    const kinds = [opts.acquire !== undefined, opts.admin === true, opts.metrics === true].filter(Boolean).length;
    if (kinds !== 1) throw new CliError("give exactly one of --acquire <patterns>, --admin or --metrics", 2);
    const list = (text: string): string[] => text.split(",").map((p) => p.trim()).filter((p) => p !== "");
    // Bounds go as given; the cluster checks them (and names the one that is wrong).
    const bounds = {
      ...(opts.priorityMax === undefined ? {} : { priorityMax: Number(opts.priorityMax) }),
      ...(opts.lanes === undefined ? {} : { lanes: list(opts.lanes) }),
      ...(opts.ttlMsMax === undefined ? {} : { ttlMsMax: Number(opts.ttlMsMax) }),
      ...(opts.loadMax === undefined ? {} : { loadMax: Number(opts.loadMax) }),
    };
    if (opts.acquire === undefined && Object.keys(bounds).length > 0) {
      throw new CliError("--priority-max, --lanes, --ttl-ms-max and --load-max bound an --acquire key", 2);
    }
    const scope = opts.admin === true ? "admin" : opts.metrics === true ? "metrics" : { acquire: list(opts.acquire!), ...bounds };
    const { json } = await clientOf(opts).ok("POST", "/v1/keys", { name: opts.name, scope });
    if (opts.json) return printJson(json);
    const key = json as { id: string; secret: string };
    print(`key ${key.id} created; its secret (shown only now):\n${key.secret}`);
  });
  adminOptions(cmd.command("revoke").description("Revoke an API key by id: it stops working on every node.").argument("<id>"))
    .action(async (id: string, _o: AdminOptions, c: Command) => {
      await clientOf(c.optsWithGlobals<AdminOptions>()).ok("DELETE", `/v1/keys/${encodeURIComponent(id)}`);
      print(`key ${id} revoked`);
    });
  return cmd;
}

/** A key's scope in one cell: `admin`, `metrics`, or `acquire <patterns>` with its bounds. */
function scopeText(scope: "admin" | "metrics" | ({ acquire: string[] } & Record<string, unknown>)): string {
  if (typeof scope === "string") return scope;
  const { acquire, ...bounds } = scope;
  const extra = Object.entries(bounds).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("|") : String(v)}`);
  return [`acquire ${acquire.join(",")}`, ...extra].join(" ");
}

/** `ratequeue status`: every member's view, as the dashboard's cluster table shows it. */
export function statusCommand(): Command {
  const cmd = new Command("status").description(
    "Show the cluster: each member's role, term, commit and applied index, lag and address (no admin key needed).",
  );
  adminOptions(cmd).action(async (_o: AdminOptions, c: Command) => {
    const opts = c.optsWithGlobals<AdminOptions>();
    const first = await clientOf(opts).ok("GET", "/v1/status", undefined, { auth: false });
    const self = first.json as StatusJson;
    // Ask every member the first node knows of, each at its own address.
    const members = self.peers.map((p) => ({ id: p.id, voter: p.voter, url: p.url ?? (p.id === self.id ? first.url : null) }));
    const statuses = await Promise.all(
      members.map(async (m) => {
        if (m.id === self.id) return self;
        if (m.url === null) return null;
        try {
          const answer = await new AdminClient([m.url], null).request("GET", "/v1/status", undefined, { auth: false });
          return answer.status === 200 ? (answer.json as StatusJson) : null;
        } catch {
          return null;
        }
      }),
    );
    if (opts.json) return printJson({ members: members.map((m, i) => ({ ...m, status: statuses[i] })) });
    const commit = Math.max(...statuses.map((s) => s?.commitIndex ?? 0));
    print(
      formatTable(
        ["NODE", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAG", "ADDRESS"],
        members.map((m, i) => {
          const s = statuses[i];
          if (s == null) return [m.id, m.voter ? "unreachable" : "learner, unreachable", "-", "-", "-", "-", "-", m.url ?? "-"];
          const lag = commit - s.appliedIndex;
          return [m.id, s.role, String(s.term), s.leader ?? "-", String(s.commitIndex), String(s.appliedIndex), lag === 0 ? "in sync" : `${lag} behind`, m.url ?? "-"];
        }),
      ),
    );
    const leaders = new Set(statuses.filter((s) => s?.role === "leader").map((s) => s!.id));
    if (leaders.size === 0) print("no leader: the cluster cannot grant until a majority of voters is up and connected");
  });
  return cmd;
}

/** The fields of GET /v1/status the CLI prints. */
type StatusJson = Pick<StatusBody, "id" | "role" | "term" | "leader" | "commitIndex" | "appliedIndex" | "peers">;

interface ResourceJson {
  name: string;
  usage: { kind: string; limit: number; used: number; windowMs?: number }[];
  leasesHeld: number;
  queued: Record<string, number> | number;
  cooldownUntil: number | null;
}

function usageText(r: ResourceJson): string {
  return r.usage.map((u) => `${u.kind} ${u.used}/${u.limit}${u.windowMs === undefined ? "" : ` per ${u.windowMs} ms`}`).join("; ");
}

function queuedTotal(r: ResourceJson): number {
  return typeof r.queued === "number" ? r.queued : Object.values(r.queued).reduce((a, b) => a + b, 0);
}

interface MembersJson {
  leader: string | null;
  members: { id: string; address: string | null; voter: boolean; lag?: number; connected?: boolean }[];
}

function printMembers(json: MembersJson): void {
  print(
    formatTable(
      ["ID", "ROLE", "ADDRESS", "LAG", "LINK"],
      json.members.map((m) => [
        m.id,
        m.id === json.leader ? "leader" : m.voter ? "voter" : "learner",
        m.address ?? "-",
        m.lag === undefined ? "-" : m.lag === 0 ? "in sync" : `${m.lag} behind`,
        m.connected === undefined ? "-" : m.connected ? "up" : "down",
      ]),
    ),
  );
}

/** `ratequeue members list|add|remove`. */
export function membersCommand(): Command {
  const cmd = new Command("members").description("List, add and remove cluster members (one change at a time).");
  adminOptions(cmd.command("list").description("List voters and learners with their addresses and replication lag."))
    .action(async (_o: AdminOptions, c: Command) => {
      const opts = c.optsWithGlobals<AdminOptions>();
      const { json } = await clientOf(opts).ok("GET", "/v1/members");
      if (opts.json) return printJson(json);
      printMembers(json as MembersJson);
    });
  adminOptions(
    cmd
      .command("add")
      .description(
        "Add a node: it joins as a learner, catches up (snapshot, then log) and is promoted to voter. Start the new node with --join (and no --peers) before or after this; waits until it is a voter.",
      )
      .argument("<id>", "the new node's id (never one used before)")
      .requiredOption("--address <host:port>", "where the new node serves peers and clients")
      .option("--timeout-ms <ms>", "longest wait for the new node to catch up (default 60000)"),
  ).action(async (id: string, _o: AdminOptions, c: Command) => {
    const opts = c.optsWithGlobals<AdminOptions & { address: string; timeoutMs?: string }>();
    const timeoutMs = opts.timeoutMs === undefined ? undefined : Number(opts.timeoutMs);
    if (timeoutMs !== undefined && !Number.isSafeInteger(timeoutMs)) throw new CliError("--timeout-ms must be an integer", 2);
    const { json } = await clientOf(opts).ok("POST", "/v1/members", { id, address: opts.address, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    if (opts.json) return printJson(json);
    print(`${id} is a voter`);
    printMembers(json as MembersJson);
  });
  adminOptions(
    cmd
      .command("remove")
      .description("Remove a member (a dead one too). Removing the leader hands leadership over first. Refused if it would leave no quorum.")
      .argument("<id>"),
  ).action(async (id: string, _o: AdminOptions, c: Command) => {
    const opts = c.optsWithGlobals<AdminOptions>();
    const { json } = await clientOf(opts).ok("DELETE", `/v1/members/${encodeURIComponent(id)}`);
    if (opts.json) return printJson(json);
    print(`${id} removed; stop it and delete its data folder (its id cannot be used again)`);
    printMembers(json as MembersJson);
  });
  return cmd;
}

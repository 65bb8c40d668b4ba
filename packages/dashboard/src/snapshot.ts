/**
 * The snapshot the dashboard pushes to a page: plain JSON, built once per push
 * and cut down per viewer (a key sees only the resources its scope covers).
 * Everything the page shows is derived here, so the page only renders and the
 * derivations are tested in Node.
 */
import type { StatusBody, StatusPeer } from "@ratequeue/protocol/http";
import type { GrantHistory } from "./grant-history.js";

// -----------------------------------------------------------------------------
// What the dashboard reads from the node. Structural copies of the limiter's
// ResourceView and of the /v1/status body, so this package depends on no other.

export type LimitLike =
  | { readonly kind: "rate"; readonly limit: number; readonly windowMs: number; readonly window: string; readonly reserved: Readonly<Record<string, number>> }
  | {
      readonly kind: "load";
      readonly limit: number;
      readonly windowMs: number;
      readonly window: string;
      readonly dimension: string;
      readonly reserved: Readonly<Record<string, number>>;
    }
  | { readonly kind: "concurrency"; readonly limit: number; readonly reserved: Readonly<Record<string, number>> };

/** The limiter's ResourceView, as far as the dashboard reads it. */
export interface ResourceViewLike {
  readonly name: string;
  readonly config: {
    readonly limits: readonly LimitLike[];
    readonly lanes: readonly { readonly name: string; readonly weight: number }[];
    readonly lanePolicy: string;
    readonly defaultLane: string | null;
  };
  readonly usage: readonly { readonly config: LimitLike; readonly used: number }[];
  readonly leasesHeld: number;
  readonly queued: Readonly<Record<string, number>>;
  readonly cooldownUntil: number | null;
}

/**
 * The fields of a node's public GET /v1/status (`StatusBody`, declared in packages/protocol/src/http.ts) that
 * the dashboard shows, as `parseStatus` keeps them.
 */
export type NodeStatusJson = Pick<StatusBody, "id" | "role" | "term" | "leader" | "commitIndex" | "appliedIndex"> &
  Partial<Pick<StatusBody, "lastIndex">> & {
    readonly peers?: readonly (Pick<StatusPeer, "id" | "lag" | "match"> & { readonly clockOffsetMs?: number })[];
  };

/** The latest answer (or failure) of one node's /v1/status. */
export interface PolledStatus {
  readonly id: string;
  readonly url: string;
  readonly status: NodeStatusJson | null;
  readonly error: string | null;
  /** When the answer (or failure) arrived, on this node's clock; null before the first poll ends. */
  readonly atMs: number | null;
}

/** What one viewer may see. */
export type DashboardAccess = "admin" | { readonly canRead: (resource: string) => boolean };

// -----------------------------------------------------------------------------
// What the page receives.

export interface NodeRow {
  readonly id: string;
  readonly url: string;
  /** The node serving this page. */
  readonly self: boolean;
  readonly reachable: boolean;
  readonly error: string | null;
  readonly role: string | null;
  readonly term: number | null;
  readonly leader: string | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  /**
   * Entries this node is behind: the leader's count of entries it has not
   * replicated to it (`lag` in the leader's status), or, for the leader and
   * when the leader's status is unknown, the committed entries it has not applied.
   */
  readonly lag: number | null;
  /**
   * This node's wall clock minus the wall clock of the node serving the page (ms), as the serving node estimates it
   * from clock probes on its peer links: 0 for the serving node itself, null when not measured. Display only.
   */
  readonly clockOffsetMs: number | null;
  /** How old this row's data is (ms), so a stale row can be told from a fresh one. */
  readonly ageMs: number | null;
}

export interface UsageRow {
  readonly kind: "rate" | "load" | "concurrency";
  readonly limit: number;
  /** Charged usage counted now (a bucket's debt may be fractional; a settle may push it over `limit`). */
  readonly used: number;
  readonly windowMs: number | null;
  readonly window: string | null;
  readonly dimension: string | null;
}

export interface ResourceRow {
  readonly name: string;
  /** The configuration as a PUT /v1/resources/{name} body: what an admin edits. */
  readonly config: {
    readonly limits: readonly LimitLike[];
    readonly lanes: Readonly<Record<string, { readonly weight: number }>>;
    readonly lanePolicy: string;
    readonly defaultLane?: string;
  };
  readonly usage: readonly UsageRow[];
  readonly leasesHeld: number;
  /** Waiting requests per lane ("default" when the resource has no lanes). */
  readonly queued: Readonly<Record<string, number>>;
  readonly queuedTotal: number;
  readonly cooldownUntil: number | null;
  /** Who reported the active cooldown (the client's name, or the key), when this node applied the report; else null. */
  readonly cooldownBy: string | null;
  /** Grants per second for the last `grantSeconds` seconds, oldest first (zeros when none recorded). */
  readonly grantsPerSecond: readonly number[];
  /** Grants this node has applied on this resource since it started. */
  readonly grantsTotal: number;
}

export interface DashboardSnapshot {
  /** Format version of this object. */
  readonly v: 1;
  readonly nodeId: string;
  /** The right edge of the grants chart (ms, on the log's clock). */
  readonly nowMs: number;
  readonly grantSeconds: number;
  /** "none": no key was sent (cluster only); "read": a key with an acquire scope; "admin": may edit. */
  readonly access: "none" | "read" | "admin";
  readonly nodes: readonly NodeRow[];
  /** Null without a key. */
  readonly resources: readonly ResourceRow[] | null;
  /** Resources the viewer may see but that were left out to keep a push small. */
  readonly resourcesOmitted: number;
}

/** Most resources in one push; a cluster with more shows the first ones by name and says how many it left out. */
export const RESOURCES_PER_PUSH_MAX = 200;

export function nodeRows(options: { selfId: string; polled: readonly PolledStatus[]; nowMs: number }): NodeRow[] {
  const { selfId, polled, nowMs } = options;
  // Trust the leader's own word on who it is: the node that answers role "leader" with the highest term.
  let leader: NodeStatusJson | null = null;
  for (const p of polled) {
    if (p.status?.role === "leader" && (leader === null || p.status.term > leader.term)) leader = p.status;
  }
  const self = polled.find((p) => p.id === selfId)?.status ?? null;
  return polled
    .map((p): NodeRow => {
      const s = p.status;
      const clockOffsetMs = p.id === selfId ? 0 : (self?.peers?.find((x) => x.id === p.id)?.clockOffsetMs ?? null);
      const base = { id: p.id, url: p.url, self: p.id === selfId, error: p.error, ageMs: p.atMs === null ? null : Math.max(0, nowMs - p.atMs) };
      if (s === null) {
        return { ...base, reachable: false, role: null, term: null, leader: null, commitIndex: null, appliedIndex: null, lag: null, clockOffsetMs };
      }
      const progress = leader === null || leader.id === s.id ? undefined : leader.peers?.find((x) => x.id === s.id);
      const lag = progress?.lag ?? Math.max(0, (leader?.commitIndex ?? s.commitIndex) - s.appliedIndex);
      return {
        ...base,
        reachable: true,
        role: s.role,
        term: s.term,
        leader: s.leader,
        commitIndex: s.commitIndex,
        appliedIndex: s.appliedIndex,
        lag,
        clockOffsetMs,
      };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

export function resourceRow(view: ResourceViewLike, history: GrantHistory, endMs: number): ResourceRow {
  const c = view.config;
  const usage = view.usage.map(({ config, used }): UsageRow => ({
    kind: config.kind,
    limit: config.limit,
    used,
    windowMs: config.kind === "concurrency" ? null : config.windowMs,
    window: config.kind === "concurrency" ? null : config.window,
    dimension: config.kind === "load" ? config.dimension : null,
  }));
  let queuedTotal = 0;
  for (const n of Object.values(view.queued)) queuedTotal += n;
  return {
    name: view.name,
    config: {
      limits: c.limits,
      lanes: Object.fromEntries(c.lanes.map((l) => [l.name, { weight: l.weight }])),
      lanePolicy: c.lanePolicy,
      ...(c.defaultLane === null ? {} : { defaultLane: c.defaultLane }),
    },
    usage,
    leasesHeld: view.leasesHeld,
    queued: view.queued,
    queuedTotal,
    cooldownUntil: view.cooldownUntil,
    cooldownBy: view.cooldownUntil === null ? null : history.cooldownBy(view.name, view.cooldownUntil),
    grantsPerSecond: history.series(view.name, endMs) ?? new Array<number>(history.seconds).fill(0),
    grantsTotal: history.total(view.name),
  };
}

/** One push's rows for everyone; {@link forViewer} cuts them down per key. */
export interface SharedSnapshot {
  readonly nodeId: string;
  readonly nowMs: number;
  readonly grantSeconds: number;
  readonly nodes: readonly NodeRow[];
  /** Every resource, sorted by name. */
  readonly resources: readonly ResourceRow[];
}

export function buildShared(options: {
  nodeId: string;
  nowMs: number;
  polled: readonly PolledStatus[];
  views: readonly ResourceViewLike[];
  history: GrantHistory;
}): SharedSnapshot {
  const { nodeId, nowMs, polled, views, history } = options;
  const resources = [...views].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((v) => resourceRow(v, history, nowMs));
  return { nodeId, nowMs, grantSeconds: history.seconds, nodes: nodeRows({ selfId: nodeId, polled, nowMs }), resources };
}

/** The snapshot one viewer receives: `access` null means no key was sent. */
export function forViewer(shared: SharedSnapshot, access: DashboardAccess | null): DashboardSnapshot {
  const common = { v: 1 as const, nodeId: shared.nodeId, nowMs: shared.nowMs, grantSeconds: shared.grantSeconds, nodes: shared.nodes };
  if (access === null) return { ...common, access: "none", resources: null, resourcesOmitted: 0 };
  const visible = access === "admin" ? shared.resources : shared.resources.filter((r) => access.canRead(r.name));
  return {
    ...common,
    access: access === "admin" ? "admin" : "read",
    resources: visible.slice(0, RESOURCES_PER_PUSH_MAX),
    resourcesOmitted: Math.max(0, visible.length - RESOURCES_PER_PUSH_MAX),
  };
}

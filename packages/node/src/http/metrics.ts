import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { NodeCore } from "../core/node-core.js";
import { DELIVERY_BUCKETS_MS } from "@ratequeue/protocol";
import type { ClockOffset } from "../peer/clock-offset.js";
import { deliveryMarginOf, type DeliveryStats } from "./delivery-stats.js";

/**
 * The node's Prometheus metrics. Counters follow applied effects (so every
 * node counts the whole cluster's grants); gauges are read from the state
 * when scraped.
 */
export function createMetrics(
  core: NodeCore,
  connections: () => number,
  clocks?: { offsets(): ReadonlyMap<string, ClockOffset> },
  delivery?: DeliveryStats,
): Registry {
  const registry = new Registry();
  const grants = new Counter({
    name: "ratequeue_grants_total",
    help: "Grants applied, by resource.",
    labelNames: ["resource"],
    registers: [registry],
  });
  const rejections = new Counter({
    name: "ratequeue_rejections_total",
    help: "Acquires that ended without a grant (rejected, timed out, cancelled), by resource and code.",
    labelNames: ["resource", "code"],
    registers: [registry],
  });
  const commitLatency = new Histogram({
    name: "ratequeue_commit_latency_seconds",
    help: "Leader: time from proposing an operation to applying it (replicated to a majority and synced).",
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  core.onApply((results) => {
    // Counted per entry, not per effect: one increment per resource (and code) for the whole batch.
    const granted = new Map<string, number>();
    const ended = new Map<string, { resource: string; code: string; n: number }>();
    for (const r of results) {
      for (const e of r.effects) {
        if (e.type === "granted") granted.set(e.resource, (granted.get(e.resource) ?? 0) + 1);
        else if (e.type === "rejected" || e.type === "timedOut" || e.type === "cancelled") {
          const key = `${e.resource}\u0000${e.code}`;
          const seen = ended.get(key);
          if (seen === undefined) ended.set(key, { resource: e.resource, code: e.code, n: 1 });
          else seen.n++;
        }
      }
    }
    for (const [resource, n] of granted) grants.inc({ resource }, n);
    for (const { resource, code, n } of ended.values()) rejections.inc({ resource, code }, n);
    for (const ms of core.commitLatenciesMs.splice(0)) commitLatency.observe(ms / 1000);
  });

  new Gauge({
    name: "ratequeue_queue_depth",
    help: "Requests waiting, by resource and lane.",
    labelNames: ["resource", "lane"],
    registers: [registry],
    collect() {
      this.reset();
      const limiter = core.state.limiter;
      for (const name of limiter.resourceNames()) {
        const view = limiter.resource(name);
        if (view === null) continue;
        for (const [lane, n] of Object.entries(view.queued)) this.set({ resource: name, lane }, n);
      }
    },
  });
  new Gauge({
    name: "ratequeue_leases_held",
    help: "Leases currently held, by resource.",
    labelNames: ["resource"],
    registers: [registry],
    collect() {
      this.reset();
      const limiter = core.state.limiter;
      for (const name of limiter.resourceNames()) {
        const view = limiter.resource(name);
        if (view !== null) this.set({ resource: name }, view.leasesHeld);
      }
    },
  });
  new Gauge({
    name: "ratequeue_sessions",
    help: "Live client sessions in the replicated state.",
    registers: [registry],
    collect() {
      this.set(core.state.limiter.sessionCount());
    },
  });
  new Gauge({
    name: "ratequeue_client_connections",
    help: "Client WebSocket connections open on this node.",
    registers: [registry],
    collect() {
      this.set(connections());
    },
  });
  new Gauge({
    name: "ratequeue_raft_term",
    help: "Current Raft term.",
    registers: [registry],
    collect() {
      this.set(core.status().term);
    },
  });
  new Gauge({
    name: "ratequeue_raft_role",
    help: "1 for this node's current Raft role, 0 for the others.",
    labelNames: ["role"],
    registers: [registry],
    collect() {
      const role = core.status().role;
      for (const r of ["leader", "follower", "candidate", "precandidate", "learner"]) this.set({ role: r }, r === role ? 1 : 0);
    },
  });
  new Gauge({
    name: "ratequeue_raft_commit_index",
    help: "Highest log index known committed.",
    registers: [registry],
    collect() {
      this.set(core.status().commit);
    },
  });
  new Gauge({
    name: "ratequeue_raft_applied_index",
    help: "Highest log index applied to the state machine.",
    registers: [registry],
    collect() {
      this.set(core.status().applied);
    },
  });
  new Gauge({
    name: "ratequeue_peer_lag_entries",
    help: "Leader: how many entries each peer's log is behind the leader's.",
    labelNames: ["peer"],
    registers: [registry],
    collect() {
      this.reset();
      const s = core.status();
      if (s.progress === null) return;
      for (const [peer, p] of Object.entries(s.progress)) {
        if (peer !== s.id) this.set({ peer }, Math.max(0, s.lastIndex - p.match));
      }
    },
  });
  if (clocks !== undefined) {
    new Gauge({
      name: "ratequeue_peer_clock_offset_seconds",
      help: "Each peer's wall clock minus this node's (positive: the peer is ahead), estimated from clock probes on the peer links. Display only: rate limits follow monotonic clocks.",
      labelNames: ["peer"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [peer, o] of clocks.offsets()) this.set({ peer }, o.offsetMs / 1000);
      },
    });
    new Gauge({
      name: "ratequeue_peer_clock_rtt_seconds",
      help: "Round trip of the clock probe each peer's offset estimate comes from (the estimate is within half of it).",
      labelNames: ["peer"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [peer, o] of clocks.offsets()) this.set({ peer }, o.rttMs / 1000);
      },
    });
  }
  registerDeliveryMetrics(registry, core, delivery);
  return registry;
}

const DELIVERY_LE = [...DELIVERY_BUCKETS_MS.map((ms) => String(ms / 1000)), "+Inf"];

/**
 * Grant-to-send delays (SPEC guarantee 7: the delay the SDKs observe is visible to operators). The histogram is
 * built from the clients' aggregated reports (DeliveryStats), which prom-client's Histogram cannot take (it
 * only observes one value at a time), so it is a hand-made metric object with the histogram's exposition.
 */
function registerDeliveryMetrics(registry: Registry, core: NodeCore, delivery: DeliveryStats | undefined): void {
  new Gauge({
    name: "ratequeue_delivery_margin_seconds",
    help: "Each resource's delivery margin (the smallest deliveryMarginMs of its windowed limits): how late after its grant a request may reach the provider.",
    labelNames: ["resource"],
    registers: [registry],
    collect() {
      this.reset();
      const limiter = core.state.limiter;
      for (const name of limiter.resourceNames()) {
        const marginMs = deliveryMarginOf(limiter.resource(name)?.config.limits ?? []);
        if (marginMs !== null) this.set({ resource: name }, marginMs / 1000);
      }
    },
  });
  if (delivery === undefined) return;
  new Gauge({
    name: "ratequeue_grant_delivery_max_seconds",
    help: "The largest grant-to-send delay this node's clients reported in the last one to two minutes, by resource.",
    labelNames: ["resource"],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of delivery.views()) if (v.recentMaxMs !== null) this.set({ resource: v.resource }, v.recentMaxMs / 1000);
    },
  });
  const name = "ratequeue_grant_delivery_seconds";
  const help =
    "Grant-to-send delay the SDKs observed: from the grant's log time to the moment the worker could send (acquire resolved), as reported by this node's clients, by resource.";
  const histogram = {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    collect: () => undefined,
    reset: () => undefined,
    get: () => {
      const values: { metricName: string; labels: Record<string, string>; value: number }[] = [];
      for (const v of delivery.views()) {
        for (let i = 0; i < DELIVERY_LE.length; i++) {
          values.push({ metricName: `${name}_bucket`, labels: { resource: v.resource, le: DELIVERY_LE[i]! }, value: v.cumulative[i] ?? v.count });
        }
        values.push({ metricName: `${name}_sum`, labels: { resource: v.resource }, value: v.sumMs / 1000 });
        values.push({ metricName: `${name}_count`, labels: { resource: v.resource }, value: v.count });
      }
      return Promise.resolve({ name, help, type: "histogram", aggregator: "sum", values });
    },
  };
  registry.registerMetric(histogram as unknown as Parameters<Registry["registerMetric"]>[0]);
}

/** A sample line's `resource` label. Resource names are A-Z a-z 0-9 . _ : / - only, so a value never holds a quote. */
const RESOURCE_LABEL = /[{,]resource="([^"]*)"/;
const LANE_LABEL = /[{,]lane="/;

/**
 * Prometheus text with the samples of resources `visible` refuses left out (their # HELP and # TYPE lines stay, so
 * every reader sees the same metric families). A lane is named only beside its resource; a sample with a lane and
 * no resource would be dropped too. Generic on purpose: a resource-labelled metric added later is covered.
 *
 * @example filterMetrics(text, (r) => r.startsWith("team-a-")) // team-a's series and the node's own
 */
export function filterMetrics(text: string, visible: (resource: string) => boolean): string {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) {
      out.push(line);
      continue;
    }
    const m = RESOURCE_LABEL.exec(line);
    if (m !== null ? visible(m[1]!) : !LANE_LABEL.test(line)) out.push(line);
  }
  return out.join("\n");
}

/**
 * @ratequeue/dashboard: the web page every node serves at `/`, and the
 * snapshot stream behind it (GET /v1/stream). See README.md.
 */
export { createDashboard, STREAM_PATH, type AppliedResult, type Dashboard, type DashboardOptions } from "./dashboard.js";
export { GrantHistory, GRANT_HISTORY_SECONDS, type GrantHistoryOptions } from "./grant-history.js";
export type {
  DashboardAccess,
  DashboardSnapshot,
  LimitLike,
  NodeRow,
  NodeStatusJson,
  ResourceRow,
  ResourceViewLike,
  UsageRow,
} from "./snapshot.js";
export type { StatusFetcher } from "./status-poller.js";

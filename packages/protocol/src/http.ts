/**
 * What the node's HTTP APIs share with their readers (the dashboard, the CLI,
 * LocalCluster, a joining node): the `Authorization: Bearer` header and the
 * body of the public `GET /v1/status`. Dependency-free; also importable alone
 * as `@ratequeue/protocol/http`.
 */

/** The secret of an `Authorization: Bearer <key>` header, or null when the header is missing or malformed. */
export function bearerSecret(header: string | undefined): string | null {
  const m = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(header);
  return m === null ? null : m[1]!;
}

/** One member as `GET /v1/status` lists it. */
export interface StatusPeer {
  readonly id: string;
  readonly voter: boolean;
  /** The member's HTTP URL, when this node knows it. */
  readonly url: string | null;
  /** Whether this node's link to the member is open now (absent for the node itself). */
  readonly connected?: boolean;
  /** The member's wall clock minus this node's, whole ms; null before the first estimate (absent for the node itself). */
  readonly clockOffsetMs?: number | null;
  readonly clockRttMs?: number | null;
  /** Replication progress, on the leader only. */
  readonly match?: number;
  readonly lag?: number;
  readonly state?: string;
}

/** The body of `GET /v1/status` (public: no key needed). */
export interface StatusBody {
  readonly id: string;
  /** The cluster's id (16 hex digits); null until the cluster's first leader committed one. */
  readonly clusterId: string | null;
  /** "leader", "follower" or "candidate" (a pre-candidate shows as a candidate). */
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /** The log time of the last applied entry (ms). */
  readonly logTime: number;
  readonly sessions: number;
  readonly clientConnections: number;
  /**
   * The grant-to-send delays this node's clients reported (docs/protocol.md, section 8a), without resource names:
   * grants reported since the node started, the largest delay of the last one to two minutes (null if none), and
   * how many resources had one at 80% of their delivery margin or more. Per resource: `/metrics`.
   */
  readonly grantDelivery?: { readonly grants: number; readonly recentMaxMs: number | null; readonly resourcesNearMargin: number };
  readonly peers: readonly StatusPeer[];
}

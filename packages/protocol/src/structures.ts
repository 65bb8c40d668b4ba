/**
 * The msgpackr record table of PROTOCOL_VERSION 1: every record shape that
 * travels in an ordinary frame, in a fixed order (a shape's position is its
 * record id on the wire). Both sides load this same table, so frames carry
 * record ids instead of field names, and there is no per-connection state.
 *
 * Handshake messages (hello, welcome, error, peer hello) are not in it: they
 * are always encoded self-describing, so that two sides with different
 * tables can still read each other's version and refuse cleanly.
 *
 * Rules: the table changes only together with PROTOCOL_VERSION (a test pins
 * its fingerprint); every message codec's shape (`t` then its fields) must be
 * in it (checked at module load). A shape not in the table (another
 * version's, or a hostile frame's) is still decodable: msgpackr writes its
 * definition inline, for that frame only.
 */
export const RECORD_TABLE: readonly (readonly string[])[] = [
  // Client -> node.
  ["t", "requestId", "resource", "load", "priority", "lane", "timeoutMs", "try"],
  ["t", "requestId", "leaseId"],
  ["t", "requestId", "leaseId", "actual"],
  ["t", "requestId"],
  ["t", "requestId", "resource", "retryAfterMs"],
  ["t"],
  ["t", "requestId", "resource", "count", "sumMs", "maxMs", "buckets"],
  // Node -> client.
  ["t", "requestId", "lease", "sentAt"],
  ["id", "resource", "load", "grantedAt"],
  ["t", "requestId", "code", "message"],
  ["t", "leader", "url"],
  // Peer -> peer: Raft messages and their nested records.
  ["t", "from", "to", "term", "prevIndex", "prevTerm", "entries", "commit"],
  ["term", "type", "data"],
  ["t", "from", "to", "term", "reject", "index", "hintIndex", "hintTerm"],
  ["t", "from", "to", "term", "lastIndex", "lastTerm", "transfer"],
  ["t", "from", "to", "term", "reject", "commit", "commitTerm"],
  ["t", "from", "to", "term", "commit", "readSeq"],
  ["t", "from", "to", "term", "readSeq"],
  ["t", "from", "to", "term", "meta", "offset", "totalBytes", "data", "last"],
  ["index", "term", "confState"],
  ["voters", "learners", "removed"],
  ["t", "from", "to", "term", "index", "nextOffset"],
  ["t", "from", "to", "term"],
  ["t", "from", "to", "term", "data"],
  ["t", "from", "to", "term", "context"],
  ["t", "from", "to", "term", "index", "context"],
  ["t", "from", "to", "term", "transferee"],
  // Peer -> peer: the link layer's clock readings.
  ["t", "from", "to", "wallMs", "monoUs"],
  ["t", "from", "to", "probeWallMs", "probeMonoUs", "wallMs"],
];

const shapeKeys = new Set(RECORD_TABLE.map((shape) => shape.join(",")));
// Two equal shapes would share one record id anyway; a duplicate is a mistake in the table.
if (shapeKeys.size !== RECORD_TABLE.length) throw new Error("RECORD_TABLE lists a shape twice");

/** Throws at module load if a codec's record shape is missing from the table (a protocol bug). */
export function assertInTable(shape: readonly string[], owner: string): void {
  if (!shapeKeys.has(shape.join(","))) throw new Error(`record shape of ${owner} (${shape.join(",")}) is not in RECORD_TABLE`);
}

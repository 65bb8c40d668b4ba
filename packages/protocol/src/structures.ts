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
  // Node -> client.
  ["t", "requestId", "lease"],
  ["id", "resource", "load", "grantedAt"],
  ["t", "requestId", "code", "message"],
  ["t", "leader", "url"],
];

const shapeKeys = new Set(RECORD_TABLE.map((shape) => shape.join(",")));

/** Throws at module load if a codec's record shape is missing from the table (a protocol bug). */
export function assertInTable(shape: readonly string[], owner: string): void {
  if (!shapeKeys.has(shape.join(","))) throw new Error(`record shape of ${owner} (${shape.join(",")}) is not in RECORD_TABLE`);
}

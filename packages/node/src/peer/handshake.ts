import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { HttpErrorCode } from "@ratequeue/protocol/codes";

/**
 * Peer link authentication by challenge and response, bound to one connection.
 *
 * 1. The dialling node D opens `GET /v1/peer` (a WebSocket upgrade) with
 *    headers naming itself, the node it means to reach A, and a fresh 32-byte
 *    nonce `nd`.
 * 2. A answers 101 with its own fresh nonce `na` and, for each cluster secret
 *    it accepts, `proof(secret, "accept", D, A, nd, na)`. D checks one of them
 *    against its own secrets before it sends anything: a node that does not
 *    know the secret, or replays an old answer (made for another `nd`), is
 *    dropped.
 * 3. D's first frame is a `peerHello` carrying `proof(secret, "dial", D, A, nd,
 *    na)`. A accepts no other frame, reads at most PEER_HELLO_MAX_BYTES and
 *    waits at most PEER_HANDSHAKE_TIMEOUT_MS for it; a wrong proof closes the
 *    link with PEER_AUTH_CLOSE_CODE.
 *
 * Both proofs cover both nonces, so a captured hello or answer is worthless on
 * any other connection, and the labels keep an answer from serving as a hello.
 * No clock is read: a node with a wrong wall clock still links.
 *
 * On plain ws:// this authenticates the link at its start only; an attacker on
 * the path could still read or hijack an established connection. Production
 * runs wss:// with peer certificates (mutual TLS), see the node README.
 *
 * Cluster identity (etcd's cluster-id check): both ends announce the id of the cluster whose data they hold, the
 * dialling node in its upgrade request and the accepting node in its answer (absent while a node knows none yet: a
 * founder before its cluster's first leader committed one, or a joiner before it asked a member). A link between
 * two nodes that both know an id and whose ids differ is refused by both ends once the other end's proof is
 * checked: the accepting node closes it with PEER_CLUSTER_CLOSE_CODE instead of taking frames, the dialling node
 * sends nothing on it. Same node ids and the same secret are not enough to join another cluster's log. The ids
 * are not covered by the proofs: they guard against mistakes (a data folder of another cluster), not against an
 * attacker on the path, whom mutual TLS keeps out.
 *
 * Several secrets may be accepted at once (a rotation: the new one first, the
 * old one second). The accepting node proves every one it holds; the dialling
 * node uses the first of its own that the answer proves, so two nodes that
 * share any one secret link.
 */

export const PEER_NONCE_BYTES = 32;
/** Longest a dialled node waits for the hello on a link it accepted. */
export const PEER_HANDSHAKE_TIMEOUT_MS = 5_000;
/** Most bytes a not yet authenticated link may send (its hello is about 100). */
export const PEER_HELLO_MAX_BYTES = 4_096;
/** Close code for a link whose hello is missing, malformed or carries a wrong proof. */
export const PEER_AUTH_CLOSE_CODE = 4401;
/** Close code for an authenticated link whose two ends hold data of different clusters. */
export const PEER_CLUSTER_CLOSE_CODE = 4409;
/** The refusal code of a node of another cluster (peer links, joins). */
export const CLUSTER_MISMATCH = HttpErrorCode.RQ_CLUSTER_MISMATCH;
/** Most cluster secrets a node accepts at once (the current one and, during a rotation, one more). */
export const CLUSTER_SECRETS_MAX = 2;

export const PEER_HEADER = {
  from: "x-ratequeue-from",
  to: "x-ratequeue-to",
  nonce: "x-ratequeue-nonce",
  proof: "x-ratequeue-proof",
  /** The sender's cluster id; absent while it knows none. */
  cluster: "x-ratequeue-cluster",
} as const;

/** A cluster id as made by newClusterId: 16 lowercase hex digits (64 random bits, as etcd's). */
const CLUSTER_ID_PATTERN = /^[0-9a-f]{16}$/;

/** A fresh cluster id. */
export function newClusterId(): string {
  return randomBytes(8).toString("hex");
}

export function isClusterId(value: unknown): value is string {
  return typeof value === "string" && CLUSTER_ID_PATTERN.test(value);
}

/**
 * A cluster id header: the id, null when absent (the sender knows none), or undefined when malformed (the link is
 * refused as malformed).
 */
export function parseClusterHeader(value: unknown): string | null | undefined {
  if (value === undefined) return null;
  return isClusterId(value) ? value : undefined;
}

/** True when both ids are known and differ: the two nodes hold data of different clusters. */
export function clustersDiffer(own: string | null, theirs: string | null): boolean {
  return own !== null && theirs !== null && own !== theirs;
}

/** The one-line refusal both ends log and the accepting end sends as its close reason. */
export function clusterMismatchReason(own: string, theirs: string): string {
  return `${CLUSTER_MISMATCH}: this node belongs to cluster ${own}, the peer to cluster ${theirs}`;
}

export type ProofRole = "dial" | "accept";

export interface LinkNonces {
  /** The dialling node's nonce. */
  readonly dial: Uint8Array;
  /** The accepting node's nonce. */
  readonly accept: Uint8Array;
}

export function newNonce(): Buffer {
  return randomBytes(PEER_NONCE_BYTES);
}

/** HMAC-SHA256 under `secret` over the role, both ends and both nonces. */
export function peerProof(secret: string, role: ProofRole, from: string, to: string, nonces: LinkNonces): Buffer {
  return createHmac("sha256", secret)
    .update(`ratequeue-peer-link\n${role}\n${from}\n${to}\n`)
    .update(nonces.dial)
    .update(nonces.accept)
    .digest();
}

/** The first of `secrets` whose proof equals `given`, or null. Compares in constant time. */
export function secretProving(
  secrets: readonly string[],
  given: Uint8Array,
  role: ProofRole,
  from: string,
  to: string,
  nonces: LinkNonces,
): string | null {
  for (const secret of secrets) {
    const expected = peerProof(secret, role, from, to, nonces);
    if (given.byteLength === expected.byteLength && timingSafeEqual(given, expected)) return secret;
  }
  return null;
}

/** A 32-byte nonce from its base64url header form, or null. */
export function parseNonce(value: unknown): Buffer | null {
  if (typeof value !== "string" || !/^[A-Za-z0-9_-]{43}$/.test(value)) return null;
  const bytes = Buffer.from(value, "base64url");
  return bytes.byteLength === PEER_NONCE_BYTES ? bytes : null;
}

/** The accepting node's proofs, one per secret, as they travel in its upgrade answer. */
export function formatProofs(proofs: readonly Uint8Array[]): string {
  return proofs.map((p) => Buffer.from(p).toString("base64url")).join(",");
}

/** Proofs from their header form; malformed entries are dropped. At most CLUSTER_SECRETS_MAX are read. */
export function parseProofs(value: unknown): Buffer[] {
  if (typeof value !== "string") return [];
  return value
    .split(",", CLUSTER_SECRETS_MAX)
    .filter((p) => /^[A-Za-z0-9_-]{43}$/.test(p))
    .map((p) => Buffer.from(p, "base64url"));
}

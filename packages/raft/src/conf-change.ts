import { RaftError, RaftErrorCode } from "./errors.js";
import type { ConfChange, ConfState, NodeId } from "./types.js";

/** Longest node id, in UTF-8 bytes. Bounds every encoded conf change. */
export const MAX_NODE_ID_BYTES = 256;

const TYPE_CODES = { addLearner: 1, promote: 2, remove: 3 } as const;
const TYPES_BY_CODE = ["", "addLearner", "promote", "remove"] as const;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Checks a node id given by a caller; throws `RAFT_MISUSE` when it is not a usable id. */
export function checkNodeId(id: unknown, what: string): asserts id is NodeId {
  if (typeof id !== "string" || id.length === 0 || encoder.encode(id).byteLength > MAX_NODE_ID_BYTES) {
    throw new RaftError(RaftErrorCode.MISUSE, `${what}: a node id must be a non-empty string of at most ${MAX_NODE_ID_BYTES} bytes`);
  }
}

/**
 * Encodes a conf change as entry data: one type byte, then the node id in UTF-8.
 *
 * @example
 * const data = encodeConfChange({ type: "addLearner", nodeId: "n4" });
 * decodeConfChange(data); // { type: "addLearner", nodeId: "n4" }
 */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const code = typeof cc === "object" && cc !== null ? TYPE_CODES[cc.type] : undefined;
  if (code === undefined) throw new RaftError(RaftErrorCode.MISUSE, "encodeConfChange: type must be addLearner, promote or remove");
  checkNodeId(cc.nodeId, "encodeConfChange");
  const id = encoder.encode(cc.nodeId);
  const out = new Uint8Array(1 + id.byteLength);
  out[0] = code;
  out.set(id, 1);
  return out;
}

/** Decodes what `encodeConfChange` produced; throws `RAFT_BAD_CONF_CHANGE` on anything else. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const type = TYPES_BY_CODE[data[0] ?? 0];
  if (type === undefined || type === "") {
    throw new RaftError(RaftErrorCode.BAD_CONF_CHANGE, `decodeConfChange: unknown type byte ${data[0]}`);
  }
  if (data.byteLength < 2 || data.byteLength > 1 + MAX_NODE_ID_BYTES) {
    throw new RaftError(RaftErrorCode.BAD_CONF_CHANGE, `decodeConfChange: bad length ${data.byteLength}`);
  }
  let nodeId: string;
  try {
    nodeId = decoder.decode(data.subarray(1));
  } catch (cause) {
    throw new RaftError(RaftErrorCode.BAD_CONF_CHANGE, "decodeConfChange: node id is not valid UTF-8", { cause });
  }
  return { type, nodeId };
}

/**
 * Why `cc` cannot apply to `conf`, or null when it can. Checked when a change
 * is proposed and again when it is applied, so that every member skips the
 * same invalid changes.
 */
export function confChangeProblem(conf: ConfState, cc: ConfChange): string | null {
  const id = cc.nodeId;
  if (conf.removed.includes(id)) return `node ${id} was removed; a node id is never reused`;
  const isVoter = conf.voters.includes(id);
  const isLearner = conf.learners.includes(id);
  switch (cc.type) {
    case "addLearner":
      return isVoter || isLearner ? `node ${id} is already a member` : null;
    case "promote":
      return isLearner ? null : `node ${id} is not a learner`;
    case "remove":
      if (!isVoter && !isLearner) return `node ${id} is not a member`;
      if (isVoter && conf.voters.length === 1) return `cannot remove the last voter ${id}`;
      return null;
  }
}

/** The membership after `cc`; `cc` must be valid for `conf` (see `confChangeProblem`). */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  const id = cc.nodeId;
  switch (cc.type) {
    case "addLearner":
      return { voters: conf.voters, learners: [...conf.learners, id], removed: conf.removed };
    case "promote":
      return { voters: [...conf.voters, id], learners: conf.learners.filter((x) => x !== id), removed: conf.removed };
    case "remove":
      return {
        voters: conf.voters.filter((x) => x !== id),
        learners: conf.learners.filter((x) => x !== id),
        removed: [...conf.removed, id],
      };
  }
}

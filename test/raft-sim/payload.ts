/**
 * Workload payloads. Each client proposal has a unique id; a retry carries
 * the same id with a higher attempt number, so the log may legitimately hold
 * one id twice, and the checker tells a retry from a lost entry by the id.
 */
const PREFIX = "rq1:";

export interface Payload {
  /** Unique per client proposal, e.g. "c3.17". */
  readonly id: string;
  readonly attempt: number;
}

export function encodePayload(payload: Payload): Uint8Array {
  if (!/^[a-z0-9.]+$/.test(payload.id)) throw new RangeError(`payload id must be [a-z0-9.]+, got ${JSON.stringify(payload.id)}`);
  return new TextEncoder().encode(`${PREFIX}${payload.id}:${payload.attempt}`);
}

/** The payload carried by entry data, or null for data the workload did not write (e.g. a leader's empty no-op). */
export function decodePayload(data: Uint8Array): Payload | null {
  if (data.length === 0) return null;
  const text = new TextDecoder().decode(data);
  const match = /^rq1:([a-z0-9.]+):(\d+)$/.exec(text);
  if (match === null) return null;
  return { id: match[1]!, attempt: Number(match[2]) };
}

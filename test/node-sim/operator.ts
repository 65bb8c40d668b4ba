/**
 * The simulated operator: admin changes proposed through the log during the
 * faulty phase, as the admin API proposes them (`PUT`/`DELETE
 * /v1/resources/{name}`, `POST`/`DELETE /v1/keys`): limits raised and
 * lowered, windows lengthened and shortened, algorithms switched, load
 * dimensions swapped, a resource created, deleted and created again, API
 * keys created and revoked. One seeded Prng chooses each change.
 *
 * Every change keeps the workload's loads valid (each acquire names every
 * dimension the resource counts, SPEC "load") and its waits short (windows
 * of at most 2 s), so the liveness phase stays bounded; lanes and reserved
 * capacity are left alone (the checker's lane shares are static).
 */
import { keyFromSecret, type Op } from "@ratequeue/node/testing";
import type { Prng } from "@ratequeue/testkit";

/** The resource the operator creates, deletes and creates again (absent at bootstrap). */
export const EXTRA_RESOURCE = "extra";

const WINDOWS = ["sliding", "fixed", "bucket"] as const;

/** A limit's window: a third to twice `baseMs`, at most 2 s. */
function windowMs(p: Prng, baseMs: number): number {
  return Math.min(2000, p.pick([Math.round(baseMs / 3), Math.round(baseMs / 2), baseMs, baseMs * 2]));
}

/** Half to twice `base`, at least `min`. */
function around(p: Prng, base: number, min = 1): number {
  return Math.max(min, Math.round((base * p.int(50, 200)) / 100));
}

/** A new config body for `chat` (a plain load: its load limit keeps the default dimension). */
function chatConfig(p: Prng): object {
  const limits: object[] = [
    { kind: "rate", limit: around(p, 6), windowMs: windowMs(p, 1000), window: p.pick(WINDOWS) },
    // At least 60 units: the workload's loads (1..50) stay grantable.
    { kind: "load", limit: around(p, 120, 60), windowMs: windowMs(p, 1000), window: p.pick(WINDOWS) },
  ];
  if (p.chance(0.8)) limits.push({ kind: "concurrency", limit: p.int(1, 5) });
  return { limits };
}

/** A new config body for `embed`: the two token limits may swap dimensions (each counts the other's tokens). */
function embedConfig(p: Prng): object {
  const [first, second] = p.chance(0.5) ? ["input", "output"] : ["output", "input"];
  return {
    limits: [
      { kind: "rate", limit: around(p, 8), windowMs: windowMs(p, 500), window: p.pick(WINDOWS) },
      // At least 100 units: loads of up to 90 input and 70 output tokens stay grantable.
      { kind: "load", limit: around(p, 200, 100), windowMs: windowMs(p, 1000), window: p.pick(WINDOWS), dimension: first },
      { kind: "load", limit: around(p, 150, 100), windowMs: windowMs(p, 2000), window: p.pick(WINDOWS), dimension: second },
      ...(p.chance(0.5) ? [{ kind: "rate", limit: around(p, 5), windowMs: windowMs(p, 400), window: "bucket" }] : []),
    ],
  };
}

/** A config body for the created-and-deleted resource: a plain load, like `chat`'s workload. */
function extraConfig(p: Prng): object {
  return {
    limits: [
      { kind: "rate", limit: around(p, 5), windowMs: windowMs(p, 1000), window: p.pick(WINDOWS) },
      { kind: "load", limit: around(p, 100, 60), windowMs: windowMs(p, 1000), window: p.pick(WINDOWS) },
      { kind: "concurrency", limit: p.int(1, 3) },
    ],
  };
}

export class Operator {
  readonly #keys: string[] = [];
  #keySeq = 0;
  #extraLive = false;

  constructor(readonly prng: Prng) {}

  /** The next admin change, as the admin API would propose it. */
  next(): { op: Op; what: string } {
    const p = this.prng;
    const roll = p.int(0, 99);
    if (roll < 25) return this.#put("chat", chatConfig(p));
    if (roll < 50) return this.#put("embed", embedConfig(p));
    if (roll < 75) {
      if (this.#extraLive && p.chance(0.4)) {
        this.#extraLive = false;
        return { op: { t: "limiter", cmd: { type: "deleteResource", name: EXTRA_RESOURCE } }, what: `delete resource ${EXTRA_RESOURCE}` };
      }
      this.#extraLive = true;
      return this.#put(EXTRA_RESOURCE, extraConfig(p));
    }
    if (this.#keys.length > 0 && p.chance(0.4)) {
      const id = this.#keys.splice(p.int(0, this.#keys.length - 1), 1)[0] as string;
      return { op: { t: "keyRemove", id }, what: `revoke key ${id}` };
    }
    const name = `sim-key-${++this.#keySeq}`;
    const key = { ...keyFromSecret(`rq_sim_${p.u32().toString(36)}${p.u32().toString(36)}`, name, { acquire: ["chat", EXTRA_RESOURCE], loadMax: 50 }) };
    this.#keys.push(key.id);
    return { op: { t: "keyAdd", key }, what: `create key ${name} (${key.id})` };
  }

  #put(name: string, config: object): { op: Op; what: string } {
    return { op: { t: "limiter", cmd: { type: "putResource", name, config } }, what: `put resource ${name} ${JSON.stringify(config)}` };
  }
}

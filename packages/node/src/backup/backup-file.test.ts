import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ClusterState } from "../core/cluster-state.js";
import { BACKUP_VERSION, makeBackup, parseBackup } from "./backup-file.js";

function sample() {
  const state = new ClusterState();
  state.apply({ at: 7_000, ops: [{ t: "limiter", cmd: { type: "putResource", name: "r", config: { limits: [{ kind: "concurrency", limit: 2 }] } } }] });
  return makeBackup({ state, node: "n1", index: 9, term: 2, createdAt: new Date(0) });
}

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

describe("backup file", () => {
  it("round-trips: the checked state equals the backed-up one", () => {
    const file = sample();
    const checked = parseBackup(JSON.stringify(file), "f");
    expect(checked.header).toMatchObject({ format: "ratequeue-backup", version: BACKUP_VERSION, index: 9, term: 2, logTime: 7_000 });
    expect(checked.header.counts).toEqual({ resources: 1, keys: 0, sessions: 0, leases: 0 });
    expect(checked.state.snapshot()).toEqual(new Uint8Array(Buffer.from(file.state, "base64")));
  });

  it("names what is wrong with a bad file", () => {
    const file = sample();
    const bad = (value: unknown): string => {
      try {
        parseBackup(typeof value === "string" ? value : JSON.stringify(value), "f");
      } catch (err) {
        return `${(err as { code: string }).code}: ${(err as Error).message}`;
      }
      return "accepted";
    };
    expect(bad("{")).toBe("RQ_BACKUP_FORMAT: f is not a RateQueue backup (not JSON; was it cut short?)");
    expect(bad([1])).toMatch(/^RQ_BACKUP_FORMAT: f is not a RateQueue backup \(its "format"/);
    expect(bad({ ...file, version: 0 })).toBe("RQ_BACKUP_VERSION: f is backup version 0; this ratequeue reads version 1");
    expect(bad({ ...file, version: 7 })).toMatch(/^RQ_BACKUP_VERSION: .*from a newer ratequeue/);
    expect(bad({ ...file, term: "2", sha256: "x" })).toBe("RQ_BACKUP_FORMAT: f has a damaged header: term must be an integer >= 0; sha256 must be 64 hex digits");
    expect(bad({ ...file, sha256: "0".repeat(64) })).toMatch(/^RQ_BACKUP_CHECKSUM: f is damaged: its state has SHA-256 [0-9a-f]{64}, the header says 0{64}$/);
    // A consistent checksum over bytes that are not a state: the state check still refuses it.
    const junk = new Uint8Array([1, 2, 3]);
    expect(bad({ ...file, state: Buffer.from(junk).toString("base64"), sha256: sha(junk) })).toMatch(/^RQ_BACKUP_STATE: f: the state does not decode/);
    expect(bad({ ...file, logTime: 1 })).toBe("RQ_BACKUP_STATE: f: the state is at log time 7000, the header says 1");
  });
});

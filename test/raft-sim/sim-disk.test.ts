import { describe, expect, it } from "vitest";
import { Prng } from "@ratequeue/testkit";
import { RELIABLE_DISK, SimDisk } from "./sim-disk.js";

const enc = new TextEncoder();

describe("SimDisk", () => {
  it("keeps synced writes and loses unsynced ones on a crash", () => {
    const disk = new SimDisk({ prng: new Prng(1), faults: RELIABLE_DISK });
    disk.append(enc.encode("ab"));
    disk.sync();
    disk.append(enc.encode("cd"));
    expect(new TextDecoder().decode(disk.read())).toBe("abcd");
    expect(disk.crash()).toEqual({ lostWrites: 1, survivedUnsyncedWrites: 0, torn: false });
    expect(new TextDecoder().decode(disk.read())).toBe("ab");
  });

  it("tears the first lost write with garbage after a prefix", () => {
    let tornSeen = false;
    for (let seed = 0; seed < 20; seed++) {
      const disk = new SimDisk({ prng: new Prng(seed), faults: { flushRate: 0, tornWriteRate: 1 } });
      disk.append(new Uint8Array(64).fill(7));
      const outcome = disk.crash();
      expect(outcome.torn).toBe(true);
      const left = disk.read();
      expect(left.length).toBeGreaterThan(0);
      expect(left.length).toBeLessThanOrEqual(64);
      expect(left[0]).toBe(7);
      if (left.length === 64 && left.some((b) => b !== 7)) tornSeen = true;
    }
    expect(tornSeen).toBe(true);
  });

  it("rejects bad fault rates, an empty write and a bad truncate", () => {
    expect(() => new SimDisk({ prng: new Prng(1), faults: { flushRate: -1, tornWriteRate: 0 } })).toThrow(/flushRate/);
    const disk = new SimDisk({ prng: new Prng(1), faults: RELIABLE_DISK });
    expect(() => disk.append(new Uint8Array(0))).toThrow(/empty/);
    expect(() => disk.truncate(5)).toThrow(/outside/);
  });
});

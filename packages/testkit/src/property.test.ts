import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkAsyncProperty, checkProperty, propertyRuns } from "./property.js";

const FILE = "packages/testkit/src/property.test.ts";

describe("checkProperty", () => {
  it("passes a property that holds, running it the given number of times", () => {
    let runs = 0;
    checkProperty({ file: FILE, name: "holds", runs: 37 }, fc.property(fc.nat(), () => void runs++));
    expect(runs).toBe(propertyRuns(37));
  });

  it("throws on a counterexample, with the shrunk case and a one-line replay command", () => {
    const failing = () => checkProperty({ file: FILE, name: "fails" }, fc.property(fc.nat(), (n) => n < 10));
    expect(failing).toThrow(/Counterexample: \[10\][\s\S]*replay: RQ_SEED=-?\d+ RQ_PATH=\S+ npx vitest run packages\/testkit\/src\/property\.test\.ts -t "fails"/);
  });
});

describe("checkAsyncProperty", () => {
  it("awaits every run of a property that holds, the given number of times", async () => {
    let runs = 0;
    await checkAsyncProperty(
      { file: FILE, name: "holds async", runs: 23 },
      fc.asyncProperty(fc.nat(), async () => {
        await new Promise((r) => setImmediate(r));
        runs++;
      }),
    );
    expect(runs).toBe(propertyRuns(23));
  });

  it("rejects on a counterexample, with the shrunk case and a one-line replay command", async () => {
    const failing = checkAsyncProperty(
      { file: FILE, name: "fails async" },
      fc.asyncProperty(fc.nat(), async (n) => {
        await new Promise((r) => setImmediate(r));
        if (n >= 10) throw new Error(`${n} is too big`);
      }),
    );
    await expect(failing).rejects.toThrow(
      /Counterexample: \[10\][\s\S]*replay: RQ_SEED=-?\d+ RQ_PATH=\S+ npx vitest run packages\/testkit\/src\/property\.test\.ts -t "fails async"/,
    );
  });

  it("replays exactly the case RQ_SEED and RQ_PATH name", async () => {
    const seen: number[] = [];
    const property = () => fc.asyncProperty(fc.nat(), async (n) => {
      seen.push(n);
      if (n >= 10) throw new Error("too big");
    });
    const error = await checkAsyncProperty({ file: FILE, name: "replay" }, property()).then(() => null, (e: Error) => e);
    const [, seed, path] = /RQ_SEED=(-?\d+) RQ_PATH=(\S+)/.exec(error!.message)!;
    seen.length = 0;
    process.env.RQ_SEED = seed;
    process.env.RQ_PATH = path;
    try {
      await expect(checkAsyncProperty({ file: FILE, name: "replay" }, property())).rejects.toThrow(/Counterexample: \[10\]/);
    } finally {
      delete process.env.RQ_SEED;
      delete process.env.RQ_PATH;
    }
    expect(seen[0], "the first run is the recorded counterexample").toBe(10);
  });
});

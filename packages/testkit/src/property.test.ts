import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkProperty, propertyRuns } from "./property.js";

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

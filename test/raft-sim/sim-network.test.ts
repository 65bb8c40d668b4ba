import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Prng } from "@ratequeue/testkit";
import { CALM_NETWORK, SimNetwork } from "./sim-network.js";

interface Msg {
  from: string;
  to: string;
  n: number;
}

function drain(net: SimNetwork<Msg>, untilMs: number): { atMs: number; m: Msg }[] {
  const out: { atMs: number; m: Msg }[] = [];
  for (let t = 0; t <= untilMs; t++) for (let m = net.takeDue(t); m !== undefined; m = net.takeDue(t)) out.push({ atMs: t, m });
  return out;
}

describe("SimNetwork", () => {
  it("keeps each link FIFO without reorder faults, whatever the delays", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 30 }), (seed, maxDelayMs) => {
        const net = new SimNetwork<Msg>({ prng: new Prng(seed), faults: { ...CALM_NETWORK, minDelayMs: 0, maxDelayMs } });
        for (let n = 0; n < 50; n++) net.send({ from: n % 2 ? "a" : "b", to: "c", n }, n);
        const got = drain(net, 200);
        expect(got).toHaveLength(50);
        for (const from of ["a", "b"]) {
          const ns = got.filter((g) => g.m.from === from).map((g) => g.m.n);
          expect(ns).toEqual([...ns].sort((x, y) => x - y));
        }
        for (const g of got) expect(g.atMs).toBeGreaterThanOrEqual(g.m.n);
      }),
    );
  });

  it("reorders, drops and duplicates at the configured rates", () => {
    const net = new SimNetwork<Msg>({
      prng: new Prng(5),
      faults: { dropRate: 0.2, duplicateRate: 0.1, minDelayMs: 0, maxDelayMs: 20, reorderRate: 0.5 },
    });
    for (let n = 0; n < 2000; n++) net.send({ from: "a", to: "b", n }, n);
    const got = drain(net, 3000).map((g) => g.m.n);
    expect(net.stats.dropped).toBeGreaterThan(300);
    expect(net.stats.dropped).toBeLessThan(500);
    expect(got.length).toBe(2000 - net.stats.dropped + net.stats.duplicated);
    expect(new Set(got).size).toBeLessThan(got.length); // some duplicates arrived
    expect(got).not.toEqual([...got].sort((x, y) => x - y)); // some overtook others
  });

  it("loses messages on a cut link, including those already in flight, and only one way", () => {
    const net = new SimNetwork<Msg>({ prng: new Prng(1), faults: { ...CALM_NETWORK, minDelayMs: 5, maxDelayMs: 5 } });
    net.send({ from: "a", to: "b", n: 1 }, 0); // in flight when the cut comes
    net.cut("a", "b");
    net.send({ from: "a", to: "b", n: 2 }, 1);
    net.send({ from: "b", to: "a", n: 3 }, 1);
    expect(drain(net, 10).map((g) => g.m.n)).toEqual([3]);
    expect(net.stats.cut).toBe(2);
    net.heal("a", "b");
    net.send({ from: "a", to: "b", n: 4 }, 20);
    expect(drain(net, 30).map((g) => g.m.n)).toEqual([4]);
  });

  it("drops exactly the messages a script's rule names", () => {
    const net = new SimNetwork<Msg>({ prng: new Prng(1), faults: CALM_NETWORK });
    const stopEven = net.dropWhere((m) => m.n % 2 === 0);
    const stopFive = net.dropWhere((m) => m.n === 5);
    for (let n = 0; n < 6; n++) net.send({ from: "a", to: "b", n }, 0);
    stopEven();
    stopFive();
    net.send({ from: "a", to: "b", n: 8 }, 0);
    expect(drain(net, 10).map((g) => g.m.n)).toEqual([1, 3, 8]);
    expect(net.stats.ruled).toBe(4);
  });

  it("partitions both ways, isolates and reconnects a node", () => {
    const all = ["a", "b", "c"];
    const net = new SimNetwork<Msg>({ prng: new Prng(1), faults: CALM_NETWORK });
    net.isolate("a", all);
    expect(net.cutLinks()).toEqual(["a>b", "a>c", "b>a", "c>a"]);
    net.reconnect("a", all);
    net.partition(["a", "b"], ["c"]);
    expect(net.cutLinks()).toEqual(["a>c", "b>c", "c>a", "c>b"]);
    net.healAll();
    expect(net.cutLinks()).toEqual([]);
  });

  it("rejects bad fault rates and a message to oneself", () => {
    expect(() => new SimNetwork<Msg>({ prng: new Prng(1), faults: { ...CALM_NETWORK, dropRate: 2 } })).toThrow(/dropRate/);
    expect(() => new SimNetwork<Msg>({ prng: new Prng(1), faults: { ...CALM_NETWORK, minDelayMs: 4, maxDelayMs: 2 } })).toThrow(/delay/);
    const net = new SimNetwork<Msg>({ prng: new Prng(1), faults: CALM_NETWORK });
    expect(() => net.send({ from: "a", to: "a", n: 0 }, 0)).toThrow(/itself/);
  });
});

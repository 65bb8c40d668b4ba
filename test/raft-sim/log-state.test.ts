import fc from "fast-check";
import type { Entry } from "@ratequeue/raft";
import { describe, expect, it } from "vitest";
import { LogState } from "./log-state.js";

const conf = { voters: ["a"], learners: [], removed: [] };

function e(index: number, term: number): Entry {
  return { index, term, type: "normal", data: new Uint8Array([index & 0xff]) };
}

describe("LogState", () => {
  it("matches a plain array model under appends, overwrites and compactions", () => {
    // The model: an array of terms by index (index 0 unused) and a snapshot index.
    const op = fc.oneof(
      fc.record({ kind: fc.constant("append" as const), back: fc.nat(4), count: fc.integer({ min: 1, max: 4 }), term: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant("compact" as const), back: fc.nat(6) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const log = new LogState();
        const terms: number[] = [0];
        let snap = 0;
        for (const o of ops) {
          const last = terms.length - 1;
          if (o.kind === "append") {
            const from = Math.max(snap + 1, last + 1 - o.back);
            const entries = Array.from({ length: o.count }, (_, i) => e(from + i, o.term));
            log.apply({ type: "entries", entries });
            terms.length = from;
            for (const x of entries) terms.push(x.term);
          } else {
            const at = Math.max(snap, last - o.back);
            if (at === snap) continue;
            log.apply({ type: "compact", snapshot: { meta: { index: at, term: terms[at]!, confState: conf }, data: new Uint8Array(0) } });
            snap = at;
          }
          expect(log.lastIndex()).toBe(terms.length - 1);
          for (let i = snap; i < terms.length; i++) expect(log.termAt(i)).toBe(terms[i]);
          if (snap > 1) expect(log.entryAt(snap - 1)).toBeUndefined();
        }
      }),
    );
  });

  it("refuses a gap and skips entries a snapshot already covers", () => {
    const log = new LogState();
    log.apply({ type: "entries", entries: [e(1, 1), e(2, 1)] });
    expect(() => log.apply({ type: "entries", entries: [e(4, 1)] })).toThrow(/gap/);
    log.apply({ type: "installSnapshot", snapshot: { meta: { index: 5, term: 2, confState: conf }, data: new Uint8Array(0) } });
    log.apply({ type: "entries", entries: [e(4, 2), e(5, 2), e(6, 2)] });
    expect(log.lastIndex()).toBe(6);
    expect(log.termAt(5)).toBe(2);
    expect(() => log.apply({ type: "compact", snapshot: { meta: { index: 9, term: 2, confState: conf }, data: new Uint8Array(0) } })).toThrow(/beyond/);
  });
});

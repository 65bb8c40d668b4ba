/**
 * Raft's safety properties (paper figure 3) checked by fast-check over random
 * schedules: messages delivered out of order, dropped and duplicated, nodes
 * crashed and restarted, partitions, compaction. The reference model is the
 * simplest one: a single committed sequence of values, which every node's
 * applied state must be a prefix of. Then, with the faults healed, the
 * cluster must make progress (liveness).
 *
 * RQ_PROPERTY_RUNS scales the runs; a failure prints a replay command.
 */
import fc from "fast-check";
import { describe, test } from "vitest";
import { TestCluster } from "./test-cluster.js";
import { checkProperty } from "@ratequeue/testkit";

type Action =
  | { kind: "tick"; node: number }
  | { kind: "tickAll"; times: number }
  | { kind: "deliverAll" }
  | { kind: "deliver"; pick: number }
  | { kind: "drop"; pick: number }
  | { kind: "duplicate"; pick: number }
  | { kind: "propose"; node: number }
  | { kind: "crash"; node: number }
  | { kind: "restart"; node: number }
  | { kind: "isolate"; node: number }
  | { kind: "heal" }
  | { kind: "compact"; node: number }
  | { kind: "read"; node: number }
  | { kind: "transfer"; node: number }
  | { kind: "addLearner" }
  | { kind: "promote"; pick: number }
  | { kind: "remove"; node: number };

const node = fc.nat({ max: 4 });
const pick = fc.nat({ max: 1000 });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: node.map((n) => ({ kind: "tick" as const, node: n })) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 4 }).map((times) => ({ kind: "tickAll" as const, times })) },
  { weight: 3, arbitrary: fc.constant({ kind: "deliverAll" as const }) },
  { weight: 12, arbitrary: pick.map((p) => ({ kind: "deliver" as const, pick: p })) },
  { weight: 1, arbitrary: pick.map((p) => ({ kind: "drop" as const, pick: p })) },
  { weight: 1, arbitrary: pick.map((p) => ({ kind: "duplicate" as const, pick: p })) },
  { weight: 3, arbitrary: node.map((n) => ({ kind: "propose" as const, node: n })) },
  { weight: 1, arbitrary: node.map((n) => ({ kind: "crash" as const, node: n })) },
  { weight: 1, arbitrary: node.map((n) => ({ kind: "restart" as const, node: n })) },
  { weight: 1, arbitrary: node.map((n) => ({ kind: "isolate" as const, node: n })) },
  { weight: 1, arbitrary: fc.constant({ kind: "heal" as const }) },
  { weight: 1, arbitrary: node.map((n) => ({ kind: "compact" as const, node: n })) },
  { weight: 1, arbitrary: node.map((n) => ({ kind: "read" as const, node: n })) },
);

/** The same faults, plus leadership transfers and membership changes. */
const actionWithMembership: fc.Arbitrary<Action> = fc.oneof(
  { weight: 30, arbitrary: action },
  { weight: 1, arbitrary: node.map((n) => ({ kind: "transfer" as const, node: n })) },
  { weight: 1, arbitrary: fc.constant({ kind: "addLearner" as const }) },
  { weight: 1, arbitrary: pick.map((p) => ({ kind: "promote" as const, pick: p })) },
  { weight: 1, arbitrary: node.map((n) => ({ kind: "remove" as const, node: n })) },
);

/** Checks the safety properties on the current cluster state; `history` carries what was seen before. */
interface History {
  readonly leaderOfTerm: Map<number, string>;
  committed: string[];
  readonly unique: boolean;
  /** For each read context: the highest commit index of any node when the read was requested. */
  readonly readFloor: Map<string, number>;
  /** Per node, how many of its ReadStates were checked. */
  readonly readsChecked: Map<string, number>;
}

function checkSafety(c: TestCluster, history: History): void {
  // Election Safety: at most one leader per term, ever.
  for (const id of c.leaders()) {
    const term = c.get(id).node.status().term;
    const seen = history.leaderOfTerm.get(term);
    if (seen !== undefined && seen !== id) throw new Error(`two leaders in term ${term}: ${seen} and ${id}`);
    history.leaderOfTerm.set(term, id);
  }
  // State Machine Safety against the reference model: one committed sequence.
  for (const id of c.ids()) {
    const state = c.get(id).state;
    const common = Math.min(state.length, history.committed.length);
    for (let i = 0; i < common; i++) {
      if (state[i] !== history.committed[i]) {
        throw new Error(`${id} applied ${state[i]} at position ${i}, the committed sequence has ${history.committed[i]}`);
      }
    }
    if (state.length > history.committed.length) history.committed = [...state];
    // A duplicated forwarded proposal is legitimately appended twice (Raft is at-least-once;
    // the application deduplicates by request id), so uniqueness holds only without duplication.
    if (history.unique && new Set(state).size !== state.length) throw new Error(`${id} applied a value twice`);
  }
  // Linearizable reads: a ReadState's index covers everything committed before the read began.
  for (const id of c.ids()) {
    const states = c.get(id).readStates;
    for (let i = history.readsChecked.get(id) ?? 0; i < states.length; i++) {
      const context = new TextDecoder().decode(states[i]!.context);
      const floor = history.readFloor.get(context);
      if (floor === undefined) throw new Error(`${id} got a ReadState for an unknown read ${context}`);
      if (states[i]!.index < floor) throw new Error(`read ${context} got index ${states[i]!.index} < ${floor} committed before it`);
    }
    history.readsChecked.set(id, states.length);
  }
  // Log Matching: two logs that hold an entry with the same index and term agree on everything before it.
  const ids = c.ids();
  for (let a = 0; a < ids.length; a++) {
    for (let b = a + 1; b < ids.length; b++) {
      const sa = c.get(ids[a]!).storage;
      const sb = c.get(ids[b]!).storage;
      const lo = Math.max(sa.firstIndex(), sb.firstIndex());
      const hi = Math.min(sa.lastIndex(), sb.lastIndex());
      let matched = false;
      for (let i = hi; i >= lo; i--) {
        const same = sa.term(i) === sb.term(i);
        if (matched && !same) throw new Error(`logs of ${ids[a]} and ${ids[b]} match at a later index but differ at ${i}`);
        if (same) matched = true;
      }
    }
  }
}

function run(voterCount: number, seed: number, actions: readonly Action[]): void {
  const voters = Array.from({ length: voterCount }, (_, i) => `n${i + 1}`);
  const c = new TestCluster({ voters, seed });
  const history: History = {
    leaderOfTerm: new Map(),
    committed: [],
    unique: !actions.some((a) => a.kind === "duplicate"),
    readFloor: new Map(),
    readsChecked: new Map(),
  };
  const nodeId = (n: number) => {
    const ids = c.ids();
    return ids[n % ids.length]!;
  };
  const leader = () => {
    const leaders = c.leaders();
    return leaders.length === 1 ? c.get(leaders[0]!) : undefined;
  };
  let proposals = 0;
  let reads = 0;
  let joiners = 0;
  for (const a of actions) {
    switch (a.kind) {
      case "tick":
        if (c.get(nodeId(a.node)).up) c.tick(nodeId(a.node));
        break;
      case "tickAll":
        c.tickAll(a.times);
        break;
      case "deliverAll":
        c.deliverAll();
        break;
      case "deliver":
      case "drop":
      case "duplicate": {
        if (c.queue.length === 0) break;
        const i = a.pick % c.queue.length;
        const m = c.queue[i]!;
        if (a.kind === "duplicate") {
          c.queue.push(structuredClone(m));
          break;
        }
        c.queue.splice(i, 1);
        if (a.kind === "deliver") {
          const to = c.get(m.to);
          if (to.up) to.node.step(m);
        }
        break;
      }
      case "propose": {
        const tn = c.get(nodeId(a.node));
        if (tn.up) c.propose(tn.id, `v${proposals++}`);
        break;
      }
      case "crash":
        // Keep a majority up so that the property also exercises progress.
        if (c.ids().filter((id) => !c.get(id).up).length < (voterCount - 1) / 2) c.crash(nodeId(a.node));
        break;
      case "restart":
        if (!c.get(nodeId(a.node)).up) c.restart(nodeId(a.node));
        break;
      case "isolate":
        c.isolate(nodeId(a.node));
        break;
      case "heal":
        c.heal();
        break;
      case "read": {
        const tn = c.get(nodeId(a.node));
        if (!tn.up) break;
        const context = `r${reads++}`;
        history.readFloor.set(context, Math.max(...c.ids().map((id) => c.get(id).node.status().commit)));
        tn.node.readIndex(new TextEncoder().encode(context));
        break;
      }
      case "transfer": {
        const l = leader();
        if (l !== undefined) l.node.transferLeadership(nodeId(a.node));
        break;
      }
      case "addLearner": {
        const l = leader();
        if (l === undefined || c.ids().length >= 7) break;
        const id = `x${joiners++}`;
        if (l.node.proposeConfChange({ type: "addLearner", nodeId: id }).outcome === "accepted") c.addNode(id);
        break;
      }
      case "promote": {
        const l = leader();
        const learners = l?.node.status().confState.learners ?? [];
        if (l !== undefined && learners.length > 0) {
          l.node.proposeConfChange({ type: "promote", nodeId: learners[a.pick % learners.length]! });
        }
        break;
      }
      case "remove": {
        const l = leader();
        const conf = l?.node.status().confState;
        // Keep at least three voters, so that one crash never blocks the cluster for good.
        if (l !== undefined && conf !== undefined && conf.voters.length > 3) {
          l.node.proposeConfChange({ type: "remove", nodeId: nodeId(a.node) });
        }
        break;
      }
      case "compact": {
        const tn = c.get(nodeId(a.node));
        if (tn.up && tn.appliedIndex > tn.storage.snapshot().meta.index) c.compact(tn.id);
        break;
      }
    }
    for (const id of c.ids()) while (c.processReady(id));
    checkSafety(c, history);
  }
  // Liveness: heal everything; a leader emerges and a new value commits everywhere.
  // A leader may still step down (check-quorum) and lose a fresh proposal: propose again then.
  c.heal();
  for (const id of c.ids()) if (!c.get(id).up) c.restart(id);
  let attempt = 0;
  let proposedAt: string | null = null;
  const members = () => {
    const l = leader();
    if (l === undefined) return c.ids();
    const conf = l.node.status().confState;
    return [...conf.voters, ...conf.learners].filter((id) => c.nodes.has(id));
  };
  const done = () => c.leaders().length === 1 && members().every((id) => c.get(id).state.some((v) => v.startsWith("final-")));
  for (let round = 0; round < 100 && !done(); round++) {
    c.tickAll();
    c.stabilize();
    const leaders = c.leaders();
    if (leaders.length === 1) {
      const status = c.get(leaders[0]!).node.status();
      const at = `${status.id}@${status.term}`;
      if (proposedAt !== at && !c.get(leaders[0]!).state.some((v) => v.startsWith("final-"))) {
        const r = c.propose(leaders[0]!, `final-${attempt++}`);
        // A transfer (or a removed leader's hand-over) in progress refuses proposals for a while.
        if (r.outcome === "refused" && r.code !== "TRANSFERRING") throw new Error(`the leader refused a proposal: ${JSON.stringify(r)}`);
        if (r.outcome === "accepted") proposedAt = at;
      }
    }
    checkSafety(c, history);
  }
  if (process.env.RQ_DEBUG_STATS !== undefined) {
    const terms = Math.max(...c.ids().map((id) => c.get(id).node.status().term));
    const conf = leader()?.node.status().confState;
    const readsDone = [...history.readsChecked.values()].reduce((a, b) => a + b, 0);
    console.log(
      `actions=${actions.length} committed=${history.committed.length} proposals=${proposals} terms=${terms} ` +
        `voters=${conf?.voters.length} learners=${conf?.learners.length} removed=${conf?.removed.length} reads=${readsDone}/${reads}`,
    );
  }
  if (!done()) throw new Error(`a healed cluster made no progress in 100 rounds:\n${describeCluster(c)}`);
}

/** A readable dump of every node, printed with a failure. */
function describeCluster(c: TestCluster): string {
  return c
    .ids()
    .map((id) => {
      const tn = c.get(id);
      const s = tn.node.status();
      const progress = s.progress === null ? "" : ` progress=${JSON.stringify(s.progress)}`;
      return `${id} up=${tn.up} ${s.role} term=${s.term} leader=${s.leader} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} storage=[${tn.storage.firstIndex()},${tn.storage.lastIndex()}] state=${tn.state.join(",")}${progress}`;
    })
    .join("\n");
}

describe("Raft safety under random faults (figure 3)", () => {
  test("3 nodes: election safety, log matching and state machine safety hold; a healed cluster makes progress", () => {
    checkProperty(
      { file: "packages/raft/src/raft-safety.test.ts", name: "3 nodes", runs: 300 },
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.array(action, { minLength: 100, maxLength: 400, size: "max" }), (seed, actions) =>
        run(3, seed, actions),
      ),
    );
  });

  test("5 nodes: the same", () => {
    checkProperty(
      { file: "packages/raft/src/raft-safety.test.ts", name: "5 nodes", runs: 150 },
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.array(action, { minLength: 100, maxLength: 400, size: "max" }), (seed, actions) =>
        run(5, seed, actions),
      ),
    );
  });

  test("3 nodes with membership changes, leadership transfers and reads: the same", () => {
    checkProperty(
      { file: "packages/raft/src/raft-safety.test.ts", name: "with membership changes", runs: 150 },
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(actionWithMembership, { minLength: 100, maxLength: 400, size: "max" }),
        (seed, actions) => run(3, seed, actions),
      ),
    );
  });
});

import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, CLUSTER_SECRET, Cluster, sleep, waitFor, type NodeProcess, type NodeStatus } from "../../test/cluster/harness.js";
import { appliedEffects, readNodeLog } from "../nemesis/log-dump.js";
import { decodePayload } from "@ratequeue/node/testing";
import {
  answerBurst,
  badFrames,
  connectionFlood,
  garbageAndPeerProbes,
  halfOpenSockets,
  leakedKeyAttacks,
  oversizedFrames,
  pinningReader,
  slowReaders,
  type AttackTarget,
  type LeakedKeyTarget,
} from "./attacks.js";
import { Inspector, inspectorUrl, type HeapAfterGc } from "@ratequeue/testkit";

// Issue 6, part 3: bad input under load. While a well-behaved SDK client acquires and releases without pause, a
// fuzzer throws random and mutated frames, oversized frames, a flood of connections, half-open sockets, slow readers,
// raw garbage and unauthenticated peer upgrades at the leader, and (issue #15) plays an attacker holding a leaked
// worker key (admin requests, requests outside its scope, other resources' metrics), a captured peer handshake
// replayed, and a key revoked mid-session. The node must keep serving the good client, keep its memory bounded,
// refuse every attack, and change nothing in the replicated state that the good client did not cause.
// RQ_FUZZ_SCALE multiplies every attack's size (default 1); RQ_FUZZ_SEED fixes the fuzz cases.

const SCALE = Number(process.env.RQ_FUZZ_SCALE ?? 1);
const SEED = Number(process.env.RQ_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
const ROUNDS = Math.max(2, Number(process.env.RQ_FUZZ_ROUNDS ?? 4));
/**
 * Stated memory bound for the leader process (RSS): at most this much over its RSS just before the fuzzer starts,
 * over ROUNDS rounds. RSS also counts memory the allocator keeps after a GC, so round-to-round growth is judged on
 * what the leader retains after a full GC instead (next two constants; see "Memory" at the end of the file).
 */
const RSS_PEAK_GROWTH_MAX_MB = 320;
/**
 * Retained memory (JS heap used + ArrayBuffers, after a full GC) may grow from the end of the first round to the end
 * of the last by at most this much plus RETAINED_PER_ENTRY_KB per log entry added meanwhile: the log is never
 * compacted here, so every entry legitimately stays in memory. Measured: about 0.9 KB per entry and +3.5 MB over
 * rounds 1-4; with the buffer leak (fixed in ops.ts) it was about 27 KB per entry, +111 MB.
 */
const RETAINED_SLACK_MB = 16;
const RETAINED_PER_ENTRY_KB = 2;
/** The good client's pause between one release and its next acquire. */
const GOOD_PAUSE_MS = 20;

/** The process's resident set in MB, or NaN once it has exited. */
function rssMb(pid: number): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return Number.NaN;
  }
  const line = status.split("\n").find((l) => l.startsWith("VmRSS:"));
  if (line === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(line.replace(/\D+/g, "")) / 1024;
}

describe("bad input under load against a live node", () => {
  let cluster: Cluster;
  let leader: NodeProcess;
  let target: LeakedKeyTarget;
  const phases: { name: string; counts: Record<string, number>; goodGrants: number; goodFailures: string[] }[] = [];
  const goodSessions = new Set<string>();
  let goodGrants = 0;
  const goodFailures: string[] = [];
  let stopGood = false;
  let goodLoop: Promise<void>;
  let good: RateQueue;
  const rss = { beforeMb: 0, peakMb: 0, afterRoundMb: [] as number[] };
  /** The leader's heap after a full GC (through its inspector), with its log's last index, before and after each round. */
  const heap: { before: RetainedSample | null; afterRound: RetainedSample[] } = { before: null, afterRound: [] };
  let inspector: Inspector | null = null;
  const leaderStatus = async (): Promise<NodeStatus & { clientConnections: number }> => {
    const status = await leader.status();
    if (status === null) throw new Error(`the leader did not answer /v1/status (fuzz seed ${SEED})`);
    return status as NodeStatus & { clientConnections: number };
  };
  const retained = async (): Promise<RetainedSample> => {
    const status = await leaderStatus();
    return { ...(await inspector!.heapAfterGc()), lastIndex: status.lastIndex, sessions: status.sessions, clientConnections: status.clientConnections };
  };
  let baseline: { target: unknown; keys: unknown; names: unknown };

  const replicatedState = async () => {
    const resources = (await cluster.admin("GET", "/v1/resources")).json as { resources: { name: string }[] };
    return {
      target: await cluster.resource("target"),
      keys: (await cluster.admin("GET", "/v1/keys")).json,
      names: resources.resources.map((r) => r.name).sort(),
    };
  };

  beforeAll(async () => {
    cluster = await Cluster.start({
      // The inspector (loopback, a free port) lets the test force a full GC in the leader and read its heap.
      execArgv: ["--inspect=127.0.0.1:0"],
      sessionTtlMs: 2_000,
      snapshotEntries: 100_000_000, // never compact: the whole log is read back and classified at the end
      resources: {
        good: { limits: [{ kind: "concurrency", limit: 4 }, { kind: "rate", limit: 100_000, windowMs: 1_000 }] },
        target: { limits: [{ kind: "concurrency", limit: 2 }, { kind: "load", limit: 5_000, windowMs: 60_000 }] },
      },
    });
    leader = await cluster.waitForLeader();
    // The fuzz key is also the leaked worker key: bounded like a real worker's.
    const key = await cluster.admin("POST", "/v1/keys", { name: "fuzzer", scope: { acquire: ["target"], priorityMax: 20, loadMax: 100, ttlMsMax: 60_000 } });
    expect(key.status).toBe(201);
    target = {
      host: "127.0.0.1",
      port: leader.port,
      fuzzKey: key.json.secret as string,
      otherResource: "good",
      adminKey: ADMIN_KEY,
      peer: { secret: CLUSTER_SECRET, from: cluster.nodes.find((n) => n.id !== leader.id)!.id, to: leader.id },
      leader: async () => {
        const now = await cluster.waitForLeader();
        return { id: now.id, port: now.port };
      },
    };
    baseline = await replicatedState();

    good = new RateQueue({ url: cluster.urls, apiKey: ADMIN_KEY, clientName: "well-behaved" });
    goodLoop = (async () => {
      while (!stopGood) {
        try {
          {
            await using lease = await good.acquire("good", { load: 1, timeoutMs: 10_000 });
            goodSessions.add(lease.sessionId);
            goodGrants++;
          }
          // Steady traffic, not flat out: the log is never compacted here (it is read back at the end), so every
          // entry stays in the node's memory, and a flat-out client would grow RSS by itself round after round.
          await sleep(GOOD_PAUSE_MS);
        } catch (err) {
          goodFailures.push(String(err));
          await sleep(50);
        }
      }
    })();
    await waitFor(() => goodGrants >= 20, { what: "the good client's first 20 grants", timeoutMs: 30_000 });
    rss.beforeMb = rssMb(leader.proc!.pid!);
    rss.peakMb = rss.beforeMb;
    inspector = await Inspector.connect(inspectorUrl(leader.output));
    heap.before = await retained();
  });

  afterAll(async () => {
    inspector?.close();
    stopGood = true;
    await goodLoop;
    await good?.close();
    await cluster?.stop();
  });

  const phase = async (name: string, attack: () => Promise<Record<string, number>>): Promise<void> => {
    const grantsBefore = goodGrants;
    const failuresBefore = goodFailures.length;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const mb = rssMb(leader.proc!.pid!);
        if (Number.isNaN(mb)) break;
        rss.peakMb = Math.max(rss.peakMb, mb);
        await sleep(100);
      }
    })();
    const counts = await attack();
    sampling = false;
    await sampler;
    if (!leader.running) {
      throw new Error(`the leader exited during "${name}" (fuzz seed ${SEED}):\n${leader.output.split("\n").slice(-30).join("\n")}`);
    }
    phases.push({ name, counts, goodGrants: goodGrants - grantsBefore, goodFailures: goodFailures.slice(failuresBefore) });
  };

  it("keeps serving the good client through every attack, with bounded memory, and changes nothing else", async () => {
    const n = (count: number): number => Math.max(1, Math.round(count * SCALE));
    for (let round = 0; round < ROUNDS; round++) {
      const seed = SEED + round * 7;
      await phase("random and mutated frames", () => badFrames(target, { count: n(300), seed }));
      await phase("oversized frames", () => oversizedFrames(target, { count: n(20) }));
      await phase("connection flood", () => connectionFlood(target, { connections: n(1_000), holdMs: 3_000 }));
      await phase("half-open sockets", () => halfOpenSockets(target, { sockets: n(300), holdMs: 4_000 }));
      await phase("slow readers", () => slowReaders(target, { readers: 3, frames: n(1_000), messagesPerFrame: 200, gapMs: 3 }));
      await phase("garbage and peer probes", () => garbageAndPeerProbes(target, { count: n(50), seed: seed + 1 }));
      await phase("leaked key, replayed handshake, revoked key", () => leakedKeyAttacks(target, { count: n(3) }));
      // The fuzzer's sessions expire (TTL 2 s) and its sockets are gone: give the node time to free what they held.
      await sleep(3_000);
      rss.afterRoundMb.push(rssMb(leader.proc!.pid!)); // before the forced GC, which would lower it
      heap.afterRound.push(await retained());
    }
    // Nothing a connection held outlives it: once the fuzzer is done, the leader holds only the good client's
    // connection and session (per-connection state and the sessions the fuzz key opened are all gone).
    await waitFor(
      async () => {
        const s = await leaderStatus();
        return s.clientConnections <= 1 && s.sessions <= 1;
      },
      { what: "the fuzzer's connections and sessions to be gone from the leader", timeoutMs: 15_000, dump: () => JSON.stringify(heap.afterRound) },
    );
    // Disconnect now: a process with a debugger attached waits for it to go away before it exits (the nodes are
    // stopped with SIGTERM below).
    inspector?.close();
    inspector = null;
    stopGood = true;
    await goodLoop;
    await good.close();

    const report = {
      seed: SEED,
      replay: `RQ_FUZZ_SEED=${SEED} RQ_FUZZ_SCALE=${SCALE} npx vitest run test/fuzz-live`,
      rssMb: { before: +rss.beforeMb.toFixed(1), peak: +rss.peakMb.toFixed(1), afterEachRound: rss.afterRoundMb.map((x) => +x.toFixed(1)) },
      retainedAfterGc: [heap.before!, ...heap.afterRound].map((h) => ({
        heapUsedMb: h.heapUsedMb,
        arrayBuffersMb: h.arrayBuffersMb,
        logLastIndex: h.lastIndex,
        sessions: h.sessions,
        clientConnections: h.clientConnections,
        activeResources: h.resources,
      })),
      goodGrants,
      phases,
    };
    console.log(`fuzz-live: ${JSON.stringify(report, null, 1)}`);

    // Every node is still up, and the good client was served during every attack without a single failure.
    for (const node of cluster.nodes) expect(node.running, `${node.id} running`).toBe(true);
    expect(goodFailures, `good client failures (replay: ${report.replay})`).toEqual([]);
    for (const p of phases) expect(p.goodGrants, `good grants during ${p.name}`).toBeGreaterThan(0);
    // Every bad frame closed its connection; every peer probe was refused; the slow readers were cut off.
    for (const p of phases) {
      if (p.name === "random and mutated frames" || p.name === "oversized frames") {
        expect(p.counts.closedByNode, `${p.name}: closed by the node`).toBe(p.counts.sent);
        expect(p.counts.sent).toBeGreaterThan(0);
      }
      if (p.name === "garbage and peer probes") expect(p.counts.peerRefused).toBe(p.counts.peerProbes);
      if (p.name === "slow readers") expect(p.counts.droppedByNode, "slow readers dropped by the node").toBe(p.counts.readers);
      if (p.name === "leaked key, replayed handshake, revoked key") {
        const c = p.counts;
        expect(c.adminTried).toBeGreaterThan(0);
        expect(
          { admin: c.adminRefused, scope: c.scopeRefused, metricsLeaks: c.metricsLeaks, replays: c.replaysRefused, revoked: c.revokedRefused },
          "every attack with the leaked key, the replayed handshake and the revoked key refused",
        ).toEqual({ admin: c.adminTried, scope: c.scopeTried, metricsLeaks: 0, replays: c.replays, revoked: c.revoked });
      }
    }
    // Memory: RSS bounded during the attacks; what the leader retains after a full GC does not grow from round to
    // round beyond what its (never compacted) log holds.
    expect(rss.peakMb - rss.beforeMb).toBeLessThanOrEqual(RSS_PEAK_GROWTH_MAX_MB);
    const first = heap.afterRound[0]!;
    const last = heap.afterRound[heap.afterRound.length - 1]!;
    const growthMb = last.heapUsedMb + last.arrayBuffersMb - (first.heapUsedMb + first.arrayBuffersMb);
    const allowanceMb = RETAINED_SLACK_MB + ((last.lastIndex - first.lastIndex) * RETAINED_PER_ENTRY_KB) / 1024;
    expect(growthMb, `retained memory growth after GC, rounds 1-${ROUNDS} (replay: ${report.replay})`).toBeLessThanOrEqual(allowanceMb);

    // Replicated state: the resource the fuzzer aimed at, the keys and the resource list are as before; the good
    // resource holds nothing once the good client is gone.
    await waitFor(async () => (await cluster.resource("good")).leasesHeld === 0, { what: "good leases released", timeoutMs: 15_000 });
    expect(await replicatedState()).toEqual(baseline);
    expect(await cluster.resource("good")).toMatchObject({ leasesHeld: 0, queued: { default: 0 } });

    // The log: every entry since the start is a tick, a session renewal, the bootstrap, the fuzz key, or an operation
    // of a good-client session; the fuzzer's sessions only ever opened, heartbeat and closed.
    await waitFor(
      async () => {
        const s = await Promise.all(cluster.nodes.map((x) => x.status()));
        return s.every((x) => x !== null && x.appliedIndex === s[0]!.appliedIndex);
      },
      { what: "every node applied the same entries", timeoutMs: 15_000 },
    );
    for (const node of cluster.nodes) await node.kill("SIGTERM");
    const log = await readNodeLog({ dataDir: leader.dataDir, id: leader.id });
    expect(log.snapshotIndex, "the log was never compacted").toBeLessThanOrEqual(1);
    const byKind: Record<string, number> = {};
    const foreign: string[] = [];
    for (const entry of log.entries) {
      if (entry.type !== "normal" || entry.data.length === 0) continue;
      for (const op of decodePayload(entry.data).ops) {
        let kind: string = op.t;
        if (op.t === "limiter") {
          const cmd = op.cmd as { type: string; sessionId?: string };
          const mine = cmd.sessionId !== undefined && goodSessions.has(cmd.sessionId);
          const lifecycle = cmd.type === "openSession" || cmd.type === "heartbeat" || cmd.type === "closeSession";
          kind = cmd.sessionId === undefined ? cmd.type : `${mine ? "good" : "other"}:${cmd.type}`;
          if (cmd.sessionId === undefined ? !(cmd.type === "tick" || cmd.type === "renewSessions") : !mine && !lifecycle) {
            foreign.push(`entry ${entry.index}: ${JSON.stringify(cmd)}`);
          }
        }
        byKind[kind] = (byKind[kind] ?? 0) + 1;
      }
    }
    console.log(`fuzz-live: log ${log.commit} entries, operations ${JSON.stringify(byKind)}`);
    expect(foreign).toEqual([]);
    // The fuzz key, and per round the key revoked mid-session (its creation and revocation).
    expect(byKind.keyAdd).toBe(1 + ROUNDS);
    expect(byKind.keyRemove ?? 0).toBe(ROUNDS);
    // The good client's grants are all in the log, and nobody else's.
    const granted = appliedEffects(log).filter((e) => e.effect.type === "granted");
    expect(granted.every((e) => e.effect.type === "granted" && goodSessions.has(e.effect.sessionId) && e.effect.resource === "good")).toBe(true);
  }, 300_000);

  // Memory: what the leader retains after a full GC grows by a bounded amount per log entry, because every byte
  // array the node keeps owns its buffer rather than viewing msgpackr's process-wide pack buffer (encodePayload in
  // packages/node/src/core/ops.ts copies; README "What must hold for memory"). Measured: ArrayBuffers 0.2 -> 2.9 MB
  // and heap 13.2 -> 17.9 MB over 5,400 entries; with entries as views, the growth check fails (79 MB > 24.6 MB).
});

/** What the leader retains after a full GC, with its log's last index at that moment. */
interface RetainedSample extends HeapAfterGc {
  readonly lastIndex: number;
  /** Live sessions and open client connections on the leader at that moment (the good client's: 1 each). */
  readonly sessions: number;
  readonly clientConnections: number;
}

// A connection's answers go out in frames of at most MAX_MESSAGES_PER_FRAME (4,096) messages however many one turn
// owes it (SocketLink.flush, packages/node/src/server/client-socket.ts); one frame over the cap would make the encoder
// throw outside any handler and take the node down. Two frames of 4,000 releases in one write, or a slow reader whose
// frames the node reads dozens at a time, owe that many.
describe("answers above one frame's message cap", () => {
  let cluster: Cluster;
  let target: AttackTarget;
  let leader: NodeProcess;
  const lastWords = (): string => leader.output.split("\n").filter((l) => !l.startsWith('{"level":30')).slice(-12).join("\n");

  beforeAll(async () => {
    cluster = await Cluster.start({ resources: { target: { limits: [{ kind: "concurrency", limit: 2 }] } } });
    const key = await cluster.admin("POST", "/v1/keys", { name: "fuzzer", scope: { acquire: ["target"] } });
    leader = await cluster.waitForLeader();
    target = { host: "127.0.0.1", port: leader.port, fuzzKey: key.json.secret as string };
  });
  afterAll(async () => cluster?.stop());

  it("slow readers are dropped at the send-buffer cap and the node stays up", async () => {
    const counts = await slowReaders(target, { readers: 3, frames: 1_000, messagesPerFrame: 1_000, gapMs: 1 });
    await sleep(500);
    expect(leader.running, `leader still running; its last words:\n${lastWords()}`).toBe(true);
    expect(counts.droppedByNode).toBe(counts.readers);
  }, 120_000);

  it("answers 8,000 messages read in one turn and stays up", async () => {
    if (!leader.running) leader.start(); // the slow readers may already have taken it down
    leader = await cluster.waitForLeader();
    target = { ...target, port: leader.port };
    const burst = await answerBurst(target);
    await sleep(500);
    expect(leader.running, `leader still running; its last words:\n${lastWords()}`).toBe(true);
    expect(burst.answered).toBeGreaterThan(0);
  }, 60_000);
});

// A frame queued for a client that stopped reading keeps only its own bytes: frames (to clients, and to peers in
// peer/transport.ts) are copied out of msgpackr's process-wide pack buffer. As views, 12 large answers then
// one-message frames between another connection's frames of 4,000 releases made the leader hold 357 MB of buffers
// for 0.5 MB of queued answers, far below the 8 MiB queue cap that drops slow readers.
describe("a stalled reader cannot make the node keep other connections' frames", () => {
  /** ArrayBuffers after a full GC, while the stalled connection is open, over the leader's level before it. */
  const PINNED_MAX_MB = 40;
  let cluster: Cluster;
  let target: AttackTarget;
  let inspector: Inspector | null = null;

  beforeAll(async () => {
    cluster = await Cluster.start({ execArgv: ["--inspect=127.0.0.1:0"], resources: { target: { limits: [{ kind: "concurrency", limit: 2 }] } } });
    const leader = await cluster.waitForLeader();
    const key = await cluster.admin("POST", "/v1/keys", { name: "fuzzer", scope: { acquire: ["target"] } });
    target = { host: "127.0.0.1", port: leader.port, fuzzKey: key.json.secret as string };
    inspector = await Inspector.connect(inspectorUrl(leader.output));
  });
  afterAll(async () => {
    inspector?.close();
    await cluster?.stop();
  });

  it("the leader holds about what is queued for the stalled reader, not the buffers its frames were packed in", async () => {
    const bigFrames = 100;
    const before = await inspector!.heapAfterGc();
    const stalled = await pinningReader(target, { bigFrames, tinyPerBig: 5 });
    const during = await inspector!.heapAfterGc();
    const stillOpen = stalled.open();
    stalled.close();
    console.log(`fuzz-live stalled reader: ${JSON.stringify({ counts: stalled.counts, stillOpen, arrayBuffersMb: { before: before.arrayBuffersMb, during: during.arrayBuffersMb }, rssMb: during.rssMb })}`);
    // The attack happened in full: all the large answers were packed, and the stalled connection was still queued.
    expect(stalled.counts.largeAnswersRead).toBe(bigFrames * 4_000);
    expect(stillOpen, "the stalled connection was still open when the leader was measured").toBe(true);
    expect(during.arrayBuffersMb - before.arrayBuffersMb).toBeLessThanOrEqual(PINNED_MAX_MB);
  }, 120_000);
});

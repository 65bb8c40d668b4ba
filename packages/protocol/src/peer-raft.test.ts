/**
 * Every message a real packages/raft cluster sends, carried over the wire:
 * three RawNodes whose every message is encoded with encodePeerFrame and
 * decoded with decodePeerFrame before delivery. Checks that the decoder
 * accepts everything the core emits (a stricter decoder would cut peer
 * links) and returns it unchanged, through an election, replication,
 * forwarded proposals, ReadIndex, a snapshot sent in chunks, and leadership
 * transfers (one asked by the leader, one forwarded by a follower).
 */
import { bootstrapSnapshot, createRng, MemoryStorage, RawNode, type Message, type NodeId } from "@ratequeue/raft";
import { describe, expect, it } from "vitest";
import { decodePeerFrame, encodePeerFrame } from "./peer.js";

interface Member {
  readonly node: RawNode;
  readonly storage: MemoryStorage;
  applied: number;
}

class WireCluster {
  readonly members = new Map<NodeId, Member>();
  readonly seenTypes = new Set<string>();
  framesCarried = 0;
  private queue: Message[] = [];
  /** Nodes whose inbound and outbound messages are dropped. */
  readonly isolated = new Set<NodeId>();

  constructor(ids: readonly NodeId[]) {
    let seed = 7;
    for (const id of ids) {
      const storage = new MemoryStorage();
      storage.applySnapshot(bootstrapSnapshot({ voters: ids }));
      const node = new RawNode({ id, storage, rng: createRng(seed++), snapshotChunkBytes: 1024 });
      this.members.set(id, { node, storage, applied: storage.firstIndex() - 1 });
    }
  }

  get(id: NodeId): Member {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no node ${id}`);
    return member;
  }

  leader(): NodeId | null {
    for (const [id, m] of this.members) if (m.node.status().role === "leader" && !this.isolated.has(id)) return id;
    return null;
  }

  /** Encodes a batch per destination, decodes it, and checks it arrived unchanged. */
  private send(messages: readonly Message[]): void {
    const byDestination = new Map<NodeId, Message[]>();
    for (const m of messages) byDestination.set(m.to, [...(byDestination.get(m.to) ?? []), m]);
    for (const batch of byDestination.values()) {
      const result = decodePeerFrame(encodePeerFrame(batch));
      if (!result.ok) throw new Error(`the decoder refused a real Raft frame: ${result.error.message}`);
      expect(result.messages).toEqual(batch);
      this.framesCarried++;
      for (const m of result.messages) {
        if (m.type === "peerHello" || m.type === "clockProbe" || m.type === "clockEcho") throw new Error(`unexpected ${m.type}`);
        this.seenTypes.add(m.type);
        this.queue.push(m);
      }
    }
  }

  private processReady(id: NodeId): boolean {
    const m = this.get(id);
    if (!m.node.hasReady()) return false;
    const rd = m.node.ready();
    this.send(rd.messagesNow);
    if (rd.snapshot !== null) m.storage.applySnapshot(rd.snapshot);
    m.storage.append(rd.entries);
    if (rd.hardState !== null) m.storage.setHardState(rd.hardState);
    this.send(rd.messagesAfterPersist);
    if (rd.snapshot !== null) m.applied = rd.snapshot.meta.index;
    for (const e of rd.committedEntries) m.applied = e.index;
    m.node.advance();
    return true;
  }

  stabilize(): void {
    for (let round = 0; round < 1000; round++) {
      let busy = false;
      for (const id of this.members.keys()) while (this.processReady(id)) busy = true;
      const batch = this.queue;
      this.queue = [];
      for (const msg of batch) {
        if (this.isolated.has(msg.from) || this.isolated.has(msg.to)) continue;
        this.get(msg.to).node.step(msg);
        busy = true;
      }
      if (!busy) return;
    }
    throw new Error("cluster did not settle");
  }

  tickAll(times: number): void {
    for (let i = 0; i < times; i++) {
      for (const m of this.members.values()) m.node.tick();
      this.stabilize();
    }
  }
}

describe("peer frames carry a real Raft cluster", () => {
  it("every message of election, replication, forwarding, ReadIndex, snapshot and transfer survives the wire", () => {
    const cluster = new WireCluster(["n1", "n2", "n3"]);
    for (let i = 0; i < 100 && cluster.leader() === null; i++) cluster.tickAll(1);
    const leader = cluster.leader();
    if (leader === null) throw new Error("no leader elected");
    const followers = ["n1", "n2", "n3"].filter((id) => id !== leader);
    const [f1 = "", f2 = ""] = followers;

    // Replication, including a large entry and forwarded proposals.
    for (let i = 0; i < 20; i++) cluster.get(leader).node.propose(new TextEncoder().encode(`entry ${i}`));
    cluster.get(leader).node.propose(new Uint8Array(100_000).fill(7));
    cluster.stabilize();
    for (let i = 0; i < 3; i++) expect(cluster.get(f1).node.propose(Uint8Array.of(i)).outcome).toBe("forwarded");
    cluster.stabilize();
    expect(cluster.get(f1).node.readIndex(Uint8Array.of(1, 2, 3)).outcome).toBe("forwarded");
    cluster.tickAll(3);

    // A follower falls behind the compaction point and catches up by snapshot chunks.
    cluster.isolated.add(f2);
    for (let i = 0; i < 30; i++) cluster.get(leader).node.propose(new TextEncoder().encode(`while away ${i}`));
    cluster.stabilize();
    const lead = cluster.get(leader);
    const status = lead.node.status();
    lead.storage.createSnapshot(lead.applied, status.confState, new Uint8Array(5000).fill(3));
    lead.storage.compact(lead.applied);
    cluster.isolated.delete(f2);
    cluster.tickAll(5);
    expect(cluster.get(f2).applied).toBe(lead.applied);

    // Leadership transfer.
    expect(lead.node.transferLeadership(f1).outcome).toBe("accepted");
    cluster.tickAll(3);
    expect(cluster.leader()).toBe(f1);
    // A follower asks the leader to hand over to it (a forwarded transferLeader).
    expect(cluster.get(f2).node.transferLeadership(f2).outcome).toBe("forwarded");
    cluster.tickAll(3);
    expect(cluster.leader()).toBe(f2);

    for (const type of ["append", "appendResponse", "heartbeat", "heartbeatResponse", "snapshot", "propose", "readIndex", "readIndexResponse", "timeoutNow", "vote", "voteResponse", "preVote", "preVoteResponse", "transferLeader"]) {
      expect(cluster.seenTypes, `the scenario should produce ${type}`).toContain(type);
    }
    expect(cluster.framesCarried).toBeGreaterThan(50);
  });
});

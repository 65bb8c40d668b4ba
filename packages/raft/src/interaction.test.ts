/**
 * Golden interaction scripts (in the manner of etcd's raft testdata): each
 * file in testdata/ is a list of commands, each followed by the transcript it
 * must produce: every Ready handed out, every message sent, every answer.
 * A change of behaviour shows as a readable diff of the transcript.
 *
 *   > command args        a command
 *   text                  the output expected from it (until the next command or comment)
 *   # words               a comment, kept as is
 *
 * RQ_GOLDEN_UPDATE=1 rewrites the files with what the code produces now;
 * read the diff before committing it.
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import type { ConfChange, Message, Ready } from "./types.js";
import { TestCluster, payload } from "./test-cluster.js";

const DIR = fileURLToPath(new URL("./testdata/", import.meta.url));
const UPDATE = process.env.RQ_GOLDEN_UPDATE === "1";

interface Block {
  readonly comments: string[];
  readonly command: string;
  readonly expected: string[];
}

function parse(text: string): Block[] {
  const blocks: Block[] = [];
  let comments: string[] = [];
  let current: Block | null = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("> ")) {
      current = { comments, command: line.slice(2).trim(), expected: [] };
      blocks.push(current);
      comments = [];
    } else if (line.startsWith("#") || (line.trim() === "" && (current === null || comments.length > 0))) {
      if (line.trim() !== "" || comments.length > 0) comments.push(line);
      current = line.startsWith("#") ? null : current;
    } else if (line.trim() === "") {
      current = null;
    } else if (current !== null) {
      current.expected.push(line);
    } else {
      throw new Error(`output line without a command: ${JSON.stringify(line)}`);
    }
  }
  return blocks;
}

function render(blocks: readonly { comments: string[]; command: string; output: string[] }[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    const comments = b.comments.filter((c, i, all) => !(c.trim() === "" && (i === all.length - 1 || i === 0)));
    if (comments.length > 0) {
      if (out.length > 0) out.push("");
      out.push(...comments);
    }
    out.push(`> ${b.command}`, ...b.output);
  }
  return `${out.join("\n")}\n`;
}

/** Runs the commands of one script against a TestCluster. */
class Interpreter {
  private c: TestCluster | null = null;

  private cluster(): TestCluster {
    if (this.c === null) throw new Error("no cluster: start with `nodes`");
    return this.c;
  }

  run(command: string): string[] {
    const [name, ...args] = command.split(/\s+/);
    const out: string[] = [];
    const flag = (key: string, fallback: boolean): boolean => {
      const a = args.find((x) => x.startsWith(`${key}=`));
      return a === undefined ? fallback : a.slice(key.length + 1) === "true";
    };
    const ids = args.filter((a) => !a.includes("="));
    switch (name) {
      case "nodes":
        this.c = new TestCluster({ voters: ids, config: { preVote: flag("prevote", true), checkQuorum: flag("checkquorum", true) } });
        break;
      case "add-node":
        this.cluster().addNode(ids[0]!, undefined, { preVote: flag("prevote", true), checkQuorum: flag("checkquorum", true) });
        break;
      case "campaign": {
        const tn = this.cluster().get(ids[0]!);
        for (let i = 0; i < 1000 && tn.node.status().role === "follower"; i++) tn.node.tick();
        out.push(`${tn.id} is ${tn.node.status().role} at term ${tn.node.status().term}`);
        break;
      }
      case "tick": {
        const times = Number(ids[1] ?? "1");
        this.cluster().tick(ids[0]!, times);
        break;
      }
      case "tick-all":
        this.cluster().tickAll(Number(ids[0] ?? "1"));
        break;
      case "stabilize":
        this.stabilize(out, args.filter((a) => a.startsWith("only=")).flatMap((a) => a.slice(5).split(",")));
        break;
      case "propose":
        out.push(answer(this.cluster().get(ids[0]!).node.propose(payload(ids[1] ?? ""))));
        break;
      case "transfer":
        out.push(answer(this.cluster().get(ids[0]!).node.transferLeadership(ids[1]!)));
        break;
      case "conf": {
        const cc = { type: confType(ids[1]!), nodeId: ids[2]! } as ConfChange;
        out.push(answer(this.cluster().get(ids[0]!).node.proposeConfChange(cc)));
        break;
      }
      case "isolate":
        this.cluster().isolate(ids[0]!);
        break;
      case "heal":
        this.cluster().heal();
        break;
      case "crash":
        this.cluster().crash(ids[0]!);
        break;
      case "restart":
        this.cluster().restart(ids[0]!, { preVote: flag("prevote", true), checkQuorum: flag("checkquorum", true) });
        break;
      case "compact": {
        const snap = this.cluster().compact(ids[0]!);
        out.push(`${ids[0]} snapshot at ${snap.meta.index}/${snap.meta.term}, log compacted`);
        break;
      }
      case "status":
        for (const id of ids.length > 0 ? ids : this.cluster().ids()) out.push(statusLine(this.cluster(), id));
        break;
      case "log": {
        const tn = this.cluster().get(ids[0]!);
        const first = tn.storage.firstIndex();
        const entries = tn.storage.entries(first, tn.storage.lastIndex() + 1, Infinity);
        out.push(`${tn.id} log from ${first}: ${entries.map((e) => `${e.index}/${e.term}${e.type === "confChange" ? "(conf)" : ""}`).join(" ") || "(empty)"}`);
        out.push(`${tn.id} applied: ${tn.state.join(" ") || "(nothing)"}`);
        break;
      }
      default:
        throw new Error(`unknown command ${JSON.stringify(name)}`);
    }
    return out;
  }

  /** Handles every Ready and delivers every message until the cluster is quiet, printing both. */
  private stabilize(out: string[], only: readonly string[]): void {
    const c = this.cluster();
    const nodes = only.length > 0 ? only : c.ids();
    for (let round = 0; round < 200; round++) {
      let busy = false;
      for (const id of nodes) {
        const tn = c.get(id);
        while (c.processReady(id)) {
          busy = true;
          out.push(...readyLines(id, tn.readies[tn.readies.length - 1]!));
        }
      }
      if (c.deliverAll((m) => nodes.includes(m.to) && nodes.includes(m.from)) > 0) busy = true;
      if (!busy) return;
    }
    throw new Error("stabilize: the cluster did not settle in 200 rounds");
  }
}

function confType(word: string): ConfChange["type"] {
  if (word === "add-learner") return "addLearner";
  if (word === "promote" || word === "remove") return word;
  throw new Error(`conf: unknown change ${word}`);
}

function answer(r: { outcome: string; code?: string; leader?: string | null; index?: number; term?: number }): string {
  switch (r.outcome) {
    case "accepted":
      return r.index === undefined ? "accepted" : `accepted at ${r.index}/${r.term}`;
    case "forwarded":
      return `forwarded to ${r.leader}`;
    default:
      return `refused ${r.code} (leader ${r.leader ?? "unknown"})`;
  }
}

function statusLine(c: TestCluster, id: string): string {
  const tn = c.get(id);
  if (!tn.up) return `${id} down`;
  const s = tn.node.status();
  const conf = `voters [${s.confState.voters.join(",")}]${s.confState.learners.length > 0 ? ` learners [${s.confState.learners.join(",")}]` : ""}`;
  return `${id} ${s.role} term ${s.term} leader ${s.leader ?? "-"} commit ${s.commit} applied ${s.applied} last ${s.lastIndex} ${conf}`;
}

function readyLines(id: string, rd: Ready): string[] {
  const parts: string[] = [];
  if (rd.softState !== null) parts.push(`${rd.softState.role}${rd.softState.leader === null ? "" : ` (leader ${rd.softState.leader})`}`);
  if (rd.hardState !== null) parts.push(`hard state term ${rd.hardState.term} vote ${rd.hardState.vote ?? "-"} commit ${rd.hardState.commit}`);
  if (rd.snapshot !== null) parts.push(`snapshot ${rd.snapshot.meta.index}/${rd.snapshot.meta.term}`);
  if (rd.entries.length > 0) parts.push(`write ${span(rd.entries)}`);
  if (rd.committedEntries.length > 0) parts.push(`apply ${span(rd.committedEntries)}`);
  if (rd.readStates.length > 0) parts.push(`reads ${rd.readStates.map((r) => r.index).join(",")}`);
  const lines = [`${id} ready: ${parts.join("; ") || "(messages only)"}${rd.mustSync ? " [sync]" : ""}`];
  for (const m of rd.messagesNow) lines.push(`  ${messageLine(m)}`);
  for (const m of rd.messagesAfterPersist) lines.push(`  ${messageLine(m)} (after sync)`);
  return lines;
}

function span(entries: readonly { index: number; term: number; type: string }[]): string {
  return entries.map((e) => `${e.index}/${e.term}${e.type === "confChange" ? "(conf)" : ""}`).join(" ");
}

function messageLine(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type}${m.term === 0 ? "" : ` term ${m.term}`}`;
  switch (m.type) {
    case "append":
      return `${head} after ${m.prevIndex}/${m.prevTerm} entries [${span(m.entries)}] commit ${m.commit}`;
    case "appendResponse":
      return m.reject ? `${head} reject ${m.index} hint ${m.hintIndex}/${m.hintTerm}` : `${head} ok ${m.index}`;
    case "vote":
    case "preVote":
      return `${head} last ${m.lastIndex}/${m.lastTerm}${m.transfer ? " (transfer)" : ""}`;
    case "voteResponse":
    case "preVoteResponse":
      return `${head} ${m.reject ? "rejected" : "granted"} (commit ${m.commit}/${m.commitTerm})`;
    case "heartbeat":
      return `${head} commit ${m.commit}`;
    case "heartbeatResponse":
      return head;
    case "snapshot":
      return `${head} ${m.meta.index}/${m.meta.term} bytes ${m.offset}..${m.offset + m.data.byteLength} of ${m.totalBytes}${m.last ? " last" : ""}`;
    case "snapshotResponse":
      return `${head} ${m.index} next ${m.nextOffset}`;
    case "propose":
      return `${head} ${m.data.length} entries`;
    case "transferLeader":
      return `${head} to ${m.transferee}`;
    case "readIndexResponse":
      return `${head} index ${m.index}`;
    default:
      return head;
  }
}

describe("golden interaction scripts (testdata/*.txt)", () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith(".txt")).sort();
  test.each(files)("%s", (file) => {
    const text = readFileSync(DIR + file, "utf8");
    const blocks = parse(text);
    const interp = new Interpreter();
    const results = blocks.map((b) => ({ comments: b.comments, command: b.command, output: interp.run(b.command), expected: b.expected }));
    const actual = render(results);
    if (UPDATE) {
      writeFileSync(DIR + file, actual);
      return;
    }
    for (const r of results) expect({ command: r.command, output: r.output }).toEqual({ command: r.command, output: r.expected });
  });
});

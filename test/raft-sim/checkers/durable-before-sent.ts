import type { Message, NodeId } from "@ratequeue/raft";
import type { LogView } from "../log-state.js";
import { SafetyViolation, type Checker, type SendEvent } from "./types.js";

/**
 * What a node promises in a message is already on its disk when the message
 * leaves (the durability half of the Ready contract, checked on the wire):
 * - no message carries a term above the sender's durable term (pre-vote
 *   messages excepted: they name a term nobody holds yet);
 * - a granted vote for C in term T: the durable hard state is (T, C), or a later term;
 * - a successful append answer up to i: entry i is durable, with the term the node holds there.
 * A crash right after the send would otherwise let the node take the promise back.
 */
export class DurableBeforeSent implements Checker {
  readonly property = "Durable before sent";

  onSend(event: SendEvent): void {
    const { message: m, durable, log } = event;
    const fail = (detail: string): never => {
      throw new SafetyViolation(this.property, `${m.from} sent ${describe(m)} ${detail}`);
    };
    const hard = durable.hardState ?? { term: 0, vote: null, commit: 0 };
    if (m.term > 0 && m.type !== "preVote" && m.type !== "preVoteResponse" && m.term > hard.term) {
      fail(`while its durable term is ${hard.term}`);
    }
    if (m.type === "voteResponse" && !m.reject && !(hard.term > m.term || (hard.term === m.term && hard.vote === m.to))) {
      fail(`while its durable hard state is term ${hard.term} vote ${hard.vote}`);
    }
    if (m.type === "appendResponse" && !m.reject && !holds(durable, log, m.index)) {
      fail(`while entry ${m.index} is not durable (durable term ${durable.termAt(m.index)}, held term ${log.termAt(m.index)})`);
    }
  }
}

function holds(durable: LogView, log: LogView, index: number): boolean {
  const snapshotIndex = durable.snapshotMeta?.index ?? 0;
  if (index <= snapshotIndex) return true;
  const term = durable.termAt(index);
  return term !== undefined && term === log.termAt(index);
}

function describe(m: Message): string {
  const extra = m.type === "appendResponse" ? ` index ${m.index}` : m.type === "voteResponse" ? ` reject ${m.reject}` : "";
  return `${m.type} (term ${m.term}${extra}) to ${m.to as NodeId}`;
}

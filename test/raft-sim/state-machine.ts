import type { ConfChange, ConfState, Entry, Snapshot } from "@ratequeue/raft";

const CHAIN_START = 0x811c9dc5;

/**
 * The replicated state machine each simulated node applies: a hash chain
 * over every applied entry (index, term, type, data), plus the membership the
 * applied conf changes produce. Two nodes that applied the same entries in
 * the same order have the same chain hash, so State Machine Safety is one
 * number compared per index, and a snapshot carries that number with it.
 */
export interface StateMachineImage {
  readonly index: number;
  readonly term: number;
  readonly chainHash: number;
  readonly confState: ConfState;
}

export class StateMachine {
  #image: StateMachineImage;

  constructor(image: StateMachineImage) {
    this.#image = image;
  }

  static initial(confState: ConfState): StateMachine {
    return new StateMachine({ index: 0, term: 0, chainHash: CHAIN_START, confState });
  }

  /**
   * The state a snapshot holds. Empty data is the bootstrap snapshot every
   * founder starts from: nothing applied yet at its index.
   */
  static fromSnapshot(snapshot: Snapshot): StateMachine {
    if (snapshot.data.length === 0) {
      return new StateMachine({ index: snapshot.meta.index, term: snapshot.meta.term, chainHash: CHAIN_START, confState: snapshot.meta.confState });
    }
    const image = StateMachine.#parse(snapshot.data);
    if (image.index !== snapshot.meta.index || image.term !== snapshot.meta.term) {
      throw new Error(`snapshot meta (${snapshot.meta.index}, term ${snapshot.meta.term}) disagrees with its data (${image.index}, term ${image.term})`);
    }
    return new StateMachine(image);
  }

  static #parse(data: Uint8Array): StateMachineImage {
    const image = JSON.parse(new TextDecoder().decode(data)) as StateMachineImage;
    if (!Number.isInteger(image.index) || !Number.isInteger(image.chainHash) || !Array.isArray(image.confState?.voters)) {
      throw new Error(`snapshot data is not a state machine image: ${new TextDecoder().decode(data).slice(0, 80)}`);
    }
    return image;
  }

  get image(): StateMachineImage {
    return this.#image;
  }

  /** Applies the next entry; `decodeConfChange` turns a confChange entry into the change. */
  apply(entry: Entry, decodeConfChange: (data: Uint8Array) => ConfChange): void {
    const prev = this.#image;
    if (entry.index !== prev.index + 1) throw new Error(`apply ${entry.index} after ${prev.index}: the state machine needs every entry in order`);
    const confState = entry.type === "confChange" ? changeConf(prev.confState, decodeConfChange(entry.data)) : prev.confState;
    this.#image = { index: entry.index, term: entry.term, chainHash: chain(prev.chainHash, entry), confState };
  }

  snapshotData(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.#image));
  }
}

/**
 * Membership after a single-server change. An invalid change (adding a
 * member, promoting a non-learner, removing a non-member or the last voter,
 * reusing a removed id) leaves the membership unchanged, as every member
 * skips it the same way.
 */
export function changeConf(conf: ConfState, change: ConfChange): ConfState {
  const id = change.nodeId;
  if (conf.removed.includes(id)) return conf;
  const isVoter = conf.voters.includes(id);
  const isLearner = conf.learners.includes(id);
  switch (change.type) {
    case "addLearner":
      return isVoter || isLearner ? conf : { ...conf, learners: [...conf.learners, id] };
    case "promote":
      return isLearner ? { ...conf, voters: [...conf.voters, id], learners: conf.learners.filter((x) => x !== id) } : conf;
    case "remove":
      if ((!isVoter && !isLearner) || (isVoter && conf.voters.length === 1)) return conf;
      return { voters: conf.voters.filter((x) => x !== id), learners: conf.learners.filter((x) => x !== id), removed: [...conf.removed, id] };
  }
}

/** FNV-1a over the entry, seeded by the previous link. */
function chain(prev: number, entry: Entry): number {
  let h = prev >>> 0;
  const mix = (byte: number): void => {
    h = Math.imul(h ^ (byte & 0xff), 0x01000193) >>> 0;
  };
  for (const n of [entry.index, entry.term]) for (let k = 0; k < 4; k++) mix(Math.floor(n / 2 ** (8 * k)));
  mix(entry.type === "normal" ? 1 : 2);
  for (const b of entry.data) mix(b);
  return h;
}

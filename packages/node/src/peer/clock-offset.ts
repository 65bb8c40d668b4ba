import type { Logger } from "pino";
import type { ClockEcho, ClockProbe } from "@ratequeue/protocol";

/**
 * Clock health: each node estimates every peer's wall-clock offset from the
 * readings their links exchange (a `clockProbe` about once a second, answered
 * at once by a `clockEcho`). Operators see the estimates in logs, `/metrics`,
 * `/v1/status` and the dashboard. Log time does not depend on them (stamps
 * follow monotonic clocks, src/core/stamp-clock.ts): a wrong wall clock is
 * worth a warning because logs, dashboards and the dates of log times read
 * it, and because it is usually a sign of a broken time sync.
 */

/** How many recent samples the estimator chooses from (NTP's clock filter keeps 8). */
export const CLOCK_SAMPLES_MAX = 8;
/** Samples older than this (monotonic ms) are forgotten: a peer not heard from for a while has no estimate. */
export const CLOCK_SAMPLE_MAX_AGE_MS = 30_000;
/** How often each node probes each connected peer. */
export const CLOCK_PROBE_INTERVAL_MS = 1_000;
/** While a peer stays beyond the threshold, the warning about it is repeated at most this often. */
export const CLOCK_WARN_EVERY_MS = 60_000;

/** One estimate of a peer's wall clock against this node's. */
export interface ClockOffset {
  /** Peer's wall clock minus this node's (ms): positive when the peer's clock is ahead. */
  readonly offsetMs: number;
  /** The round trip of the sample it comes from (ms); the offset is within +-rttMs/2 of the truth (plus 1 ms of rounding). */
  readonly rttMs: number;
}

/**
 * NTP-style offset estimate for one peer, pure (times are passed in). A probe
 * leaves at this node's wall time `t1` (monotonic `m1`); the peer reads its
 * wall clock `t2` when it answers; the answer arrives at monotonic `m4`. With
 * `rtt = m4 - m1` and the answer assumed to be read halfway through the round
 * trip, the peer's offset is `t2 - (t1 + rtt / 2)`, off by at most `rtt / 2`
 * whatever the path's asymmetry. The round trip is timed on the monotonic
 * clock, so a wall-clock jump here during a probe cannot distort it. Of the
 * last CLOCK_SAMPLES_MAX samples the one with the smallest round trip wins:
 * it has the smallest error bound (queueing only ever adds delay).
 */
export class ClockOffsetEstimator {
  readonly #samples: (ClockOffset & { readonly atMs: number })[] = [];

  /**
   * Adds one round trip's readings; returns false (and keeps nothing) for readings no real exchange produces
   * (an answer that arrived before its probe left, or numbers that are not finite).
   */
  sample(r: { readonly probeWallMs: number; readonly probeMonoMs: number; readonly peerWallMs: number; readonly echoMonoMs: number }): boolean {
    const rttMs = r.echoMonoMs - r.probeMonoMs;
    if (![r.probeWallMs, r.probeMonoMs, r.peerWallMs, r.echoMonoMs].every(Number.isFinite) || rttMs < 0) return false;
    const offsetMs = r.peerWallMs - (r.probeWallMs + rttMs / 2);
    this.#samples.push({ offsetMs, rttMs, atMs: r.echoMonoMs });
    if (this.#samples.length > CLOCK_SAMPLES_MAX) this.#samples.shift();
    return true;
  }

  /** The current estimate at monotonic `nowMs`: the fresh sample with the smallest round trip, or null if none. */
  estimate(nowMs: number): ClockOffset | null {
    let best: ClockOffset | null = null;
    for (const s of this.#samples) {
      if (nowMs - s.atMs > CLOCK_SAMPLE_MAX_AGE_MS) continue;
      if (best === null || s.rttMs < best.rttMs) best = { offsetMs: s.offsetMs, rttMs: s.rttMs };
    }
    return best;
  }
}

export interface PeerClocksOptions {
  readonly selfId: string;
  readonly logger: Logger;
  /** Warn when a peer's offset is beyond this (ms) by more than the estimate's error (--clock-warn-ms). */
  readonly warnMs: number;
  readonly monotonicNow: () => number;
  readonly wallNow: () => number;
  /** Peers whose link is open now: the ones to probe. */
  readonly connectedPeers: () => readonly string[];
  /** Sends a clock message to a peer (best-effort, like every peer frame). */
  readonly send: (peerId: string, message: ClockProbe | ClockEcho) => void;
}

/**
 * The link layer's clock exchange: probes every connected peer each
 * CLOCK_PROBE_INTERVAL_MS, answers probes, keeps a ClockOffsetEstimator per
 * peer, logs the first estimate of each peer, and warns (pino warn, at most
 * once per CLOCK_WARN_EVERY_MS per peer) while a peer's offset is beyond
 * `warnMs`, then once when it is back within.
 */
export class PeerClocks {
  readonly #o: PeerClocksOptions;
  readonly #peers = new Map<string, { estimator: ClockOffsetEstimator; logged: boolean; warnedAtMs: number | null }>();
  #timer: NodeJS.Timeout | null = null;

  constructor(options: PeerClocksOptions) {
    if (!Number.isSafeInteger(options.warnMs) || options.warnMs < 1) throw new RangeError(`warnMs must be a positive integer, got ${options.warnMs}`);
    this.#o = options;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.probeAll(), CLOCK_PROBE_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Sends one probe to every connected peer. */
  probeAll(): void {
    const wallMs = Math.max(0, Math.round(this.#o.wallNow()));
    const monoUs = Math.max(0, Math.round(this.#o.monotonicNow() * 1000));
    for (const peer of this.#o.connectedPeers()) this.#o.send(peer, { type: "clockProbe", from: this.#o.selfId, to: peer, wallMs, monoUs });
  }

  /** A peer's probe: answered at once with this node's wall clock. */
  onProbe(from: string, probe: ClockProbe): void {
    if (probe.from !== from || probe.to !== this.#o.selfId) return;
    const wallMs = Math.max(0, Math.round(this.#o.wallNow()));
    this.#o.send(from, { type: "clockEcho", from: this.#o.selfId, to: from, probeWallMs: probe.wallMs, probeMonoUs: probe.monoUs, wallMs });
  }

  /** The answer to one of our probes: a new sample for that peer's estimate. */
  onEcho(from: string, echo: ClockEcho): void {
    if (echo.from !== from || echo.to !== this.#o.selfId) return;
    const nowMs = this.#o.monotonicNow();
    let peer = this.#peers.get(from);
    if (peer === undefined) {
      peer = { estimator: new ClockOffsetEstimator(), logged: false, warnedAtMs: null };
      this.#peers.set(from, peer);
    }
    const ok = peer.estimator.sample({ probeWallMs: echo.probeWallMs, probeMonoMs: echo.probeMonoUs / 1000, peerWallMs: echo.wallMs, echoMonoMs: nowMs });
    if (!ok) return;
    const est = peer.estimator.estimate(nowMs)!;
    const fields = { peer: from, offsetMs: Math.round(est.offsetMs), rttMs: round1(est.rttMs), warnMs: this.#o.warnMs };
    if (!peer.logged) {
      peer.logged = true;
      this.#o.logger.info(fields, "peer clock offset measured");
    }
    if (Math.abs(est.offsetMs) - est.rttMs / 2 > this.#o.warnMs) {
      if (peer.warnedAtMs !== null && nowMs - peer.warnedAtMs < CLOCK_WARN_EVERY_MS) return;
      peer.warnedAtMs = nowMs;
      const beyond = this.#beyondCount(nowMs);
      const self = beyond.measured >= 2 && beyond.ahead === beyond.measured ? "ahead" : beyond.measured >= 2 && beyond.behind === beyond.measured ? "behind" : null;
      this.#o.logger.warn(
        { ...fields, peersBeyond: beyond.ahead + beyond.behind, peersMeasured: beyond.measured },
        self === null
          ? `peer ${from}'s wall clock is ${describeOffset(est.offsetMs)} this node's, beyond --clock-warn-ms ${this.#o.warnMs}: check time sync (NTP) on both; rate limits are unaffected (log time follows monotonic clocks)`
          : `this node's wall clock differs from every peer's by more than --clock-warn-ms ${this.#o.warnMs} (peer ${from}'s is ${describeOffset(est.offsetMs)} it): check this node's time sync (NTP); rate limits are unaffected (log time follows monotonic clocks)`,
      );
    } else if (peer.warnedAtMs !== null) {
      peer.warnedAtMs = null;
      this.#o.logger.info(fields, `peer ${from}'s wall clock is back within --clock-warn-ms`);
    }
  }

  /** This node's estimate of `peerId`'s offset now, or null before a fresh sample. */
  offset(peerId: string): ClockOffset | null {
    return this.#peers.get(peerId)?.estimator.estimate(this.#o.monotonicNow()) ?? null;
  }

  /** Every peer with a fresh estimate. */
  offsets(): Map<string, ClockOffset> {
    const out = new Map<string, ClockOffset>();
    for (const id of this.#peers.keys()) {
      const o = this.offset(id);
      if (o !== null) out.set(id, o);
    }
    return out;
  }

  /** Of the peers with a fresh estimate, how many are beyond the threshold ahead of and behind this node. */
  #beyondCount(nowMs: number): { measured: number; ahead: number; behind: number } {
    let measured = 0;
    let ahead = 0;
    let behind = 0;
    for (const p of this.#peers.values()) {
      const e = p.estimator.estimate(nowMs);
      if (e === null) continue;
      measured++;
      const beyondMs = Math.abs(e.offsetMs) - e.rttMs / 2 - this.#o.warnMs;
      if (beyondMs > 0 && e.offsetMs < 0) ahead++; // the peer is behind: this node is ahead of it
      else if (beyondMs > 0) behind++;
    }
    return { measured, ahead, behind };
  }
}

function describeOffset(offsetMs: number): string {
  const s = Math.abs(offsetMs) / 1000;
  const amount = s >= 1 ? `${s.toFixed(s >= 100 ? 0 : 1)} s` : `${Math.round(Math.abs(offsetMs))} ms`;
  return `${amount} ${offsetMs >= 0 ? "ahead of" : "behind"}`;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

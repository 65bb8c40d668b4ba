/**
 * Bad input for a live node, each attack bounded in count and time. Every
 * frame sent as "bad" is first checked with the protocol's own decoder: a
 * mutation that happens to be a valid frame is skipped (that is good input,
 * not a fuzz case), so whatever the node does with these frames, it must not
 * change replicated state.
 */
import { connect, type Socket } from "node:net";
import WebSocket from "ws";
import {
  decodeClientFrame,
  decodeServerFrame,
  encodeClientFrame,
  MAX_FRAME_BYTES,
  MAX_HELLO_FRAME_BYTES,
  encodePeerFrame,
  PROTOCOL_VERSION,
  type ClientMessage,
  type ServerMessage,
} from "@ratequeue/protocol";
import { newNonce, parseNonce, PEER_AUTH_CLOSE_CODE, PEER_HEADER, peerProof } from "@ratequeue/node/testing";
import { Prng } from "@ratequeue/testkit";

export interface AttackTarget {
  readonly host: string;
  readonly port: number;
  /** A key whose sessions may open and close (lifecycle only) but must never change anything else. */
  readonly fuzzKey: string;
}

export interface AttackCounts {
  [name: string]: number;
}

const OPEN_TIMEOUT_MS = 5_000;
const CLOSE_WAIT_MS = 5_000;
/** The close code of every socket we opened, recorded as it closes (a close may come before anyone waits for it). */
const closeCodes = new WeakMap<WebSocket, number>();

/** Opens a client WebSocket; null if the node refused it (which a flood may legitimately cause). */
async function open(t: AttackTarget): Promise<WebSocket | null> {
  const ws = new WebSocket(`ws://${t.host}:${t.port}/v1/client`, { perMessageDeflate: false, handshakeTimeout: OPEN_TIMEOUT_MS });
  ws.on("error", () => undefined);
  ws.on("close", (code) => closeCodes.set(ws, code));
  const ok = await new Promise<boolean>((resolve) => {
    ws.once("open", () => resolve(true));
    ws.once("close", () => resolve(false));
    ws.once("unexpected-response", () => resolve(false));
  });
  if (!ok) ws.terminate();
  return ok ? ws : null;
}

/** Waits (bounded) for the node to close `ws`; terminates it ourselves after CLOSE_WAIT_MS. Returns the close code. */
function closedBy(ws: WebSocket): Promise<number | null> {
  const code = closeCodes.get(ws);
  if (code !== undefined) return Promise.resolve(code);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.removeAllListeners("close");
      ws.terminate();
      resolve(null);
    }, CLOSE_WAIT_MS);
    ws.once("close", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Says hello with the fuzz key and waits for the welcome; null when none came. */
async function hello(t: AttackTarget): Promise<WebSocket | null> {
  const ws = await open(t);
  if (ws === null) return null;
  ws.send(encodeClientFrame([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: t.fuzzKey }]));
  const welcomed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), OPEN_TIMEOUT_MS);
    ws.once("message", () => {
      clearTimeout(timer);
      resolve(true);
    });
    ws.once("close", () => resolve(false));
  });
  if (!welcomed) ws.terminate();
  return welcomed ? ws : null;
}

/** Valid frames to mutate: what a real client sends. */
function seedFrames(): Uint8Array[] {
  const messages: ClientMessage[][] = [
    [{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: "k".repeat(24) }],
    [{ type: "acquire", requestId: 7, resource: "target", load: { input: 1200, output: 1024 }, priority: 5, timeoutMs: 1_000 }],
    [{ type: "release", requestId: 8, leaseId: "3" }],
    [{ type: "settle", requestId: 9, leaseId: "3", actual: 12 }],
    [{ type: "cooldown", requestId: 10, resource: "target", retryAfterMs: 1_000 }],
    [{ type: "heartbeat" }, { type: "cancel", requestId: 7 }],
  ];
  return messages.map((m) => encodeClientFrame(m));
}

/** One mutation of `frame`: flipped bytes, a cut, an insertion, a duplicated span or a splice of two frames. */
function mutate(frame: Uint8Array, other: Uint8Array, prng: Prng): Uint8Array {
  const bytes = Array.from(frame);
  switch (prng.int(0, 4)) {
    case 0:
      for (let i = prng.int(1, 4); i > 0; i--) bytes[prng.int(0, bytes.length - 1)] = prng.int(0, 255);
      break;
    case 1:
      bytes.length = prng.int(0, bytes.length - 1);
      break;
    case 2:
      bytes.splice(prng.int(0, bytes.length), 0, ...Array.from({ length: prng.int(1, 16) }, () => prng.int(0, 255)));
      break;
    case 3: {
      const at = prng.int(0, bytes.length - 1);
      bytes.splice(at, 0, ...bytes.slice(at, at + prng.int(1, 32)));
      break;
    }
    default:
      return Uint8Array.from([...bytes.slice(0, prng.int(0, bytes.length)), ...Array.from(other).slice(prng.int(0, other.length))]);
  }
  return Uint8Array.from(bytes);
}

function randomBytes(prng: Prng, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => prng.int(0, 255));
}

/** Bad unless the protocol decoder accepts it as a whole frame (in the given connection state). */
function isBad(frame: Uint8Array, beforeHello: boolean): boolean {
  return !decodeClientFrame(frame, beforeHello ? { maxFrameBytes: MAX_HELLO_FRAME_BYTES } : {}).ok;
}

/**
 * Random and mutated frames, one per connection: half sent before hello,
 * half after a hello with the fuzz key. Each must make the node close that
 * connection (it may first send an error). Returns how many were sent and
 * how many the node closed.
 */
export async function badFrames(t: AttackTarget, options: { count: number; seed: number }): Promise<AttackCounts> {
  const prng = new Prng(options.seed);
  const seeds = seedFrames();
  const counts: AttackCounts = { sent: 0, closedByNode: 0, skippedValid: 0, refused: 0 };
  for (let i = 0; i < options.count; i++) {
    const beforeHello = i % 2 === 0;
    const frame =
      prng.chance(0.3)
        ? randomBytes(prng, prng.int(0, 256))
        : mutate(seeds[prng.int(0, seeds.length - 1)]!, seeds[prng.int(0, seeds.length - 1)]!, prng);
    if (!isBad(frame, beforeHello)) {
      counts.skippedValid!++;
      continue;
    }
    const ws = beforeHello ? await open(t) : await hello(t);
    if (ws === null) {
      counts.refused!++;
      continue;
    }
    // Text frames too: the protocol is binary, so any text frame is bad input.
    ws.send(prng.chance(0.1) ? Buffer.from(frame).toString("latin1") : frame);
    counts.sent!++;
    if ((await closedBy(ws)) !== null) counts.closedByNode!++;
  }
  return counts;
}

/** Frames over the size caps: a hello frame over MAX_HELLO_FRAME_BYTES, and frames over MAX_FRAME_BYTES after hello. */
export async function oversizedFrames(t: AttackTarget, options: { count: number }): Promise<AttackCounts> {
  const counts: AttackCounts = { sent: 0, closedByNode: 0, refused: 0 };
  for (let i = 0; i < options.count; i++) {
    const beforeHello = i % 2 === 0;
    const ws = beforeHello ? await open(t) : await hello(t);
    if (ws === null) {
      counts.refused!++;
      continue;
    }
    ws.send(new Uint8Array(beforeHello ? MAX_HELLO_FRAME_BYTES + 1 + i : MAX_FRAME_BYTES + 1 + i));
    counts.sent!++;
    if ((await closedBy(ws)) !== null) counts.closedByNode!++;
  }
  return counts;
}

/** Many WebSocket connections at once that never say hello, held for `holdMs`, then dropped without a close. */
export async function connectionFlood(t: AttackTarget, options: { connections: number; holdMs: number }): Promise<AttackCounts> {
  const sockets = await Promise.all(Array.from({ length: options.connections }, () => open(t)));
  const opened = sockets.filter((s) => s !== null);
  await new Promise((r) => setTimeout(r, options.holdMs));
  for (const s of opened) s.terminate();
  return { attempted: options.connections, opened: opened.length };
}

/**
 * Half-open sockets: TCP connections that send part of an upgrade request (or nothing, or half a WebSocket frame
 * after the upgrade) and then stall for `holdMs`, then vanish without a FIN (destroyed).
 */
export async function halfOpenSockets(t: AttackTarget, options: { sockets: number; holdMs: number }): Promise<AttackCounts> {
  const counts: AttackCounts = { opened: 0, closedByNode: 0 };
  const sockets: Socket[] = [];
  for (let i = 0; i < options.sockets; i++) {
    const s = connect({ host: t.host, port: t.port });
    s.on("error", () => undefined);
    s.on("close", () => counts.closedByNode!++);
    s.once("connect", () => {
      counts.opened!++;
      const kind = i % 3;
      if (kind === 1) s.write(`GET /v1/client HTTP/1.1\r\nHost: ${t.host}\r\nUpgrade: websocket\r\n`); // headers never end
      if (kind === 2) {
        s.write(
          `GET /v1/client HTTP/1.1\r\nHost: ${t.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        // A masked binary frame header announcing 1000 bytes, then only 3 of them.
        s.write(Buffer.from([0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4, 9, 9, 9]));
      }
    });
    sockets.push(s);
  }
  await new Promise((r) => setTimeout(r, options.holdMs));
  const stillOpen = sockets.filter((s) => !s.destroyed).length;
  for (const s of sockets) s.destroy();
  return { ...counts, stillOpenAtEnd: stillOpen };
}

/** Releases of a lease id that cannot exist, each answered at once with a rejection (never through the log). */
function unknownReleases(count: number, firstRequestId: number): Uint8Array {
  // The longest id the protocol takes makes each answer (which quotes it) as large as it can be.
  const leaseId = "x".repeat(128);
  return encodeClientFrame(Array.from({ length: count }, (_, i) => ({ type: "release" as const, requestId: firstRequestId + i, leaseId })));
}

/**
 * Slow readers: a session that stops reading and keeps sending frames of releases of unknown leases, so the node's
 * send buffer for it grows until the node drops the connection (CLIENT_BUFFER_MAX_BYTES). Frames are kept small and
 * spaced (`messagesPerFrame`, `gapMs`) so that the answers to one read stay under one frame's message cap: see
 * `answerBurst` for what happens above it. Returns how many readers the node dropped within the bound.
 */
export async function slowReaders(
  t: AttackTarget,
  options: { readers: number; frames: number; messagesPerFrame: number; gapMs: number },
): Promise<AttackCounts> {
  const counts: AttackCounts = { readers: 0, droppedByNode: 0, framesSent: 0 };
  await Promise.all(
    Array.from({ length: options.readers }, async (_, r) => {
      const ws = await hello(t);
      if (ws === null) return;
      counts.readers!++;
      // Stop reading: the TCP window fills and the node's writes queue up on its side.
      (ws as unknown as { _socket: Socket })._socket.pause();
      let requestId = 1_000_000 * (r + 1);
      for (let i = 0; i < options.frames && ws.readyState === WebSocket.OPEN; i++) {
        ws.send(unknownReleases(options.messagesPerFrame, requestId));
        requestId += options.messagesPerFrame;
        counts.framesSent!++;
        await new Promise((res) => setTimeout(res, options.gapMs));
      }
      // Read again: a node that closed the connection (at the send-buffer cap, or when the reader's session
      // expired) has sent its close behind what it had queued, and a paused socket never gets to it.
      (ws as unknown as { _socket: Socket })._socket.resume();
      if ((await closedBy(ws)) !== null) counts.droppedByNode!++;
    }),
  );
  return counts;
}

/**
 * Two frames of 4,000 valid messages each in one write: the node reads both in one turn and owes 8,000 answers at
 * once. Returns whether the connection got its answers (a welcome, then rejections) and was not dropped.
 */
export async function answerBurst(t: AttackTarget): Promise<{ answered: number; closeCode: number | null }> {
  const ws = await hello(t);
  if (ws === null) throw new Error("the fuzz key was not welcomed");
  let answered = 0;
  ws.on("message", () => answered++);
  const socket = (ws as unknown as { _socket: Socket })._socket;
  socket.cork(); // both frames leave in one segment, so the node decodes them in the same turn
  ws.send(unknownReleases(4_000, 1));
  ws.send(unknownReleases(4_000, 4_001));
  socket.uncork();
  const closeCode = await closedBy(ws);
  return { answered, closeCode };
}

/** A reader that stopped reading, left open by `pinningReader` for the caller to measure the node, then close. */
export interface StalledReader {
  /** Whether the node has not dropped the stalled connection (yet). */
  open(): boolean;
  close(): void;
  readonly counts: AttackCounts;
}

/**
 * Two connections with the fuzz key. One stops reading; its send queue on the node is first pushed past the
 * kernel's buffers with a few large answers, then it sends one-message frames (each answered at once) between the
 * frames of 4,000 releases the other, reading, connection sends. Every tiny answer waits in the node's queue for the
 * stalled one, interleaved with the large answers the node packs for the reader. Returns once the reader has all
 * its answers, with the stalled connection still open: a node that queues views into a shared encode buffer keeps
 * those buffers alive for as long as the stalled connection lives (about 0.7 MB per large answer).
 */
export async function pinningReader(t: AttackTarget, options: { bigFrames: number; tinyPerBig: number }): Promise<StalledReader> {
  const reader = await hello(t);
  const stalled = await hello(t);
  if (reader === null || stalled === null) throw new Error("the fuzz key was not welcomed");
  let stalledOpen = true;
  stalled.on("close", () => (stalledOpen = false));
  (stalled as unknown as { _socket: Socket })._socket.pause();
  const fill = 12; // 12 x ~0.7 MB of answers: past the loopback socket buffers, under the node's 8 MiB queue cap
  for (let i = 0; i < fill; i++) stalled.send(unknownReleases(4_000, 1 + i * 4_000));
  await new Promise((r) => setTimeout(r, 500));
  let answered = 0;
  reader.on("message", (data: Buffer) => {
    const decoded = decodeServerFrame(new Uint8Array(data));
    if (decoded.ok) answered += decoded.messages.length;
  });
  let requestId = 1_000_000;
  let tiny = 0;
  for (let i = 0; i < options.bigFrames && stalledOpen; i++) {
    reader.send(unknownReleases(4_000, requestId));
    requestId += 4_000;
    for (let k = 0; k < options.tinyPerBig; k++) {
      stalled.send(unknownReleases(1, requestId++));
      tiny++;
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  // Every large answer must arrive for the attack to be whole; a loaded machine answers ~15,000 messages a second.
  const deadline = Date.now() + 90_000;
  while (answered < options.bigFrames * 4_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  reader.terminate();
  return {
    open: () => stalledOpen,
    close: () => stalled.terminate(),
    counts: { largeAnswersRead: answered, tinyFramesSent: tiny, fillFrames: fill },
  };
}

/** Raw bytes on the HTTP port (not HTTP at all), and unauthenticated upgrades to the peer endpoint. */
export async function garbageAndPeerProbes(t: AttackTarget, options: { count: number; seed: number }): Promise<AttackCounts> {
  const prng = new Prng(options.seed);
  const counts: AttackCounts = { garbage: 0, peerProbes: 0, peerRefused: 0 };
  for (let i = 0; i < options.count; i++) {
    await new Promise<void>((resolve) => {
      const s = connect({ host: t.host, port: t.port }, () => s.end(Buffer.from(randomBytes(prng, prng.int(1, 2_000)))));
      s.on("error", () => resolve());
      s.on("close", () => resolve());
      s.setTimeout(CLOSE_WAIT_MS, () => s.destroy());
      s.resume();
    });
    counts.garbage!++;
    const ws = new WebSocket(`ws://${t.host}:${t.port}/v1/peer`, {
      headers: { "x-ratequeue-peer": "n9", "x-ratequeue-auth": randomBytes(prng, 16).toString() },
      handshakeTimeout: OPEN_TIMEOUT_MS,
    });
    ws.on("error", () => undefined);
    const refused = await new Promise<boolean>((resolve) => {
      ws.once("unexpected-response", (_req, res) => resolve(res.statusCode === 401));
      ws.once("open", () => resolve(false));
      ws.once("close", () => resolve(false));
    });
    ws.terminate();
    counts.peerProbes!++;
    if (refused) counts.peerRefused!++;
  }
  return counts;
}

/** What the leaked-key phase needs besides the fuzz key (a key with bounds: priorityMax 20, loadMax 100, ttlMsMax 60 s). */
export interface LeakedKeyTarget extends AttackTarget {
  /** A resource the fuzz key may not use: its name must never reach the fuzz key. */
  readonly otherResource: string;
  /** An admin key: creates and revokes the key whose session is revoked mid-session. */
  readonly adminKey: string;
  /** To make the one peer handshake an attacker on a plain ws:// link could capture, and replay it (to: the leader). */
  readonly peer: { readonly secret: string; readonly from: string; readonly to: string };
  /**
   * The current leader's id and port: on a loaded machine leadership may move during the run, and a follower would
   * answer every hello with notLeader (the attacks aim at whoever leads).
   */
  readonly leader: () => Promise<{ readonly id: string; readonly port: number }>;
}

/** How long the leaked-key phase waits for an answer: generous, since the node is loaded by the other attacks too. */
const ANSWER_WAIT_MS = 15_000;

/** Opens a client connection, says hello with `apiKey` (and `extra`), and returns it with its first answer. */
async function helloWith(t: AttackTarget, apiKey: string, extra: { ttlMs?: number; resume?: string } = {}): Promise<{ ws: WebSocket | null; first: ServerMessage | null; inbox: ServerMessage[] }> {
  const inbox: ServerMessage[] = [];
  const ws = await open(t);
  if (ws === null) return { ws, first: null, inbox };
  ws.on("message", (data: Buffer) => {
    const decoded = decodeServerFrame(new Uint8Array(data));
    if (decoded.ok) inbox.push(...decoded.messages);
  });
  ws.send(encodeClientFrame([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey, ...extra }]));
  const deadline = Date.now() + ANSWER_WAIT_MS;
  while (inbox.length === 0 && Date.now() < deadline && closeCodes.get(ws) === undefined) await new Promise((r) => setTimeout(r, 10));
  return { ws, first: inbox[0] ?? null, inbox };
}

/** Waits (bounded) for a message matching `match` in `inbox`. */
async function answer(inbox: ServerMessage[], match: (m: ServerMessage) => boolean): Promise<ServerMessage | null> {
  const deadline = Date.now() + ANSWER_WAIT_MS;
  for (;;) {
    const found = inbox.find(match);
    if (found !== undefined || Date.now() > deadline) return found ?? null;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Issue #15's attacker, `count` times: with the leaked (fuzz) key, the admin API, requests outside its scope and
 * other resources' metrics; one peer handshake captured on one connection and replayed on another; and once, a key
 * revoked while its session is open. Counts what was tried and what was refused; `metricsLeaks` counts scrapes that
 * named a resource the reader may not see.
 */
export async function leakedKeyAttacks(target: LeakedKeyTarget, options: { count: number }): Promise<AttackCounts> {
  let t = target;
  const counts: AttackCounts = { adminTried: 0, adminRefused: 0, scopeTried: 0, scopeRefused: 0, metricsLeaks: 0, replays: 0, replaysRefused: 0, revoked: 0, revokedRefused: 0 };
  /** Counts an answer that was not the refusal expected, by what it was, for the report. */
  const odd = (what: string, m: ServerMessage | null | undefined): void => {
    const key = `unexpected ${what}: ${m === null || m === undefined ? "no answer" : m.type === "error" || m.type === "rejected" ? `${m.type} ${m.code}` : m.type}`;
    counts[key] = (counts[key] ?? 0) + 1;
  };
  const http = async (method: string, path: string, key: string | null, body?: unknown): Promise<{ status: number; text: string }> => {
    const res = await fetch(`http://${t.host}:${t.port}${path}`, {
      method,
      headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(CLOSE_WAIT_MS),
    });
    return { status: res.status, text: await res.text() };
  };
  for (let i = 0; i < options.count; i++) {
    const leader = await target.leader();
    t = { ...target, port: leader.port, peer: { ...target.peer, to: leader.id, from: target.peer.from === leader.id ? target.peer.to : target.peer.from } };
    // The admin API.
    for (const [method, path, body] of [
      ["GET", "/v1/keys"],
      ["POST", "/v1/keys", { name: "mine now", scope: "admin" }],
      ["PUT", "/v1/resources/target", { limits: [{ kind: "concurrency", limit: 1_000 }] }],
      ["DELETE", `/v1/resources/${t.otherResource}`],
      ["POST", "/v1/members", { id: "n9", address: "127.0.0.1:1" }],
    ] as [string, string, unknown?][]) {
      counts.adminTried!++;
      if ((await http(method, path, t.fuzzKey, body)).status === 403) counts.adminRefused!++;
    }
    // Outside the key's scope: a day-long session, then priority, load, another resource and its cooldown.
    counts.scopeTried!++;
    const long = await helloWith(t, t.fuzzKey, { ttlMs: 86_400_000 });
    if (long.first?.type === "error" && long.first.code === "RQ_FORBIDDEN") counts.scopeRefused!++;
    else odd("day-long hello", long.first);
    long.ws?.terminate();
    const s = await helloWith(t, t.fuzzKey);
    if (s.first?.type !== "welcome") odd("hello", s.first);
    if (s.ws !== null && s.first?.type === "welcome") {
      const asks: ClientMessage[] = [
        { type: "acquire", requestId: 1, resource: "target", priority: 1_000 },
        { type: "acquire", requestId: 2, resource: "target", load: 101 },
        { type: "acquire", requestId: 3, resource: t.otherResource },
        { type: "cooldown", requestId: 4, resource: t.otherResource, retryAfterMs: 60_000 },
      ];
      s.ws.send(encodeClientFrame(asks));
      for (const ask of asks) {
        counts.scopeTried!++;
        const a = await answer(s.inbox, (m) => "requestId" in m && m.requestId === (ask as { requestId: number }).requestId);
        if (a?.type === "rejected" && a.code === "RQ_FORBIDDEN") counts.scopeRefused!++;
        else odd(ask.type, a);
      }
      s.ws.terminate();
    }
    // Metrics: the fuzz key sees its own resource only; no key sees none.
    if ((await http("GET", "/metrics", t.fuzzKey)).text.includes(`resource="${t.otherResource}"`)) counts.metricsLeaks!++;
    if (/resource="/.test((await http("GET", "/metrics", null)).text)) counts.metricsLeaks!++;
    // A peer handshake captured on one connection (its upgrade and the hello proving the secret over that
    // connection's two nonces; the link was never used) and replayed on another: the node's fresh nonce defeats it.
    counts.replays!++;
    if (await replayedHandshakeRefused(t)) counts.replaysRefused!++;
  }
  // A key revoked while its session is open: the connection is closed with RQ_UNAUTHORIZED and a resume is refused.
  counts.revoked!++;
  const created = await http("POST", "/v1/keys", t.adminKey, { name: "revoked mid-session", scope: { acquire: ["target"] } });
  const victim = JSON.parse(created.text) as { id: string; secret: string };
  const v = await helloWith(t, victim.secret);
  if (v.first?.type !== "welcome") odd("victim hello", v.first);
  if (v.ws !== null && v.first?.type === "welcome") {
    const sessionId = v.first.sessionId;
    await http("DELETE", `/v1/keys/${victim.id}`, t.adminKey);
    const cut = await answer(v.inbox, (m) => m.type === "error");
    const code = await closedBy(v.ws);
    const again = await helloWith(t, victim.secret, { resume: sessionId });
    again.ws?.terminate();
    if (cut?.type === "error" && cut.code === "RQ_UNAUTHORIZED" && code !== null && again.first?.type === "error" && again.first.code === "RQ_UNAUTHORIZED") {
      counts.revokedRefused!++;
    } else odd(`revocation (close ${code})`, cut ?? again.first);
  }
  return counts;
}

/** Captures a valid peer handshake on one connection and replays it on a second; true when the node refused it (4401). */
async function replayedHandshakeRefused(t: LeakedKeyTarget): Promise<boolean> {
  const { secret, from, to } = t.peer;
  const headers = { [PEER_HEADER.from]: from, [PEER_HEADER.to]: to, [PEER_HEADER.nonce]: newNonce().toString("base64url") };
  const dial = Buffer.from(headers[PEER_HEADER.nonce]!, "base64url");
  const first = new WebSocket(`ws://${t.host}:${t.port}/v1/peer`, { headers, handshakeTimeout: OPEN_TIMEOUT_MS });
  first.on("error", () => undefined);
  const accept = await new Promise<Buffer | null>((resolve) => {
    first.once("upgrade", (res) => resolve(parseNonce(res.headers[PEER_HEADER.nonce])));
    first.once("unexpected-response", () => resolve(null));
    first.once("close", () => resolve(null));
  });
  first.terminate(); // the captured connection ends before its hello is sent: no link is made
  if (accept === null) return false;
  const capturedHello = encodePeerFrame([
    { type: "peerHello", protocolVersion: PROTOCOL_VERSION, from, to, proof: peerProof(secret, "dial", from, to, { dial, accept }) },
  ]);
  const second = new WebSocket(`ws://${t.host}:${t.port}/v1/peer`, { headers, handshakeTimeout: OPEN_TIMEOUT_MS });
  second.on("error", () => undefined);
  second.on("close", (code) => closeCodes.set(second, code));
  const opened = await new Promise<boolean>((resolve) => {
    second.once("open", () => resolve(true));
    second.once("unexpected-response", () => resolve(false));
    second.once("close", () => resolve(false));
  });
  if (!opened) return false;
  second.send(capturedHello);
  return (await closedBy(second)) === PEER_AUTH_CLOSE_CODE;
}

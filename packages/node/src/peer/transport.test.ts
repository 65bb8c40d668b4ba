import { createServer, type Server } from "node:http";
import { connect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { newClusterId, newNonce, PEER_AUTH_CLOSE_CODE, PEER_HEADER } from "./handshake.js";
import { PEER_PATH, PeerTransport, type PeerAddress } from "./transport.js";

const logger = pino({ level: process.env.TEST_LOG ?? "silent" });
const SECRET = "test-cluster-secret-0123";

interface Harness {
  transport: PeerTransport;
  server: Server;
  received: { from: string; text: string }[];
  unreachable: string[];
  opened: string[];
}

const open: Harness[] = [];

async function listen(): Promise<Server> {
  const server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

function urlOf(server: Server): string {
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function attach(
  server: Server,
  selfId: string,
  peers: PeerAddress[],
  secrets: string[] = [SECRET],
  clusterId: () => string | null = () => null,
): Harness {
  const received: Harness["received"] = [];
  const unreachable: string[] = [];
  const opened: string[] = [];
  const transport = new PeerTransport({
    selfId,
    clusterSecrets: secrets,
    peers,
    logger,
    clusterId,
    onFrame: (from, frame) => received.push({ from, text: new TextDecoder().decode(frame) }),
    onUnreachable: (peerId) => unreachable.push(peerId),
    onLinkOpen: (peerId) => opened.push(peerId),
  });
  server.on("upgrade", (req, socket, head) => {
    if (req.url === PEER_PATH) transport.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  const h = { transport, server, received, unreachable, opened };
  open.push(h);
  return h;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A TCP relay that records every byte each way, as an attacker on the path would. */
interface Tap {
  readonly url: string;
  readonly toServer: Buffer[];
  readonly toClient: Buffer[];
}
const tcpServers: TcpServer[] = [];

async function tap(target: Server): Promise<Tap> {
  const port = (target.address() as AddressInfo).port;
  const recorded: Tap = { url: "", toServer: [], toClient: [] };
  const relay = createTcpServer((client) => {
    const upstream = connect({ host: "127.0.0.1", port });
    client.on("data", (chunk) => {
      recorded.toServer.push(chunk);
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      recorded.toClient.push(chunk);
      client.write(chunk);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("error", () => undefined);
    upstream.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  tcpServers.push(relay);
  return { ...recorded, url: `ws://127.0.0.1:${(relay.address() as AddressInfo).port}` };
}

/** Everything `socket` receives until it closes (or `ms` pass). */
function drain(socket: Socket, ms = 3_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (c) => chunks.push(c));
  return new Promise((resolve) => {
    const done = (): void => resolve(Buffer.concat(chunks));
    socket.on("close", done);
    socket.on("error", () => undefined);
    setTimeout(() => {
      socket.destroy();
      done();
    }, ms);
  });
}

/** The close code of the first close frame in a server-to-client byte stream (after the HTTP answer), or null. */
function closeCodeIn(bytes: Buffer): number | null {
  const body = bytes.subarray(bytes.indexOf("\r\n\r\n") + 4);
  for (let i = 0; i + 3 < body.length; i++) {
    if (body[i] === 0x88 && body[i + 1]! >= 2 && body[i + 1]! < 126) return body.readUInt16BE(i + 2);
  }
  return null;
}

afterEach(async () => {
  for (const relay of tcpServers.splice(0)) await new Promise((r) => relay.close(r));
  for (const h of open.splice(0)) {
    await h.transport.close();
    h.server.closeAllConnections();
    await new Promise((r) => h.server.close(r));
  }
});

describe("PeerTransport", () => {
  it("delivers frames both ways between nodes that share the secret", async () => {
    const [sa, sb] = [await listen(), await listen()];
    const peers = [{ id: "n1", url: urlOf(sa) }, { id: "n2", url: urlOf(sb) }];
    const a = attach(sa, "n1", peers);
    const b = attach(sb, "n2", peers);
    a.transport.start();
    b.transport.start();
    await until(() => a.transport.connectedPeers().length === 1 && b.transport.connectedPeers().length === 1, "links");
    a.transport.send("n2", new TextEncoder().encode("hello n2"));
    b.transport.send("n1", new TextEncoder().encode("hello n1"));
    await until(() => a.received.length === 1 && b.received.length === 1, "frames");
    expect(b.received).toEqual([{ from: "n1", text: "hello n2" }]);
    expect(a.received).toEqual([{ from: "n2", text: "hello n1" }]);
  });

  it("refuses a peer with the wrong secret before any frame is read", async () => {
    const [sa, sb] = [await listen(), await listen()];
    const peers = [{ id: "n1", url: urlOf(sa) }, { id: "n2", url: urlOf(sb) }];
    const a = attach(sa, "n1", peers, ["a-different-secret-xyz"]);
    const b = attach(sb, "n2", peers);
    a.transport.start();
    await new Promise((r) => setTimeout(r, 200));
    expect(a.transport.connectedPeers()).toEqual([]);
    a.transport.send("n2", new Uint8Array([1]));
    expect(a.unreachable).toEqual(["n2"]);
    expect(b.received).toEqual([]);
  });

  it("reconnects when the peer comes back on the same port", async () => {
    const [sa, sb] = [await listen(), await listen()];
    const portB = (sb.address() as AddressInfo).port;
    const peers = [{ id: "n1", url: urlOf(sa) }, { id: "n2", url: urlOf(sb) }];
    const a = attach(sa, "n1", peers);
    const b = attach(sb, "n2", peers);
    a.transport.start();
    await until(() => a.transport.connectedPeers().length === 1, "first link");
    // n2 dies: its server and transport go away.
    await b.transport.close();
    sb.closeAllConnections();
    await new Promise((r) => sb.close(r));
    open.splice(open.indexOf(b), 1);
    await until(() => a.transport.connectedPeers().length === 0, "link down");
    // n2 restarts on the same port.
    const sb2 = createServer();
    await new Promise<void>((resolve) => sb2.listen(portB, "127.0.0.1", resolve));
    const b2 = attach(sb2, "n2", peers);
    await until(() => a.transport.connectedPeers().length === 1, "link back");
    a.transport.send("n2", new TextEncoder().encode("again"));
    await until(() => b2.received.length === 1, "frame after reconnect");
    expect(b2.received[0]).toEqual({ from: "n1", text: "again" });
  });

  it("links nodes that share one of their secrets (a rotation), and not nodes that share none", async () => {
    const [sa, sb, sc] = [await listen(), await listen(), await listen()];
    const peers = [{ id: "n1", url: urlOf(sa) }, { id: "n2", url: urlOf(sb) }, { id: "n3", url: urlOf(sc) }];
    const rotated = attach(sa, "n1", peers, ["the-new-cluster-secret", SECRET]);
    const old = attach(sb, "n2", peers, [SECRET]);
    const fresh = attach(sc, "n3", peers, ["the-new-cluster-secret"]);
    for (const h of [rotated, old, fresh]) h.transport.start();
    await until(() => rotated.transport.connectedPeers().length === 2, "n1 links to n2 (old secret) and n3 (new secret)");
    await until(() => old.transport.isConnected("n1") && fresh.transport.isConnected("n1"), "n2 and n3 link to n1");
    await new Promise((r) => setTimeout(r, 300));
    expect(old.transport.isConnected("n3")).toBe(false);
    expect(fresh.transport.isConnected("n2")).toBe(false);
    fresh.transport.send("n1", new TextEncoder().encode("from n3"));
    old.transport.send("n1", new TextEncoder().encode("from n2"));
    await until(() => rotated.received.length === 2, "frames at n1");
    expect(rotated.received.map((r) => r.from).sort()).toEqual(["n2", "n3"]);
  });

  it("refuses a captured handshake replayed byte for byte on a new connection", async () => {
    const [sa, sb] = [await listen(), await listen()];
    const relay = await tap(sb);
    const b = attach(sb, "n2", [{ id: "n1", url: urlOf(sa) }, { id: "n2", url: urlOf(sb) }]);
    const a = attach(sa, "n1", [{ id: "n1", url: urlOf(sa) }, { id: "n2", url: relay.url }]);
    a.transport.start();
    await until(() => a.transport.isConnected("n2"), "the genuine link through the tap");
    a.transport.send("n2", new TextEncoder().encode("genuine"));
    await until(() => b.received.length === 1, "the genuine frame");
    await a.transport.close();
    open.splice(open.indexOf(a), 1);
    const captured = Buffer.concat(relay.toServer);
    expect(captured.includes(PEER_HEADER.nonce)).toBe(true);

    // The attacker replays everything n1 sent (upgrade, hello, the frame) to n2, and then it all again.
    for (let attempt = 0; attempt < 2; attempt++) {
      const socket = connect({ host: "127.0.0.1", port: (sb.address() as AddressInfo).port });
      const answer = drain(socket);
      socket.write(captured);
      const bytes = await answer;
      expect(bytes.toString("latin1")).toMatch(/^HTTP\/1\.1 101 /);
      expect(closeCodeIn(bytes)).toBe(PEER_AUTH_CLOSE_CODE);
    }
    expect(b.received).toEqual([{ from: "n1", text: "genuine" }]);
  });

  it("a dialling node refuses a captured answer replayed by an impostor, and sends it nothing", async () => {
    const [sa, sb] = [await listen(), await listen()];
    const relay = await tap(sb);
    attach(sb, "n2", [{ id: "n1", url: urlOf(sa) }, { id: "n2", url: urlOf(sb) }]);
    const a = attach(sa, "n1", [{ id: "n1", url: urlOf(sa) }, { id: "n2", url: relay.url }]);
    a.transport.start();
    await until(() => a.transport.isConnected("n2"), "the genuine link through the tap");
    await a.transport.close();
    open.splice(open.indexOf(a), 1);
    const answer = Buffer.concat(relay.toClient);
    const httpAnswer = answer.subarray(0, answer.indexOf("\r\n\r\n") + 4);
    expect(httpAnswer.toString("latin1")).toMatch(/^HTTP\/1\.1 101 /);

    // The impostor answers every upgrade with n2's captured answer and records what the dialler sends after it.
    const afterUpgrade: Buffer[] = [];
    let upgrades = 0;
    const impostor = createTcpServer((socket) => {
      let head = Buffer.alloc(0);
      socket.on("data", (chunk) => {
        if (head.includes("\r\n\r\n")) return void afterUpgrade.push(chunk);
        head = Buffer.concat([head, chunk]);
        if (head.includes("\r\n\r\n")) {
          upgrades++;
          const rest = head.subarray(head.indexOf("\r\n\r\n") + 4);
          if (rest.length > 0) afterUpgrade.push(rest);
          socket.write(httpAnswer);
        }
      });
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => impostor.listen(0, "127.0.0.1", resolve));
    tcpServers.push(impostor);
    const sc = await listen();
    const victim = attach(sc, "n1", [{ id: "n1", url: urlOf(sc) }, { id: "n2", url: `ws://127.0.0.1:${(impostor.address() as AddressInfo).port}` }]);
    victim.transport.start();
    await until(() => upgrades >= 2, "the victim dialled the impostor twice");
    victim.transport.send("n2", new TextEncoder().encode("secret raft state"));
    expect(victim.opened).toEqual([]);
    expect(victim.transport.isConnected("n2")).toBe(false);
    // No hello and no frame: at most a close frame from the victim (opcode 8, masked).
    for (const chunk of afterUpgrade) expect(chunk[0]! & 0x0f).toBe(0x8);
  });

  it("cuts a link that sends more than a hello's worth of bytes before it is proven", async () => {
    const sb = await listen();
    const b = attach(sb, "n2", [{ id: "n1", url: "ws://127.0.0.1:1" }, { id: "n2", url: urlOf(sb) }]);
    const ws = new WebSocket(`${urlOf(sb)}${PEER_PATH}`, {
      headers: { [PEER_HEADER.from]: "n1", [PEER_HEADER.to]: "n2", [PEER_HEADER.nonce]: newNonce().toString("base64url") },
    });
    ws.on("error", () => undefined);
    await new Promise((resolve) => ws.once("open", resolve));
    const closed = new Promise((resolve) => ws.once("close", resolve));
    ws.send(new Uint8Array(1_000_000), { binary: true });
    await closed;
    expect(b.received).toEqual([]);
  });

  it("refuses upgrades that claim its own id, name the wrong target, or carry no nonce (an unknown id must prove the secret in its hello: a new member may dial before this node applied its addition)", async () => {
    const sb = await listen();
    attach(sb, "n2", [{ id: "n1", url: "ws://127.0.0.1:1" }, { id: "n2", url: urlOf(sb) }]);
    const nonce = newNonce().toString("base64url");
    const status = (headers: Record<string, string>): Promise<number> => {
      const ws = new WebSocket(`${urlOf(sb)}${PEER_PATH}`, { headers });
      ws.on("error", () => undefined);
      return new Promise((resolve) => {
        ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.once("open", () => resolve(101));
      });
    };
    expect(await status({ [PEER_HEADER.from]: "n2", [PEER_HEADER.to]: "n2", [PEER_HEADER.nonce]: nonce })).toBe(401);
    expect(await status({ [PEER_HEADER.from]: "n1", [PEER_HEADER.to]: "n3", [PEER_HEADER.nonce]: nonce })).toBe(401);
    expect(await status({ [PEER_HEADER.from]: "n1", [PEER_HEADER.to]: "n2", [PEER_HEADER.nonce]: "short" })).toBe(401);
    expect(await status({})).toBe(401);
  });

  describe("cluster identity", () => {
    async function pair(idA: () => string | null, idB: () => string | null): Promise<[Harness, Harness]> {
      const [sa, sb] = [await listen(), await listen()];
      const peers = [{ id: "n1", url: urlOf(sa) }, { id: "n2", url: urlOf(sb) }];
      const a = attach(sa, "n1", peers, [SECRET], idA);
      const b = attach(sb, "n2", peers, [SECRET], idB);
      a.transport.start();
      b.transport.start();
      return [a, b];
    }

    it("refuses both ways between nodes of different clusters with the same ids and secret; nothing is delivered", async () => {
      const [x, y] = [newClusterId(), newClusterId()];
      const [a, b] = await pair(() => x, () => y);
      // Long enough for several dials at the smallest backoff.
      await new Promise((r) => setTimeout(r, 500));
      a.transport.send("n2", new Uint8Array([1]));
      b.transport.send("n1", new Uint8Array([2]));
      expect(a.transport.connectedPeers()).toEqual([]);
      expect(b.transport.connectedPeers()).toEqual([]);
      expect(a.opened).toEqual([]);
      expect(b.opened).toEqual([]);
      expect(a.received).toEqual([]);
      expect(b.received).toEqual([]);
    });

    it("links nodes of the same cluster, and a node that knows no id yet (a founder, a joiner)", async () => {
      const x = newClusterId();
      const [a, b] = await pair(() => x, () => x);
      await until(() => a.transport.connectedPeers().length === 1 && b.transport.connectedPeers().length === 1, "links, same cluster");
      const [c, d] = await pair(() => x, () => null);
      await until(() => c.transport.connectedPeers().length === 1 && d.transport.connectedPeers().length === 1, "links, one id unknown");
    });

    it("drops links to another cluster's node once it learns its own id", async () => {
      const theirs = newClusterId();
      let ours: string | null = null;
      const [a, b] = await pair(() => ours, () => theirs);
      await until(() => a.transport.connectedPeers().length === 1 && b.transport.connectedPeers().length === 1, "links while the id is unknown");
      ours = newClusterId();
      a.transport.clusterIdChanged();
      await until(() => a.transport.connectedPeers().length === 0 && b.transport.connectedPeers().length === 0, "links dropped");
      const received = b.received.length;
      b.transport.send("n1", new Uint8Array([3]));
      a.transport.send("n2", new Uint8Array([4]));
      await new Promise((r) => setTimeout(r, 300));
      expect(a.transport.connectedPeers()).toEqual([]);
      expect(b.transport.connectedPeers()).toEqual([]);
      expect(a.received).toEqual([]);
      expect(b.received.length).toBe(received);
    });

    it("refuses a malformed cluster id header", async () => {
      const server = await listen();
      attach(server, "n1", [{ id: "n1", url: urlOf(server) }]);
      const port = (server.address() as AddressInfo).port;
      const socket = connect({ host: "127.0.0.1", port });
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      socket.write(
        [
          `GET ${PEER_PATH} HTTP/1.1`,
          "Host: 127.0.0.1",
          "Connection: Upgrade",
          "Upgrade: websocket",
          "Sec-WebSocket-Version: 13",
          `Sec-WebSocket-Key: ${Buffer.alloc(16, 1).toString("base64")}`,
          `${PEER_HEADER.from}: n2`,
          `${PEER_HEADER.to}: n1`,
          `${PEER_HEADER.nonce}: ${newNonce().toString("base64url")}`,
          `${PEER_HEADER.cluster}: not-a-cluster-id`,
          "",
          "",
        ].join("\r\n"),
      );
      const answer = (await drain(socket)).toString("latin1");
      expect(answer.startsWith("HTTP/1.1 401")).toBe(true);
    });
  });
});

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { PEER_PATH, PeerTransport, type PeerAddress } from "./transport.js";

const logger = pino({ level: "silent" });
const SECRET = "test-cluster-secret-0123";

interface Harness {
  transport: PeerTransport;
  server: Server;
  received: { from: string; text: string }[];
  unreachable: string[];
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

function attach(server: Server, selfId: string, peers: PeerAddress[], secret = SECRET): Harness {
  const received: Harness["received"] = [];
  const unreachable: string[] = [];
  const transport = new PeerTransport({
    selfId,
    clusterSecret: secret,
    peers,
    logger,
    onFrame: (from, frame) => received.push({ from, text: new TextDecoder().decode(frame) }),
    onUnreachable: (peerId) => unreachable.push(peerId),
  });
  server.on("upgrade", (req, socket, head) => {
    if (req.url === PEER_PATH) transport.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  const h = { transport, server, received, unreachable };
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

afterEach(async () => {
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
    const a = attach(sa, "n1", peers, "a-different-secret-xyz");
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
});

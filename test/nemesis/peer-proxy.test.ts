import { createServer, connect, type AddressInfo, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { PeerProxy } from "./peer-proxy.js";

/** A TCP echo server standing in for a node's port. */
async function echoServer(): Promise<Server> {
  const server = createServer((s) => {
    s.on("error", () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return server;
}

/** Sends `head` then `body` through the proxy; resolves with what came back, or "closed" if the proxy cut it. */
function roundTrip(port: number, head: string, body: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port }, () => s.write(head + body));
    let got = "";
    s.on("data", (d) => {
      got += d.toString();
      if (got.length >= head.length + body.length) {
        s.destroy();
        resolve(got);
      }
    });
    s.on("error", () => undefined);
    s.on("close", () => resolve(got.length > 0 ? got : "closed"));
  });
}

const peerHead = (from: string): string => `GET /v1/peer HTTP/1.1\r\nhost: x\r\nx-ratequeue-from: ${from}\r\n\r\n`;
const PEER = peerHead("n1");
const OTHER_PEER = peerHead("n3");
const CLIENT = "GET /v1/client HTTP/1.1\r\n";

describe("peer proxy", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });

  const setup = async (): Promise<PeerProxy> => {
    const server = await echoServer();
    const proxy = await PeerProxy.start({ to: "n2", targetPort: (server.address() as AddressInfo).port });
    cleanup.push(() => proxy.close(), () => new Promise((r) => server.close(() => r())));
    return proxy;
  };

  it("forwards peer and client connections both ways while healed", async () => {
    const proxy = await setup();
    expect(await roundTrip(proxy.port, PEER, "raft")).toBe(`${PEER}raft`);
    expect(await roundTrip(proxy.port, CLIENT, "sdk")).toBe(`${CLIENT}sdk`);
  });

  it("a cut from n1 refuses n1's new peer connections and destroys its open ones; n3's link and clients still pass", async () => {
    const proxy = await setup();
    const open = connect({ host: "127.0.0.1", port: proxy.port }, () => open.write(PEER));
    open.on("error", () => undefined);
    const echoed = new Promise<void>((r) => open.once("data", () => r()));
    await echoed;
    const closed = new Promise<void>((r) => open.once("close", () => r()));
    proxy.cut("n1");
    await closed;
    expect(proxy.isCut("n1")).toBe(true);
    expect(await roundTrip(proxy.port, PEER, "raft")).toBe("closed");
    expect(await roundTrip(proxy.port, OTHER_PEER, "raft")).toBe(`${OTHER_PEER}raft`);
    expect(await roundTrip(proxy.port, CLIENT, "sdk")).toBe(`${CLIENT}sdk`);
    expect(proxy.dropped).toBe(2);
    proxy.heal("n1");
    expect(await roundTrip(proxy.port, PEER, "raft")).toBe(`${PEER}raft`);
  });
});

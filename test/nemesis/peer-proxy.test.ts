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

const PEER = "GET /v1/peer HTTP/1.1\r\nX-RateQueue-From: n1\r\nX-RateQueue-To: n2\r\n\r\n";
const OTHER_PEER = "GET /v1/peer HTTP/1.1\r\nx-ratequeue-from: n3\r\n\r\n";
const CLIENT = "GET /v1/client HTTP/1.1\r\nHost: x\r\n\r\n";

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

  it("when a link is cut, refuses its new peer connections and destroys open ones; other links and clients pass", async () => {
    const proxy = await setup();
    const link = proxy.link("n1");
    const open = connect({ host: "127.0.0.1", port: proxy.port }, () => open.write(PEER));
    open.on("error", () => undefined);
    const echoed = new Promise<void>((r) => open.once("data", () => r()));
    await echoed;
    const closed = new Promise<void>((r) => open.once("close", () => r()));
    link.cut();
    await closed;
    expect(await roundTrip(proxy.port, PEER, "raft")).toBe("closed");
    expect(await roundTrip(proxy.port, OTHER_PEER, "raft")).toBe(`${OTHER_PEER}raft`); // n3 -> n2 is not cut
    expect(await roundTrip(proxy.port, CLIENT, "sdk")).toBe(`${CLIENT}sdk`);
    expect(link.dropped).toBe(2);
    expect(proxy.link("n3").dropped).toBe(0);
    link.heal();
    expect(await roundTrip(proxy.port, PEER, "raft")).toBe(`${PEER}raft`);
  });
});

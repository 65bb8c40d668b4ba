import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import selfsigned from "selfsigned";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster } from "@ratequeue/node";
import { RateQueue } from "@ratequeue/sdk";
import { newNonce, PEER_HEADER } from "@ratequeue/node/testing";

// Issue #15: mutual TLS on peer links (--tls-peer-ca), the production setup. The nodes link with each other by
// presenting their certificate; a /v1/peer upgrade without a certificate the CA signed is refused before the
// challenge, while clients (which present none) are served as usual.

/** A self-signed certificate for 127.0.0.1 (its own CA), made here: no openssl needed. */
async function makeCert(dir: string, name: string): Promise<{ certFile: string; keyFile: string; cert: string; key: string }> {
  const pems = await selfsigned.generate([{ name: "commonName", value: "127.0.0.1" }], {
    notAfterDate: new Date(Date.now() + 2 * 86_400_000),
    keySize: 2048,
    extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
  });
  const certFile = join(dir, `${name}-cert.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  await writeFile(certFile, pems.cert);
  await writeFile(keyFile, pems.private);
  return { certFile, keyFile, cert: pems.cert, key: pems.private };
}

/** The HTTP status a /v1/peer upgrade gets (101 = the node's challenge), presenting `client` or no certificate. */
function peerUpgrade(port: number, ca: string, client: { cert: string; key: string } | null): Promise<number> {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/v1/peer`, {
    ca,
    ...(client === null ? {} : { cert: client.cert, key: client.key }),
    headers: { [PEER_HEADER.from]: "n2", [PEER_HEADER.to]: "n1", [PEER_HEADER.nonce]: newNonce().toString("base64url") },
  });
  ws.on("error", () => undefined);
  return new Promise((resolve) => {
    ws.once("upgrade", (res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once("close", () => resolve(-1));
  });
}

describe("mutual TLS on peer links (--tls-peer-ca)", () => {
  let dir: string;
  let cluster: LocalCluster;
  let node: { certFile: string; keyFile: string; cert: string; key: string };
  let stranger: { cert: string; key: string };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rq-mtls-"));
    node = await makeCert(dir, "node");
    stranger = await makeCert(dir, "stranger");
    cluster = await LocalCluster.start({
      tls: { certFile: node.certFile, keyFile: node.keyFile, caFile: node.certFile },
      extraArgs: ["--tls-peer-ca", node.certFile],
      resources: { r: { limits: [{ kind: "concurrency", limit: 2 }] } },
    });
  });
  afterAll(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("the nodes link (a leader is elected and clients are served); a peer without the CA's certificate is refused", async () => {
    await cluster.waitForLeader();
    const rq = new RateQueue({ url: cluster.nodes.map((n) => n.url), apiKey: cluster.adminKey, webSocketOptions: { ca: node.cert } });
    try {
      await rq.acquire("r", {}, async () => undefined); // a client presents no certificate and is served
    } finally {
      await rq.close();
    }
    const port = cluster.nodes[0]!.port;
    expect(await peerUpgrade(port, node.cert, null)).toBe(401);
    expect(await peerUpgrade(port, node.cert, stranger)).toBe(401);
    expect(await peerUpgrade(port, node.cert, node)).toBe(101); // the certificate gets it as far as the challenge
  });
});

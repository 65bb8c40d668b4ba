import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { get } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import selfsigned from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster } from "@ratequeue/node";
import { RateQueue } from "@ratequeue/sdk";

/** A certificate for 127.0.0.1, made here (no openssl needed). */
async function makeCert(dir: string): Promise<{ certFile: string; keyFile: string; caFile: string; cert: string }> {
  const pems = await selfsigned.generate([{ name: "commonName", value: "127.0.0.1" }], {
    notAfterDate: new Date(Date.now() + 2 * 86_400_000),
    keySize: 2048,
    extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
  });
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  await writeFile(certFile, pems.cert);
  await writeFile(keyFile, pems.private);
  return { certFile, keyFile, caFile: certFile, cert: pems.cert };
}

function httpsJson(url: string, ca: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    }).on("error", reject);
  });
}

describe("TLS: a cluster with certificate and key files serves wss:// and https://", () => {
  let dir: string;
  let cluster: LocalCluster;
  let cert: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rq-tls-"));
    const tls = await makeCert(dir);
    cert = tls.cert;
    cluster = await LocalCluster.start({ tls, resources: { secure: { limits: [{ kind: "concurrency", limit: 1 }] } } });
    await cluster.waitForLeader();
  });
  afterAll(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("peers elect a leader over wss://, HTTPS answers, and the SDK acquires over wss://", async () => {
    const health = await httpsJson(`${cluster.nodes[0]!.httpUrl}/healthz`, cert);
    expect(health).toEqual({ status: 200, body: { ok: true } });
    expect(cluster.urls.every((u) => u.startsWith("wss://"))).toBe(true);
    const rq = new RateQueue({ url: cluster.urls, apiKey: cluster.adminKey, webSocketOptions: { ca: cert } });
    const lease = await rq.acquire("secure", { timeoutMs: 10_000 });
    expect(await rq.tryAcquire("secure")).toBeNull();
    await lease.release();
    await rq.close();
  });

  it("a plain ws:// client cannot talk to a TLS node", async () => {
    const plain = new RateQueue({ url: cluster.urls.map((u) => u.replace("wss://", "ws://")), apiKey: cluster.adminKey });
    await expect(plain.acquire("secure", { timeoutMs: 1_500 })).rejects.toMatchObject({ code: "RQ_UNAVAILABLE" });
    await plain.close();
  });
});

/**
 * Investigation tool (not a test): can a client that stops reading make the leader keep msgpackr's shared pack
 * buffers alive through the small frames queued for it, while another connection makes the leader pack a lot?
 * Prints the leader's ArrayBuffers after a full GC while the slow connection is still open.
 *
 *   npx tsx scripts/fuzz-live/pin-probe.ts [--seconds 8]
 */
import type { Socket } from "node:net";
import WebSocket from "ws";
import { encodeClientFrame, PROTOCOL_VERSION } from "@ratequeue/protocol";
import { Cluster, sleep } from "../../test/cluster/harness.js";
import { Inspector, inspectorUrl } from "@ratequeue/testkit";

const SECONDS = Number(process.argv[process.argv.indexOf("--seconds") + 1] ?? 8) || 8;

async function hello(url: string, key: string): Promise<WebSocket> {
  const ws = new WebSocket(`${url}/v1/client`, { perMessageDeflate: false });
  ws.on("error", () => undefined);
  await new Promise((r) => ws.once("open", r));
  ws.send(encodeClientFrame([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: key }]));
  await new Promise((r) => ws.once("message", r));
  return ws;
}

const releases = (n: number, first: number): Uint8Array =>
  encodeClientFrame(Array.from({ length: n }, (_, i) => ({ type: "release" as const, requestId: first + i, leaseId: "x".repeat(128) })));

const cluster = await Cluster.start({ execArgv: ["--inspect=127.0.0.1:0"], resources: { target: { limits: [{ kind: "concurrency", limit: 2 }] } } });
try {
  const leader = await cluster.waitForLeader();
  const insp = await Inspector.connect(inspectorUrl(leader.output));
  const key = (await cluster.admin("POST", "/v1/keys", { name: "fuzzer", scope: { acquire: ["target"] } })).json.secret as string;
  console.log("before", JSON.stringify(await insp.heapAfterGc()));
  const fast = await hello(leader.url, key);
  const slow = await hello(leader.url, key);
  let slowClosed = false;
  slow.on("close", () => (slowClosed = true));
  (slow as unknown as { _socket: Socket })._socket.pause();
  // Fill the slow connection's kernel buffers first with large answers, then one tiny answer per frame.
  for (let i = 0; i < 12; i++) slow.send(releases(4_000, 1 + i * 4_000));
  await sleep(500);
  let fastAnswers = 0;
  fast.on("message", () => fastAnswers++);
  const until = Date.now() + SECONDS * 1_000;
  let id = 1_000_000;
  let tiny = 0;
  while (Date.now() < until && !slowClosed) {
    fast.send(releases(4_000, id));
    id += 4_000;
    for (let k = 0; k < 5; k++) {
      slow.send(releases(1, id++));
      tiny++;
      await sleep(2);
    }
  }
  console.log(JSON.stringify({ slowClosed, tinyFramesSent: tiny, fastAnswerFrames: fastAnswers }));
  console.log("slow still open", JSON.stringify(await insp.heapAfterGc()));
  slow.terminate();
  fast.terminate();
  await sleep(500);
  console.log("after close", JSON.stringify(await insp.heapAfterGc()));
  insp.close();
} finally {
  await cluster.stop();
}

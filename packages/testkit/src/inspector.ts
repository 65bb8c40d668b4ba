/**
 * A small client of a node process's V8 inspector (the node started with `--inspect=127.0.0.1:0`), for memory
 * measurements from tests: a full GC, then the heap and buffer figures that RSS alone cannot separate (RSS also
 * counts memory V8 and the allocator keep after a GC without giving it back to the OS).
 */
import { createWriteStream } from "node:fs";
import WebSocket from "ws";

/** What a process holds after a full garbage collection, in MB. */
export interface HeapAfterGc {
  /** Live JavaScript objects. */
  readonly heapUsedMb: number;
  /** Memory V8 has reserved for its heap (live or not). */
  readonly heapTotalMb: number;
  /** Live ArrayBuffer and Buffer backing stores (outside the JS heap, not in heapUsed). */
  readonly arrayBuffersMb: number;
  /** Memory of C++ objects bound to JS objects, including arrayBuffers. */
  readonly externalMb: number;
  readonly rssMb: number;
  /** process.getActiveResourcesInfo() counted by kind: sockets, timers, servers still alive. */
  readonly resources: Record<string, number>;
}

/** The inspector's WebSocket URL in a process's output ("Debugger listening on ws://..."). */
export function inspectorUrl(output: string): string {
  const url = /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1];
  if (url === undefined) throw new Error("the process printed no inspector URL (was it started with --inspect?)");
  return url;
}

// Evaluated in the inspected process; it must be self-contained.
const MEASURE = `(() => {
  const m = process.memoryUsage();
  const resources = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  const mb = (x) => Math.round(x / 104857.6) / 10;
  return { heapUsedMb: mb(m.heapUsed), heapTotalMb: mb(m.heapTotal), arrayBuffersMb: mb(m.arrayBuffers), externalMb: mb(m.external), rssMb: mb(m.rss), resources };
})()`;

interface Reply {
  readonly id?: number;
  readonly method?: string;
  readonly params?: { chunk?: string };
  readonly result?: { result?: { value?: unknown }; exceptionDetails?: unknown };
  readonly error?: unknown;
}

export class Inspector {
  readonly #ws: WebSocket;
  #nextId = 0;
  readonly #waiting = new Map<number, (reply: Reply) => void>();
  #onChunk: ((chunk: string) => void) | null = null;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on("message", (data) => {
      const reply = JSON.parse(data.toString()) as Reply;
      if (reply.id !== undefined) {
        this.#waiting.get(reply.id)?.(reply);
        this.#waiting.delete(reply.id);
      } else if (reply.method === "HeapProfiler.addHeapSnapshotChunk" && reply.params?.chunk !== undefined) {
        this.#onChunk?.(reply.params.chunk);
      }
    });
    ws.on("close", () => {
      for (const resolve of this.#waiting.values()) resolve({ error: "the inspector connection closed" });
      this.#waiting.clear();
    });
  }

  static async connect(url: string): Promise<Inspector> {
    const ws = new WebSocket(url, { maxPayload: 256 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new Inspector(ws);
  }

  async call(method: string, params: object = {}): Promise<Reply["result"]> {
    if (this.#ws.readyState !== WebSocket.OPEN) throw new Error(`inspector ${method}: the connection is closed (did the process exit?)`);
    const id = ++this.#nextId;
    const reply = await new Promise<Reply>((resolve) => {
      this.#waiting.set(id, resolve);
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
    if (reply.error !== undefined) throw new Error(`inspector ${method}: ${JSON.stringify(reply.error)}`);
    return reply.result;
  }

  /** Full collections until nothing more is freed by a weak callback (three are enough in practice). */
  async collectGarbage(): Promise<void> {
    for (let i = 0; i < 3; i++) await this.call("HeapProfiler.collectGarbage");
  }

  /** A full GC, then what the process still holds. */
  async heapAfterGc(): Promise<HeapAfterGc> {
    await this.collectGarbage();
    const r = await this.call("Runtime.evaluate", { expression: MEASURE, returnByValue: true });
    if (r?.exceptionDetails !== undefined) throw new Error(`inspector evaluate: ${JSON.stringify(r.exceptionDetails)}`);
    return r!.result!.value as HeapAfterGc;
  }

  /** Writes a heap snapshot (which starts with a full GC) to `file`, for scripts/fuzz-live/heap-diff.ts. */
  async writeHeapSnapshot(file: string): Promise<void> {
    const out = createWriteStream(file);
    this.#onChunk = (chunk) => out.write(chunk);
    try {
      await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    } finally {
      this.#onChunk = null;
      await new Promise<void>((resolve) => out.end(resolve));
    }
  }

  close(): void {
    this.#ws.close();
  }
}

// Reads the node's snapshot stream: Server-Sent Events over fetch(), because EventSource cannot send the
// Authorization header and a key in the URL would end up in logs and browser history.

/** Largest event the page accepts (a push is a few KiB per resource); more means something is wrong. */
const EVENT_CHARS_MAX = 8 * 1024 * 1024;

/**
 * Connects, reconnects with backoff, and reports each snapshot and each change of connection state
 * ("connecting" | "live" | "retrying" | "unauthorized"). Returns a function that stops it.
 */
export function openStream({ apiKey, onSnapshot, onState }) {
  let stopped = false;
  let controller = null;
  let last = null;
  const state = (s, error = null) => {
    const key = `${s}:${error}`;
    if (key !== last) onState({ state: s, error });
    last = key;
  };

  (async () => {
    let failures = 0;
    let lastError = null;
    while (!stopped) {
      controller = new AbortController();
      state(failures === 0 ? "connecting" : "retrying", lastError);
      try {
        const headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
        const res = await fetch("v1/stream", { headers, signal: controller.signal, cache: "no-store" });
        if (res.status === 401) {
          const body = await res.json().catch(() => null);
          return state("unauthorized", body?.error?.message ?? "the key was refused");
        }
        if (!res.ok || res.body === null) throw new Error(`the node answered HTTP ${res.status}`);
        const ended = await readEvents(res.body, (event, data) => {
          if (event === "snapshot") {
            failures = 0;
            lastError = null;
            state("live");
            onSnapshot(JSON.parse(data));
          } else if (event === "end") {
            return JSON.parse(data);
          }
          return null;
        });
        if (ended?.code === "RQ_UNAUTHORIZED") return state("unauthorized", ended.message);
        throw new Error("the node closed the stream");
      } catch (err) {
        if (stopped) return;
        failures++;
        lastError = err instanceof Error ? err.message : String(err);
        state("retrying", lastError);
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(failures, 5))));
      }
    }
  })();

  return () => {
    stopped = true;
    controller?.abort();
  };
}

/** Calls `onEvent(event, data)` for each event; stops early and returns what `onEvent` returns if not null. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      const result = onEvent(event, data.join("\n"));
      if (result !== null) {
        await reader.cancel();
        return result;
      }
    }
    if (buffer.length > EVENT_CHARS_MAX) throw new Error("an event from the node is too large");
  }
}

/**
 * Worker processes for the fleet example and the demo: TypeScript scripts
 * forked with an IPC channel, and waiting on their messages.
 */
import { fork, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

// Children run TypeScript through tsx's loader, found from here (the workspace's tsx), whatever the parent runs under.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

/** Forks `script` (a .ts file) under tsx with the workspace's source condition, sharing stdout and stderr. */
export function forkTypeScript(script: string, options: { readonly args?: readonly string[]; readonly env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  return fork(script, [...(options.args ?? [])], {
    execArgv: ["--conditions=source", "--import", TSX_LOADER],
    ...(options.env === undefined ? {} : { env: options.env }),
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

/**
 * The child's next message of type `options.type`, typed as `M` (the caller
 * names the message it waits for); rejects, naming the child as `who`, if the
 * child exits first.
 */
export function nextMessage<M extends { readonly type: string }>(
  child: ChildProcess,
  options: { readonly type: M["type"]; readonly who: string },
): Promise<M> {
  const { type, who } = options;
  return new Promise((resolve, reject) => {
    const onMessage = (m: { readonly type: string }): void => {
      if (m.type !== type) return;
      cleanup();
      resolve(m as M);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`${who} exited (code ${code}, signal ${signal}) before it sent "${type}"`));
    };
    const cleanup = (): void => {
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

/** `promise`, or an Error(`what`) once `timeoutMs` has passed. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), timeoutMs)))]);
  } finally {
    clearTimeout(timer);
  }
}

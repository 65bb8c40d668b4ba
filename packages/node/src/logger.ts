import { pino, type Logger } from "pino";
import pretty from "pino-pretty";
import type { LogLevel } from "./config.js";

/**
 * The node's logger: JSON lines (one per event, for machines) or, with
 * `pretty`, human-readable colored lines (what `ratequeue dev` shows).
 */
export function createLogger(options: { nodeId: string; level: LogLevel; pretty: boolean }): Logger {
  const base = { node: options.nodeId };
  if (!options.pretty) return pino({ level: options.level, base });
  const stream = pretty({
    colorize: process.stdout.isTTY === true,
    translateTime: "HH:MM:ss.l",
    ignore: "pid,hostname,node",
    singleLine: true,
    messageFormat: "[{node}] {msg}",
    hideObject: false,
    sync: true,
  });
  return pino({ level: options.level, base }, stream);
}

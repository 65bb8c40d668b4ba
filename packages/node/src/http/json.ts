import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCode, type HttpErrorCode, type LimiterErrorCode } from "@ratequeue/protocol/codes";

/** Admin bodies are small; anything larger is refused before it is read in full. */
export const BODY_MAX_BYTES = 256 * 1024;

/** An HTTP failure with a stable code, rendered as `{ "error": { "code", "message", "details"? } }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | LimiterErrorCode | HttpErrorCode,
    message: string,
    readonly details?: readonly string[],
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, {
    error: { code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details }) },
  });
}

/** Reads and parses a JSON body, refusing wrong content types, oversize bodies and bad JSON with specific errors. */
export async function readJsonBody(req: IncomingMessage, maxBytes = BODY_MAX_BYTES): Promise<unknown> {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError(415, ErrorCode.RQ_INVALID, "send the body as JSON with content-type: application/json");
  }
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new HttpError(413, ErrorCode.RQ_INVALID, `body is ${declared} bytes; the limit is ${maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      req.destroy();
      throw new HttpError(413, ErrorCode.RQ_INVALID, `body exceeds ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, ErrorCode.RQ_INVALID, `body is not valid JSON: ${(err as Error).message}`);
  }
}

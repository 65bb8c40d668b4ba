/**
 * @ratequeue/sdk: ask RateQueue before you call a rate-limited API.
 *
 * @example
 * import { RateQueue } from "@ratequeue/sdk";
 * const rq = new RateQueue({ url: "ws://127.0.0.1:7401,ws://127.0.0.1:7402", apiKey: process.env.RATEQUEUE_API_KEY });
 * const reply = await rq.acquire("openai-gpt4o", { load: 1200 }, () => client.chat.completions.create(req));
 */
import { RateQueue, type AcquireOptions, type Lease } from "./client.js";

export { Lease, RateQueue, type AcquireOptions, type Load, type RateQueueOptions } from "./client.js";
export {
  CancelledError,
  ErrorCode,
  ForbiddenError,
  InvalidError,
  RateQueueError,
  type RateQueueErrorOptions,
  type RequestRef,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
  UngrantableError,
  UnknownResourceError,
} from "./errors.js";

let shared: RateQueue | null = null;
function instance(): RateQueue {
  shared ??= new RateQueue({ url: process.env.RATEQUEUE_URL ?? "", apiKey: process.env.RATEQUEUE_API_KEY });
  return shared;
}

/**
 * A ready client configured from RATEQUEUE_URL and RATEQUEUE_API_KEY. It is
 * created, and connects, on first use, so importing it costs nothing.
 */
export const ratequeue = {
  acquire: ((resource: string, options?: AcquireOptions, fn?: (lease: Lease) => unknown) =>
    fn === undefined ? instance().acquire(resource, options) : instance().acquire(resource, options ?? {}, fn)) as RateQueue["acquire"],
  tryAcquire: ((resource, options) => instance().tryAcquire(resource, options)) as RateQueue["tryAcquire"],
  reportLimited: ((resource, options) => instance().reportLimited(resource, options)) as RateQueue["reportLimited"],
  close: async (): Promise<void> => {
    const rq = shared;
    shared = null;
    await rq?.close();
  },
};

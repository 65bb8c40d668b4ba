/**
 * A guard on msgpackr's bigint extension (type 0x42), installed when this
 * package loads.
 *
 * Why: msgpackr decodes that extension into a bigint as long as its payload,
 * up to a whole frame, and turns such values into strings when they appear
 * as map or record keys or in its own "end of buffer not reached" error
 * message. A 1 MiB bigint takes over a second to print, so one frame from an
 * unauthenticated client could stall a node for seconds (measured before the
 * guard: 1.6 s for one 1 MiB frame).
 *
 * msgpackr keeps extensions in one table per process, so this replaces the
 * decoder of type 0x42 for every msgpackr user in the process: payloads of
 * up to MAX_BIGINT_EXTENSION_BYTES (bigints of 512 bits) decode exactly as
 * before; longer ones are refused with an error. Nothing in this protocol is
 * a bigint at all.
 */
import { addExtension } from "msgpackr";

export const BIGINT_EXTENSION_TYPE = 0x42;
export const MAX_BIGINT_EXTENSION_BYTES = 64;

/** A big-endian two's complement integer of `bytes.length * 8` bits, as msgpackr writes it. */
export function decodeBigIntPayload(bytes: Uint8Array): bigint {
  if (bytes.byteLength > MAX_BIGINT_EXTENSION_BYTES) {
    throw new RangeError(`bigint extension of ${bytes.byteLength} bytes refused (max ${MAX_BIGINT_EXTENSION_BYTES})`);
  }
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return BigInt.asIntN(bytes.byteLength * 8, value);
}

addExtension({ type: BIGINT_EXTENSION_TYPE, unpack: decodeBigIntPayload });

/**
 * A tiny MessagePack writer for hostile test frames: plain maps, arrays,
 * strings, numbers, booleans and nil, with none of the protocol's checks, so
 * a test can send exactly the wrong thing it means to send.
 */
export function packPlain(value: unknown): Uint8Array {
  const out: number[] = [];
  write(value, out);
  return Uint8Array.from(out);
}

function write(v: unknown, out: number[]): void {
  if (v === null || v === undefined) return void out.push(0xc0);
  if (v === true || v === false) return void out.push(v ? 0xc3 : 0xc2);
  if (typeof v === "number") {
    if (Number.isInteger(v) && v >= 0 && v < 128) return void out.push(v);
    if (Number.isInteger(v) && v < 0 && v >= -32) return void out.push(0x100 + v);
    if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return void out.push(0xce, ...be(v, 4));
    const b = new DataView(new ArrayBuffer(8));
    b.setFloat64(0, v);
    return void out.push(0xcb, ...new Uint8Array(b.buffer));
  }
  if (typeof v === "string") {
    const bytes = new TextEncoder().encode(v);
    if (bytes.length < 32) out.push(0xa0 | bytes.length);
    else if (bytes.length < 0x10000) out.push(0xda, ...be(bytes.length, 2));
    else out.push(0xdb, ...be(bytes.length, 4));
    for (const x of bytes) out.push(x);
    return;
  }
  if (Array.isArray(v)) {
    if (v.length < 16) out.push(0x90 | v.length);
    else out.push(0xdc, ...be(v.length, 2));
    for (const x of v) write(x, out);
    return;
  }
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length < 16) out.push(0x80 | entries.length);
    else out.push(0xde, ...be(entries.length, 2));
    for (const [k, x] of entries) {
      write(k, out);
      write(x, out);
    }
    return;
  }
  throw new Error(`packPlain: cannot write ${typeof v}`);
}

function be(n: number, bytes: number): number[] {
  return Array.from({ length: bytes }, (_, i) => (n >>> (8 * (bytes - 1 - i))) & 0xff);
}

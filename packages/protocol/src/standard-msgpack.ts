/**
 * For tests: an independent MessagePack reader and writer that know only the
 * MessagePack specification, to check the plain encoding (docs/protocol.md)
 * without msgpackr on either side. The reader is strict: it refuses every
 * extension type (msgpackr records, bigints), non-string map keys and
 * trailing bytes. The writer uses the shortest standard forms, as Python's
 * msgpack does (fixints 64-127, which msgpackr's record table would misread).
 * Not part of the package's public surface.
 */

/** Reads standard MessagePack only: maps, arrays, strings, bin, ints, floats, nil, booleans. Throws on anything else. */
export function readStandard(bytes: Uint8Array): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const u8 = (): number => view.getUint8(at++);
  const take = (n: number): Uint8Array => {
    if (at + n > bytes.byteLength) throw new Error("cut short");
    const out = bytes.subarray(at, at + n);
    at += n;
    return out;
  };
  const str = (n: number): string => new TextDecoder("utf-8", { fatal: true }).decode(take(n));
  const num = (read: (o: number) => number | bigint, n: number): number => {
    const v = read(at);
    at += n;
    return Number(v);
  };
  const arr = (n: number): unknown[] => Array.from({ length: n }, () => value());
  const map = (n: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = value();
      if (typeof key !== "string") throw new Error(`a map key that is not a string: ${String(key)}`);
      out[key] = value();
    }
    return out;
  };
  function value(): unknown {
    const b = u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0x80 && b <= 0x8f) return map(b & 0x0f);
    if (b >= 0x90 && b <= 0x9f) return arr(b & 0x0f);
    if (b >= 0xa0 && b <= 0xbf) return str(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return take(u8());
      case 0xc5: return take(num((o) => view.getUint16(o), 2));
      case 0xc6: return take(num((o) => view.getUint32(o), 4));
      case 0xca: return num((o) => view.getFloat32(o), 4);
      case 0xcb: return num((o) => view.getFloat64(o), 8);
      case 0xcc: return u8();
      case 0xcd: return num((o) => view.getUint16(o), 2);
      case 0xce: return num((o) => view.getUint32(o), 4);
      case 0xcf: return num((o) => view.getBigUint64(o), 8);
      case 0xd0: return num((o) => view.getInt8(o), 1);
      case 0xd1: return num((o) => view.getInt16(o), 2);
      case 0xd2: return num((o) => view.getInt32(o), 4);
      case 0xd3: return num((o) => view.getBigInt64(o), 8);
      case 0xd9: return str(u8());
      case 0xda: return str(num((o) => view.getUint16(o), 2));
      case 0xdb: return str(num((o) => view.getUint32(o), 4));
      case 0xdc: return arr(num((o) => view.getUint16(o), 2));
      case 0xdd: return arr(num((o) => view.getUint32(o), 4));
      case 0xde: return map(num((o) => view.getUint16(o), 2));
      case 0xdf: return map(num((o) => view.getUint32(o), 4));
      default: throw new Error(`byte 0x${b.toString(16)} at ${at - 1} is not standard MessagePack (an extension)`);
    }
  }
  const result = value();
  if (at !== bytes.byteLength) throw new Error("trailing bytes");
  return result;
}

/** Writes the shortest standard forms, as Python's msgpack does: fixints up to 127, fixmaps, no extension. */
export function writeStandard(v: unknown): Uint8Array {
  const out: number[] = [];
  const be = (n: number, size: number): number[] => Array.from({ length: size }, (_, i) => Math.floor(n / 2 ** (8 * (size - 1 - i))) & 0xff);
  const put = (x: unknown): void => {
    if (x === null || x === undefined) return void out.push(0xc0);
    if (typeof x === "boolean") return void out.push(x ? 0xc3 : 0xc2);
    if (typeof x === "number") {
      if (Number.isInteger(x) && x >= 0 && x <= 0x7f) return void out.push(x);
      if (Number.isInteger(x) && x < 0 && x >= -32) return void out.push(0x100 + x);
      if (Number.isInteger(x) && x >= 0 && x <= 0xff) return void out.push(0xcc, x);
      if (Number.isInteger(x) && x >= 0 && x <= 0xffff) return void out.push(0xcd, ...be(x, 2));
      if (Number.isInteger(x) && x >= 0 && x <= 0xffffffff) return void out.push(0xce, ...be(x, 4));
      const f = new DataView(new ArrayBuffer(8));
      f.setFloat64(0, x);
      return void out.push(0xcb, ...new Uint8Array(f.buffer));
    }
    if (typeof x === "string") {
      const s = new TextEncoder().encode(x);
      out.push(...(s.length < 32 ? [0xa0 | s.length] : s.length < 256 ? [0xd9, s.length] : [0xda, ...be(s.length, 2)]), ...s);
      return;
    }
    if (Array.isArray(x)) {
      out.push(...(x.length < 16 ? [0x90 | x.length] : [0xdc, ...be(x.length, 2)]));
      for (const item of x) put(item);
      return;
    }
    const entries = Object.entries(x as Record<string, unknown>);
    out.push(...(entries.length < 16 ? [0x80 | entries.length] : [0xde, ...be(entries.length, 2)]));
    for (const [k, item] of entries) {
      put(k);
      put(item);
    }
  };
  put(v);
  return Uint8Array.from(out);
}

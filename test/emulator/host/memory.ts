// Guest linear memory access with cpp-host's bounds rules (§1.3 "Rules common to all calls"), and the pairs wire
// format (§1.5). Views are cached and refreshed only when memory.buffer changes (growth detaches the old buffer).
import type { HeaderList } from "./api.ts";

export enum R {
  Ok = 0, NotFound = 1, BadArgument = 2, SerializationFailure = 3, ParseFailure = 4, BadExpression = 5,
  InvalidMemoryAccess = 6, Empty = 7, CasMismatch = 8, ResultMismatch = 9, InternalFailure = 10,
  BrokenConnection = 11, Unimplemented = 12,
}

export const utf8Dec = new TextDecoder("utf-8");
export const utf8Enc = new TextEncoder();
export const EMPTY = new Uint8Array(0);

export class Mem {
  memory: WebAssembly.Memory;
  private buf: ArrayBuffer;
  u8: Uint8Array;
  dv: DataView;
  nb: Buffer;
  constructor(memory: WebAssembly.Memory) {
    this.memory = memory;
    this.buf = memory.buffer;
    this.u8 = new Uint8Array(this.buf);
    this.dv = new DataView(this.buf);
    this.nb = Buffer.from(this.buf);
  }
  refresh(): void {
    const b = this.memory.buffer;
    if (b !== this.buf) {
      this.buf = b;
      this.u8 = new Uint8Array(b);
      this.dv = new DataView(b);
      this.nb = Buffer.from(b);
    }
  }
  get size(): number {
    this.refresh();
    return this.buf.byteLength;
  }
  ok(ptr: number, len: number): boolean {
    this.refresh();
    return ptr + len <= this.buf.byteLength;
  }
  /** copy of guest bytes, or null when out of bounds */
  bytes(ptr: number, len: number): Uint8Array | null {
    if (!this.ok(ptr, len)) return null;
    return this.u8.slice(ptr, ptr + len);
  }
  str(ptr: number, len: number): string | null {
    if (!this.ok(ptr, len)) return null;
    return len === 0 ? "" : this.nb.toString("utf8", ptr, ptr + len);
  }
  /** header keys/values: bytes ⇄ latin1 strings, as Node's http layer hands them over */
  latin1(ptr: number, len: number): string | null {
    if (!this.ok(ptr, len)) return null;
    return len === 0 ? "" : this.nb.toString("latin1", ptr, ptr + len);
  }
  setU32(ptr: number, v: number): boolean {
    if (!this.ok(ptr, 4)) return false;
    this.dv.setUint32(ptr, v >>> 0, true);
    return true;
  }
  getU32(ptr: number): number | null {
    if (!this.ok(ptr, 4)) return null;
    return this.dv.getUint32(ptr, true);
  }
  setU64(ptr: number, v: bigint): boolean {
    if (!this.ok(ptr, 8)) return false;
    this.dv.setBigUint64(ptr, BigInt.asUintN(64, v), true);
    return true;
  }
  write(ptr: number, data: Uint8Array): boolean {
    if (!this.ok(ptr, data.length)) return false;
    this.u8.set(data, ptr);
    return true;
  }
}

// ---- pairs format (§1.5): u32 N, N × (u32 klen, u32 vlen), then "key\0value\0" per pair ----

export function pairsSize(list: HeaderList): number {
  let n = 4 + list.length * 8;
  for (let i = 0; i < list.length; i++) n += list[i][0].length + list[i][1].length + 2;
  return n;
}

/** writes the latin1 pairs encoding of `list` at ptr (caller checked bounds) */
export function writePairs(mem: Mem, ptr: number, list: HeaderList): void {
  const dv = mem.dv, nb = mem.nb;
  dv.setUint32(ptr, list.length, true);
  let p = ptr + 4;
  for (let i = 0; i < list.length; i++) {
    dv.setUint32(p, list[i][0].length, true);
    dv.setUint32(p + 4, list[i][1].length, true);
    p += 8;
  }
  for (let i = 0; i < list.length; i++) {
    p += nb.write(list[i][0], p, "latin1");
    nb[p++] = 0;
    p += nb.write(list[i][1], p, "latin1");
    nb[p++] = 0;
  }
}

export function encodePairsBytes(list: Array<[Uint8Array, Uint8Array]>): Uint8Array {
  let size = 4 + list.length * 8;
  for (const [k, v] of list) size += k.length + v.length + 2;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, list.length, true);
  let p = 4;
  for (const [k, v] of list) {
    dv.setUint32(p, k.length, true);
    dv.setUint32(p + 4, v.length, true);
    p += 8;
  }
  for (const [k, v] of list) {
    out.set(k, p); p += k.length; out[p++] = 0;
    out.set(v, p); p += v.length; out[p++] = 0;
  }
  return out;
}

/** PairsUtil::toPairs: strict; anything malformed parses as an empty list (no error). */
export function parsePairs(data: Uint8Array): HeaderList {
  const out: HeaderList = [];
  if (data.length < 4 || data.length > 1024 * 1024) return out;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = dv.getUint32(0, true);
  if (n > 1024) return out;
  let sizes = 4;
  if (sizes + n * 8 > data.length) return out;
  let p = sizes + n * 8;
  const nb = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < n; i++) {
    const kl = dv.getUint32(sizes, true);
    const vl = dv.getUint32(sizes + 4, true);
    sizes += 8;
    if (p + kl + 1 > data.length || data[p + kl] !== 0) return [];
    const k = nb.toString("latin1", p, p + kl);
    p += kl + 1;
    if (p + vl + 1 > data.length || data[p + vl] !== 0) return [];
    const v = nb.toString("latin1", p, p + vl);
    p += vl + 1;
    out.push([k, v]);
  }
  if (p !== data.length) return [];
  return out;
}

export function latin1Bytes(s: string): Uint8Array {
  return Buffer.from(s, "latin1");
}

// Raw proxy-wasm ABI 0.2.0 calls with status codes, own memory handling (toolchain.md §4, §6, §8).
// The only module besides host/* that may touch the SDK's raw imports. Host-allocated buffers (through our exported
// malloc) are read in place and released with free() exactly once.
import * as imp from "@solo-io/proxy-runtime/imports";
import { free } from "./malloc";
import { utf8Encode, utf8Decode, encodeInto } from "../core/utf8";

// Missing from the SDK (toolchain.md §6 item 11); exact Envoy signature (envoy-host.md §1.3).
// @ts-ignore: decorator
@external("env", "proxy_set_buffer_bytes")
declare function proxy_set_buffer_bytes(t: i32, start: u32, len: u32, data: usize, size: usize): u32;

export const OK: u32 = 0;
export const NOT_FOUND: u32 = 1;
export const BAD_ARGUMENT: u32 = 2;
export const CAS_MISMATCH: u32 = 8;

export const MAP_REQUEST_HEADERS: i32 = 0;
export const MAP_RESPONSE_HEADERS: i32 = 2;
export const BUF_REQUEST_BODY: i32 = 0;
export const BUF_RESPONSE_BODY: i32 = 1;
export const BUF_PLUGIN_CONFIG: i32 = 7;

// Out-parameter area: +0 pointer, +4 length/u32, +8 u64.
const scratchBuf = new ArrayBuffer(16);
const SCRATCH: usize = changetype<usize>(scratchBuf);

/** Result of a call that returns host bytes: ptr/len valid until freeBytes(). */
export let outPtr: usize = 0;
export let outLen: i32 = 0;

export function freeBytes(): void {
  if (outPtr != 0) free(outPtr);
  outPtr = 0;
  outLen = 0;
}

function takeOut(status: u32): u32 {
  freeBytes(); // never leak an unconsumed earlier result
  if (status == OK) {
    outPtr = load<usize>(SCRATCH);
    outLen = load<i32>(SCRATCH, 4);
  } else {
    outPtr = 0;
    outLen = 0;
  }
  return status;
}

export function outString(): string {
  const s = utf8Decode(outPtr, outLen);
  freeBytes();
  return s;
}

// ABI 0.2.1 only (envoy-host.md §1.3): the current level of Envoy's `wasm` logger.
// @ts-ignore: decorator
@external("env", "proxy_get_log_level")
declare function proxy_get_log_level(level: usize): u32;

/** Envoy's current `wasm` log level (0 trace … 5 critical); info (2) if unknown. */
export function logLevel(): i32 {
  if (proxy_get_log_level(SCRATCH + 4) != OK) return 2;
  return load<i32>(SCRATCH, 4);
}

// ---- logging ----------------------------------------------------------------------------------------------------
export function log(level: i32, msg: string): void {
  const b = utf8Encode(msg);
  imp.proxy_log(level, changetype<usize>(b), b.byteLength);
}

// ---- time, ticks ------------------------------------------------------------------------------------------------
export function nowMs(): u64 {
  if (imp.proxy_get_current_time_nanoseconds(SCRATCH + 8) != OK) return 0;
  return load<u64>(SCRATCH, 8) / 1000000;
}

export function setTickPeriod(ms: u32): void {
  imp.proxy_set_tick_period_milliseconds(ms);
}

// ---- buffers ----------------------------------------------------------------------------------------------------
/** Copies [start, start+len) of a buffer into host-malloc'd memory: outPtr/outLen. */
export function getBuffer(type: i32, start: u32, len: u32): u32 {
  return takeOut(imp.proxy_get_buffer_bytes(type, start, len, SCRATCH, SCRATCH + 4));
}

export function setBuffer(type: i32, start: u32, len: u32, data: ArrayBuffer): u32 {
  return proxy_set_buffer_bytes(type, start, len, changetype<usize>(data), data.byteLength);
}

// ---- headers ----------------------------------------------------------------------------------------------------
/** Header value into outPtr/outLen. `key` is UTF-8 bytes (pre-encoded constants avoid per-call encoding). */
export function getHeader(map: i32, key: ArrayBuffer): u32 {
  return takeOut(imp.proxy_get_header_map_value(map, changetype<usize>(key), key.byteLength, SCRATCH, SCRATCH + 4));
}

export function headerString(map: i32, key: ArrayBuffer): string | null {
  if (getHeader(map, key) != OK) return null;
  return outString();
}

export function addHeader(map: i32, key: string, value: string): u32 {
  const k = utf8Encode(key);
  const v = utf8Encode(value);
  return imp.proxy_add_header_map_value(map, changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
}

// ---- properties -------------------------------------------------------------------------------------------------
/** `path` segments joined with "\0" (envoy-host.md §6.1). NotFound is a normal answer, never an abort. */
export function getProperty(path: ArrayBuffer): u32 {
  return takeOut(imp.proxy_get_property(changetype<usize>(path), path.byteLength, SCRATCH, SCRATCH + 4));
}

export function propertyString(path: ArrayBuffer): string | null {
  if (getProperty(path) != OK) return null;
  return outString();
}


// ---- shared data ------------------------------------------------------------------------------------------------
export let sharedCas: u32 = 0;

export function getShared(key: ArrayBuffer): u32 {
  const st = imp.proxy_get_shared_data(changetype<usize>(key), key.byteLength, SCRATCH, SCRATCH + 4, SCRATCH + 8);
  takeOut(st);
  sharedCas = st == OK ? load<u32>(SCRATCH, 8) : 0;
  return st;
}

export function setShared(key: ArrayBuffer, ptr: usize, len: i32, cas: u32): u32 {
  return imp.proxy_set_shared_data(changetype<usize>(key), key.byteLength, ptr, len, cas);
}

// ---- metrics ----------------------------------------------------------------------------------------------------
export function defineMetric(type: i32, name: string): u32 {
  const b = utf8Encode(name);
  if (imp.proxy_define_metric(type, changetype<usize>(b), b.byteLength, SCRATCH + 4) != OK) return 0;
  return load<u32>(SCRATCH, 4);
}

export function incrementMetric(id: u32, delta: i64): void {
  if (id != 0) imp.proxy_increment_metric(id, delta);
}

export function recordMetric(id: u32, value: u64): void {
  if (id != 0) imp.proxy_record_metric(id, value);
}

/** Current value, or -1 when the host has none (unknown id, histogram). */
export function getMetric(id: u32): i64 {
  if (id == 0 || imp.proxy_get_metric(id, SCRATCH + 8) != OK) return -1;
  return i64(load<u64>(SCRATCH, 8));
}

// ---- stream control ---------------------------------------------------------------------------------------------
/** Local reply. `headers` alternate name, value. grpc_status -1 = none (envoy-host.md §7.1). */
export function sendLocalReply(status: u32, details: string, body: string, headers: string[]): u32 {
  const d = utf8Encode(details);
  const b = utf8Encode(body);
  const pairs = encodePairs(headers);
  return imp.proxy_send_local_response(status, changetype<usize>(d), d.byteLength, changetype<usize>(b), b.byteLength,
    changetype<usize>(pairs), pairs.byteLength, 0xffffffff);
}

export function setEffectiveContext(id: u32): u32 {
  return imp.proxy_set_effective_context(id);
}

export function closeStream(type: i32): u32 {
  return imp.proxy_close_stream(type);
}

/** Pairs wire format (envoy-host.md §1.5): u32 n, n × (u32 klen, u32 vlen), then key\0value\0 … */
export function encodePairs(kv: string[]): ArrayBuffer {
  const n = kv.length >> 1;
  let size: usize = 4 + n * 8;
  for (let i = 0; i < n * 2; i++) size += encodeInto(unchecked(kv[i]), 0) + 1;
  const buf = new ArrayBuffer(i32(size));
  const p = changetype<usize>(buf);
  store<u32>(p, n);
  let o = p + 4 + n * 8;
  for (let i = 0; i < n * 2; i++) {
    const len = encodeInto(unchecked(kv[i]), o);
    store<u32>(p + 4 + i * 4, u32(len)); // klen, vlen of pair i/2
    o += len;
    store<u8>(o++, 0);
  }
  return buf;
}

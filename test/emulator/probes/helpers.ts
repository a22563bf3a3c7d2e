// Shared helpers for the emulator conformance tests.
import { EnvoyProcess, type PluginHandleImpl } from "../host/index.ts";
import type { DownstreamConnection, HeaderList, PluginOptions, ProcessOptions } from "../host/api.ts";
import { RES } from "./build.ts";

export const SCRATCH_PTR = 128; // ret_ptr_ptr used by probes
export const SCRATCH_LEN = 132; // ret_len_ptr
export const SCRATCH_CAS = 136;

export function conn(id = 7): DownstreamConnection {
  return { id, sourceAddress: "10.0.0.1:40000", destinationAddress: "10.0.0.2:8080", protocol: "HTTP/1.1" };
}
export const GET: HeaderList = [[":authority", "example.com"], [":path", "/ws?x=1"], [":method", "GET"], [":scheme", "http"],
  ["user-agent", "t"], ["x-request-id", "rid-1"]];

export function start(wasm: Uint8Array, popts: ProcessOptions = {}, plugin: Partial<PluginOptions> = {}) {
  const proc = new EnvoyProcess({ concurrency: 2, ...popts });
  const h = proc.addPlugin({ wasm, ...plugin }) as PluginHandleImpl;
  return { proc, h };
}
export function slot(h: PluginHandleImpl, w: number | "main", i: number): number {
  const mem = h.vm(w).mem;
  mem.refresh();
  return mem.dv.getUint32(RES + 4 * i, true);
}
export function u32(h: PluginHandleImpl, w: number | "main", addr: number): number {
  const mem = h.vm(w).mem;
  mem.refresh();
  return mem.dv.getUint32(addr, true);
}
export function bytesAt(h: PluginHandleImpl, w: number | "main", ptr: number, len: number): Uint8Array {
  return h.vm(w).mem.bytes(ptr, len)!;
}
/** the (ptr,len) a probe's hostcall wrote to the scratch slots, as bytes */
export function scratch(h: PluginHandleImpl, w: number | "main"): Uint8Array {
  return bytesAt(h, w, u32(h, w, SCRATCH_PTR), u32(h, w, SCRATCH_LEN));
}
export function messages(proc: EnvoyProcess, vm?: string): string[] {
  return proc.logs.filter((l) => (vm === undefined || l.vm === vm) && !l.line.startsWith("wasm defect: ")).map((l) => l.message);
}

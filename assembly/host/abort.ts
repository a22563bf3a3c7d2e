// Our own abort handler (toolchain.md addendum): the SDK's lives in runtime.ts, which drags in its broken
// wrappers and dispatcher. The reason is logged at critical first, so Envoy's log says why this VM died. In Envoy
// proc_exit returns (envoy-host.md §1.4), so we end in `unreachable`: a trap that fails this VM instance (§3.3).
// The filter is written so that no input reaches this.
import { utf8Encode } from "../core/utf8";
@external("wasi_unstable", "proc_exit")
declare function proc_exit(code: u32): void;

@external("env", "proxy_log")
declare function proxy_log(level: i32, ptr: usize, len: usize): u32;

// @ts-ignore: decorator
@global
export function abort_proc_exit(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void {
  let text = "ws_governor: abort: ";
  if (message !== null) text += message;
  // The message and file name say which check failed (e.g. "Key does not exist at ~lib/map.ts"); formatting the
  // line and column numbers would cost 350 B of the module's 40 KiB budget.
  if (fileName !== null) text += " at " + fileName;
  const b = utf8Encode(text);
  proxy_log(5, changetype<usize>(b), b.byteLength);
  proc_exit(255);
  unreachable();
}

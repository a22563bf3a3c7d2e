// Our own abort handler (toolchain.md addendum): the SDK's lives in runtime.ts, which drags in its broken
// wrappers and dispatcher. In Envoy proc_exit returns, so we end in `unreachable`: a trap that fails this VM
// instance (envoy-host.md §3.3). Every abort is therefore fatal for the worker; the filter avoids them.
@external("wasi_unstable", "proc_exit")
declare function proc_exit(code: u32): void;

// @ts-ignore: decorator
@global
export function abort_proc_exit(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void {
  proc_exit(255);
  unreachable();
}

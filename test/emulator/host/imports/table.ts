// The host function table Envoy 1.30–1.36 registers (§1.3, §1.4), per Envoy version and ABI version.
import type { Abi } from "../types.ts";
import type { FuncSig, ValT } from "../wasm_parse.ts";

const I = "i32" as const, L = "i64" as const;
const sig = (params: ValT[], results: ValT[] = [I]): FuncSig => ({ params, results });
const n = (k: number): ValT[] => Array<ValT>(k).fill(I);

const ENV_COMMON: Record<string, FuncSig> = {
  proxy_log: sig(n(3)),
  proxy_get_property: sig(n(4)),
  proxy_set_property: sig(n(4)),
  proxy_get_header_map_value: sig(n(5)),
  proxy_get_header_map_pairs: sig(n(3)),
  proxy_set_header_map_pairs: sig(n(3)),
  proxy_add_header_map_value: sig(n(5)),
  proxy_replace_header_map_value: sig(n(5)),
  proxy_remove_header_map_value: sig(n(3)),
  proxy_get_header_map_size: sig(n(2)),
  proxy_get_buffer_bytes: sig(n(5)),
  proxy_get_buffer_status: sig(n(3)),
  proxy_set_buffer_bytes: sig(n(5)),
  proxy_send_local_response: sig(n(8)),
  proxy_get_shared_data: sig(n(5)),
  proxy_set_shared_data: sig(n(5)),
  proxy_register_shared_queue: sig(n(3)),
  proxy_resolve_shared_queue: sig(n(5)),
  proxy_enqueue_shared_queue: sig(n(3)),
  proxy_dequeue_shared_queue: sig(n(3)),
  proxy_define_metric: sig(n(4)),
  proxy_increment_metric: sig([I, L]),
  proxy_record_metric: sig([I, L]),
  proxy_get_metric: sig(n(2)),
  proxy_set_tick_period_milliseconds: sig(n(1)),
  proxy_get_current_time_nanoseconds: sig(n(1)),
  proxy_set_effective_context: sig(n(1)),
  proxy_done: sig([]),
  proxy_call_foreign_function: sig(n(6)),
  proxy_http_call: sig(n(10)),
  proxy_grpc_call: sig(n(12)),
  proxy_grpc_stream: sig(n(9)),
  proxy_grpc_send: sig(n(4)),
  proxy_grpc_cancel: sig(n(1)),
  proxy_grpc_close: sig(n(1)),
  proxy_get_status: sig(n(3)),
  envoy_resolve_dns: sig(n(3)),
  pthread_equal: sig(n(2)),
  emscripten_notify_memory_growth: sig(n(1), []),
};

const ENV_ABI01: Record<string, FuncSig> = {
  proxy_get_configuration: sig(n(2)),
  proxy_continue_request: sig([]),
  proxy_continue_response: sig([]),
  proxy_clear_route_cache: sig([]),
};
const ENV_ABI02: Record<string, FuncSig> = {
  proxy_continue_stream: sig(n(1)),
  proxy_close_stream: sig(n(1)),
};

const WASI_ALL: Record<string, FuncSig> = {
  fd_write: sig(n(4)),
  fd_read: sig(n(4)),
  fd_seek: sig([I, L, I, I]),
  fd_close: sig(n(1)),
  fd_fdstat_get: sig(n(2)),
  environ_sizes_get: sig(n(2)),
  environ_get: sig(n(2)),
  args_sizes_get: sig(n(2)),
  args_get: sig(n(2)),
  clock_time_get: sig([I, L, I]),
  random_get: sig(n(2)),
  proc_exit: sig(n(1), []),
  path_open: sig([I, I, I, I, I, L, L, I, I]),
  fd_prestat_get: sig(n(2)),
  fd_prestat_dir_name: sig(n(3)),
};
const WASI_133: Record<string, FuncSig> = {
  fd_fdstat_set_flags: sig(n(2)),
  sched_yield: sig([]),
  poll_oneoff: sig(n(4)),
};

/** "module.name" → signature, exactly what Envoy 1.<minor> with this ABI links against */
export function hostSignatures(minor: number, abi: Abi): Map<string, FuncSig> {
  const m = new Map<string, FuncSig>();
  const env = { ...ENV_COMMON, ...(abi === "0.1.0" ? ENV_ABI01 : ENV_ABI02) };
  if (abi === "0.2.1") env.proxy_get_log_level = sig(n(1));
  for (const [k, v] of Object.entries(env)) m.set("env." + k, v);
  const wasi = { ...WASI_ALL, ...(minor >= 33 ? WASI_133 : {}) };
  for (const mod of ["wasi_unstable", "wasi_snapshot_preview1"]) {
    for (const [k, v] of Object.entries(wasi)) m.set(mod + "." + k, v);
  }
  return m;
}

/** exports cpp-host/Envoy look up, with the signature they must have (§2.1); undefined → not looked up */
export function expectedExport(name: string, abi: Abi): FuncSig | undefined {
  const none: ValT[] = [];
  switch (name) {
    case "_initialize": case "_start": return sig(none, none);
    case "main": return sig(n(2));
    case "malloc": case "proxy_on_memory_allocate": return sig(n(1));
    case "proxy_on_context_create": return sig(n(2), none);
    case "proxy_on_vm_start": case "proxy_validate_configuration": case "proxy_on_configure": return sig(n(2));
    case "proxy_on_tick": return sig(n(1), none);
    case "proxy_on_request_headers": case "proxy_on_response_headers": return sig(n(abi === "0.1.0" ? 2 : 3));
    case "proxy_on_request_body": case "proxy_on_response_body": return sig(n(3));
    case "proxy_on_request_trailers": case "proxy_on_response_trailers":
    case "proxy_on_request_metadata": case "proxy_on_response_metadata": return sig(n(2));
    case "proxy_on_http_call_response": return sig(n(5), none);
    case "proxy_on_grpc_receive_initial_metadata": case "proxy_on_grpc_receive":
    case "proxy_on_grpc_receive_trailing_metadata": case "proxy_on_grpc_close": return sig(n(3), none);
    case "proxy_on_queue_ready": return sig(n(2), none);
    case "proxy_on_foreign_function": return abi === "0.1.0" ? undefined : sig(n(3), none);
    case "proxy_on_done": return sig(n(1));
    case "proxy_on_log": case "proxy_on_delete": return sig(n(1), none);
    case "proxy_on_new_connection": return sig(n(1));
    case "proxy_on_downstream_data": case "proxy_on_upstream_data": return sig(n(3));
    case "proxy_on_downstream_connection_close": case "proxy_on_upstream_connection_close": return sig(n(2), none);
    case "envoy_on_resolve_dns": return sig(n(3), none);
    case "envoy_on_stats_update": return sig(n(2), none);
    default: return undefined;
  }
}

;; Comparison arm for P0: the host calls of a plain request and nothing else (ABI 0.2.0). Unwrapped, the filter reads
;; `upgrade` (absent on a plain request) and, with the endpoints on, `:path` (present: the host mallocs its value);
;; this module does exactly those reads (`:path` only where __PATH__ is 1) and no decisions, so its cost over the
;; empty module is what the calls alone cost. Same exports as the filter (no proxy_on_log / proxy_on_done). malloc is
;; a wrap-around arena, as in empty.wat.
(module
  (import "env" "proxy_get_header_map_value" (func $hdr (param i32 i32 i32 i32 i32) (result i32)))
  (memory $mem 2)
  (export "memory" (memory $mem))
  ;; 128: out ptr, 132: out len
  (data (i32.const 1024) "upgrade")
  (data (i32.const 1040) ":path")
  (global $next (mut i32) (i32.const 65536))
  (func (export "proxy_abi_version_0_2_0"))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    (if (i32.gt_u (local.get $n) (i32.const 32768)) (then (unreachable)))
    (if (i32.gt_u (i32.add (global.get $next) (local.get $n)) (i32.const 131072))
      (then (global.set $next (i32.const 65536))))
    (local.set $p (global.get $next))
    (global.set $next (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "free") (param i32))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_tick") (param i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $hdr (i32.const 0) (i32.const 1024) (i32.const 7) (i32.const 128) (i32.const 132)))
    (if (i32.const __PATH__)
      (then (drop (call $hdr (i32.const 0) (i32.const 1040) (i32.const 5) (i32.const 128) (i32.const 132)))))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_delete") (param i32))
)

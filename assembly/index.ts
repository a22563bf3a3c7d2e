// The module's exports: ABI version, allocator, and our own proxy_on_* dispatcher (toolchain.md §7.3).
// O(1) per callback: id tables of concrete contexts (core/idtable.ts), no casts of managed results, no per-stream
// strings or logs.
import "./host/abort";
import { Root, roots } from "./filter/root";
import { Stream, streams, requestKind, CONTINUE, STOP, PLAIN, WEBSOCKET, FLEET_ADMIT } from "./filter/stream";
import { FleetStream } from "./filter/fleet_stream"; // fleet module only (newStream)
import { onRequestBody, onResponseBody, startInspection, expireClosing } from "./filter/frames";
import { serveEndpoint } from "./filter/endpoints";
import { fleetTick, fleetRequest, fleetResponse } from "./filter/fleet"; // fleet module only: every use is under `if (FLEET)`
import { fleetViewTick } from "./filter/fleet_view";        // fleet module only (as above)

export { malloc, free } from "./host/malloc";


// ABI 0.2.1 (Envoy 1.30–1.36 accept it, envoy-host.md §1.1): same calls as 0.2.0 plus proxy_get_log_level, which
// lets the filter skip building debug lines Envoy would drop.
export function proxy_abi_version_0_2_1(): void {}

// Lazy stream contexts: Envoy calls proxy_on_context_create of a stream right before its first callback (from
// decodeHeaders, or from the access log when the filter never saw headers, e.g. skipped by ExtensionWithMatcher;
// envoy-host.md §2.3, §2.5 D), so only the id is noted here; a Stream exists only for a WebSocket upgrade.
// Any other stream gets Continue everywhere and nothing but map lookups at log/done/delete.
let pendingId: u32 = 0;
let pendingRoot: u32 = 0;

export function proxy_on_context_create(id: u32, parent: u32): void {
  if (parent == 0) {
    if (!roots.has(id)) roots.set(id, new Root(id));
    return;
  }
  pendingId = id;
  pendingRoot = parent;
}

export function proxy_on_vm_start(root: u32, size: u32): u32 {
  return 1;
}

export function proxy_on_configure(root: u32, size: u32): u32 {
  if (!roots.has(root)) roots.set(root, new Root(root));
  return roots.get(root).configure(size) ? 1 : 0;
}

export function proxy_on_tick(root: u32): void {
  const r = roots.find(root);
  if (r === null) return;
  r.tick();
  if (FLEET) { if (r.configured) { fleetTick(r); fleetViewTick(r); } }
  if (FRAMES) expireClosing();
  r.metrics.flushCounters(); // counters reach Envoy once per tick (host/metrics.ts)
}

export function proxy_on_request_headers(id: u32, headers: u32, eos: u32): u32 {
  if (id != pendingId) return CONTINUE;
  const root = roots.find(pendingRoot);
  if (root === null) return CONTINUE; // unknown root: ignore the stream
  const k = requestKind(root);
  // The endpoints answer requests that end with their headers (eos = 1: no body), as scrapes and probes are sent; a
  // request with a body (eos = 0: gRPC, POST, PUT) is never one of them, so it costs the one `upgrade` read alone.
  // `upgrade` itself is read whatever eos says: an HTTP/2 or HTTP/3 extended CONNECT sent with END_STREAM still
  // reaches the filters as an upgrade, with eos = 1 (envoy-host.md §8.3: "eos normally 0"; Envoy's http2 codec
  // ServerStreamImpl::decodeHeaders passes END_STREAM on, and nothing before the filters refuses it).
  if (k == PLAIN) return eos != 0 ? serveEndpoint(root, id) : CONTINUE;
  if (k != WEBSOCKET) return CONTINUE; // another upgrade, or no configuration: nothing to keep
  const s = newStream(id, root);
  const r = s.onUpgrade();
  streams.set(id, s);
  if (FLEET) { if (r == FLEET_ADMIT) return fleetRequest(s) ? CONTINUE : STOP; }
  return r;
}

/** The fleet module's streams carry the fleet admission's state too (filter/fleet_stream.ts). */
// @ts-ignore: decorator
@inline function newStream(id: u32, root: Root): Stream {
  if (FLEET) return new FleetStream(id, root);
  return new Stream(id, root);
}

export function proxy_on_request_body(id: u32, size: u32, eos: u32): u32 {
  const s = streams.find(id);
  if (s === null) return CONTINUE;
  return onRequestBody(s, size, eos != 0);
}

export function proxy_on_response_headers(id: u32, headers: u32, eos: u32): u32 {
  const s = streams.find(id);
  if (s === null) return CONTINUE;
  let r = s.onResponseHeaders();
  if (FLEET) { if (r == FLEET_ADMIT) r = fleetResponse(s) ? CONTINUE : STOP; }
  if (FRAMES) { if (r == CONTINUE) startInspection(s); }
  return r;
}

export function proxy_on_response_body(id: u32, size: u32, eos: u32): u32 {
  const s = streams.find(id);
  if (s === null) return CONTINUE;
  return onResponseBody(s, size, eos != 0);
}

// No proxy_on_log and no proxy_on_done: proxy-wasm-cpp-host skips a callback the module does not export
// (ContextBase::onLog / onDone: `if (!isFailed() && wasm_->on_log_)`; a missing on_done counts as true, so a root is
// deleted at once on plugin removal). Envoy ends every stream whose context exists with on_log → on_done → on_delete,
// back to back in ConnectionManagerImpl::doDeferredStreamDestroy (envoy-host.md §2.4), so on_delete alone releases as
// early, and each stream, WebSocket or plain, crosses into the VM two times fewer.
export function proxy_on_delete(id: u32): void {
  const s = streams.find(id);
  if (s !== null) {
    s.finish(); // the release (Stream.finish), exactly once
    streams.delete(id);
    return;
  }
  const r = roots.find(id);
  if (r !== null) {
    r.metrics.flushCounters(); // a root going away keeps no counts back
    roots.delete(id);
  }
}

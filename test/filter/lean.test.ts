// The lean module (build/ws-governor-lean.wasm): the local filter without frame inspection and without the body
// callbacks. Envoy enters a module only through the exports it has (envoy-host.md §2.1), so body chunks, plain or
// WebSocket, never cross into it. Everything else must behave as the local module does.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { PluginHandleImpl } from "../emulator/host/index.ts";
import { H200, PluginLoadError, ROOT, conn, finishReply, header, loadFailure, makeEnv, ok, open, plainHeaders,
  podTotal, reply, wasm } from "./support.ts";
import type { Env } from "./support.ts";

const LEAN = new Uint8Array(readFileSync(join(ROOT, "build/ws-governor-lean.wasm")));
const ENDPOINTS_OFF = { metrics_path: "", health_path: "" };

/** the emulator's handle: exports entered per worker VM (PluginHandleImpl.entered) */
const handle = (e: Env) => e.h as PluginHandleImpl;

function hostCalls(e: Env): number {
  return Object.values(e.h.hostCalls(0).all()).reduce((a, b) => a + b, 0);
}

/** a plain GET answered 200 with a body in two chunks; returns the exports entered and the host calls made */
function plainGet(e: Env): { calls: Record<string, number>; host: number } {
  const before = handle(e).entered([0]), h0 = hostCalls(e);
  const s = e.h.newStream(0, conn());
  assert.equal(s.decodeHeaders(plainHeaders("/api/items", [["content-length", "5"]]), false).kind, "continue");
  assert.equal(s.decodeData(new TextEncoder().encode("hello"), true).kind, "continue");
  assert.equal(s.encodeHeaders(H200, false).kind, "continue");
  assert.equal(s.encodeData(new TextEncoder().encode("o"), false).kind, "continue");
  assert.equal(s.encodeData(new TextEncoder().encode("k"), true).kind, "continue");
  s.complete();
  return { calls: handle(e).enteredSince(before, [0]), host: hostCalls(e) - h0 };
}

test("lean: no body callback is exported, so a plain request with bodies enters Wasm 4 times (the local module 7)", () => {
  const exportsOf = (m: Uint8Array) => WebAssembly.Module.exports(new WebAssembly.Module(new Uint8Array(m))).map((x) => x.name);
  const lean = exportsOf(LEAN), local = exportsOf(wasm());
  assert.deepEqual(lean.filter((n) => n.includes("_body")), []);
  assert.deepEqual(local.filter((n) => !lean.includes(n)).sort(), ["proxy_on_request_body", "proxy_on_response_body"]);

  const l = makeEnv({ module: LEAN, config: ENDPOINTS_OFF, concurrency: 1 });
  const s = makeEnv({ config: ENDPOINTS_OFF, concurrency: 1 });
  try {
    plainGet(l); plainGet(s); // the first stream of a VM may do one-time work
    const lean1 = plainGet(l), std1 = plainGet(s);
    assert.deepEqual(lean1.calls, { proxy_on_context_create: 1, proxy_on_request_headers: 1, proxy_on_response_headers: 1,
      proxy_on_delete: 1 });
    assert.deepEqual(std1.calls, { ...lean1.calls, proxy_on_request_body: 1, proxy_on_response_body: 2 });
    assert.equal(lean1.host, 1, "one header read (`upgrade`) with the endpoints off");
    assert.equal(std1.host, 1);
  } finally {
    l.close();
    s.close();
  }
});

test("every module ends a stream at on_delete alone: no proxy_on_log / proxy_on_done export (Envoy skips a missing " +
  "export), so a WebSocket lifecycle enters Wasm 4 times, and on_delete releases: gauge, ledger and released_total", () => {
  const fleet = new Uint8Array(readFileSync(join(ROOT, "build/ws-governor-fleet.wasm")));
  for (const m of [wasm(), LEAN, fleet]) {
    const names = WebAssembly.Module.exports(new WebAssembly.Module(new Uint8Array(m))).map((x) => x.name);
    assert.ok(names.includes("proxy_on_delete") && names.includes("proxy_on_context_create"));
    assert.deepEqual(names.filter((n) => n === "proxy_on_log" || n === "proxy_on_done"), []);
  }
  for (const module of [undefined, LEAN]) {
    const e = makeEnv({ module, concurrency: 1, config: { ...ENDPOINTS_OFF, rate_limit: null, max_connections_per_pod: 1 } });
    try {
      const before = handle(e).entered([0]);
      const a = open(e.h, 0);
      ok(a.admitted);
      assert.equal(e.stat("active_connections"), 1);
      assert.equal(podTotal(e.proc), 1);
      a.s.complete(); // Envoy's end of stream: on_log, on_done, on_delete, of which only on_delete exists
      assert.deepEqual(handle(e).enteredSince(before, [0]), { proxy_on_context_create: 1, proxy_on_request_headers: 1,
        proxy_on_response_headers: 1, proxy_on_delete: 1 });
      assert.equal(e.stat("active_connections"), 0);
      assert.equal(podTotal(e.proc), 0);
      assert.equal(e.stat("released_total"), 1);
      ok(open(e.h, 0).admitted, "the slot is free again");
    } finally {
      e.close();
    }
  }
});

test("lean: caps and rate limits as the local module (503, 429 with Retry-After); WebSocket data never enters Wasm; " +
  "the gauge and the ledger go back to 0", () => {
  const e = makeEnv({ module: LEAN, concurrency: 2, config: { max_connections_per_pod: 2,
    rate_limit: { requests: 3, window_seconds: 10, burst: 3 } } });
  try {
    const a = open(e.h, 0, "10.0.0.1:1"), b = open(e.h, 1, "10.0.0.2:1");
    ok(a.admitted && b.admitted);
    const full = open(e.h, 0, "10.0.0.3:1");
    assert.equal(reply(full.r).status, 503, "the pod's 3rd connection");
    finishReply(full.s);
    const limited = open(e.h, 1, "10.0.0.4:1");
    const rep = reply(limited.r);
    assert.equal(rep.status, 429, "the 4th upgrade within the window");
    assert.equal(header(rep.headers, "retry-after"), "4");
    finishReply(limited.s);
    assert.equal(e.stat("active_connections"), 2);
    assert.equal(podTotal(e.proc), 2);

    const before = handle(e).entered([0]);
    const frame = new Uint8Array([0x82, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]); // masked binary "hello"
    for (let i = 0; i < 50; i++) {
      assert.equal(a.s.decodeData(frame, false).kind, "continue");
      assert.equal(a.s.encodeData(new Uint8Array([0x82, 0x02, 0x6f, 0x6b]), false).kind, "continue");
    }
    assert.deepEqual(handle(e).enteredSince(before, [0]), {}, "100 WebSocket chunks, no Wasm entry");

    a.s.complete();
    b.s.complete();
    assert.equal(e.stat("active_connections"), 0);
    assert.equal(podTotal(e.proc), 0);
    assert.equal(e.stat("released_total"), 2);
    assert.equal(e.stat("rejected_total.reason.pod_full"), 1);
    assert.equal(e.stat("rejected_total.reason.rate_limited"), 1);
    assert.equal(e.h.vmFailed(0) || e.h.vmFailed(1), false);
  } finally {
    e.close();
  }
});

test("lean: frames.enabled is refused with one critical line naming the modules that inspect frames; " +
  "frames off loads", () => {
  const { error, logs } = loadFailure({ frames: { enabled: true } }, LEAN);
  ok(error instanceof PluginLoadError, "frames.enabled was accepted by the lean module");
  assert.deepEqual(logs.filter((l) => l.level === "critical").map((l) => l.message),
    ["ws_governor: invalid configuration: frames.enabled: needs build/ws-governor.wasm or build/ws-governor-fleet.wasm " +
     "(the lean module has no body callbacks)"]);
  assert.equal(loadFailure({ frames: { enabled: false, max_message_bytes: 1024 } }, LEAN).error, undefined);
  assert.equal(loadFailure({ frames: { enabled: true } }).error, undefined, "the local module inspects frames");
  const fleet = loadFailure({ fleet: { cluster: "etcd" } }, LEAN);
  ok(fleet.error instanceof PluginLoadError);
  assert.deepEqual(fleet.logs.filter((l) => l.level === "critical").map((l) => l.message),
    ["ws_governor: invalid configuration: fleet: needs build/ws-governor-fleet.wasm"]);
});

test("lean: a drain refuses new upgrades (503 draining) and leaves open connections running (no body callback to " +
  "reset them from, where the local module resets at the next chunk)", () => {
  const e = makeEnv({ module: LEAN, concurrency: 1, config: { rate_limit: null, tick_ms: 100 } });
  try {
    const a = open(e.h, 0, "10.0.0.1:1");
    ok(a.admitted);
    e.proc.sharedData.put("", "wsg:drain", Uint8Array.of(1)); // another configuration of the plugin set draining
    e.proc.advance(250);
    const late = open(e.h, 0, "10.0.0.2:1");
    assert.equal(reply(late.r).status, 503);
    finishReply(late.s);
    assert.equal(e.stat("rejected_total.reason.draining"), 1);
    const frame = new Uint8Array([0x82, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]);
    assert.equal(a.s.decodeData(frame, false).kind, "continue", "the open connection still runs");
    assert.equal(e.stat("frame_resets_total"), 0);
    a.s.complete();
    assert.equal(e.stat("active_connections"), 0);
  } finally {
    e.close();
  }
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, type PluginHandleImpl } from "./host/index.ts";
import { traceProbe } from "./probes/trace.ts";
import { Probe } from "./probes/build.ts";
import { conn, GET, messages, slot, u32 } from "./probes/helpers.ts";

const W = "worker-0";
function setup(p: Probe, version: "1.31" | "1.32" | "1.34" | "1.35" | "1.36" = "1.36", extra = {}) {
  const proc = new EnvoyProcess({ concurrency: 1, envoyVersion: version });
  const h = proc.addPlugin({ wasm: p.build(), ...extra }) as PluginHandleImpl;
  proc.logs.length = 0;
  return { proc, h };
}

test("§2.3 normal HTTP/1 stream: create → headers → body chunks (empty eos=1 last) → response → log → done → delete", () => {
  const { proc, h } = setup(traceProbe());
  const s = h.newStream(0, conn());
  assert.deepEqual(s.decodeHeaders(GET, false), { kind: "continue", headers: GET });
  assert.equal(s.decodeData(Buffer.from("abc"), false).kind, "continue");
  assert.equal(s.decodeData(new Uint8Array(0), true).kind, "continue");
  s.encodeHeaders([[":status", "200"], ["content-length", "5"]], false);
  s.encodeData(Buffer.from("hello"), false);
  s.encodeData(new Uint8Array(0), true);
  s.complete();
  assert.deepEqual(messages(proc, W), ["create", "req_headers", "req_body", "req_body", "resp_headers", "resp_body", "resp_body",
    "log", "done", "delete"]);
  assert.ok(s.ended);
});

test("§2.5 D rejected before this filter saw headers: only create (lazily in log) → log → done → delete", () => {
  const { proc, h } = setup(traceProbe());
  const s = h.newStream(0, conn());
  assert.equal(s.encodeHeaders([[":status", "403"]], true, "upgrade_failed").kind, "continue");
  s.complete();
  assert.deepEqual(messages(proc, W), ["create", "log", "done", "delete"]);
});

test("§2.5 B client reset mid-stream: no more callbacks, then log → done → delete; 1xx never reach the plugin", () => {
  const { proc, h } = setup(traceProbe());
  const s = h.newStream(0, conn());
  s.decodeHeaders(GET, false);
  s.encodeHeaders([[":status", "100"]], false);
  s.reset("downstream_remote_disconnect");
  assert.equal(s.decodeData(Buffer.from("x"), false).kind, "stop");
  assert.deepEqual(messages(proc, W), ["create", "req_headers", "log", "done", "delete"]);
});

test("§2.6 header maps: BadArgument after Continue, NotFound for a missing key, pairs empty when unavailable, read-only copy in on_log", () => {
  const p = new Probe();
  const get = (i: number, key: string) => p.store(i, `(call $proxy_get_header_map_value (i32.const 0) ${p.s(key)} (i32.const 128) (i32.const 132))`);
  p.on("proxy_on_request_headers", `${get(0, ":path")} ${get(1, "missing")} ${p.store(2, `(call $proxy_get_header_map_value (i32.const 9) ${p.s("a")} (i32.const 128) (i32.const 132))`)} (i32.const 0)`);
  p.on("proxy_on_request_body", `${get(3, ":path")}
    ${p.store(4, "(call $proxy_get_header_map_pairs (i32.const 0) (i32.const 140) (i32.const 144))")}
    ${p.store(5, `(call $proxy_add_header_map_value (i32.const 0) ${p.s("a")} ${p.s("b")})`)} (i32.const 0)`);
  p.on("proxy_on_log", `${get(6, ":path")} ${p.store(7, `(call $proxy_add_header_map_value (i32.const 0) ${p.s("a")} ${p.s("b")})`)}
    ${p.store(8, `(call $proxy_get_header_map_value (i32.const 3) ${p.s("a")} (i32.const 128) (i32.const 132))`)}`);
  const { h } = setup(p);
  const s = h.newStream(0, conn());
  s.decodeHeaders(GET, false);
  assert.equal(slot(h, 0, 0), 0);
  assert.equal(slot(h, 0, 1), 1);
  assert.equal(slot(h, 0, 2), 2);
  s.decodeData(Buffer.from("x"), true);
  assert.equal(slot(h, 0, 3), 2, "BadArgument after Continue");
  assert.equal(slot(h, 0, 4), 0);
  assert.deepEqual([u32(h, 0, 140), u32(h, 0, 144)], [0, 0]);
  assert.equal(slot(h, 0, 5), 2);
  s.complete();
  assert.equal(slot(h, 0, 6), 0, "on_log reads the access-log copy");
  assert.equal(slot(h, 0, 7), 2, "read-only in on_log");
  assert.equal(slot(h, 0, 8), 1, "missing map in on_log → NotFound");
});

test("§2.7 Pause (1) → StopAll: body buffered without callbacks; continue_stream from on_tick via effective context", () => {
  const p = traceProbe({
    proxy_on_request_headers: `(i32.store (i32.const 300) (local.get $p0)) (i32.const 1)`,
    proxy_on_tick: `(drop (call $proxy_set_effective_context (i32.load (i32.const 300)))) (drop (call $proxy_continue_stream (i32.const 0)))`,
    proxy_on_configure: `(drop (call $proxy_set_tick_period_milliseconds (i32.const 10))) (i32.const 1)`,
  });
  const { proc, h } = setup(p);
  const s = h.newStream(0, conn());
  const async: Array<[string, unknown]> = [];
  s.events.onAsync = (r) => async.push([r.kind, r.kind === "continue" ? (r.headers ? "headers" : Buffer.from(r.data!).toString()) : r]);
  assert.equal(s.decodeHeaders(GET, false).kind, "stop");
  assert.equal(s.decodeData(Buffer.from("ab"), false).kind, "stop");
  assert.equal(s.decodeData(Buffer.from("c"), true).kind, "stop");
  assert.deepEqual(messages(proc, W), ["create", "req_headers"], "no body callbacks while paused");
  proc.advance(10);
  assert.deepEqual(async, [["continue", "headers"], ["continue", "abc"]]);
  assert.deepEqual(messages(proc, W), ["create", "req_headers", "req_body"], "one body call with everything buffered");
});

test("§1.6 allow_on_headers_stop_iteration (1.35+): 1 stays StopIteration, body callbacks keep firing", () => {
  const p = traceProbe({ proxy_on_request_headers: "(i32.const 1)" });
  const { proc, h } = setup(p, "1.35", { allowOnHeadersStopIteration: true });
  const s = h.newStream(0, conn());
  assert.equal(s.decodeHeaders(GET, false).kind, "stop");
  const r = s.decodeData(Buffer.from("x"), false);
  assert.deepEqual(messages(proc, W), ["create", "req_headers", "req_body"]);
  assert.equal(r.kind, "continue");
  assert.ok(r.kind === "continue" && r.headers, "held headers go on with the body");
});

for (const [v, seen] of [["1.31", "a"], ["1.32", "ab"]] as const) {
  test(`§2.7 body StopIterationAndBuffer accumulates; ${v}: next callback sees "${seen}"`, () => {
    const p = new Probe();
    p.on("proxy_on_request_body", `${p.store(0, "(local.get $p1)")} (if (result i32) (local.get $p2) (then (i32.const 0)) (else (i32.const 1)))`);
    const { h } = setup(p, v);
    const s = h.newStream(0, conn());
    s.decodeHeaders(GET, false);
    assert.equal(s.decodeData(Buffer.from("a"), false).kind, "stop");
    const r = s.decodeData(Buffer.from("b"), true);
    assert.equal(slot(h, 0, 0), seen.length);
    assert.equal(r.kind === "continue" && Buffer.from(r.data!).toString(), "ab");
  });
}

test("§8.2 upgrade: request headers eos=0 accepted, body chunks per read with eos=0, 101 reaches on_response_headers", () => {
  const p = new Probe();
  p.on("proxy_on_request_headers", `${p.store(0, "(local.get $p2)")} (i32.const 0)`);
  p.on("proxy_on_response_headers", `${p.store(1, `(call $proxy_get_header_map_value (i32.const 2) ${p.s(":status")} (i32.const 128) (i32.const 132))`)} (i32.const 0)`);
  p.on("proxy_on_request_body", `${p.store(2, "(i32.add (i32.load (i32.const 264)) (local.get $p1))")} (i32.const 0)`);
  const { h } = setup(p);
  const s = h.newStream(0, conn());
  s.decodeHeaders([...GET, ["connection", "upgrade"], ["upgrade", "websocket"]], false);
  assert.equal(slot(h, 0, 0), 0);
  s.encodeHeaders([[":status", "101"], ["upgrade", "websocket"]], false);
  assert.equal(slot(h, 0, 1), 0);
  s.decodeData(Buffer.from([0x81, 0x85]), false);
  s.decodeData(Buffer.from([1, 2, 3]), false);
  assert.equal(slot(h, 0, 2), 5);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, encodePairsBytes, type PluginHandleImpl } from "./host/index.ts";
import { traceProbe } from "./probes/trace.ts";
import { Probe } from "./probes/build.ts";
import { conn, GET, messages, slot } from "./probes/helpers.ts";

const W = "worker-0";
const pairs = (l: Array<[string, string]>) => encodePairsBytes(l.map(([k, v]) => [Buffer.from(k), Buffer.from(v)]));

function replyCall(p: Probe, code: number, body: string, hdrs: Array<[string, string]>, details = "ws governor limited") {
  return `(call $proxy_send_local_response (i32.const ${code}) ${p.s(details)} ${p.s(body)} ${p.s(pairs(hdrs))} (i32.const -1))`;
}
function setup(p: Probe, version: "1.32" | "1.33" | "1.36" = "1.36") {
  const proc = new EnvoyProcess({ concurrency: 1, envoyVersion: version });
  const h = proc.addPlugin({ wasm: p.build() }) as PluginHandleImpl;
  proc.logs.length = 0;
  return { proc, h };
}

test("§7.2 local reply from on_request_headers: deferred, forced stop, passes the same filter's on_response_headers/body", () => {
  const p = traceProbe((p0) => ({ proxy_on_request_headers:
    `${p0.store(0, replyCall(p0, 429, "slow down", [["retry-after", "1"], ["content-length", "999"]]))} (i32.const 0)` }));
  const { proc, h } = setup(p);
  const s = h.newStream(0, conn());
  const r = s.decodeHeaders(GET, true);
  assert.equal(slot(h, 0, 0), 0, "Ok");
  assert.equal(r.kind, "localReply");
  if (r.kind !== "localReply") return;
  assert.equal(r.reply.status, 429);
  assert.equal(r.reply.details, "ws_governor_limited", "whitespace → _");
  assert.deepEqual(r.reply.headers, [[":status", "429"], ["retry-after", "1"], ["content-length", "9"], ["content-type", "text/plain"]]);
  assert.equal(Buffer.from(r.reply.body).toString(), "slow down");
  assert.equal(s.decodeData(Buffer.from("x"), true).kind, "stop", "decoder chain aborted");
  s.complete();
  assert.deepEqual(messages(proc, W), ["create", "req_headers", "resp_headers", "resp_body", "log", "done", "delete"]);
  // returning Continue after the reply is what §13.1 calls a defect; the forced stop above is cpp-host's stopNextIteration
  assert.deepEqual(proc.takeDefects().map((d) => d.kind), ["continue_after_local_reply"]);
});

test("§7.4 empty body: content-length and content-type removed even if the plugin set them", () => {
  const p = new Probe();
  p.on("proxy_on_request_headers", `(drop ${replyCall(p, 503, "", [["content-type", "x/y"], ["content-length", "3"]])}) (i32.const 1)`);
  const { h } = setup(p);
  const r = h.newStream(0, conn()).decodeHeaders(GET, true);
  assert.deepEqual(r.kind === "localReply" && r.reply.headers, [[":status", "503"]]);
});

test("§7.3 local reply from on_response_headers goes directly to the client (no second on_response_headers)", () => {
  const p = traceProbe((p0) => ({ proxy_on_response_headers: `(drop ${replyCall(p0, 403, "no", [])}) (i32.const 1)` }));
  const { proc, h } = setup(p);
  const s = h.newStream(0, conn());
  s.decodeHeaders([...GET, ["upgrade", "websocket"], ["connection", "upgrade"]], false);
  const r = s.encodeHeaders([[":status", "101"]], false);
  assert.equal(r.kind === "localReply" && r.reply.status, 403);
  assert.equal(s.encodeData(Buffer.from("x"), false).kind, "stop");
  s.complete();
  assert.deepEqual(messages(proc, W), ["create", "req_headers", "resp_headers", "log", "done", "delete"]);
});

test("§7.1 second send_local_response: BadArgument on 1.30–1.32, Ok (first reply kept) on 1.33+", () => {
  for (const [v, want] of [["1.32", 2], ["1.33", 0]] as const) {
    const p = new Probe();
    p.on("proxy_on_request_headers", `(drop ${replyCall(p, 429, "a", [])}) ${p.store(0, replyCall(p, 503, "b", []))} (i32.const 1)`);
    const { h } = setup(p, v);
    const r = h.newStream(0, conn()).decodeHeaders(GET, true);
    assert.equal(slot(h, 0, 0), want, v);
    assert.equal(r.kind === "localReply" && r.reply.status, 429, v);
  }
});

test("§9 close_stream(0): details wasm_close_stream, reset, then log → done → delete synchronously", () => {
  const p = traceProbe({ proxy_on_request_body: "(drop (call $proxy_close_stream (i32.const 0))) (i32.const 3)" });
  const { proc, h } = setup(p);
  const s = h.newStream(0, conn());
  s.decodeHeaders(GET, false);
  const r = s.decodeData(Buffer.from("x"), false);
  assert.deepEqual(r, { kind: "reset", details: "wasm_close_stream" });
  assert.ok(s.ended);
  assert.deepEqual(messages(proc, W), ["create", "req_headers", "req_body", "log", "done", "delete"]);
  assert.equal(proc.defects.length, 0, "StopIterationNoBuffer after close_stream (§13.1)");
});

test("§9 send_local_response from on_tick via effective context on a paused stream (async through the filter chain)", () => {
  const p = traceProbe((p0) => ({
    proxy_on_request_headers: "(i32.store (i32.const 300) (local.get $p0)) (i32.const 1)",
    proxy_on_tick: `(drop (call $proxy_set_effective_context (i32.load (i32.const 300)))) (drop ${replyCall(p0, 503, "", [])})`,
    proxy_on_configure: "(drop (call $proxy_set_tick_period_milliseconds (i32.const 5))) (i32.const 1)",
  }));
  const { proc, h } = setup(p);
  const s = h.newStream(0, conn());
  const got: string[] = [];
  s.events.onAsync = (r) => got.push(r.kind === "localReply" ? `reply ${r.reply.status}` : r.kind);
  s.decodeHeaders(GET, true);
  proc.advance(5);
  assert.deepEqual(got, ["reply 503"]);
  assert.deepEqual(messages(proc, W), ["create", "req_headers", "resp_headers"]);
});

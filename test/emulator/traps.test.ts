import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, type PluginHandleImpl, type PluginOptions } from "./host/index.ts";
import { traceProbe } from "./probes/trace.ts";
import { conn, GET, messages } from "./probes/helpers.ts";

const W = "worker-0";
const trapping = () => traceProbe({ proxy_on_request_body: "(unreachable)" }).build();
function setup(version: "1.32" | "1.33" | "1.34" | "1.35" | "1.36", extra: Partial<PluginOptions> = {}) {
  const proc = new EnvoyProcess({ concurrency: 1, envoyVersion: version });
  const h = proc.addPlugin({ wasm: trapping(), ...extra }) as PluginHandleImpl;
  proc.logs.length = 0;
  return { proc, h };
}
function trap(h: PluginHandleImpl) {
  const s = h.newStream(0, conn());
  s.decodeHeaders(GET, false);
  return { s, r: s.decodeData(Buffer.from("x"), false) };
}

test("§2.5 F trap (1.35+): VM failed, 503 wasm_fail_stream, no more callbacks (not even on_log/on_done/on_delete)", () => {
  const { proc, h } = setup("1.36");
  const { s, r } = trap(h);
  assert.ok(h.vmFailed(0));
  assert.equal(r.kind, "localReply");
  if (r.kind === "localReply") {
    assert.equal(r.reply.status, 503);
    assert.equal(r.reply.details, "wasm_fail_stream");
    assert.equal(r.reply.body.length, 0);
  }
  s.complete();
  assert.deepEqual(messages(proc, W).slice(0, 2), ["create", "req_headers"]);
  assert.match(messages(proc, W)[3], /^Function: proxy_on_request_body failed: Uncaught RuntimeError: unreachable/);
  assert.equal(messages(proc, W).length, 4, "log line 3 is req_body, then the error; nothing after");
});

test("§2.5 F trap on 1.30–1.34: the 503 is held (stop, hung); later streams hang too (FAIL_CLOSED)", () => {
  const { h } = setup("1.34");
  const { s, r } = trap(h);
  assert.equal(r.kind, "stop");
  assert.equal(s.hung, true);
  const later = h.newStream(0, conn());
  assert.equal(later.decodeHeaders(GET, true).kind, "stop");
  assert.equal(later.hung, true);
});

test("§3.3 FAIL_CLOSED later streams: 503 wasm_fail_stream at decodeHeaders with no VM call", () => {
  const { proc, h } = setup("1.36");
  trap(h);
  proc.logs.length = 0;
  const later = h.newStream(0, conn());
  const r = later.decodeHeaders(GET, true);
  assert.equal(r.kind === "localReply" && r.reply.details, "wasm_fail_stream");
  later.complete();
  assert.deepEqual(messages(proc), []);
});

test("§3.3 FAIL_OPEN: the trapping stream still 503s; later streams bypass the filter", () => {
  const { h } = setup("1.36", { failurePolicy: "FAIL_OPEN" });
  const { r } = trap(h);
  assert.equal(r.kind, "localReply");
  const later = h.newStream(0, conn());
  assert.deepEqual(later.decodeHeaders(GET, true), { kind: "continue", headers: GET });
  assert.equal(later.contextId, 0);
});

test("§3.3 deprecated fail_open: true → the trapping stream continues", () => {
  const { h } = setup("1.32", { failOpen: true });
  const { r } = trap(h);
  assert.equal(r.kind, "continue");
});

test("§3.3 FAIL_RELOAD: fresh VM after backoff in [base, 1.5·base), context ids restart at 1, shared data survives", () => {
  const proc = new EnvoyProcess({ concurrency: 1, envoyVersion: "1.36", random: () => 0.99 });
  const h = proc.addPlugin({ wasm: trapping(), failurePolicy: "FAIL_RELOAD", reloadBackoffMs: 1000 }) as PluginHandleImpl;
  proc.sharedData.put("", "keep", new Uint8Array([1]));
  trap(h);
  const inWindow = h.newStream(0, conn());
  assert.equal(inWindow.decodeHeaders(GET, true).kind, "localReply", "inside the backoff: like FAIL_CLOSED");
  assert.equal(proc.stats.get("wasm.ws_governor.vm_reload_backoff"), 1);
  proc.advance(1494);
  assert.equal(h.newStream(0, conn()).contextId, 0, "1494 < 1000 + 0.99·500");
  proc.advance(1);
  const fresh = h.newStream(0, conn());
  assert.equal(h.vmFailed(0), false);
  assert.equal(h.rootContextId(0), 1);
  assert.equal(fresh.contextId, 2);
  assert.equal(proc.stats.get("wasm.ws_governor.vm_reload_success"), 1);
  assert.ok(proc.sharedData.get("", "keep"));
});

test("§3.3 trapOnNextHostCall test hook fails only that worker's VM", () => {
  const proc = new EnvoyProcess({ concurrency: 2 });
  const h = proc.addPlugin({ wasm: traceProbe().build() }) as PluginHandleImpl;
  h.trapOnNextHostCall(1);
  const s = h.newStream(1, conn());
  assert.equal(s.decodeHeaders(GET, true).kind, "localReply");
  assert.ok(h.vmFailed(1));
  assert.ok(!h.vmFailed(0));
  assert.equal(h.newStream(0, conn()).decodeHeaders(GET, true).kind, "continue");
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, type PluginHandleImpl } from "./host/index.ts";
import { Probe } from "./probes/build.ts";
import { conn, GET, slot, u32 } from "./probes/helpers.ts";

/** on_request_headers: get "k" (slot0=status, cas at 136), set "k" with cas from request header-less constant */
function probe(casExpr: string, value = "v") {
  const p = new Probe();
  p.on("proxy_on_request_headers", `
    ${p.store(0, `(call $proxy_get_shared_data ${p.s("k")} (i32.const 128) (i32.const 132) (i32.const 136))`)}
    ${p.store(1, `(call $proxy_set_shared_data ${p.s("k")} ${p.s(value)} ${casExpr})`)}
    ${p.store(2, `(call $proxy_get_shared_data ${p.s("k")} (i32.const 140) (i32.const 144) (i32.const 148))`)}
    (i32.const 0)`);
  return p.build();
}
function run(h: PluginHandleImpl, w = 0) {
  const s = h.newStream(w, conn());
  s.decodeHeaders(GET, true);
  s.complete();
  return { get1: slot(h, w, 0), set: slot(h, w, 1), get2: slot(h, w, 2), cas1: u32(h, w, 136), cas2: u32(h, w, 148) };
}

test("§4.3 non-zero cas on a missing key succeeds; §4.4 the counter starts at 1", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: probe("(i32.const 12345)") }) as PluginHandleImpl;
  const r = run(h);
  assert.equal(r.get1, 1, "NotFound first");
  assert.equal(r.set, 0, "Ok");
  assert.equal(r.cas2, 1);
});

test("§4.3 cas 0 on an existing key is unconditional; every successful set gets a fresh cas (global counter)", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  proc.sharedData.put("", "other", new Uint8Array([1])); // cas 1
  proc.sharedData.put("", "k", new Uint8Array([1])); // cas 2
  const h = proc.addPlugin({ wasm: probe("(i32.const 0)") }) as PluginHandleImpl;
  const r = run(h);
  assert.equal(r.get1, 0);
  assert.equal(r.cas1, 2);
  assert.equal(r.set, 0);
  assert.equal(r.cas2, 3);
  const r2 = run(h);
  assert.equal(r2.cas2, 4, "identical value still gets a new cas");
});

test("§4.3 stale cas → CasMismatch (8), nothing changes; beforeSet hook forces a conflict", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  proc.sharedData.put("", "k", new Uint8Array([1]));
  const h = proc.addPlugin({ wasm: probe("(i32.load (i32.const 136))", "mine") }) as PluginHandleImpl;
  let calls = 0;
  proc.sharedData.beforeSet = (vmId, key, vm) => {
    calls++;
    assert.equal(vm, "worker-0");
    proc.sharedData.put(vmId, key, Buffer.from("theirs"));
  };
  const r = run(h);
  assert.equal(calls, 1);
  assert.equal(r.set, 8);
  assert.equal(Buffer.from(proc.sharedData.get("", "k")!.value).toString(), "theirs");
  proc.sharedData.beforeSet = undefined;
  const r2 = run(h);
  assert.equal(r2.set, 0, "cas read in the same callback matches now");
});

test("§4.2 empty value: Ok with ptr 0 / len 0 and no allocation", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  proc.sharedData.put("", "k", new Uint8Array(0));
  const p = new Probe();
  p.on("proxy_on_request_headers", `(i32.store (i32.const 128) (i32.const 99)) (i32.store (i32.const 0) (i32.const 0))
    ${p.store(0, `(call $proxy_get_shared_data ${p.s("k")} (i32.const 128) (i32.const 132) (i32.const 136))`)} (i32.const 0)`);
  const h = proc.addPlugin({ wasm: p.build() }) as PluginHandleImpl;
  run(h);
  assert.equal(slot(h, 0, 0), 0);
  assert.equal(u32(h, 0, 128), 0);
  assert.equal(u32(h, 0, 132), 0);
  assert.equal(u32(h, 0, 0), 0, "malloc not called");
});

test("§4.4 the cas counter skips 0 on u32 wrap", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  proc.sharedData.setNextCas(0xffffffff);
  assert.equal(proc.sharedData.put("", "a", new Uint8Array(1)), 0xffffffff);
  assert.equal(proc.sharedData.put("", "a", new Uint8Array(1)), 1);
});

test("§4.1 namespaced by vm_id; shared by every VM of the process", () => {
  const proc = new EnvoyProcess({ concurrency: 2 });
  const a = proc.addPlugin({ wasm: probe("(i32.const 0)", "A"), vmId: "one" }) as PluginHandleImpl;
  run(a, 0);
  const r = run(a, 1);
  assert.equal(r.get1, 0, "worker 1 sees worker 0's write");
  assert.deepEqual(proc.sharedData.keys("one"), ["k"]);
  assert.deepEqual(proc.sharedData.keys(""), []);
});

test("§4.5 shared data survives while a base VM with the vm_id lives; dropped on last removal", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  const a = proc.addPlugin({ wasm: probe("(i32.const 0)"), vmId: "z" }) as PluginHandleImpl;
  run(a);
  a.remove();
  assert.equal(proc.sharedData.get("z", "k"), undefined);
});

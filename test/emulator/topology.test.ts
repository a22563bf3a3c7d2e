import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, PluginLoadError, type PluginHandleImpl } from "./host/index.ts";
import { Probe } from "./probes/build.ts";
import { conn, GET, messages, slot, start } from "./probes/helpers.ts";

function lifecycleProbe() {
  const p = new Probe({ raw: "(global $g (mut i32) (i32.const 0))" });
  p.on("_initialize", p.log("init"));
  p.on("proxy_on_context_create", `${p.log("create")} ${p.store(0, "(local.get $p0)")}`);
  p.on("proxy_on_vm_start", `${p.log("vm_start")} (i32.const 1)`);
  p.on("proxy_on_configure", `${p.log("configure")} ${p.store(1, "(local.get $p0)")}
    (global.set $g (i32.add (global.get $g) (i32.const 1))) ${p.store(2, "(global.get $g)")} (i32.const 1)`);
  p.on("proxy_on_done", `${p.log("done")} (i32.const 1)`);
  p.on("proxy_on_delete", p.log("delete"));
  return p;
}

test("§2.2 N+2 on_configure (canary + main + N workers); base VM gets no proxy_on_* call", () => {
  const { proc } = start(lifecycleProbe().build(), { concurrency: 3 });
  assert.equal(messages(proc).filter((m) => m === "init").length, 6, "base, canary, main, 3 workers start");
  assert.equal(messages(proc).filter((m) => m === "configure").length, 5);
  assert.equal(messages(proc).filter((m) => m === "vm_start").length, 5);
  assert.deepEqual(messages(proc, "base"), ["init"]);
  assert.deepEqual(messages(proc, "canary"), ["init", "create", "vm_start", "configure"], "canary: no on_done/on_delete");
  assert.equal(proc.stats.get("wasm.envoy.wasm.runtime.v8.created"), 6);
  assert.equal(proc.stats.get("wasm.envoy.wasm.runtime.v8.active"), 5, "canary destroyed");
});

test("§2.2 root context id 1, more plugins on the same VM get 2, 3; stream ids continue per VM", () => {
  const wasm = lifecycleProbe().build();
  const proc = new EnvoyProcess({ concurrency: 2 });
  const a = proc.addPlugin({ wasm, name: "a", configuration: "1" }) as PluginHandleImpl;
  assert.equal(slot(a, 0, 1), 1);
  const b = proc.addPlugin({ wasm, name: "b", configuration: "2" }) as PluginHandleImpl;
  assert.equal(slot(b, 0, 1), 2, "second root on the same VM");
  assert.equal(slot(b, 0, 2), 2, "same VM instance: globals persist across roots");
  const s1 = a.newStream(0, conn()), s2 = a.newStream(0, conn()), s3 = b.newStream(0, conn());
  assert.deepEqual([s1.contextId, s2.contextId, s3.contextId], [3, 4, 5]);
  const t1 = a.newStream(1, conn());
  assert.equal(t1.contextId, 3, "worker 1 has its own counter");
  s1.decodeHeaders(GET, true);
  assert.equal(slot(a, 0, 0), 3, "on_context_create(S) lazily at the first callback");
});

test("§3.1 every VM instance has its own memory and globals", () => {
  const { h } = start(lifecycleProbe().build(), { concurrency: 2 });
  assert.equal(slot(h, 0, 2), 1);
  assert.equal(slot(h, 1, 2), 1);
  assert.equal(slot(h, "main", 2), 1);
  assert.notEqual(h.vm(0).mem.memory, h.vm(1).mem.memory);
});

test("§2.2 on_configure false in the canary rejects the config; side effects persist", () => {
  const p = new Probe();
  p.on("proxy_on_configure", `(drop (call $proxy_set_shared_data ${p.s("k")} ${p.s("canary")} (i32.const 0)))
    (drop (call $proxy_define_metric (i32.const 0) ${p.s("from_canary")} (i32.const 200))) (i32.const 0)`);
  const proc = new EnvoyProcess({ concurrency: 1 });
  assert.throws(() => proc.addPlugin({ wasm: p.build(), name: "bad" }), (e: unknown) =>
    e instanceof PluginLoadError && e.message === "Unable to create Wasm HTTP filter bad");
  assert.equal(proc.stats.get("wasmcustom.from_canary"), 0, "stat created by the rejected canary stays");
  assert.equal(proc.sharedData.get("", "k"), undefined, "the base VM died with the rejected config, and the vm_id's data with it");
  // accepted config: the canary's write is the first one (cas 1) and survives the canary
  const q = new Probe();
  q.on("proxy_on_configure", `(drop (call $proxy_set_shared_data ${q.s("k")} ${q.s("x")} (i32.const 0))) (i32.const 1)`);
  const proc2 = new EnvoyProcess({ concurrency: 1 });
  proc2.addPlugin({ wasm: q.build() });
  assert.equal(proc2.sharedData.get("", "k")!.cas, 3, "canary, main, worker each wrote once");
});

test("§2.2 both fail_open and failure_policy is a config error; FAIL_RELOAD needs 1.33", () => {
  const wasm = new Probe().build();
  assert.throws(() => new EnvoyProcess().addPlugin({ wasm, failOpen: true, failurePolicy: "FAIL_OPEN" }),
    /only one of fail_open or failure_policy can be set/);
  assert.throws(() => new EnvoyProcess({ envoyVersion: "1.32" }).addPlugin({ wasm, failurePolicy: "FAIL_RELOAD" }), PluginLoadError);
});

test("§2.2 on_configure false on a worker only: filter silently not installed there", () => {
  const p = new Probe();
  // fail on the 4th configure (canary=1, main=2, worker0=3, worker1=4) using a shared-data counter
  p.on("proxy_on_configure", `(drop (call $proxy_set_shared_data ${p.s("n")} ${p.s("x")} (i32.const 0)))
    (drop (call $proxy_get_shared_data ${p.s("n")} (i32.const 128) (i32.const 132) (i32.const 136)))
    (i32.ne (i32.load (i32.const 136)) (i32.const 4))`);
  const { h } = start(p.build());
  const s0 = h.newStream(0, conn()), s1 = h.newStream(1, conn());
  assert.ok(s0.contextId > 0);
  assert.equal(s1.contextId, 0, "no Wasm context on worker 1");
  assert.deepEqual(s1.decodeHeaders(GET, true), { kind: "continue", headers: GET });
});

test("§2.4 plugin removal: on_done / on_delete on every root context", () => {
  const { proc, h } = start(lifecycleProbe().build(), { concurrency: 2 });
  proc.logs.length = 0;
  h.remove();
  assert.equal(messages(proc).filter((m) => m === "done").length, 3);
  assert.equal(messages(proc).filter((m) => m === "delete").length, 3);
});

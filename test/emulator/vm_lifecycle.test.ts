// envoy-host.md §13.5: VM lifecycle details of proxy-wasm-cpp-host (src/wasm.cc) as Envoy drives them — the canary,
// configuration updates while streams are live, failed VMs, proc_exit, the allocator's restricted mode, and
// proxy_on_vm_start once per root context.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, type PluginHandleImpl } from "./host/index.ts";
import { Probe, RES } from "./probes/build.ts";
import { conn, GET, slot } from "./probes/helpers.ts";

/** logs every lifecycle callback; slot 0 counts proxy_on_vm_start calls in this VM instance (a global in memory);
 *  on_configure takes a "lease" in shared data only if nobody holds one; on_configure arms a 5 ms tick */
function lifecycle(): Uint8Array {
  const p = new Probe();
  p.on("proxy_on_context_create", p.log("create"));
  p.on("proxy_on_vm_start", `${p.log("vm_start")} ${p.store(0, `(i32.add (i32.load (i32.const ${RES})) (i32.const 1))`)} (i32.const 1)`);
  p.on("proxy_on_configure", `${p.log("configure")}
    (if (i32.eq (call $proxy_get_shared_data ${p.s("lease")} (i32.const 128) (i32.const 132) (i32.const 136)) (i32.const 1))
      (then (drop (call $proxy_set_shared_data ${p.s("lease")} ${p.s("held")} (i32.const 0)))))
    (drop (call $proxy_set_tick_period_milliseconds (i32.const 5))) (i32.const 1)`);
  p.on("proxy_on_tick", p.log("tick"));
  p.on("proxy_on_request_headers", `${p.log("req_headers")} (i32.const 0)`);
  p.on("proxy_on_log", p.log("log"));
  p.on("proxy_on_done", `${p.log("done")} (i32.const 1)`);
  p.on("proxy_on_delete", p.log("delete"));
  return p.build();
}
const WASM = lifecycle();
const by = (proc: EnvoyProcess, vm: string, msg: string) => proc.logs.filter((l) => l.vm === vm && l.message === msg);

test("§13.5 the configuration canary is destroyed without on_done/on_delete; its registrations stay, its tick dies", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: WASM }) as PluginHandleImpl;
  assert.deepEqual(proc.logs.filter((l) => l.vm === "canary").map((l) => l.message), ["create", "vm_start", "configure"]);
  assert.equal(proc.sharedData.get("", "lease")?.cas, 1, "the canary took the lease (first write) …");
  proc.advance(20);
  assert.equal(by(proc, "canary", "tick").length, 0, "… its timer died with it");
  assert.ok(by(proc, "worker-0", "tick").length > 0);
  h.remove();
  assert.equal(by(proc, "canary", "done").length + by(proc, "canary", "delete").length, 0, "never done/deleted");
  assert.equal(by(proc, "worker-0", "done").length, 1);
});

test("§13.5 configuration update (same code) while a stream is live: new canary, a new root in the same VM, the old root lives until its stream ends", () => {
  const proc = new EnvoyProcess({ concurrency: 2 });
  const hA = proc.addPlugin({ wasm: WASM, configuration: "a" }) as PluginHandleImpl;
  const sA = hA.newStream(0, conn());
  sA.decodeHeaders(GET, false);
  const rootA = hA.rootContextId(0)!, rootA1 = hA.rootContextId(1)!;
  const vm0 = hA.vm(0);

  const hB = proc.addPlugin({ wasm: WASM, configuration: "b" }) as PluginHandleImpl;
  assert.equal(by(proc, "canary", "configure").length, 2, "a new canary ran for the new configuration");
  assert.equal(hB.vm(0), vm0, "the worker VM is reused");
  assert.equal(hB.rootContextId(0), sA.contextId + 1, "new root id continues the VM's counter");
  assert.equal(slot(hB, 0, 0), 2, "on_vm_start ran once per root context, in the same VM (globals kept)");

  hA.remove();
  const doneOn = (vm: string, id: number) => proc.logs.some((l) => l.vm === vm && l.message === "done" && l.contextId === id);
  assert.ok(doneOn("worker-1", rootA1), "a worker without live streams releases the old root at once");
  assert.ok(!doneOn("worker-0", rootA), "worker 0's old root lives on while its stream does");
  assert.equal(hA.newStream(0, conn()).contextId, 0, "no new streams on the removed configuration");
  assert.ok(sA.decodeData(Buffer.from("x"), true).kind === "continue", "the old stream keeps working");
  sA.complete();
  const tail = proc.logs.filter((l) => l.vm === "worker-0").slice(-5).map((l) => `${l.message}@${l.contextId}`);
  assert.deepEqual(tail, [`log@${sA.contextId}`, `done@${sA.contextId}`, `delete@${sA.contextId}`, `done@${rootA}`, `delete@${rootA}`]);
  assert.ok(proc.sharedData.get("", "lease"), "shared data lives while configuration b holds the VMs");

  const sB = hB.newStream(0, conn());
  sB.decodeHeaders(GET, true);
  hB.remove();
  assert.ok(proc.sharedData.get("", "lease"), "… and while b's last stream is live");
  sB.complete();
  assert.equal(proc.sharedData.get("", "lease"), undefined, "deleted with the last VM of the vm_id (§4.5)");
  proc.close();
});

test("§13.5 a failed VM gets no more callbacks: no on_log/on_done/on_delete for its streams, none for its root", () => {
  const proc = new EnvoyProcess({ concurrency: 2 });
  const h = proc.addPlugin({ wasm: WASM }) as PluginHandleImpl;
  const s = h.newStream(0, conn());
  h.trapOnNextHostCall(0);
  s.decodeHeaders(GET, true); // proxy_log traps
  assert.ok(h.vmFailed(0));
  const before = proc.logs.filter((l) => l.vm === "worker-0").length;
  s.complete();
  h.remove();
  assert.equal(proc.logs.filter((l) => l.vm === "worker-0").length, before, "nothing more from worker 0");
  assert.equal(by(proc, "worker-1", "done").length, 1);
});

test("§13.5 proc_exit: Envoy's Context::error logs \"wasi_unstable proc_exit\" at trace and the module continues", () => {
  const raw = `(import "wasi_unstable" "proc_exit" (func $pe (param i32)))`;
  const p = new Probe({ raw });
  p.on("proxy_on_request_headers", `(call $pe (i32.const 1)) ${p.store(1, "(i32.const 9)")} (i32.const 0)`);
  for (const [level, want] of [["trace", 1], ["debug", 0]] as const) {
    const proc = new EnvoyProcess({ concurrency: 1, logLevel: level });
    const h = proc.addPlugin({ wasm: p.build() }) as PluginHandleImpl;
    h.newStream(0, conn()).decodeHeaders(GET, true);
    const lines = proc.logs.filter((l) => l.message === "wasi_unstable proc_exit");
    assert.equal(lines.length, want, level);
    if (want) assert.deepEqual([lines[0].level, lines[0].line], ["trace", "wasi_unstable proc_exit"], "no `wasm log` prefix");
    assert.equal(slot(h, 0, 1), 9, "execution continued");
    assert.ok(!h.vmFailed(0));
  }
});

// cpp-host include/proxy-wasm/wasm.h :: WasmBase::allocMemory: setRestrictedCallback(true, {"env.proxy_log",
// "wasi_*.fd_write", "wasi_*.clock_time_get"}) around malloc_; v8.cc traps other imports with "restricted_callback"
test("§13.5 inside malloc only proxy_log, fd_write and clock_time_get are allowed (V8 restricted_callback)", () => {
  const mk = (call: string) => {
    const p = new Probe({ malloc: false, raw: `(import "wasi_unstable" "clock_time_get" (func $ct (param i32 i64 i32) (result i32)))
      (func $malloc (export "malloc") (param $p0 i32) (result i32) ${call} (i32.const 8192))` });
    p.on("proxy_on_request_headers", `${p.store(0, `(call $proxy_get_property ${p.s("plugin_name")} (i32.const 128) (i32.const 132))`)} (i32.const 0)`);
    return p;
  };
  const allowed = mk(`(drop (call $proxy_log (i32.const 2) (i32.const 0) (i32.const 0)))
    (drop (call $ct (i32.const 0) (i64.const 0) (i32.const 64)))`);
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: allowed.build() }) as PluginHandleImpl;
  h.newStream(0, conn()).decodeHeaders(GET, true);
  assert.equal(slot(h, 0, 0), 0, "Ok");
  assert.ok(!h.vmFailed(0));
  for (const forbidden of ["(drop (call $proxy_get_current_time_nanoseconds (i32.const 64)))",
    "(drop (call $proxy_set_shared_data (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))"]) {
    const p2 = new EnvoyProcess({ concurrency: 1 });
    const h2 = p2.addPlugin({ wasm: mk(forbidden).build() }) as PluginHandleImpl;
    h2.newStream(0, conn()).decodeHeaders(GET, true);
    assert.equal(slot(h2, 0, 0), 6, `${forbidden}: InvalidMemoryAccess`);
    assert.ok(h2.vmFailed(0), "restricted_callback trap fails the VM");
  }
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, type PluginHandleImpl } from "./host/index.ts";
import { Probe } from "./probes/build.ts";
import { slot } from "./probes/helpers.ts";

function metricProbe() {
  const p = new Probe();
  const def = (i: number, type: number, name: string) =>
    `${p.store(i, `(call $proxy_define_metric (i32.const ${type}) ${p.s(name)} (i32.const ${400 + 4 * i}))`)}`;
  const id = (i: number) => `(i32.load (i32.const ${400 + 4 * i}))`;
  p.on("proxy_on_configure", `
    ${def(0, 0, "t.requests")} ${def(1, 1, "t.active")} ${def(2, 2, "t.latency")} ${def(3, 0, "t.requests")}
    ${p.store(4, `(call $proxy_increment_metric ${id(0)} (i64.const 0))`)}
    ${p.store(5, `(call $proxy_increment_metric ${id(0)} (i64.const -1))`)}
    ${p.store(6, `(call $proxy_increment_metric ${id(0)} (i64.const 2))`)}
    ${p.store(7, `(call $proxy_record_metric ${id(0)} (i64.const 5))`)}
    ${p.store(8, `(call $proxy_increment_metric ${id(1)} (i64.const 3))`)}
    ${p.store(9, `(call $proxy_increment_metric ${id(1)} (i64.const -1))`)}
    ${p.store(10, `(call $proxy_get_metric ${id(2)} (i32.const 500))`)}
    ${p.store(11, `(call $proxy_increment_metric ${id(2)} (i64.const 1))`)}
    ${p.store(12, `(call $proxy_record_metric ${id(2)} (i64.const 42))`)}
    ${p.store(13, `(call $proxy_get_metric (i32.const 44) (i32.const 500))`)}
    ${p.store(14, `(call $proxy_define_metric (i32.const 3) ${p.s("x")} (i32.const 500))`)}
    ${p.store(15, `(call $proxy_get_metric ${id(3)} (i32.const 504))`)}
    ${p.store(16, `(call $proxy_increment_metric ${id(1)} (i64.const 0))`)}
    (i32.const 1)`);
  return p.build();
}

test("§5.1 ids per VM with the type in the low 2 bits; redefinition gives a new id for the same stat", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: metricProbe() }) as PluginHandleImpl;
  const ids = [0, 1, 2, 3].map((i) => h.vm(0).mem.dv.getUint32(400 + 4 * i, true));
  assert.deepEqual(ids, [4, 5, 6, 8]);
  assert.deepEqual([0, 1, 2, 3].map((i) => slot(h, 0, i)), [0, 0, 0, 0]);
});

test("§5.2 per-type rules: increment ≤0 on a counter, histogram get/increment = BadArgument; record on a counter adds", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: metricProbe() }) as PluginHandleImpl;
  assert.equal(slot(h, 0, 4), 2, "increment(0) on counter");
  assert.equal(slot(h, 0, 5), 2, "increment(-1) on counter");
  assert.equal(slot(h, 0, 6), 0);
  assert.equal(slot(h, 0, 7), 0);
  assert.equal(slot(h, 0, 8), 0);
  assert.equal(slot(h, 0, 9), 0, "gauge: negative delta subtracts");
  assert.equal(slot(h, 0, 10), 2, "get on histogram");
  assert.equal(slot(h, 0, 11), 2, "increment on histogram");
  assert.equal(slot(h, 0, 12), 0);
  assert.equal(slot(h, 0, 13), 1, "unknown counter id → NotFound");
  assert.equal(slot(h, 0, 14), 2, "type > 2");
  assert.equal(slot(h, 0, 15), 0);
  assert.equal(slot(h, 0, 16), 0, "increment(0) on a gauge is allowed");
  assert.equal(h.vm(0).mem.dv.getBigUint64(504, true), 21n, "(2 + 5) × 3 VMs (canary, main, worker) on one stat");
});

test("§5.1 one stat per name shared by all VMs (canary included), wasmcustom. prefix, exists from define time", () => {
  const proc = new EnvoyProcess({ concurrency: 2 });
  proc.addPlugin({ wasm: metricProbe() });
  assert.equal(proc.stats.get("wasmcustom.t.requests"), 28, "4 VMs × (2 + 5)");
  assert.equal(proc.stats.get("wasmcustom.t.active"), 8, "4 VMs × (3 − 1)");
  assert.deepEqual(proc.stats.samples("wasmcustom.t.latency"), [42, 42, 42, 42]);
  assert.equal(proc.stats.get("t.requests"), undefined);
  assert.match(proc.stats.renderText(), /^wasmcustom\.t\.requests: 28$/m);
});

test("§5.3 Prometheus: wasmcustom stripped, sanitised, stats_tags group 1 removed and group 2 the value, default tags", () => {
  const p = new Probe();
  const d = (t: number, n: string) => `(drop (call $proxy_define_metric (i32.const ${t}) ${p.s(n)} (i32.const 600)))
    (drop (call $proxy_record_metric (i32.load (i32.const 600)) (i64.const 3)))`;
  p.on("proxy_on_configure", `${d(0, "ws.rejected_total.reason.pod_full")} ${d(0, "foo_rq_200")} ${d(1, "ws.active")} ${d(0, "9bad")} (i32.const 1)`);
  const proc = new EnvoyProcess({ concurrency: 1,
    statsTags: [{ tagName: "reason", regex: "^wasmcustom\\.ws\\.\\w+(\\.reason\\.(\\w+))$" }] });
  proc.addPlugin({ wasm: p.build() });
  const prom = proc.stats.renderPrometheus();
  assert.match(prom, /^# TYPE ws_rejected_total counter\nws_rejected_total\{reason="pod_full"\} 9$/m);
  assert.match(prom, /^foo_rq\{envoy_response_code="200"\} 9$/m);
  assert.match(prom, /^# TYPE ws_active gauge\nws_active 3$/m);
  assert.doesNotMatch(prom, /9bad/);
  assert.match(prom, /^envoy_wasm_envoy_wasm_runtime_v8_active 3$/m);
});

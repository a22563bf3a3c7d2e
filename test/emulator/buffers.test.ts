import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, type PluginHandleImpl } from "./host/index.ts";
import { Probe } from "./probes/build.ts";
import { conn, GET, scratch, slot } from "./probes/helpers.ts";

function setBody(start: number, len: number, data: string) {
  const p = new Probe();
  p.on("proxy_on_request_body", `${p.store(0, `(call $proxy_set_buffer_bytes (i32.const 0) (i32.const ${start}) (i32.const ${len}) ${p.s(data)})`)} (i32.const 0)`);
  p.on("proxy_on_request_headers", `${p.store(1, `(call $proxy_set_buffer_bytes (i32.const 0) (i32.const 0) (i32.const 0) ${p.s("x")})`)} (i32.const 0)`);
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: p.build() }) as PluginHandleImpl;
  const s = h.newStream(0, conn());
  s.decodeHeaders(GET, false);
  const r = s.decodeData(Buffer.from("hello"), false);
  return { h, out: r.kind === "continue" ? Buffer.from(r.data!).toString() : r.kind };
}

test("§8.5 set_buffer_bytes: prepend, replace prefix, replace all, append; middle → BadArgument; outside → BadArgument", () => {
  assert.equal(setBody(0, 0, "ab").out, "abhello");
  assert.equal(setBody(0, 2, "J").out, "Jllo");
  assert.equal(setBody(0, 99, "new").out, "new");
  assert.equal(setBody(5, 0, "!").out, "hello!");
  const mid = setBody(2, 1, "x");
  assert.equal(slot(mid.h, 0, 0), 2);
  assert.equal(mid.out, "hello");
  assert.equal(slot(mid.h, 0, 1), 2, "no live body in on_request_headers");
});

test("§1.3 get_buffer_bytes clips to the buffer; zero length writes (0,0); body empty outside its callback", () => {
  const p = new Probe();
  p.on("proxy_on_request_body", `${p.store(0, "(call $proxy_get_buffer_bytes (i32.const 0) (i32.const 1) (i32.const 100) (i32.const 128) (i32.const 132))")} (i32.const 0)`);
  p.on("proxy_on_response_headers", `${p.store(1, "(call $proxy_get_buffer_status (i32.const 0) (i32.const 140) (i32.const 144))")}
    ${p.store(2, "(i32.load (i32.const 140))")} ${p.store(3, "(call $proxy_get_buffer_bytes (i32.const 9) (i32.const 0) (i32.const 1) (i32.const 128) (i32.const 132))")}
    ${p.store(4, "(call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (i32.const 1) (i32.const 128) (i32.const 132))")} (i32.const 0)`);
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: p.build() }) as PluginHandleImpl;
  const s = h.newStream(0, conn());
  s.decodeHeaders(GET, false);
  s.decodeData(Buffer.from("hello"), true);
  assert.equal(slot(h, 0, 0), 0);
  assert.equal(Buffer.from(scratch(h, 0)).toString(), "ello");
  s.encodeHeaders([[":status", "200"]], true);
  assert.deepEqual([slot(h, 0, 1), slot(h, 0, 2), slot(h, 0, 3), slot(h, 0, 4)], [0, 0, 2, 1]);
});

test("§2.2 plugin configuration (buffer 7) readable in on_configure, not in on_vm_start; VM configuration any time", () => {
  const p = new Probe();
  const get = (i: number, t: number) => p.store(i, `(call $proxy_get_buffer_bytes (i32.const ${t}) (i32.const 0) (i32.const 100) (i32.const 128) (i32.const 132))`);
  p.on("proxy_on_vm_start", `${get(0, 7)} ${get(1, 6)} (i32.const 1)`);
  p.on("proxy_on_configure", `${get(2, 7)} (i32.const 1)`);
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: p.build(), configuration: '{"a":1}', vmConfiguration: "vmc" }) as PluginHandleImpl;
  assert.deepEqual([slot(h, 0, 0), slot(h, 0, 1), slot(h, 0, 2)], [1, 0, 0]);
  assert.equal(Buffer.from(scratch(h, 0)).toString(), '{"a":1}');
});

test("§1.3 proxy_log: level > 5 BadArgument, filtered by the wasm logger level, Envoy's prefix format", () => {
  const p = new Probe();
  p.on("proxy_on_configure", `${p.log("dbg", 1)} ${p.log("root msg", 3)} ${p.store(0, `(call $proxy_log (i32.const 6) ${p.s("x")})`)} (i32.const 1)`);
  p.on("proxy_on_request_headers", `${p.log("stream msg", 4)} (i32.const 0)`);
  const proc = new EnvoyProcess({ concurrency: 1, logLevel: "info" });
  const h = proc.addPlugin({ wasm: p.build(), name: "plug", rootId: "root", vmId: "vm" }) as PluginHandleImpl;
  h.newStream(0, conn()).decodeHeaders(GET, true);
  const w = proc.logs.filter((l) => l.vm === "worker-0");
  assert.deepEqual(w.map((l) => [l.level, l.line]), [["warn", "wasm log root vm: root msg"], ["error", "wasm log plug root vm: stream msg"]]);
  assert.equal(slot(h, 0, 0), 2);
});

test("§10 host call counting and memory size per VM", () => {
  const p = new Probe();
  p.on("proxy_on_request_headers", `${p.log("x")} (i32.const 0)`);
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: p.build() }) as PluginHandleImpl;
  const c = h.hostCalls(0);
  c.reset();
  for (let i = 0; i < 3; i++) h.newStream(0, conn()).decodeHeaders(GET, true);
  assert.equal(c.get("proxy_log"), 3);
  assert.deepEqual(c.all(), { proxy_log: 3 });
  assert.equal(h.memoryBytes(0), 2 * 65536);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, PluginLoadError } from "./host/index.ts";
import { Probe, RES } from "./probes/build.ts";
import { messages, slot, start } from "./probes/helpers.ts";

const load = (wasm: Uint8Array, envoyVersion: "1.30" | "1.32" | "1.33" | "1.34" | "1.35" | "1.36" = "1.36") =>
  new EnvoyProcess({ envoyVersion, concurrency: 1 }).addPlugin({ wasm });

const rejects = (wasm: Uint8Array, msg: string | RegExp, v?: "1.30" | "1.32" | "1.33" | "1.34" | "1.35" | "1.36") =>
  assert.throws(() => load(wasm, v), (e: unknown) => {
    assert.ok(e instanceof PluginLoadError, String(e));
    if (typeof msg === "string") assert.equal((e as Error).message, msg);
    else assert.match((e as Error).message, msg);
    return true;
  });

test("§1.2 missing import env.abort fails with Envoy's text", () => {
  const p = new Probe({ raw: `(import "env" "abort" (func $abort (param i32 i32 i32 i32)))` });
  rejects(p.build(), "Failed to load Wasm module due to a missing import: env.abort");
});

test("§1.2 import signature mismatch message", () => {
  const p = new Probe({ raw: `(import "env" "proxy_log" (func $bad (param i32 i32) (result i32)))` });
  rejects(p.build(), "Failed to load Wasm module due to an import type mismatch: env.proxy_log, want: i32 i32 -> i32, but host exports: i32 i32 i32 -> i32");
});

test("§1.2 imported globals are rejected", () => {
  const p = new Probe({ raw: `(import "env" "g" (global $g i32))` });
  rejects(p.build(), "Failed to load Wasm module due to a missing import: env.g");
});

test("§1.1 ABI: missing marker; first export in order wins; 0.2.0 cannot import proxy_get_log_level", () => {
  rejects(new Probe({ abiExports: [] }).build(), "Missing or unknown Proxy-Wasm ABI version");
  // 0.1.0 first → 2-parameter on_request_headers is the expected signature
  const p = new Probe({ abi: "0_1_0", abiExports: ["proxy_abi_version_0_1_0", "proxy_abi_version_0_2_0"] });
  p.on("proxy_on_request_headers", "(i32.const 0)");
  assert.ok(load(p.build()));
  const q = new Probe({ abiExports: ["proxy_abi_version_0_2_0", "proxy_abi_version_0_1_0"], raw: `(import "env" "proxy_get_log_level" (func $gl (param i32) (result i32)))` });
  rejects(q.build(), "Failed to load Wasm module due to a missing import: env.proxy_get_log_level");
  const r = new Probe({ abi: "0_2_1", raw: `(import "env" "proxy_get_log_level" (func $gl (param i32) (result i32)))` });
  assert.ok(load(r.build()));
});

test("§1.2 bad export signature and missing allocator", () => {
  const p = new Probe();
  p.on("proxy_on_tick", "");
  const wat = p.wat().replace('(func $proxy_on_tick (export "proxy_on_tick") (param $p0 i32)', '(func $proxy_on_tick (export "proxy_on_tick") (param $p0 i32) (param $x i32)');
  const { compileWat } = awaitImport();
  rejects(compileWat(wat), "Bad function signature for: proxy_on_tick");
  rejects(new Probe({ malloc: false }).build(), "Wasm module is missing malloc function.");
});

import * as build from "./probes/build.ts";
function awaitImport() {
  return build;
}

test("§1.5 malloc is preferred over proxy_on_memory_allocate", () => {
  const p = new Probe({ onMemoryAllocate: true });
  p.on("proxy_on_configure", `(drop (call $proxy_get_property ${p.s("plugin_name")} (i32.const 128) (i32.const 132))) (i32.const 1)`);
  const { h } = start(p.build());
  assert.ok(slotAddr(h, 0) >= 1, "malloc used");
  assert.equal(slotAddr(h, 4), 0, "proxy_on_memory_allocate unused");
});
function slotAddr(h: Parameters<typeof slot>[0], addr: number) {
  const mem = h.vm(0).mem;
  mem.refresh();
  return mem.dv.getUint32(addr, true);
}

test("§1.4 WASI under both namespaces; 1.33+ extras; proc_exit returns", () => {
  const raw = `(import "wasi_snapshot_preview1" "fd_write" (func $fw (param i32 i32 i32 i32) (result i32)))
    (import "wasi_unstable" "sched_yield" (func $sy (result i32)))
    (import "wasi_unstable" "proc_exit" (func $pe (param i32)))`;
  const p = new Probe({ raw });
  p.on("proxy_on_configure", `(call $pe (i32.const 3)) ${p.store(0, "(i32.const 77)")} ${p.store(1, "(call $sy)")} (i32.const 1)`);
  rejects(p.build(), "Failed to load Wasm module due to a missing import: wasi_unstable.sched_yield", "1.32");
  const { h } = start(p.build(), { envoyVersion: "1.33" });
  assert.equal(slot(h, 0, 0), 77, "execution continued after proc_exit");
  assert.equal(slot(h, 0, 1), 0);
  const q = new Probe({ raw: `(import "wasi_unstable" "clock_res_get" (func $c (param i32 i32) (result i32)))` });
  rejects(q.build(), /missing import: wasi_unstable.clock_res_get/);
});

test("§1.4 fd_write: fd1 → info, fd2 → error, one line per call, trailing newline stripped", () => {
  const p = new Probe({ raw: `(import "wasi_unstable" "fd_write" (func $fw (param i32 i32 i32 i32) (result i32)))` });
  const [a, al] = p.bytes("out line\n");
  const [b, bl] = p.bytes("err");
  p.on("proxy_on_configure", `(i32.store (i32.const 200) (i32.const ${a})) (i32.store (i32.const 204) (i32.const ${al}))
    (i32.store (i32.const 208) (i32.const ${b})) (i32.store (i32.const 212) (i32.const ${bl}))
    ${p.store(0, "(call $fw (i32.const 1) (i32.const 200) (i32.const 1) (i32.const 220))")}
    ${p.store(1, "(call $fw (i32.const 2) (i32.const 208) (i32.const 1) (i32.const 220))")}
    ${p.store(2, "(call $fw (i32.const 5) (i32.const 208) (i32.const 1) (i32.const 220))")} (i32.const 1)`);
  const { proc, h } = start(p.build(), { concurrency: 1 });
  const w0 = proc.logs.filter((l) => l.vm === "worker-0");
  assert.deepEqual(w0.map((l) => [l.level, l.message]), [["info", "out line"], ["error", "err"]]);
  assert.equal(slot(h, 0, 2), 8, "other fd → BADF");
});

test("§1.2 restricted mode during _initialize: proxy_log allowed, others trap (load failure)", () => {
  const p = new Probe();
  p.on("_initialize", p.log("init ok"));
  const { proc } = start(p.build(), { concurrency: 1 });
  assert.equal(messages(proc).filter((m) => m === "init ok").length, 4, "base, canary, main, worker");
  const q = new Probe();
  q.on("_initialize", `(drop (call $proxy_define_metric (i32.const 0) ${q.s("x")} (i32.const 200)))`);
  rejects(q.build(), /restricted_callback/);
});

test("§0.2 fd_fdstat_get during _initialize allowed only from 1.35", () => {
  const p = new Probe({ raw: `(import "wasi_unstable" "fd_fdstat_get" (func $fs (param i32 i32) (result i32)))` });
  p.on("_initialize", `(drop (call $fs (i32.const 1) (i32.const 300)))`);
  rejects(p.build(), /restricted_callback/, "1.34");
  assert.ok(load(p.build(), "1.35"));
});

test("§1.2 hostcall from the wasm start section is a fatal load error", () => {
  const p0 = new Probe();
  const p = new Probe({ raw: `(func $st ${p0.log("top-level")}) (start $st)` });
  (p as unknown as { segs: string[] }).segs = (p0 as unknown as { segs: string[] }).segs;
  rejects(p.build(), /start function/);
});

test("§1.5 allocator runs restricted: a forbidden hostcall inside malloc fails the VM, the hostcall returns InvalidMemoryAccess", () => {
  const p = new Probe({ malloc: false, raw: `(func $malloc (export "malloc") (param $p0 i32) (result i32)
      (drop (call $proxy_set_tick_period_milliseconds (i32.const 5))) (i32.const 4096))` });
  p.on("proxy_on_request_headers", `${p.store(0, `(call $proxy_get_property ${p.s("plugin_name")} (i32.const 128) (i32.const 132))`)} (i32.const 0)`);
  const { h } = start(p.build(), { concurrency: 1 });
  const s = h.newStream(0, { id: 1, sourceAddress: "1.1.1.1:1", destinationAddress: "2.2.2.2:2", protocol: "HTTP/1.1" });
  const r = s.decodeHeaders([[":path", "/"]], true);
  assert.equal(slot(h, 0, 0), 6);
  assert.ok(h.vmFailed(0));
  assert.equal(r.kind, "localReply");
  void RES;
});

test("§2.1 every proxy_on_* export is optional: a module without body callbacks is never entered for body chunks", () => {
  const p = new Probe()
    .on("proxy_on_context_create", "")
    .on("proxy_on_request_headers", "(i32.const 0)")
    .on("proxy_on_response_headers", "(i32.const 0)")
    .on("proxy_on_log", "")
    .on("proxy_on_done", "(i32.const 1)")
    .on("proxy_on_delete", "");
  const { proc, h } = start(p.build(), { concurrency: 1 });
  try {
    const s = h.newStream(0, { id: 1, sourceAddress: "10.0.0.1:1", destinationAddress: "10.0.0.2:80", protocol: "HTTP/1.1" });
    assert.equal(s.decodeHeaders([[":method", "POST"], [":path", "/"], [":authority", "a"], [":scheme", "http"], ["content-length", "3"]], false).kind, "continue");
    assert.equal(s.decodeData(new Uint8Array([1, 2, 3]), true).kind, "continue");
    assert.equal(s.encodeHeaders([[":status", "200"]], false).kind, "continue");
    assert.equal(s.encodeData(new Uint8Array([4]), false).kind, "continue");
    assert.equal(s.encodeData(new Uint8Array(0), true).kind, "continue");
    s.complete();
    const calls = h.entered([0]);
    for (const k of ["proxy_on_vm_start", "proxy_on_configure"]) delete calls[k];
    assert.deepEqual(calls, { proxy_on_context_create: 2, proxy_on_request_headers: 1, proxy_on_response_headers: 1,
      proxy_on_log: 1, proxy_on_done: 1, proxy_on_delete: 1 });
    assert.equal(h.vmFailed(0), false);
  } finally {
    proc.close();
  }
});

test("§2.1/§2.4 no proxy_on_log and no proxy_on_done: a stream ends with proxy_on_delete alone (also one that never " +
  "saw headers, whose context the log still creates); a root is deleted at plugin removal as if on_done said true", () => {
  const p = new Probe();
  p.on("proxy_on_context_create", p.log("create"))
    .on("proxy_on_request_headers", `${p.log("headers")} (i32.const 0)`)
    .on("proxy_on_delete", p.log("delete"));
  const { proc, h } = start(p.build(), { concurrency: 1 });
  try {
    const conn = { id: 1, sourceAddress: "10.0.0.1:1", destinationAddress: "10.0.0.2:80", protocol: "HTTP/1.1" as const };
    proc.logs.length = 0;
    const s = h.newStream(0, conn);
    assert.equal(s.decodeHeaders([[":method", "GET"], [":path", "/"], [":authority", "a"], [":scheme", "http"]], true).kind, "continue");
    s.complete();
    assert.deepEqual(messages(proc), ["create", "headers", "delete"]);
    proc.logs.length = 0;
    h.newStream(0, conn).complete(); // no header callback (another filter answered first, or a SkipFilter wrapper)
    assert.deepEqual(messages(proc), ["create", "delete"], "Context::log creates the context, then only on_delete");
    proc.logs.length = 0;
    h.remove();
    assert.equal(messages(proc).filter((m) => m === "delete").length, 2, "the worker's and the main thread's roots");
    assert.equal(h.vmFailed(0), false);
  } finally {
    proc.close();
  }
});

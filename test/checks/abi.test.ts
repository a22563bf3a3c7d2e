// tools/checks/check-abi.mjs: synthetic modules that Envoy 1.30–1.36 would refuse each fail with their own
// message; a minimal good module and the release module pass.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { goodSpec, wasmModule } from "./wasm-bytes.ts";
import type { ModuleSpec } from "./wasm-bytes.ts";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const CLI = join(ROOT, "tools/checks/check-abi.mjs");
const DIR = mkdtempSync(join(tmpdir(), "wsg-check-abi-"));
after(() => rmSync(DIR, { recursive: true, force: true }));

let n = 0;
function run(spec: ModuleSpec | Uint8Array, ...args: string[]): { code: number; out: string } {
  const file = join(DIR, `m${n++}.wasm`);
  writeFileSync(file, spec instanceof Uint8Array ? spec : wasmModule(spec));
  const r = spawnSync(process.execPath, [CLI, ...args, file], { encoding: "utf8" });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** goodSpec() with some exports/imports changed. */
function variant(change: (s: Required<ModuleSpec>) => void): Required<ModuleSpec> {
  const s = goodSpec();
  change(s);
  return s;
}

function fails(r: { code: number; out: string }, message: RegExp): void {
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /: 1 error, /, r.out);
  assert.match(r.out, message, r.out);
}

test("a minimal ABI 0.2.1 module passes with a one-line summary", () => {
  const r = run(goodSpec());
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /^\S+\.wasm: OK \(ABI 0\.2\.1, 1 imports, 5 exports, \d+ bytes\)\n$/);
});

test("missing allocator", () => {
  fails(run(variant((s) => { s.exports = s.exports.filter((e) => e.name !== "malloc"); })),
    /error: no allocator export \(malloc or proxy_on_memory_allocate\): "Wasm module is missing malloc function\."/);
});

test("proxy_on_memory_allocate alone is an allocator; with the wrong signature it fails", () => {
  const ok = run(variant((s) => { s.exports[1] = { name: "proxy_on_memory_allocate", sig: "(i32)->i32" }; }));
  assert.equal(ok.code, 0, ok.out);
  fails(run(variant((s) => { s.exports[1] = { name: "proxy_on_memory_allocate", sig: "(i64)->i32" }; })),
    /Bad function signature for: proxy_on_memory_allocate \(want \(i32\)->i32, got \(i64\)->i32\)/);
});

test("wrong import signature (proxy_increment_metric takes an i64 delta)", () => {
  fails(run(variant((s) => { s.imports.push({ module: "env", name: "proxy_increment_metric", sig: "(i32,i32)->i32" }); })),
    /env\.proxy_increment_metric: import type mismatch, want \(i32,i64\)->i32 \(Envoy\), got \(i32,i32\)->i32 \(module\)/);
});

test("wrong callback signature (ABI 0.2 on_request_headers has three parameters)", () => {
  fails(run(variant((s) => { s.exports[3] = { name: "proxy_on_request_headers", sig: "(i32,i32)->i32" }; })),
    /Bad function signature for: proxy_on_request_headers \(want \(i32,i32,i32\)->i32, got \(i32,i32\)->i32\)/);
});

test("env.abort (AssemblyScript's default abort) is a missing import, with the fix", () => {
  fails(run(variant((s) => { s.imports.push({ module: "env", name: "abort", sig: "(i32,i32,i32,i32)->()" }); })),
    /env\.abort: Envoy does not provide it; .*--use abort=/);
});

test("env.seed and env.trace are missing imports too", () => {
  fails(run(variant((s) => { s.imports.push({ module: "env", name: "seed", sig: "()->f64" }); })), /env\.seed: Envoy does not provide it/);
  fails(run(variant((s) => { s.imports.push({ module: "env", name: "trace", sig: "(i32,i32,f64,f64,f64,f64,f64)->()" }); })),
    /env\.trace: Envoy does not provide it/);
});

test("imported global", () => {
  fails(run(variant((s) => { s.imports.push({ module: "env", name: "__stack_pointer", global: "i32" }); })),
    /imported global env\.__stack_pointer/);
});

test("no ABI version export", () => {
  fails(run(variant((s) => { s.exports.shift(); })), /no ABI version export .*"Missing or unknown Proxy-Wasm ABI version"/);
});

test("the first ABI export in export order wins", () => {
  const r = run(variant((s) => {
    s.exports.splice(1, 0, { name: "proxy_abi_version_0_1_0", sig: "()->()" });
  }));
  // 0.2.1 comes first, so on_request_headers keeps its 0.2 signature and the module passes.
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /ABI 0\.2\.1/);
});

test("an ABI 0.2.0 module importing proxy_get_log_level (0.2.1 only)", () => {
  fails(run(variant((s) => {
    s.exports[0] = { name: "proxy_abi_version_0_2_0", sig: "()->()" };
    s.imports.push({ module: "env", name: "proxy_get_log_level", sig: "(i32)->i32" });
  })), /env\.proxy_get_log_level: Envoy registers it only for ABI 0\.2\.1, this module is ABI 0\.2\.0/);
});

test("a 1.33-only WASI import: warning with --envoy 1.30, note with --envoy 1.33", () => {
  const spec = variant((s) => { s.imports.push({ module: "wasi_snapshot_preview1", name: "sched_yield", sig: "()->i32" }); });
  const old = run(spec, "--envoy", "1.30");
  assert.equal(old.code, 0, old.out);
  assert.match(old.out, /OK with 1 warning/);
  assert.match(old.out, /warning: wasi_snapshot_preview1\.sched_yield needs Envoy 1\.33\+; with --envoy 1\.30 it fails to link on Envoy 1\.30–1\.32/);
  const recent = run(spec, "--envoy", "1.33");
  assert.equal(recent.code, 0, recent.out);
  assert.match(recent.out, /: OK \(ABI/);
  assert.match(recent.out, /note: wasi_snapshot_preview1\.sched_yield needs Envoy 1\.33\+/);
});

test("a WASI function Envoy never provides", () => {
  fails(run(variant((s) => { s.imports.push({ module: "wasi_snapshot_preview1", name: "sock_accept", sig: "(i32,i32,i32)->i32" }); })),
    /wasi_snapshot_preview1\.sock_accept is not a WASI function Envoy 1\.30–1\.36 provides/);
});

test("no memory export", () => {
  fails(run(variant((s) => { s.memory = false; })), /no exported memory/);
});

test("not a wasm module; unknown option; missing file", () => {
  fails(run(new Uint8Array([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0])), /not a valid WebAssembly module/);
  assert.equal(run(goodSpec(), "--envoy", "1.29").code, 2);
  const r = spawnSync(process.execPath, [CLI, join(DIR, "absent.wasm")], { encoding: "utf8" });
  assert.equal(r.status, 2);
});

test("the release module passes (make build first)", () => {
  const r = spawnSync(process.execPath, [CLI, join(ROOT, "build/ws-governor.wasm")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^\S+ws-governor\.wasm: OK \(ABI 0\.2\.1, \d+ imports, \d+ exports, \d+ bytes\)\n$/);
});

test("local-module.mjs: the lean module has every local export but the body callbacks; a module with them fails", () => {
  const LOCAL = join(ROOT, "tools/checks/local-module.mjs");
  const [local, fleet, lean] = ["ws-governor", "ws-governor-fleet", "ws-governor-lean"].map((n) => join(ROOT, `build/${n}.wasm`));
  const ok = spawnSync(process.execPath, [LOCAL, local, fleet, lean], { encoding: "utf8" });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /ws-governor-lean\.wasm has no body callbacks and no HTTP calls/);
  // the local module in the lean module's place: it has both body callbacks
  const bad = spawnSync(process.execPath, [LOCAL, local, fleet, local], { encoding: "utf8" });
  assert.equal(bad.status, 1, bad.stdout + bad.stderr);
  assert.match(bad.stderr, /ws-governor\.wasm exports proxy_on_request_body \(the lean module must have no body callbacks\)/);
  assert.match(bad.stderr, /ws-governor\.wasm exports proxy_on_response_body/);
  // the fleet module there: it also calls out over HTTP
  const fl = spawnSync(process.execPath, [LOCAL, local, fleet, fleet], { encoding: "utf8" });
  assert.equal(fl.status, 1);
  assert.match(fl.stderr, /ws-governor-fleet\.wasm imports proxy_http_call \(fleet code in the lean module\)/);
});

// The modules compared in one run: the release filter, an empty pass-through (WAT), a naive no-CAS counter (WAT) and
// the SDK's own dispatcher (AssemblyScript, compiled on demand and cached under build/bench/).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import binaryen from "binaryen";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const ARMS = join(ROOT, "bench/arms");
const CACHE = join(ROOT, "build/bench");
export const FILTER_WASM = join(ROOT, "build/ws-governor.wasm");
export const FLEET_WASM = join(ROOT, "build/ws-governor-fleet.wasm");
export const LEAN_WASM = join(ROOT, "build/ws-governor-lean.wasm");

export function watToWasm(wat: string): Uint8Array {
  const m = binaryen.parseText(wat);
  try {
    if (!m.validate()) throw new Error("invalid bench WAT module");
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

export function filterWasm(): Uint8Array {
  if (!existsSync(FILTER_WASM)) throw new Error(`${FILTER_WASM} missing: run make build`);
  return readFileSync(FILTER_WASM);
}

export function leanWasm(): Uint8Array {
  if (!existsSync(LEAN_WASM)) throw new Error(`${LEAN_WASM} missing: run make build`);
  return readFileSync(LEAN_WASM);
}

export function fleetWasm(): Uint8Array {
  if (!existsSync(FLEET_WASM)) throw new Error(`${FLEET_WASM} missing: run make build`);
  return readFileSync(FLEET_WASM);
}

export function emptyWasm(): Uint8Array {
  return watToWasm(readFileSync(join(ARMS, "empty.wat"), "utf8"));
}

/** The filter's 9 host calls per lifecycle with no guest work (arms/calls_only.wat). */
export function callsOnlyWasm(): Uint8Array {
  return watToWasm(readFileSync(join(ARMS, "calls_only.wat"), "utf8"));
}

/** P0: a plain request's header reads with no guest work (arms/plain_calls.wat): `upgrade`, and `:path` when `path`. */
export function plainCallsWasm(path: boolean): Uint8Array {
  return watToWasm(readFileSync(join(ARMS, "plain_calls.wat"), "utf8").replaceAll("__PATH__", path ? "1" : "0"));
}

export function naiveWasm(cap: number): Uint8Array {
  return watToWasm(readFileSync(join(ARMS, "naive_counter.wat"), "utf8").replaceAll("__CAP__", String(cap >>> 0)));
}

export interface SdkArm { wasm: Uint8Array; flags: string; compiled: boolean }

/** The SDK-dispatch arm. `-O3 --runtime half` like the release filter; a smoke run without a cached -O3 build uses a
 *  -O0 build (about 2 s instead of about 15 s). The source has a `.as` extension so the harness typecheck skips it;
 *  it is copied to build/bench/src/*.ts for asc. */
export function sdkWasm(optimized: boolean): SdkArm {
  const src = readFileSync(join(ARMS, "sdk_dispatch.as"), "utf8");
  const ascVersion = JSON.parse(readFileSync(join(ROOT, "node_modules/assemblyscript/package.json"), "utf8")).version;
  const sdkVersion = JSON.parse(readFileSync(join(ROOT, "node_modules/@solo-io/proxy-runtime/package.json"), "utf8")).version;
  const variants = optimized ? ["-O3"] : ["-O3", "-O0"];
  for (const opt of variants) {
    const out = cachePath(src, ascVersion, sdkVersion, opt);
    if (existsSync(out)) return { wasm: readFileSync(out), flags: flagsOf(opt), compiled: false };
  }
  const opt = variants[variants.length - 1];
  const out = cachePath(src, ascVersion, sdkVersion, opt);
  mkdirSync(join(CACHE, "src"), { recursive: true });
  const entry = join(CACHE, "src/sdk_dispatch.ts");
  writeFileSync(entry, src);
  execFileSync(process.execPath, [join(ROOT, "node_modules/assemblyscript/bin/asc"), entry, opt, "--runtime", "half",
    "--use", "abort=abort_proc_exit", "-b", out + ".tmp"], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
  copyFileSync(out + ".tmp", out);
  return { wasm: readFileSync(out), flags: flagsOf(opt), compiled: true };
}

function flagsOf(opt: string): string {
  return `${opt} --runtime half --use abort=abort_proc_exit`;
}
function cachePath(src: string, asc: string, sdk: string, opt: string): string {
  const h = createHash("sha256").update(src).update(asc).update(sdk).update(opt).digest("hex").slice(0, 12);
  return join(CACHE, `sdk_dispatch${opt}-${h}.wasm`);
}

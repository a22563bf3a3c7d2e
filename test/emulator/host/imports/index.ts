// Link step (cpp-host V8::link): strict name and signature matching against the host table of this Envoy version,
// imported globals rejected, imported memory/table created by the host. Each host function is wrapped with the
// VM's hostcall prologue (counting, restricted mode, test trap).
import { PluginLoadError } from "../api.ts";
import { printValTypes, sigEquals, type ParsedModule } from "../wasm_parse.ts";
import type { Abi } from "../types.ts";
import type { Vm } from "../vm.ts";
import { envStreamImports } from "./env.ts";
import { envMiscImports } from "./env_misc.ts";
import { envHttpImports } from "./env_http.ts";
import { hostSignatures, expectedExport } from "./table.ts";
import { wasiImports } from "./wasi.ts";

/** throws PluginLoadError with Envoy's text for the first bad import (§1.2 rules 1–3) */
export function linkCheck(parsed: ParsedModule, minor: number, abi: Abi): void {
  const table = hostSignatures(minor, abi);
  for (const im of parsed.imports) {
    const full = `${im.module}.${im.name}`;
    if (im.kind === "global") throw new PluginLoadError(`Failed to load Wasm module due to a missing import: ${full}`);
    if (im.kind !== "func") continue;
    const host = table.get(full);
    if (!host) throw new PluginLoadError(`Failed to load Wasm module due to a missing import: ${full}`);
    if (!sigEquals(im.sig!, host)) {
      throw new PluginLoadError(`Failed to load Wasm module due to an import type mismatch: ${full}, want: ` +
        `${printValTypes(im.sig!.params)} -> ${printValTypes(im.sig!.results)}, but host exports: ` +
        `${printValTypes(host.params)} -> ${printValTypes(host.results)}`);
    }
  }
}

/** §1.2 rules 4–5: looked-up exports must have the expected signature; an allocator must exist (malloc first) */
export function exportCheck(parsed: ParsedModule, abi: Abi): "malloc" | "proxy_on_memory_allocate" {
  for (const e of parsed.exports) {
    if (e.kind !== "func") continue;
    const want = expectedExport(e.name, abi);
    if (want && !sigEquals(want, e.sig!)) throw new PluginLoadError(`Bad function signature for: ${e.name}`);
  }
  const names = new Set(parsed.exports.filter((e) => e.kind === "func").map((e) => e.name));
  if (names.has("malloc")) return "malloc";
  if (names.has("proxy_on_memory_allocate")) return "proxy_on_memory_allocate";
  throw new PluginLoadError("Wasm module is missing malloc function.");
}

export function buildImports(vm: Vm): WebAssembly.Imports {
  const env = { ...envStreamImports(vm), ...envMiscImports(vm), ...envHttpImports(vm) } as Record<string, (...a: never[]) => unknown>;
  const wasi = wasiImports(vm, vm.group.environment) as Record<string, (...a: never[]) => unknown>;
  const out: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const im of vm.code.parsed.imports) {
    const mod = (out[im.module] ??= {});
    if (im.kind === "memory") {
      const l = im.limits!;
      const m = new WebAssembly.Memory({ initial: l.min, maximum: l.max, shared: l.shared } as WebAssembly.MemoryDescriptor);
      vm.importedMemory = m;
      mod[im.name] = m;
      continue;
    }
    if (im.kind === "table") {
      mod[im.name] = new WebAssembly.Table({ initial: im.limits!.min, maximum: im.limits!.max, element: "anyfunc" });
      continue;
    }
    if (im.kind !== "func") continue;
    const impl = im.module === "env" ? env[im.name] : wasi[im.name];
    if (!impl) throw new PluginLoadError(`Failed to load Wasm module due to a missing import: ${im.module}.${im.name}`);
    mod[im.name] = wrap(vm, im.name, impl as unknown as Impl);
  }
  return out;
}

type Impl = (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown, g: unknown, h: unknown,
  i: unknown, j: unknown, k: unknown, l: unknown) => unknown;

function wrap(vm: Vm, name: string, impl: Impl) {
  return function (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown, g: unknown, h: unknown,
    i: unknown, j: unknown, k: unknown, l: unknown): unknown {
    vm.enter(name);
    return impl(a, b, c, d, e, f, g, h, i, j, k, l);
  };
}

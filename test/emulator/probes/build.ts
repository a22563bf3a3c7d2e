// Probe modules: tiny hand-written WAT modules compiled with binaryen, so conformance tests make exact hostcalls
// without the product filter. Imports are declared automatically for every `call $proxy_…`/`$wasi_…` used.
import binaryen from "binaryen";
import { expectedExport, hostSignatures } from "../host/imports/table.ts";

export const RES = 256; // tests store results at RES + 4*i
export interface ProbeOptions {
  abi?: "0_1_0" | "0_2_0" | "0_2_1";
  /** raw module fields appended verbatim (extra imports, globals, start, …) */
  raw?: string;
  /** false: no malloc export */
  malloc?: boolean;
  /** export proxy_on_memory_allocate too (its calls counted at address 4) */
  onMemoryAllocate?: boolean;
  /** explicit export order for the ABI markers */
  abiExports?: string[];
}

export class Probe {
  private segs: string[] = [];
  private next = 1024;
  private funcs = new Map<string, string>();
  constructor(readonly opts: ProbeOptions = {}) {}

  /** place bytes in a data segment; returns [ptr, len] */
  bytes(b: Uint8Array | string): [number, number] {
    const data = typeof b === "string" ? Buffer.from(b, "utf8") : Buffer.from(b);
    const ptr = this.next;
    this.next += data.length + 8 - (data.length % 8);
    const esc = [...data].map((x) => "\\" + x.toString(16).padStart(2, "0")).join("");
    this.segs.push(`(data (i32.const ${ptr}) "${esc}")`);
    return [ptr, data.length];
  }
  /** `i32.const ptr i32.const len` for a string */
  s(str: string | Uint8Array): string {
    const [p, l] = this.bytes(str);
    return `(i32.const ${p}) (i32.const ${l})`;
  }
  log(msg: string, level = 2): string {
    return `(drop (call $proxy_log (i32.const ${level}) ${this.s(msg)}))`;
  }
  /** store an i32 expression's value at result slot i */
  store(i: number, expr: string): string {
    return `(i32.store (i32.const ${RES + 4 * i}) ${expr})`;
  }
  /** define an exported callback; `body` uses $p0,$p1,… and must leave the result for i32-returning exports */
  on(name: string, body: string): this {
    this.funcs.set(name, body);
    return this;
  }

  wat(): string {
    const abi = this.opts.abi ?? "0_2_0";
    const abiName = abi.replace(/_/g, ".") as "0.1.0" | "0.2.0" | "0.2.1";
    const table = hostSignatures(36, abiName);
    const fields: string[] = [];
    const used = new Set<string>();
    const bodies = [...this.funcs.values()].join("\n") + (this.opts.raw ?? "");
    for (const m of bodies.matchAll(/call \$((?:proxy|wasi|envoy|pthread|emscripten)[A-Za-z0-9_]*)/g)) used.add(m[1]);
    for (const u of used) {
      const isWasi = u.startsWith("wasi_");
      const name = isWasi ? u.slice(5) : u;
      const mod = isWasi ? (u.includes("preview1") ? "wasi_snapshot_preview1" : "wasi_unstable") : "env";
      const sig = table.get(`${isWasi ? "wasi_unstable" : "env"}.${name}`);
      if (!sig) continue; // raw import expected
      const params = sig.params.length ? `(param ${sig.params.join(" ")})` : "";
      const results = sig.results.length ? `(result ${sig.results.join(" ")})` : "";
      fields.push(`(import "${mod}" "${name}" (func $${u} ${params} ${results}))`);
    }
    if (this.opts.raw) fields.push(this.opts.raw);
    fields.push(`(memory $mem 2)`, `(export "memory" (memory $mem))`);
    fields.push(`(global $heap (mut i32) (i32.const 65536))`);
    for (const a of this.opts.abiExports ?? [`proxy_abi_version_${abi}`]) {
      fields.push(`(func $abi_${a} (export "${a}"))`);
    }
    const alloc = (name: string, counter: number) => `(func $${name} (export "${name}") (param $p0 i32) (result i32) (local $r i32)
      (i32.store (i32.const ${counter}) (i32.add (i32.load (i32.const ${counter})) (i32.const 1)))
      (local.set $r (global.get $heap))
      (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $p0)) (i32.const 7)) (i32.const -8)))
      (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
        (drop (memory.grow (i32.add (i32.div_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65536)) (i32.const 1)))))
      (local.get $r))`;
    if (this.opts.malloc !== false) fields.push(alloc("malloc", 0));
    if (this.opts.onMemoryAllocate) fields.push(alloc("proxy_on_memory_allocate", 4));
    const funcs = new Map(this.funcs);
    if (!funcs.has("proxy_on_vm_start")) funcs.set("proxy_on_vm_start", "(i32.const 1)");
    if (!funcs.has("proxy_on_configure")) funcs.set("proxy_on_configure", "(i32.const 1)");
    for (const [name, body] of funcs) {
      const sig = expectedExport(name, abiName) ?? { params: [], results: [] };
      const params = sig.params.map((t, i) => `(param $p${i} ${t})`).join(" ");
      const results = sig.results.length ? `(result ${sig.results.join(" ")})` : "";
      fields.push(`(func $${name} (export "${name}") ${params} ${results}\n${body})`);
    }
    fields.push(...this.segs);
    return `(module\n${fields.join("\n")}\n)`;
  }

  build(): Uint8Array {
    return compileWat(this.wat());
  }
}

export function compileWat(wat: string): Uint8Array {
  const m = binaryen.parseText(wat);
  try {
    if (!m.validate()) throw new Error("invalid probe module:\n" + wat);
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

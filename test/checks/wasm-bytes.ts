// Builds small WebAssembly binaries byte by byte for the check-abi tests: function imports with given
// signatures, imported globals, a memory, and exported functions whose bodies just return zero.

export type Sig = string; // "(i32,i64)->i32", "()->()"

export interface ModuleSpec {
  imports?: { module: string; name: string; sig?: Sig; global?: "i32" }[];
  exports?: { name: string; sig: Sig }[];
  memory?: boolean; // export a memory named "memory" (default true)
}

const VAL: Record<string, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c };
const ZERO: Record<string, number[]> = {
  i32: [0x41, 0x00], i64: [0x42, 0x00], f32: [0x43, 0, 0, 0, 0], f64: [0x44, 0, 0, 0, 0, 0, 0, 0, 0],
};

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
};
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

function parseSig(sig: Sig): { params: string[]; results: string[] } {
  const m = /^\(([^)]*)\)->(\(\)|\w+)$/.exec(sig);
  if (!m) throw new Error(`bad signature ${sig}`);
  const params = m[1] ? m[1].split(",") : [];
  const results = m[2] === "()" ? [] : [m[2]!];
  return { params, results };
}

/** The binary for spec; the engine accepts it (valid function bodies, types deduplicated). */
export function wasmModule(spec: ModuleSpec): Uint8Array {
  const types: string[] = [];
  const typeIndex = (sig: Sig): number => {
    parseSig(sig);
    if (!types.includes(sig)) types.push(sig);
    return types.indexOf(sig);
  };
  const imports = (spec.imports ?? []).map((i) => {
    if (i.global) return [...name(i.module), ...name(i.name), 0x03, VAL[i.global]!, 0x00];
    return [...name(i.module), ...name(i.name), 0x00, ...uleb(typeIndex(i.sig ?? "()->()"))];
  });
  const importedFuncs = (spec.imports ?? []).filter((i) => !i.global).length;
  const funcs = (spec.exports ?? []).map((e) => uleb(typeIndex(e.sig)));
  const bodies = (spec.exports ?? []).map((e) => {
    const { results } = parseSig(e.sig);
    const code = [0x00, ...(results[0] ? ZERO[results[0]]! : []), 0x0b]; // no locals; result; end
    return [...uleb(code.length), ...code];
  });
  const exports = (spec.exports ?? []).map((e, i) => [...name(e.name), 0x00, ...uleb(importedFuncs + i)]);
  const withMemory = spec.memory ?? true;
  if (withMemory) exports.push([...name("memory"), 0x02, 0x00]);
  const typeBodies = types.map((sig) => {
    const { params, results } = parseSig(sig);
    return [0x60, ...vec(params.map((p) => [VAL[p]!])), ...vec(results.map((r) => [VAL[r]!]))];
  });
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(typeBodies)),
    ...section(2, vec(imports)),
    ...section(3, vec(funcs)),
    ...(withMemory ? section(5, vec([[0x00, 0x01]])) : []),
    ...section(7, vec(exports)),
    ...section(10, vec(bodies)),
  ];
  return new Uint8Array(bytes);
}

/** A minimal module Envoy would load: ABI 0.2.1, malloc, memory, proxy_log, a few callbacks. */
export function goodSpec(): Required<ModuleSpec> {
  return {
    imports: [{ module: "env", name: "proxy_log", sig: "(i32,i32,i32)->i32" }],
    exports: [
      { name: "proxy_abi_version_0_2_1", sig: "()->()" },
      { name: "malloc", sig: "(i32)->i32" },
      { name: "proxy_on_context_create", sig: "(i32,i32)->()" },
      { name: "proxy_on_request_headers", sig: "(i32,i32,i32)->i32" },
    ],
    memory: true,
  };
}

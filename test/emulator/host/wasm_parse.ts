// Minimal WebAssembly binary reader: just enough to link like cpp-host's V8::link (import kinds and function
// signatures, memory/table limits), to find the ABI version export (first in export order, §1.1) and to check export
// signatures (§1.2 rule 4). WebAssembly.Module.imports() gives no signatures, hence this parser.

export type ValT = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref" | "unknown";
export interface FuncSig { params: ValT[]; results: ValT[] }
export interface Limits { min: number; max?: number; shared?: boolean }
export interface ImportEntry {
  module: string;
  name: string;
  kind: "func" | "table" | "memory" | "global";
  sig?: FuncSig;
  limits?: Limits;
}
export interface ExportEntry { name: string; kind: "func" | "table" | "memory" | "global"; index: number; sig?: FuncSig }
export interface ParsedModule { imports: ImportEntry[]; exports: ExportEntry[]; hasStart: boolean }

const KINDS = ["func", "table", "memory", "global"] as const;

function valType(b: number): ValT {
  switch (b) {
    case 0x7f: return "i32";
    case 0x7e: return "i64";
    case 0x7d: return "f32";
    case 0x7c: return "f64";
    case 0x7b: return "v128";
    case 0x70: return "funcref";
    case 0x6f: return "externref";
    default: return "unknown";
  }
}

export function printValTypes(t: ValT[]): string {
  return t.length === 0 ? "void" : t.join(" ");
}

export function sigEquals(a: FuncSig, b: FuncSig): boolean {
  return a.params.length === b.params.length && a.results.length === b.results.length &&
    a.params.every((p, i) => p === b.params[i]) && a.results.every((r, i) => r === b.results[i]);
}

export function parseModule(bytes: Uint8Array): ParsedModule {
  let pos = 8;
  const end = bytes.length;
  const u32 = (): number => {
    let result = 0, shift = 0, b: number;
    do {
      if (pos >= end) throw new Error("truncated wasm");
      b = bytes[pos++];
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return result;
  };
  const name = (): string => {
    const n = u32();
    const s = Buffer.from(bytes.buffer, bytes.byteOffset + pos, n).toString("utf8");
    pos += n;
    return s;
  };
  const limits = (): Limits => {
    const flag = bytes[pos++];
    const min = u32();
    const l: Limits = { min };
    if (flag & 1) l.max = u32();
    if (flag & 2) l.shared = true;
    return l;
  };
  const types: FuncSig[] = [];
  const imports: ImportEntry[] = [];
  const funcTypeIdx: number[] = []; // function index space → type index
  const exports: ExportEntry[] = [];
  let hasStart = false;
  while (pos < end) {
    const id = bytes[pos++];
    const size = u32();
    const sectionEnd = pos + size;
    if (id === 1) {
      const n = u32();
      for (let i = 0; i < n; i++) {
        pos++; // 0x60
        const np = u32();
        const params: ValT[] = [];
        for (let j = 0; j < np; j++) params.push(valType(bytes[pos++]));
        const nr = u32();
        const results: ValT[] = [];
        for (let j = 0; j < nr; j++) results.push(valType(bytes[pos++]));
        types.push({ params, results });
      }
    } else if (id === 2) {
      const n = u32();
      for (let i = 0; i < n; i++) {
        const module = name();
        const nm = name();
        const kind = KINDS[bytes[pos++]];
        const e: ImportEntry = { module, name: nm, kind };
        if (kind === "func") {
          const t = u32();
          e.sig = types[t];
          funcTypeIdx.push(t);
        } else if (kind === "table") {
          pos++; // reftype
          e.limits = limits();
        } else if (kind === "memory") {
          e.limits = limits();
        } else {
          pos += 2; // valtype + mut
        }
        imports.push(e);
      }
    } else if (id === 3) {
      const n = u32();
      for (let i = 0; i < n; i++) funcTypeIdx.push(u32());
    } else if (id === 7) {
      const n = u32();
      for (let i = 0; i < n; i++) {
        const nm = name();
        const kind = KINDS[bytes[pos++]];
        const index = u32();
        exports.push({ name: nm, kind, index });
      }
    } else if (id === 8) {
      hasStart = true;
    }
    pos = sectionEnd;
  }
  for (const e of exports) if (e.kind === "func") e.sig = types[funcTypeIdx[e.index]];
  return { imports, exports, hasStart };
}

// Reads the parts of a WebAssembly binary that decide whether a host can link it: function types, imports,
// the function section (to type exported functions) and exports. Validation of the whole module is left to
// the engine (WebAssembly.Module); this reader only walks the sections it needs.

const VALTYPES = { 0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64", 0x7b: "v128", 0x70: "funcref", 0x6f: "externref" };
const KINDS = ["function", "table", "memory", "global"];

class Reader {
  constructor(bytes, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
  }
  byte() {
    if (this.pos >= this.end) throw new Error(`unexpected end of section at byte ${this.pos}`);
    return this.bytes[this.pos++];
  }
  /** Unsigned LEB128 up to 64 bits, returned as a Number (sizes and indices stay far below 2^53). */
  uleb() {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error(`LEB128 too long at byte ${this.pos}`);
  }
  name() {
    const len = this.uleb();
    if (this.pos + len > this.end) throw new Error(`name runs past its section at byte ${this.pos}`);
    const s = new TextDecoder("utf-8", { fatal: true }).decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
  valtype() {
    const b = this.byte();
    const t = VALTYPES[b];
    if (!t) throw new Error(`unknown value type 0x${b.toString(16)} at byte ${this.pos - 1}`);
    return t;
  }
  limits() {
    const flags = this.byte();
    const min = this.uleb();
    const max = flags & 1 ? this.uleb() : undefined;
    return { min, max, shared: (flags & 2) !== 0 };
  }
}

/** `(i32,i64)->i32`, `()->()` */
export function formatSig(type) {
  const results = type.results.length === 0 ? "()" : type.results.length === 1 ? type.results[0] : `(${type.results.join(",")})`;
  return `(${type.params.join(",")})->${results}`;
}

/**
 * Parses bytes into { types, imports, exports } where imports are { module, name, kind, sig? , global? }
 * and exports { name, kind, index, sig? } (sig for functions, written as formatSig does).
 * Throws on a malformed header or section.
 */
export function readModule(bytes) {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new Error("not a WebAssembly binary (no \\0asm magic)");
  }
  const version = bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24);
  if (version !== 1) throw new Error(`unsupported WebAssembly binary version ${version}`);
  const types = [];
  const imports = [];
  const exports = [];
  const funcTypeIndex = []; // type index of every function, imported ones first
  const top = new Reader(bytes, 8);
  while (top.pos < top.end) {
    const id = top.byte();
    const size = top.uleb();
    const start = top.pos;
    if (start + size > bytes.length) throw new Error(`section ${id} runs past the end of the file`);
    const r = new Reader(bytes, start, start + size);
    if (id === 1) {
      for (let n = r.uleb(); n > 0; n--) {
        const form = r.byte();
        if (form !== 0x60) throw new Error(`type section: unsupported type form 0x${form.toString(16)}`);
        const params = [];
        for (let p = r.uleb(); p > 0; p--) params.push(r.valtype());
        const results = [];
        for (let q = r.uleb(); q > 0; q--) results.push(r.valtype());
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = r.uleb(); n > 0; n--) {
        const module = r.name();
        const name = r.name();
        const kind = KINDS[r.byte()];
        const imp = { module, name, kind };
        if (kind === "function") {
          const ti = r.uleb();
          if (!types[ti]) throw new Error(`import ${module}.${name}: type index ${ti} out of range`);
          imp.sig = formatSig(types[ti]);
          funcTypeIndex.push(ti);
        } else if (kind === "table") {
          r.byte();
          r.limits();
        } else if (kind === "memory") {
          imp.limits = r.limits();
        } else if (kind === "global") {
          imp.global = { type: r.valtype(), mutable: r.byte() === 1 };
        } else {
          throw new Error(`import ${module}.${name}: unknown import kind`);
        }
        imports.push(imp);
      }
    } else if (id === 3) {
      for (let n = r.uleb(); n > 0; n--) funcTypeIndex.push(r.uleb());
    } else if (id === 7) {
      for (let n = r.uleb(); n > 0; n--) {
        const name = r.name();
        const kind = KINDS[r.byte()];
        const index = r.uleb();
        if (!kind) throw new Error(`export ${name}: unknown export kind`);
        exports.push({ name, kind, index });
      }
    }
    top.pos = start + size;
  }
  for (const e of exports) {
    if (e.kind !== "function") continue;
    const ti = funcTypeIndex[e.index];
    if (ti === undefined || !types[ti]) throw new Error(`export ${e.name}: function index ${e.index} out of range`);
    e.sig = formatSig(types[ti]);
  }
  return { types, imports, exports };
}

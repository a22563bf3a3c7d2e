// The last step of `make build`: turns AssemblyScript's release output into build/ws-governor.wasm.
//
//   node scripts/release-wasm.mjs <asc-output.wasm> <out.wasm> [--unpacked <file.wasm>]
//
// 1. Optimize again with a current Binaryen (AssemblyScript 0.17.14 bundles Binaryen 98 from 2020): -Oz until the
//    size stops falling, restricted to the features the module already uses (MVP, sign-ext, mutable globals), so the
//    output needs nothing more from Envoy's V8 than the input did.
// 2. Pack the static data. About a third of the module is static data, mostly UTF-16 string literals with 20-byte
//    object headers, spread over ~300 segments. All active segments become one memory image, stored compressed in
//    a single segment; a small start function (ws_unpack) restores the image byte for byte, zeroes the memory the
//    compressed copy used, then calls the original start function. Instantiation therefore leaves linear memory
//    exactly as the unpacked module would (test/delivery/release-wasm.test.ts compares both memories), before any
//    export can run.
//
// Packed format:
//   The image [lo, hi) is de-interleaved first: bytes at even offsets from lo, then bytes at odd offsets (UTF-16
//   ASCII puts its zeros in one half). That stream is LZ77-coded (an optimal parse) as a sequence of
//     token                 high nibble: literal count L, low nibble: match code M (0 ends the stream)
//     [LEB128]              when L is 15: L += this
//     L literal bytes
//     [LEB128]              when M is 15: M += this
//     dist (LEB128)         when M > 0: copy M + MIN_MATCH - 1 bytes from dist bytes back (they may overlap)
// Writing scratch memory is safe: the compressed copy and the de-interleaved stream sit above the static data, where
// the heap starts, and both are zeroed before the module's own start function (and its allocator) runs.
import { readFileSync, writeFileSync } from "node:fs";
import binaryen from "binaryen132";

const MIN_MATCH = 3;
const WINDOW_CANDIDATES = 2048;
const NICE_LENGTH = 128; // a match this long ends the candidate search; longer lengths are priced only in full
const FEATURES = binaryen.Features.MVP | binaryen.Features.SignExt | binaryen.Features.MutableGlobals;

function usage(msg) {
  process.stderr.write(`release-wasm: ${msg}\nusage: node scripts/release-wasm.mjs <in.wasm> <out.wasm> [--unpacked <file>]\n`);
  process.exit(2);
}

// ---- binary reading: the data section, parsed directly (Binaryen.js has no by-index segment info) --------------

function uleb(buf, pos) {
  let result = 0, shift = 0, byte;
  do {
    byte = buf[pos.p++];
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return result;
}

function sleb32(buf, pos) {
  let result = 0, shift = 0, byte;
  do {
    byte = buf[pos.p++];
    result |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  if (shift < 32 && (byte & 0x40)) result |= -1 << shift;
  return result;
}

/** Active data segments {offset, bytes}; throws on anything this packer does not understand. */
export function dataSegments(bin) {
  const pos = { p: 8 };
  const segments = [];
  while (pos.p < bin.length) {
    const id = bin[pos.p++];
    const size = uleb(bin, pos);
    const end = pos.p + size;
    if (id === 11) {
      const count = uleb(bin, pos);
      for (let i = 0; i < count; i++) {
        const flags = uleb(bin, pos);
        if (flags !== 0) throw new Error(`data segment ${i}: flags ${flags} (only active segments of memory 0 are packed)`);
        if (bin[pos.p++] !== 0x41) throw new Error(`data segment ${i}: offset is not an i32.const`);
        const offset = sleb32(bin, pos) >>> 0;
        if (bin[pos.p++] !== 0x0b) throw new Error(`data segment ${i}: offset expression is not a single constant`);
        const len = uleb(bin, pos);
        segments.push({ offset, bytes: bin.subarray(pos.p, pos.p + len) });
        pos.p += len;
      }
    }
    pos.p = end;
  }
  return segments;
}

// ---- compression ------------------------------------------------------------------------------------------------

function pushLeb(out, v) {
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
}

/** Even-offset bytes, then odd-offset bytes. */
export function deinterleave(img) {
  const out = new Uint8Array(img.length);
  const half = (img.length + 1) >> 1;
  for (let k = 0; k < img.length; k++) out[(k >> 1) + (k & 1) * half] = img[k];
  return out;
}

const lebSize = (v) => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : 4);

/** LZ77 with an optimal parse: for every position, every match length reachable through the candidates of a hash of
 *  3-byte prefixes, priced in output bytes, cheapest path chosen backwards from the end. Deterministic. */
export function compress(src) {
  const n = src.length;
  const heads = new Map();
  const keyAt = (p) => src[p] | (src[p + 1] << 8) | (src[p + 2] << 16);
  // matches[i]: [length, dist, shorterLength] with increasing length, each the nearest source reaching it
  const matches = new Array(n);
  for (let i = 0; i < n; i++) {
    const found = [];
    if (i + 3 <= n) {
      const k = keyAt(i);
      let list = heads.get(k);
      if (!list) heads.set(k, (list = []));
      let best = 0;
      for (let c = list.length - 1; c >= 0 && c >= list.length - WINDOW_CANDIDATES; c--) {
        const p = list[c];
        let l = 0;
        while (i + l < n && src[p + l] === src[i + l]) l++;
        if (l > best) { found.push([l, i - p, best]); best = l; }
        if (best >= NICE_LENGTH) break;
      }
      list.push(i);
    }
    matches[i] = found;
  }
  // cost[i]: bytes to code src[i..n); a match also pays the 1-byte literal count in front of it
  const cost = new Float64Array(n + 1);
  const pick = new Array(n + 1).fill(null);
  cost[n] = 2;
  for (let i = n - 1; i >= 0; i--) {
    cost[i] = cost[i + 1] + 1;
    for (const [len, dist, shorter] of matches[i]) {
      const last = Math.min(len, NICE_LENGTH);
      for (let l = Math.max(MIN_MATCH, shorter + 1); l <= len; l = l < last || l === len ? l + 1 : len) {
        const code = l - MIN_MATCH + 1;
        const c = 1 + (code >= 15 ? lebSize(code - 15) : 0) + lebSize(dist) + cost[i + l];
        if (c < cost[i]) { cost[i] = c; pick[i] = [l, dist]; }
      }
    }
  }
  const out = [];
  // token: literal count (high nibble) and match code (low nibble), 15 meaning "15 + a LEB128 that follows"
  const sequence = (from, to, code, dist) => {
    const lits = to - from;
    out.push((Math.min(lits, 15) << 4) | Math.min(code, 15));
    if (lits >= 15) pushLeb(out, lits - 15);
    for (let q = from; q < to; q++) out.push(src[q]);
    if (code === 0) return;
    if (code >= 15) pushLeb(out, code - 15);
    pushLeb(out, dist);
  };
  let i = 0, litStart = 0;
  while (i < n) {
    const m = pick[i];
    if (m === null) { i++; continue; }
    sequence(litStart, i, m[0] - MIN_MATCH + 1, m[1]);
    i += m[0];
    litStart = i;
  }
  sequence(litStart, n, 0, 0);
  return Uint8Array.from(out);
}

/** The reference decoder (the wasm ws_unpack does the same); used to check every packed build before writing it. */
export function decompress(blob, length) {
  const out = new Uint8Array(length);
  let s = 0, d = 0;
  const leb = () => {
    let v = 0, shift = 0, b;
    do { b = blob[s++]; v |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
    return v >>> 0;
  };
  for (;;) {
    const token = blob[s++];
    let n = token >> 4;
    if (n === 15) n += leb();
    while (n-- > 0) out[d++] = blob[s++];
    let m = token & 15;
    if (m === 0) break;
    if (m === 15) m += leb();
    const dist = leb();
    for (let k = 0; k < m + MIN_MATCH - 1; k++, d++) out[d] = out[d - dist];
  }
  if (d !== length || s !== blob.length) throw new Error(`decoder check: ${d}/${length} bytes out, ${s}/${blob.length} in`);
  return out;
}

// ---- the wasm side ------------------------------------------------------------------------------------------------

const align16 = (n) => (n + 15) & ~15;

/** Replaces every data segment of `m` with one packed segment and a start function that unpacks it. */
function pack(m, bin) {
  const segments = dataSegments(bin);
  if (segments.length === 0) return null;
  const lo = Math.min(...segments.map((s) => s.offset));
  const hi = Math.max(...segments.map((s) => s.offset + s.bytes.length));
  const image = new Uint8Array(hi - lo);
  for (const s of segments) image.set(s.bytes, s.offset - lo);
  const stream = deinterleave(image);
  const blob = compress(stream);
  const check = decompress(blob, stream.length);
  if (Buffer.compare(Buffer.from(check), Buffer.from(stream)) !== 0) throw new Error("decoder check: stream differs");

  const blobAt = align16(hi);
  const scratch = align16(blobAt + blob.length);
  const scratchEnd = scratch + image.length;
  const mem = m.getMemoryInfo("0");
  const pages = Math.ceil(scratchEnd / 65536);
  if (pages > mem.initial) throw new Error(`packed data needs ${pages} initial pages, the module declares ${mem.initial}`);

  const i32 = binaryen.i32;
  const T = 0, D = 1, N = 2, DIST = 3, K = 4; // locals of ws_unpack
  const get = (l) => m.local.get(l, i32);
  const set = (l, v) => m.local.set(l, v);
  const c = (v) => m.i32.const(v);
  const inc = (l, by) => set(l, m.i32.add(get(l), typeof by === "number" ? c(by) : by));
  // ws_unpack_leb(): the LEB128 at the global ws_unpack_src, which advances past it
  m.addGlobal("ws_unpack_src", i32, true, c(blobAt));
  const src = () => m.global.get("ws_unpack_src", i32);
  m.addFunction("ws_unpack_leb", binaryen.none, i32, [i32, i32, i32], m.block(null, [
    m.loop("leb", m.block(null, [
      set(2, m.i32.load8_u(0, 1, src())),
      m.global.set("ws_unpack_src", m.i32.add(src(), c(1))),
      set(0, m.i32.or(get(0), m.i32.shl(m.i32.and(get(2), c(0x7f)), get(1)))),
      set(1, m.i32.add(get(1), c(7))),
      m.br("leb", m.i32.and(get(2), c(0x80))),
    ])),
    get(0),
  ], i32));
  // ws_unpack_copy(dst, from, n): n bytes, one at a time and forwards (a match may overlap its own output)
  m.addFunction("ws_unpack_copy", binaryen.createType([i32, i32, i32]), binaryen.none, [], m.loop("copy", m.if(get(2),
    m.block(null, [
      m.i32.store8(0, 1, get(0), m.i32.load8_u(0, 1, get(1))),
      set(0, m.i32.add(get(0), c(1))),
      set(1, m.i32.add(get(1), c(1))),
      set(2, m.i32.sub(get(2), c(1))),
      m.br("copy"),
    ]))));
  // copy N bytes from `from` to D, D += N
  const copyN = (from) => m.block(null, [
    m.call("ws_unpack_copy", [get(D), from, get(N)], binaryen.none),
    set(D, m.i32.add(get(D), get(N))),
  ]);
  const half = (image.length + 1) >> 1;
  const body = [
    set(D, c(scratch)),
    m.block("done", [
      m.loop("seq", m.block(null, [
        set(T, m.i32.load8_u(0, 1, src())),
        m.global.set("ws_unpack_src", m.i32.add(src(), c(1))),
        set(N, m.i32.shr_u(get(T), c(4))),
        m.if(m.i32.eq(get(N), c(15)), set(N, m.i32.add(get(N), m.call("ws_unpack_leb", [], i32)))),
        copyN(src()),
        m.global.set("ws_unpack_src", m.i32.add(src(), get(N))),
        set(N, m.i32.and(get(T), c(15))),
        m.br("done", m.i32.eqz(get(N))),
        m.if(m.i32.eq(get(N), c(15)), set(N, m.i32.add(get(N), m.call("ws_unpack_leb", [], i32)))),
        set(N, m.i32.add(get(N), c(MIN_MATCH - 1))),
        set(DIST, m.call("ws_unpack_leb", [], i32)),
        copyN(m.i32.sub(get(D), get(DIST))),
        m.br("seq"),
      ])),
    ]),
    // lo + k <- stream[(k >> 1) + (k & 1) * half] for k < image.length, then 0 up to scratchEnd: the gap below the
    // compressed copy was zero already, the compressed copy and the scratch stream become zero as in an unpacked
    // instance (every scratch read happens before the first scratch write)
    set(K, c(0)),
    m.block("fill_out", [
      m.loop("fill", m.block(null, [
        m.br("fill_out", m.i32.ge_u(get(K), c(scratchEnd - lo))),
        m.i32.store8(lo, 1, get(K), m.if(m.i32.lt_u(get(K), c(image.length)),
          m.i32.load8_u(scratch, 1, m.i32.add(m.i32.shr_u(get(K), c(1)), m.i32.mul(m.i32.and(get(K), c(1)), c(half)))),
          c(0))),
        inc(K, 1),
        m.br("fill"),
      ])),
    ]),
  ];
  const start = m.getStart();
  if (start) body.push(m.call(binaryen.getFunctionInfo(start).name, [], binaryen.none));
  const fn = m.addFunction("ws_unpack", binaryen.none, binaryen.none, [i32, i32, i32, i32, i32], m.block(null, body));
  m.setStart(fn);

  const exp = [];
  for (let i = 0; i < m.getNumExports(); i++) {
    const e = binaryen.getExportInfo(m.getExportByIndex(i));
    if (e.kind === binaryen.ExternalMemory) exp.push(e.name);
  }
  if (exp.length !== 1) throw new Error(`expected one exported memory, found ${exp.length}`);
  const segs = [{ offset: c(blobAt), data: blob, passive: false }];
  m.removeExport(exp[0]); // setMemory adds the export again (a duplicate export is a fatal error)
  m.setMemory(mem.initial, mem.max === undefined ? -1 : mem.max, exp[0], segs, mem.shared, mem.is64, "0");
  return { segments: segments.length, image: image.length, blob: blob.length, lo, hi, blobAt, scratchEnd };
}

/** The module with its data packed (see the file header); info is null when it has no data segments. */
export function packModule(bin) {
  const m = binaryen.readBinary(bin);
  m.setFeatures(FEATURES);
  const info = pack(m, bin);
  if (!m.validate()) throw new Error("packed module does not validate");
  binaryen.setOptimizeLevel(2);
  binaryen.setShrinkLevel(2);
  if (info) m.runPassesOnFunction("ws_unpack", ["precompute", "simplify-locals", "vacuum", "remove-unused-brs", "merge-blocks", "coalesce-locals", "reorder-locals", "optimize-instructions", "simplify-locals", "vacuum", "remove-unused-brs"]);
  const binary = m.emitBinary();
  m.dispose();
  return { binary, info };
}

export function optimize(bin) {
  let best = bin;
  for (let round = 0; round < 8; round++) {
    const m = binaryen.readBinary(best);
    m.setFeatures(FEATURES);
    binaryen.setOptimizeLevel(2);
    binaryen.setShrinkLevel(2);
    binaryen.setDebugInfo(false);
    m.optimize();
    m.runPasses(["gufa-optimizing"]); // whole-program type flow: constants and unreachable code -Oz alone misses
    const next = m.emitBinary();
    m.dispose();
    if (next.length >= best.length) break;
    best = next;
  }
  // Last, number the functions by how often they are called: calls to the first 128 take a 1-byte index (the
  // runtime's __retain/__release alone are called from over a thousand places). -Oz does not do this.
  const m = binaryen.readBinary(best);
  m.setFeatures(FEATURES);
  m.runPasses(["reorder-functions"]);
  const ordered = m.emitBinary();
  m.dispose();
  return ordered.length < best.length ? ordered : best;
}

function main(argv) {
  const args = argv.slice(2);
  let unpackedOut = null;
  const files = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--unpacked") unpackedOut = args[++i];
    else if (args[i].startsWith("-")) usage(`unknown option ${args[i]}`);
    else files.push(args[i]);
  }
  if (files.length !== 2 || unpackedOut === undefined) usage("expected <in.wasm> <out.wasm>");
  const input = readFileSync(files[0]);
  const optimized = optimize(new Uint8Array(input));
  if (unpackedOut) writeFileSync(unpackedOut, optimized);

  const { binary: out, info } = packModule(optimized);
  writeFileSync(files[1], out);
  const kb = (n) => `${n} B`;
  process.stdout.write(
    `release-wasm: asc ${kb(input.length)} -> optimized ${kb(optimized.length)} -> packed ${kb(out.length)}` +
    (info ? ` (data: ${info.segments} segments, ${info.image} B image -> ${info.blob} B)` : "") + "\n");
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv);

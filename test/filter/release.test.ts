// The release module's packed static data (scripts/release-wasm.mjs): after instantiation, linear memory must be
// byte for byte what the unpacked module leaves, before any export runs. Checked on the real module and on
// synthetic modules built to reach every branch of the format (long literal runs, long and overlapping matches,
// three-byte distances) in the wasm decoder, not only in the JavaScript one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import binaryen from "binaryen132";
import { compress, decompress, deinterleave, packModule, dataSegments } from "../../scripts/release-wasm.mjs";
import { ROOT, wasm } from "./support.ts";

const UNPACKED = join(ROOT, "build/release/ws-governor.unpacked.wasm");

/** Instantiates with every import stubbed (the start function must not need the host) and returns the memory. */
function memoryAfterStart(bin: Uint8Array): Uint8Array {
  const mod = new WebAssembly.Module(bin as Uint8Array<ArrayBuffer>);
  const imports: Record<string, Record<string, unknown>> = {};
  for (const i of WebAssembly.Module.imports(mod)) {
    imports[i.module] ??= {};
    imports[i.module][i.name] = () => { throw new Error(`start function called the host: ${i.module}.${i.name}`); };
  }
  const inst = new WebAssembly.Instance(mod, imports as WebAssembly.Imports);
  return new Uint8Array((inst.exports.memory as WebAssembly.Memory).buffer);
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Deterministic pseudo-random bytes. */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Data that exercises the format: UTF-16 text, incompressible runs (literal counts ≥ 15 + 128), a byte repeated
 *  (overlapping dist-1 copies, match codes ≥ 15 + 128), and a repeat of early bytes from far away (dist ≥ 16384). */
function edgeImage(): Uint8Array {
  const parts: Uint8Array[] = [];
  const text = Buffer.from("ws_governor: invalid configuration: rate_limit.key.source: is required", "utf16le");
  const early = noise(600, 7);
  parts.push(text, early, noise(3000, 1), new Uint8Array(700).fill(0x61), text, noise(40000, 2), early, text);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Walks a compressed stream's tokens: the largest literal count, match code and distance, the smallest distance. */
function branches(blob: Uint8Array) {
  let s = 0;
  const leb = () => {
    let v = 0, shift = 0, b;
    do { b = blob[s++]; v |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
    return v >>> 0;
  };
  const r = { maxLiterals: 0, maxMatch: 0, maxDist: 0, minDist: Infinity };
  for (;;) {
    const token = blob[s++];
    let n = token >> 4;
    if (n === 15) n += leb();
    s += n;
    r.maxLiterals = Math.max(r.maxLiterals, n);
    let m = token & 15;
    if (m === 0) return r;
    if (m === 15) m += leb();
    const d = leb();
    r.maxMatch = Math.max(r.maxMatch, m);
    r.maxDist = Math.max(r.maxDist, d);
    r.minDist = Math.min(r.minDist, d);
  }
}

const PAGES = 4;

/** A module with `segments` in its memory and a start function that stores 0x5a at `mark`. */
function syntheticModule(segments: { offset: number; data: Uint8Array }[], mark: number): Uint8Array {
  const m = new binaryen.Module();
  const c = (v: number) => m.i32.const(v);
  m.setMemory(PAGES, -1, "memory", segments.map((s) => ({ offset: c(s.offset), data: s.data, passive: false })));
  const start = m.addFunction("start", binaryen.none, binaryen.none, [], m.i32.store8(0, 1, c(mark), c(0x5a)));
  m.setStart(start);
  assert.ok(m.validate());
  const bin = m.emitBinary();
  m.dispose();
  return bin;
}

test("release module: instantiation leaves memory exactly as the unpacked module does", () => {
  assert.ok(existsSync(UNPACKED), `${UNPACKED} missing: run \`make build\` first`);
  const unpacked = new Uint8Array(readFileSync(UNPACKED));
  const packed = wasm();
  assert.ok(dataSegments(unpacked).length > 100, "the unpacked module has AssemblyScript's many data segments");
  assert.equal(dataSegments(packed).length, 1, "the release module has one packed data segment");
  assert.ok(packed.length < unpacked.length - 8000, `packing saves space: ${unpacked.length} -> ${packed.length}`);
  const a = memoryAfterStart(unpacked);
  const b = memoryAfterStart(packed);
  assert.equal(firstDifference(a, b), -1, "memories differ");
  const exportsOf = (bin: Uint8Array) => WebAssembly.Module.exports(new WebAssembly.Module(bin as Uint8Array<ArrayBuffer>)).map((e) => `${e.kind}:${e.name}`);
  assert.deepEqual(exportsOf(packed).sort(), exportsOf(unpacked).sort());
});

test("release codec: every branch of the format round-trips", () => {
  const img = edgeImage();
  const stream = deinterleave(img);
  const blob = compress(stream);
  assert.deepEqual(decompress(blob, stream.length), stream);
  const seen = branches(blob);
  assert.ok(seen.maxLiterals >= 15 + 128, `a literal count needing a 2-byte extension (max ${seen.maxLiterals})`);
  assert.ok(seen.maxMatch >= 15 + 128, `a match code needing a 2-byte extension (max ${seen.maxMatch})`);
  assert.ok(seen.maxDist >= 16384, `a 3-byte distance (max ${seen.maxDist})`);
  assert.ok(seen.minDist === 1, "an overlapping copy (distance 1)");
  for (const src of [new Uint8Array(0), new Uint8Array([7]), new Uint8Array(40).fill(0), noise(20, 3)]) {
    assert.deepEqual(decompress(compress(src), src.length), src);
  }
  assert.throws(() => decompress(blob.subarray(0, blob.length - 1), stream.length), "a truncated stream is noticed");
});

test("release codec: the wasm decoder restores synthetic data at every branch, then runs the original start", () => {
  const img = edgeImage();
  const segments = [
    { offset: 1024, data: img.subarray(0, 5000) },
    { offset: 6100, data: img.subarray(5000, 5001) },   // a one-byte segment after a gap
    { offset: 6200, data: img.subarray(5001) },          // the rest, with the far repeats
  ];
  const mark = PAGES * 65536 - 16;                       // beyond the scratch area, which is zeroed afterwards
  const plain = syntheticModule(segments, mark);
  const { binary, info } = packModule(plain);
  assert.ok(info !== null);
  assert.equal(info.segments, 3);
  assert.ok(info.scratchEnd < mark);
  const a = memoryAfterStart(plain);
  const b = memoryAfterStart(binary);
  assert.equal(a[mark], 0x5a, "the original start function ran in the unpacked module");
  assert.equal(b[mark], 0x5a, "the original start function ran after unpacking");
  assert.equal(firstDifference(a, b), -1, "memories differ");
});

test("release codec: a module whose packed data would not fit its initial memory is refused", () => {
  const plain = syntheticModule([{ offset: 1024, data: noise(200_000, 9) }], 64);
  assert.throws(() => packModule(plain), /initial pages/);
});

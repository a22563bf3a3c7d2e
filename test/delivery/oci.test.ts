// scripts/oci.ts: the Wasm OCI artifact (image layout + tarball) is well formed, carries the module bytes as its
// single layer with the media types Istio's fetcher recognises, and is reproducible.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { MEDIA_TYPES } from "../../scripts/oci.ts";
import { ROOT } from "./support.ts";

const work = mkdtempSync(join(tmpdir(), "wsg-oci-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A tiny valid module exporting proxy_abi_version_0_2_0 (type ()->(), one empty function). */
function tinyWasm(): Uint8Array {
  const name = [..."proxy_abi_version_0_2_0"].map((c) => c.charCodeAt(0));
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,            // magic, version
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00,                          // type section: () -> ()
    0x03, 0x02, 0x01, 0x00,                                      // function section: func 0 has type 0
    0x07, 2 + 1 + name.length + 1, 0x01, name.length, ...name, 0x00, 0x00, // export section
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,                          // code section: empty body
  ]);
}

const wasmPath = existsSync(join(ROOT, "build/ws-governor.wasm")) ? join(ROOT, "build/ws-governor.wasm") : join(work, "tiny.wasm");
if (!existsSync(wasmPath)) writeFileSync(wasmPath, tinyWasm());

function run(name: string, env: Record<string, string> = {}, extra: string[] = [], wasm = wasmPath): { out: string; tar: string } {
  const out = join(work, name);
  const tar = join(work, `${name}.tar`);
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/oci.ts", "--wasm", wasm, "--out", out, "--tar", tar, ...extra],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return { out, tar };
}

const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const readJson = (p: string) => JSON.parse(readFileSync(p, "utf8")) as Record<string, any>;

interface TarEntry { name: string; type: string; mode: number; mtime: number; data: Uint8Array }

function untar(buf: Uint8Array): TarEntry[] {
  const out: TarEntry[] = [];
  const text = (o: number, n: number) => new TextDecoder().decode(buf.subarray(o, o + n)).replace(/\0.*$/s, "");
  for (let off = 0; off + 512 <= buf.length;) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    h.forEach((b, i) => (sum += i >= 148 && i < 156 ? 32 : b));
    assert.equal(Number.parseInt(text(off + 148, 8), 8), sum, "tar header checksum");
    assert.equal(text(off + 257, 6), "ustar");
    const size = Number.parseInt(text(off + 124, 12), 8);
    out.push({
      name: text(off, 100), type: text(off + 156, 1), mode: Number.parseInt(text(off + 100, 8), 8),
      mtime: Number.parseInt(text(off + 136, 12), 8), data: buf.slice(off + 512, off + 512 + size),
    });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

test("oci: image layout with digests matching blob contents, Wasm artifact media types and the module as layer", () => {
  const { out } = run("a");
  const wasm = new Uint8Array(readFileSync(wasmPath));
  assert.deepEqual(readJson(join(out, "oci-layout")), { imageLayoutVersion: "1.0.0" });
  const index = readJson(join(out, "index.json"));
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.mediaType, MEDIA_TYPES.index);
  assert.equal(index.manifests.length, 1);
  const md = index.manifests[0];
  assert.equal(md.mediaType, "application/vnd.oci.image.manifest.v1+json");
  assert.ok(md.annotations["org.opencontainers.image.ref.name"], "tag annotation");

  // every blob is named by its digest
  const blobs = readdirSync(join(out, "blobs/sha256")).sort();
  for (const b of blobs) assert.equal(sha(readFileSync(join(out, "blobs/sha256", b))), `sha256:${b}`);
  const blob = (d: { digest: string; size: number }) => {
    const data = new Uint8Array(readFileSync(join(out, "blobs/sha256", d.digest.replace(/^sha256:/, ""))));
    assert.equal(data.byteLength, d.size, `size of ${d.digest}`);
    assert.equal(sha(data), d.digest);
    return data;
  };

  const manifest = JSON.parse(new TextDecoder().decode(blob(md))) as Record<string, any>;
  assert.equal(manifest.schemaVersion, 2);
  assert.equal(manifest.mediaType, "application/vnd.oci.image.manifest.v1+json");
  assert.equal(manifest.config.mediaType, "application/vnd.module.wasm.config.v1+json");
  const config = JSON.parse(new TextDecoder().decode(blob(manifest.config))) as Record<string, unknown>;
  assert.deepEqual(config.rootIds, ["ws_governor"]);
  assert.equal(manifest.layers.length, 1, "a single layer");
  const layer = manifest.layers[0];
  assert.equal(layer.mediaType, "application/vnd.module.wasm.content.layer.v1+wasm");
  assert.deepEqual(blob(layer), wasm, "layer bytes = the .wasm");
  assert.equal(layer.annotations["org.opencontainers.image.title"], "ws-governor.wasm");
  for (const k of ["created", "title", "version", "licenses", "description"]) {
    assert.equal(typeof manifest.annotations[`org.opencontainers.image.${k}`], "string", `annotation ${k}`);
  }
  assert.deepEqual(blobs, [md.digest, manifest.config.digest, layer.digest].map((d: string) => d.slice(7)).sort(), "no stray blobs");
});

test("oci: tarball holds exactly the layout, sorted, with fixed owner and mtime", () => {
  const { out, tar } = run("t");
  const entries = untar(new Uint8Array(readFileSync(tar)));
  const names = entries.map((e) => e.name);
  assert.deepEqual(names, [...names].sort());
  assert.ok(names.includes("oci-layout") && names.includes("index.json"));
  for (const e of entries) {
    assert.equal(e.mtime, 0);
    if (e.type === "5") continue;
    assert.equal(e.type, "0");
    assert.equal(e.mode, 0o644);
    assert.deepEqual(e.data, new Uint8Array(readFileSync(join(out, e.name))), e.name);
  }
  assert.equal(entries.filter((e) => e.type === "0").length, 5);
});

test("oci: two runs give byte-identical layouts and tarballs; SOURCE_DATE_EPOCH sets the timestamps", () => {
  const a = run("r1");
  const b = run("r2");
  assert.deepEqual(readFileSync(a.tar), readFileSync(b.tar));
  assert.deepEqual(readFileSync(join(a.out, "index.json")), readFileSync(join(b.out, "index.json")));
  const c = run("r3", { SOURCE_DATE_EPOCH: "1700000000" });
  const idx = readJson(join(c.out, "index.json"));
  const manifest = readJson(join(c.out, "blobs/sha256", String(idx.manifests[0].digest).slice(7)));
  assert.equal(manifest.annotations["org.opencontainers.image.created"], "2023-11-14T22:13:20Z");
  assert.ok(untar(new Uint8Array(readFileSync(c.tar))).every((e) => e.mtime === 1700000000));
});

test("oci: the test's fallback module is a valid proxy-wasm ABI 0.2.0 module", () => {
  const exports = WebAssembly.Module.exports(new WebAssembly.Module(new Uint8Array(tinyWasm()))).map((e) => e.name);
  assert.deepEqual(exports, ["proxy_abi_version_0_2_0"]);
});

for (const [kind, variable, overlay] of [["fleet", "FLEET_WASM", "k8s/fleet"], ["lean", "LEAN_WASM", "k8s/lean"]] as const) {
  test(`oci: \`make oci\` also ships the ${kind} module (${overlay} pulls ws-governor-${kind}), its layer titled by --title`, () => {
    const recipe = /^oci:.*\n((?:\t.*\n)+)/m.exec(readFileSync(join(ROOT, "Makefile"), "utf8"))?.[1] ?? "";
    assert.match(recipe, new RegExp(`scripts/oci\\.ts --wasm \\$\\(${variable}\\) --out build/oci-${kind} .*--title ws-governor-${kind}\\.wasm`));
    const file = join(ROOT, `build/ws-governor-${kind}.wasm`);
    const module = existsSync(file) ? file : wasmPath;
    const { out } = run(kind, {}, ["--title", `ws-governor-${kind}.wasm`], module);
    const index = readJson(join(out, "index.json"));
    const manifest = readJson(join(out, "blobs/sha256", String(index.manifests[0].digest).slice(7)));
    const layer = manifest.layers[0];
    assert.equal(layer.annotations["org.opencontainers.image.title"], `ws-governor-${kind}.wasm`);
    assert.equal(layer.digest, sha(new Uint8Array(readFileSync(module))), `the layer is the ${kind} module`);
  });
}

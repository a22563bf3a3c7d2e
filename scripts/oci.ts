// Builds the ws-governor Wasm OCI artifact without Docker: an OCI image layout directory and a tarball of it.
//
//   node --import tsx scripts/oci.ts [--wasm build/ws-governor.wasm] [--out build/oci]
//                                    [--tar build/ws-governor-oci.tar] [--tag <package version>]
//                                    [--title <layer file name, default ws-governor.wasm>]
//
// Format: the "OCI artifact" variant of the Wasm image spec (solo-io's wasm-image-spec, which Istio's image
// fetcher recognises by its config media type):
//   manifest  application/vnd.oci.image.manifest.v1+json
//   config    application/vnd.module.wasm.config.v1+json      small JSON: type, ABI versions, root ids
//   layer[0]  application/vnd.module.wasm.content.layer.v1+wasm   the .wasm bytes themselves, uncompressed
// Istio also accepts the "compat" variant (an ordinary Docker/OCI image whose single layer is a tar holding
// plugin.wasm); the artifact variant needs no tar/gzip layer and its layer digest is the module's sha256.
//
// Deterministic: JSON with sorted keys and no whitespace, creation time from SOURCE_DATE_EPOCH (default
// 1970-01-01T00:00:00Z), tar entries sorted with fixed owner, mode and mtime. Two runs over the same .wasm give
// byte-identical output and digests.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const MEDIA_TYPES = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.module.wasm.config.v1+json",
  layer: "application/vnd.module.wasm.content.layer.v1+wasm",
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface OciOptions {
  wasm: Uint8Array;
  tag: string;                 // org.opencontainers.image.ref.name in index.json
  version: string;             // org.opencontainers.image.version
  created: string;             // RFC 3339, org.opencontainers.image.created
  title?: string;              // layer file name, default ws-governor.wasm
  rootIds?: string[];          // default ["ws_governor"]
}

export interface OciLayout {
  /** relative path inside the layout -> content; directories are implied */
  files: Map<string, Uint8Array>;
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor;
}

/** JSON with object keys sorted at every level and no insignificant whitespace. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const o = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  });
}

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function descriptor(mediaType: string, data: Uint8Array, annotations?: Record<string, string>): Descriptor {
  return { mediaType, digest: sha256(data), size: data.byteLength, ...(annotations ? { annotations } : {}) };
}

/** proxy-wasm ABI versions the module exports (e.g. proxy_abi_version_0_2_0 -> "0.2.0"); [] if not compilable. */
export function abiVersions(wasm: Uint8Array): string[] {
  try {
    return WebAssembly.Module.exports(new WebAssembly.Module(new Uint8Array(wasm)))
      .map((e) => /^proxy_abi_version_(\d+)_(\d+)_(\d+)$/.exec(e.name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => `${m[1]}.${m[2]}.${m[3]}`)
      .sort();
  } catch {
    return [];
  }
}

export function buildOciLayout(o: OciOptions): OciLayout {
  const enc = new TextEncoder();
  const title = o.title ?? "ws-governor.wasm";
  const configBytes = enc.encode(canonicalJson({
    type: "envoy_proxy",
    abiVersions: abiVersions(o.wasm).map((v) => `v${v}`),
    rootIds: o.rootIds ?? ["ws_governor"],
  }));
  const config = descriptor(MEDIA_TYPES.config, configBytes);
  const layer = descriptor(MEDIA_TYPES.layer, o.wasm, { "org.opencontainers.image.title": title });
  const manifestBytes = enc.encode(canonicalJson({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config,
    layers: [layer],
    annotations: {
      "org.opencontainers.image.created": o.created,
      "org.opencontainers.image.description": "ws-governor: proxy-wasm HTTP filter that governs WebSocket upgrades in Envoy and Istio",
      "org.opencontainers.image.licenses": "Apache-2.0",
      "org.opencontainers.image.title": "ws-governor",
      "org.opencontainers.image.version": o.version,
    },
  }));
  const manifest = descriptor(MEDIA_TYPES.manifest, manifestBytes, { "org.opencontainers.image.ref.name": o.tag });
  const index = enc.encode(canonicalJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [manifest] }));
  const blob = (d: Descriptor) => `blobs/sha256/${d.digest.slice("sha256:".length)}`;
  const files = new Map<string, Uint8Array>([
    [blob(config), configBytes],
    [blob(layer), o.wasm],
    [blob({ ...manifest }), manifestBytes],
    ["index.json", index],
    ["oci-layout", enc.encode(canonicalJson({ imageLayoutVersion: "1.0.0" }))],
  ]);
  return { files, manifest, config, layer };
}

// ---------------------------------------------------------------------------------------------------------
// ustar writer (POSIX.1-1988), enough for an OCI layout: short paths, regular files and directories.

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

function tarHeader(name: string, size: number, type: "0" | "5", mtime: number): Uint8Array {
  const h = new Uint8Array(512);
  const put = (s: string, off: number) => h.set(new TextEncoder().encode(s), off);
  if (name.length > 100) throw new Error(`tar: path too long: ${name}`);
  put(name, 0);
  put(octal(type === "5" ? 0o755 : 0o644, 8), 100);
  put(octal(0, 8), 108);                  // uid
  put(octal(0, 8), 116);                  // gid
  put(octal(size, 12), 124);
  put(octal(mtime, 12), 136);
  put("        ", 148);                   // checksum placeholder (8 spaces)
  put(type, 156);
  put("ustar\0", 257);
  put("00", 263);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return h;
}

/** A deterministic tar of the layout: directories first along each path, entries sorted by name. */
export function tarLayout(files: Map<string, Uint8Array>, mtime: number): Uint8Array {
  const dirs = new Set<string>();
  for (const path of files.keys()) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(`${parts.slice(0, i).join("/")}/`);
  }
  const names = [...dirs, ...files.keys()].sort();
  const chunks: Uint8Array[] = [];
  for (const name of names) {
    const data = files.get(name);
    chunks.push(tarHeader(name, data?.byteLength ?? 0, data ? "0" : "5", mtime));
    if (data) {
      chunks.push(data);
      const pad = (512 - (data.byteLength % 512)) % 512;
      if (pad) chunks.push(new Uint8Array(pad));
    }
  }
  chunks.push(new Uint8Array(1024)); // two zero blocks end the archive
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** Writes the layout into dir, replacing an earlier layout there (only oci-layout, index.json, blobs/). */
export function writeLayout(dir: string, files: Map<string, Uint8Array>): void {
  for (const name of ["blobs", "index.json", "oci-layout"]) rmSync(join(dir, name), { recursive: true, force: true });
  for (const [path, data] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
  }
}

export function createdFromEnv(env: NodeJS.ProcessEnv = process.env): { iso: string; epoch: number } {
  const epoch = env.SOURCE_DATE_EPOCH ? Number.parseInt(env.SOURCE_DATE_EPOCH, 10) : 0;
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`SOURCE_DATE_EPOCH: not a non-negative integer`);
  return { iso: new Date(epoch * 1000).toISOString().replace(/\.000Z$/, "Z"), epoch };
}

function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--(wasm|out|tar|tag|title)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unknown argument ${a}\nusage: scripts/oci.ts [--wasm FILE] [--out DIR] [--tar FILE] [--tag TAG] [--title NAME]`);
    const v = m[2] ?? argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    out[m[1]!] = v;
  }
  return out;
}

function main(): void {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const args = parseArgs(process.argv.slice(2));
  const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
  const wasmPath = resolve(args.wasm ?? join(root, "build/ws-governor.wasm"));
  const outDir = resolve(args.out ?? join(root, "build/oci"));
  const tarPath = resolve(args.tar ?? join(root, "build/ws-governor-oci.tar"));
  const created = createdFromEnv();
  const layout = buildOciLayout({ wasm: new Uint8Array(readFileSync(wasmPath)), tag: args.tag ?? version, version, created: created.iso, title: args.title });
  writeLayout(outDir, layout.files);
  mkdirSync(dirname(tarPath), { recursive: true });
  writeFileSync(tarPath, tarLayout(layout.files, created.epoch));
  const tar = new Uint8Array(readFileSync(tarPath));
  process.stdout.write([
    `OCI layout  ${outDir}  (tag ${args.tag ?? version})`,
    `tarball     ${tarPath}  ${sha256(tar)}`,
    `manifest    ${layout.manifest.digest}  ${layout.manifest.size} bytes`,
    `config      ${layout.config.digest}  ${layout.config.size} bytes  ${MEDIA_TYPES.config}`,
    `layer       ${layout.layer.digest}  ${layout.layer.size} bytes  ${MEDIA_TYPES.layer}  (= sha256 of ${wasmPath})`,
    "",
  ].join("\n"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    main();
  } catch (e) {
    process.stderr.write(`oci: ${(e as Error).message}\n`);
    process.exit(1);
  }
}

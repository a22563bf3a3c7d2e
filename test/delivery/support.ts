// Shared helpers for the delivery tests (test/delivery/*.test.ts): file discovery, the Envoy config checker,
// plugin-configuration extraction and a minimal kustomize build. No assertions here.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse as parseYaml } from "yaml";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const CHECKER = resolve(ROOT, "tools/checks/check-config.mjs");
export const SCHEMA_PATH = join(ROOT, "schema/ws-governor.schema.json");

export const WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
export const STRING_VALUE_TYPE = "type.googleapis.com/google.protobuf.StringValue";

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function rel(path: string): string {
  return relative(ROOT, path);
}

/** Files under dir (recursively) whose names end with one of exts, sorted. */
export function listFiles(dir: string, exts: string[]): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path, exts));
    else if (exts.some((e) => name.endsWith(e))) out.push(path);
  }
  return out;
}

/** A file whose name says it holds a deliberately invalid plugin configuration (e.g. envoy/envoy.bad-config.yaml). */
export function isBadFixture(path: string): boolean {
  return /(^|[.\-_])bad([.\-_]|$)/.test(basename(path));
}

/** Envoy bootstraps under envoy/: every YAML/JSON file except compose files. */
export function envoyBootstraps(): string[] {
  return listFiles(join(ROOT, "envoy"), [".yaml", ".yml", ".json"]).filter((f) => {
    if (/compose/i.test(basename(f))) return false;
    const doc: unknown = parseYaml(readFileSync(f, "utf8"));
    return !(isObject(doc) && "services" in doc && !("static_resources" in doc) && !("admin" in doc));
  });
}

// ---------------------------------------------------------------------------------------------------------
// check-envoy-config.mjs

export interface CheckFinding { severity: string; path: string; line?: number; code: string; message: string }
export interface CheckFile { file: string; type?: string; ok?: boolean; errors?: number; failure?: string; findings?: CheckFinding[] }
export interface CheckReport { exitCode: number; stderr: string; files: CheckFile[] }

/** Runs the checker with --json (from ROOT, where protobufjs and yaml are installed). */
export function runChecker(files: string[], type?: string): CheckReport {
  const args = [CHECKER, "--json", ...(type ? ["--type", type] : []), ...files];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", maxBuffer: 64 << 20 });
  let parsed: { files?: CheckFile[] } = {};
  try {
    parsed = JSON.parse(r.stdout) as { files?: CheckFile[] };
  } catch {
    // usage errors print text; keep stdout in stderr for the assertion message
  }
  return { exitCode: r.status ?? -1, stderr: `${r.stderr}${parsed.files ? "" : r.stdout}`, files: parsed.files ?? [] };
}

/** One line per error finding, for assertion messages. */
export function describeErrors(report: CheckReport): string {
  const lines = [report.stderr.trim()].filter(Boolean);
  for (const f of report.files) {
    if (f.failure) lines.push(`${f.file}: ${f.failure}`);
    for (const x of f.findings ?? []) {
      if (x.severity === "error") lines.push(`${f.file}: ${x.path} (line ${x.line ?? "?"}): ${x.message}`);
    }
  }
  return lines.join("\n");
}

/** Writes value as JSON to a fresh temp file and returns its path and a cleanup function. */
export function tempJson(name: string, value: unknown): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "wsg-delivery-"));
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(value, null, 2));
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------------------------------------------------
// Kubernetes manifests

export interface K8sDoc { file: string; index: number; doc: JsonObject }

/** Every YAML document of every file under k8s/ (kustomization files included), parsed strictly. */
export function k8sDocuments(): K8sDoc[] {
  const out: K8sDoc[] = [];
  for (const file of listFiles(join(ROOT, "k8s"), [".yaml", ".yml"])) {
    parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true }).forEach((d, index) => {
      if (d.errors.length > 0) throw new Error(`${rel(file)} document ${index}: ${d.errors[0]!.message}`);
      const doc: unknown = d.toJS();
      if (doc === null || doc === undefined) return; // empty document (e.g. trailing ---)
      if (!isObject(doc)) throw new Error(`${rel(file)} document ${index}: not a mapping`);
      out.push({ file, index, doc });
    });
  }
  return out;
}

export const KUSTOMIZE_KINDS = new Set(["Kustomization", "Component"]);

function readKustomization(dir: string): JsonObject {
  for (const name of ["kustomization.yaml", "kustomization.yml", "Kustomization"]) {
    const p = join(dir, name);
    if (existsSync(p)) {
      const doc: unknown = parseYaml(readFileSync(p, "utf8"));
      if (!isObject(doc)) throw new Error(`${rel(p)}: not a mapping`);
      return doc;
    }
  }
  throw new Error(`${rel(dir)}: no kustomization.yaml`);
}

function strings(v: Json | undefined, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new Error(`${what}: expected a list of strings`);
  return v as string[];
}

function loadResourceFile(path: string): JsonObject[] {
  return parseAllDocuments(readFileSync(path, "utf8"))
    .map((d) => d.toJS() as unknown)
    .filter((d): d is JsonObject => isObject(d));
}

/** Deep merge for strategic-merge patches that only touch maps (lists are replaced, `null` deletes). */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isObject(v) && isObject(out[k])) out[k] = mergePatch(out[k] as JsonObject, v);
    else out[k] = v;
  }
  return out;
}

function sameObject(a: JsonObject, b: JsonObject): boolean {
  const meta = (o: JsonObject) => (isObject(o.metadata) ? o.metadata : {});
  return a.apiVersion === b.apiVersion && a.kind === b.kind && meta(a).name === meta(b).name &&
    (meta(b).namespace === undefined || meta(a).namespace === meta(b).namespace);
}

/**
 * The subset of `kustomize build` these manifests use: resources (files and directories), components, and
 * strategic-merge `patches` given by path or inline. Throws on anything else, so a new feature in a
 * kustomization fails the test instead of being ignored.
 */
export function kustomizeBuild(dir: string, seen: string[] = []): JsonObject[] {
  const k = readKustomization(dir);
  const known = new Set(["apiVersion", "kind", "resources", "components", "patches"]);
  for (const key of Object.keys(k)) {
    if (!known.has(key)) throw new Error(`${rel(dir)}: kustomization field '${key}' not supported by the test's builder`);
  }
  if (seen.includes(dir)) throw new Error(`${rel(dir)}: kustomization cycle`);
  let objects: JsonObject[] = [];
  for (const r of strings(k.resources, `${rel(dir)} resources`)) {
    const p = resolve(dir, r);
    if (!existsSync(p)) throw new Error(`${rel(dir)}: resource ${r} does not exist`);
    objects.push(...(statSync(p).isDirectory() ? kustomizeBuild(p, [...seen, dir]) : loadResourceFile(p)));
  }
  for (const c of strings(k.components, `${rel(dir)} components`)) {
    const p = resolve(dir, c);
    const ck = readKustomization(p);
    if (ck.kind !== "Component") throw new Error(`${rel(p)}: not a kind: Component`);
    objects = applyPatches(p, ck, objects.concat(
      strings(ck.resources, `${rel(p)} resources`).flatMap((r) => loadResourceFile(resolve(p, r)))));
  }
  return applyPatches(dir, k, objects);
}

function applyPatches(dir: string, k: JsonObject, objects: JsonObject[]): JsonObject[] {
  const patches = k.patches ?? [];
  if (!Array.isArray(patches)) throw new Error(`${rel(dir)}: patches must be a list`);
  let out = objects;
  for (const entry of patches) {
    if (!isObject(entry)) throw new Error(`${rel(dir)}: patch entry must be a mapping`);
    if (entry.target !== undefined) throw new Error(`${rel(dir)}: patch targets are not supported by the test's builder`);
    const text = typeof entry.path === "string" ? readFileSync(resolve(dir, entry.path), "utf8")
      : typeof entry.patch === "string" ? entry.patch : undefined;
    if (text === undefined) throw new Error(`${rel(dir)}: patch needs path or patch`);
    for (const patch of parseAllDocuments(text).map((d) => d.toJS() as unknown).filter(isObject)) {
      const i = out.findIndex((o) => sameObject(o, patch));
      if (i < 0) throw new Error(`${rel(dir)}: patch for ${String(patch.kind)} matches no resource`);
      out = out.map((o, j) => (j === i ? mergePatch(o, patch) : o));
    }
  }
  return out;
}

/** Files used as strategic-merge patches by some kustomization or component (partial objects by design). */
export function patchFiles(): Set<string> {
  const out = new Set<string>();
  for (const file of listFiles(join(ROOT, "k8s"), ["kustomization.yaml"])) {
    const k = readKustomization(dirname(file));
    for (const p of Array.isArray(k.patches) ? k.patches : []) {
      if (isObject(p) && typeof p.path === "string") out.add(resolve(dirname(file), p.path));
    }
  }
  return out;
}

/** Directories under k8s/ holding a kustomization of kind Kustomization (not components). */
export function kustomizationDirs(): string[] {
  return listFiles(join(ROOT, "k8s"), ["kustomization.yaml"]).map(dirname)
    .filter((d) => readKustomization(d).kind !== "Component");
}

// ---------------------------------------------------------------------------------------------------------
// Plugin configurations embedded in the delivery artifacts

export interface EmbeddedConfig {
  where: string;            // "envoy/envoy-gateway.yaml: <json path>"
  json: string;             // what the plugin receives in proxy_on_configure
  expectValid: boolean;     // false for deliberately bad fixtures
  vmId: string;             // "" for Istio WasmPlugin (reference §10.2)
  rootId: string;
  name: string;
  /** the plugin names the lean module (a WasmPlugin url or a local filename with ws-governor-lean) */
  lean: boolean;
}

const LEAN_MODULE = /ws-governor-lean\b/;

function walk(v: unknown, path: string, visit: (o: JsonObject, path: string) => void): void {
  if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`, visit));
  else if (isObject(v)) {
    visit(v, path);
    for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k, visit);
  }
}

/** Wasm HTTP filter configs (typed_config of type ...filters.http.wasm.v3.Wasm) anywhere inside doc. */
function wasmFilterConfigs(doc: unknown, where: string, expectValid: boolean): EmbeddedConfig[] {
  const out: EmbeddedConfig[] = [];
  walk(doc, "", (o, path) => {
    if (o["@type"] !== WASM_FILTER_TYPE) return;
    const config = isObject(o.config) ? o.config : {};
    const vm = isObject(config.vm_config) ? config.vm_config : {};
    const cfg = config.configuration;
    let json = "";
    if (isObject(cfg)) {
      if (cfg["@type"] !== STRING_VALUE_TYPE) throw new Error(`${where} ${path}: configuration is not a StringValue`);
      json = typeof cfg.value === "string" ? cfg.value : "";
    }
    out.push({
      where: `${where}: ${path}`, json, expectValid,
      vmId: typeof vm.vm_id === "string" ? vm.vm_id : "",
      rootId: typeof config.root_id === "string" ? config.root_id : "",
      name: typeof config.name === "string" ? config.name : "",
      lean: LEAN_MODULE.test(JSON.stringify(vm.code ?? "")),
    });
  });
  return out;
}

function wasmPluginConfig(doc: JsonObject, where: string, expectValid: boolean): EmbeddedConfig {
  const spec = isObject(doc.spec) ? doc.spec : {};
  return {
    where: `${where}: spec.pluginConfig`,
    json: spec.pluginConfig === undefined ? "" : JSON.stringify(spec.pluginConfig),
    expectValid, vmId: "",
    rootId: typeof spec.pluginName === "string" ? spec.pluginName : "",
    name: `${isObject(doc.metadata) ? String(doc.metadata.namespace) : ""}.${isObject(doc.metadata) ? String(doc.metadata.name) : ""}`,
    lean: LEAN_MODULE.test(String(spec.url ?? "")),
  };
}

/** Every plugin configuration shipped in envoy/ and k8s/. A kustomize patch's pluginConfig is partial (it merges
 *  into the object it patches), so WasmPlugins are taken from the files that are not patches, plus every WasmPlugin
 *  a kustomize build changed (e.g. k8s/fleet's), as the build outputs it. */
export function embeddedPluginConfigs(): EmbeddedConfig[] {
  const out: EmbeddedConfig[] = [];
  for (const file of envoyBootstraps()) {
    out.push(...wasmFilterConfigs(parseYaml(readFileSync(file, "utf8")), rel(file), !isBadFixture(file)));
  }
  const patches = patchFiles();
  for (const { file, index, doc } of k8sDocuments()) {
    const where = `${rel(file)}#${index}`;
    if (doc.kind === "WasmPlugin") {
      if (!patches.has(file)) out.push(wasmPluginConfig(doc, where, !isBadFixture(file)));
    } else {
      out.push(...wasmFilterConfigs(doc, where, !isBadFixture(file)));
    }
  }
  const seen = new Set(out.map((c) => c.json));
  for (const dir of kustomizationDirs()) {
    for (const o of kustomizeBuild(dir).filter((x) => x.kind === "WasmPlugin")) {
      const c = wasmPluginConfig(o, `kustomize build ${rel(dir)}: WasmPlugin ${(o.metadata as JsonObject).name as string}`, true);
      if (!seen.has(c.json)) out.push(c);
      seen.add(c.json);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// docs/contracts.md

/** The plugin-configuration JSON block of docs/contracts.md with its // comments removed. */
export function contractDefaults(): JsonObject {
  const md = readFileSync(join(ROOT, "docs/contracts.md"), "utf8");
  const m = /## Plugin configuration[\s\S]*?```json\n([\s\S]*?)```/.exec(md);
  if (!m) throw new Error("docs/contracts.md: plugin configuration block not found");
  const text = m[1]!.split("\n").map(stripLineComment).join("\n");
  const v: unknown = JSON.parse(text);
  if (!isObject(v)) throw new Error("docs/contracts.md: plugin configuration is not an object");
  return v;
}

function stripLineComment(line: string): string {
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (inString && c === "\\") i++;
    else if (c === '"') inString = !inString;
    else if (!inString && c === "/" && line[i + 1] === "/") return line.slice(0, i);
  }
  return line;
}

/** Full stat names of docs/contracts.md's stats table, as Prometheus names (wasmcustom. stripped, tags extracted). */
export function contractPrometheusMetrics(): { envoy: Map<string, string>; endpoint: Set<string> } {
  const md = readFileSync(join(ROOT, "docs/contracts.md"), "utf8");
  const envoy = new Map<string, string>(); // name -> type
  for (const m of md.matchAll(/^\| `(ws_governor\.[a-z_]+)(?:\.[a-z]+\.<[^`]*>)?` \| (counter|gauge|histogram) \|/gm)) {
    envoy.set(m[1]!.replace(/\./g, "_"), m[2]!);
  }
  const endpoint = new Set<string>();
  const section = md.split("Filter-served Prometheus endpoint")[1] ?? "";
  for (const m of section.matchAll(/`(websocket_[a-z_]+)/g)) endpoint.add(m[1]!);
  return { envoy, endpoint };
}

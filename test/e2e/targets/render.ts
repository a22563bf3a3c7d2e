// Renders envoy/envoy.yaml for a target: plugin configuration, ports, cluster endpoints, module path.
// The result is a plain object; binary/docker targets write it as JSON (valid YAML too, and free of yaml-cpp's
// scalar-typing surprises).
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { DEFAULT_CONFIG_PATH } from "../../emulator/proxy/index.ts";

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function loadEnvoyYaml(): Obj {
  return parseYaml(readFileSync(DEFAULT_CONFIG_PATH, "utf8")) as Obj;
}

function hcmOf(doc: Obj): Obj {
  return doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
}

/** The Wasm filter's config, also inside an ExtensionWithMatcher wrapper (docs/extension-matcher.md). */
function wasmOf(doc: Obj): Obj {
  for (const x of hcmOf(doc).http_filters as Obj[]) {
    const tc = x.typed_config?.extension_config?.typed_config ?? x.typed_config;
    if (String(tc?.["@type"] ?? "").endsWith("extensions.filters.http.wasm.v3.Wasm")) return tc.config;
  }
  throw new Error("envoy/envoy.yaml has no Wasm HTTP filter");
}

/** The plugin configuration object in envoy/envoy.yaml. */
export function basePluginConfig(): Record<string, unknown> {
  return JSON.parse(wasmOf(loadEnvoyYaml()).configuration.value) as Record<string, unknown>;
}

/** Shallow merge; a key whose patch value is undefined is removed. */
export function patchConfig(base: Record<string, unknown>, patch: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

export function podNameOf(doc: Obj = loadEnvoyYaml()): string {
  return String(doc.node?.metadata?.NAME ?? "");
}

export interface RenderOptions {
  pluginConfig: Record<string, unknown>;
  listenerPort?: number;
  adminPort?: number;
  endpoints?: Array<{ host: string; port: number }>;
  wasmFilename?: string;
  /** take the Wasm filter out of its ExtensionWithMatcher: every request runs it (as a WasmPlugin installs it) */
  unwrap?: boolean;
}

export function renderBootstrap(o: RenderOptions): Obj {
  const doc = loadEnvoyYaml();
  if (o.unwrap) {
    const fs = hcmOf(doc).http_filters as Obj[];
    for (const x of fs) {
      if (x.typed_config?.extension_config?.typed_config) x.typed_config = x.typed_config.extension_config.typed_config;
    }
    if (!fs.some((x) => String(x.typed_config?.["@type"] ?? "").endsWith("extensions.filters.http.wasm.v3.Wasm"))) {
      throw new Error("renderBootstrap: unwrap left no Wasm filter directly in http_filters");
    }
  }
  const w = wasmOf(doc);
  w.configuration.value = JSON.stringify(o.pluginConfig);
  if (o.wasmFilename) w.vm_config.code.local.filename = o.wasmFilename;
  if (o.listenerPort !== undefined) doc.static_resources.listeners[0].address.socket_address.port_value = o.listenerPort;
  if (o.adminPort !== undefined) doc.admin.address.socket_address.port_value = o.adminPort;
  if (o.endpoints) {
    const cluster = doc.static_resources.clusters.find((c: Obj) => c.name === "demo_pods");
    cluster.load_assignment.endpoints = [
      { lb_endpoints: o.endpoints.map((e) => ({ endpoint: { address: { socket_address: { address: e.host, port_value: e.port } } } })) },
    ];
  }
  return doc;
}

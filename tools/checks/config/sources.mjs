// Finds the Envoy configuration in a file: a whole Envoy config (bootstrap by default), or in a Kubernetes
// manifest the Envoy objects it embeds — EnvoyFilter patch values typed by applyTo, and bootstrap overrides
// in ConfigMaps. Istio's own resources (WasmPlugin, IstioOperator, Gateway, ...) are not Envoy config.
import { parseConfig } from "./yaml.mjs";

export const BOOTSTRAP = "envoy.config.bootstrap.v3.Bootstrap";

// istio-api networking/v1alpha3/envoy_filter.proto, EnvoyFilter.ApplyTo: the Envoy message a patch value is.
export const APPLY_TO = {
  LISTENER: "envoy.config.listener.v3.Listener",
  FILTER_CHAIN: "envoy.config.listener.v3.FilterChain",
  NETWORK_FILTER: "envoy.config.listener.v3.Filter",
  HTTP_FILTER: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
  ROUTE_CONFIGURATION: "envoy.config.route.v3.RouteConfiguration",
  VIRTUAL_HOST: "envoy.config.route.v3.VirtualHost",
  HTTP_ROUTE: "envoy.config.route.v3.Route",
  CLUSTER: "envoy.config.cluster.v3.Cluster",
  EXTENSION_CONFIG: "envoy.config.core.v3.TypedExtensionConfig",
  BOOTSTRAP: BOOTSTRAP,
  LISTENER_FILTER: "envoy.config.listener.v3.ListenerFilter",
};

const get = (node, key) => (node?.t === "map" ? node.entries.find((e) => e.key === key)?.node : undefined);
const str = (node) => (node?.t === "scalar" && node.kind === "string" ? node.value : undefined);

/**
 * Targets in one file: [{ label, type, node, base, partial }] to validate (base: path prefix of node), and
 * skipped: [{ label, reason }], problems: [{ severity, line, message }] from reading the file.
 */
export function findTargets(file, text, options = {}) {
  const isJson = /\.json$/i.test(file);
  const probe = parseConfig(text, isJson ? "json" : "k8s");
  const first = probe.roots[0];
  if (!options.type && get(first, "apiVersion") && get(first, "kind")) return fromManifests(file, probe);
  const parsed = isJson ? probe : parseConfig(text, "yaml");
  const out = { targets: [], skipped: [], problems: toProblems(parsed) };
  if (!parsed.root) return out;
  if (!options.type && get(parsed.root, "services") && !get(parsed.root, "static_resources") && !get(parsed.root, "admin")) {
    out.skipped.push({ label: file, reason: "a Docker Compose file, not Envoy config" });
    return out;
  }
  out.targets.push({ label: file, type: options.type ?? BOOTSTRAP, node: parsed.root, base: "", partial: false });
  return out;
}

function toProblems(parsed) {
  return [
    ...parsed.errors.map((e) => ({ severity: "error", code: "yaml", line: e.line, message: e.message })),
    ...parsed.warnings.map((w) => ({ severity: "warning", code: "yaml", line: w.line, message: w.message })),
  ];
}

function fromManifests(file, parsed) {
  const out = { targets: [], skipped: [], problems: toProblems(parsed) };
  parsed.roots.forEach((doc, i) => {
    if (!doc) return;
    const kind = str(get(doc, "kind"));
    const where = `${file}#${i}`;
    if (kind === "EnvoyFilter") {
      const patches = get(get(doc, "spec"), "configPatches");
      (patches?.t === "seq" ? patches.items : []).forEach((cp, j) => {
        const base = `spec.configPatches[${j}].patch.value`;
        const applyTo = str(get(cp, "applyTo"));
        const op = str(get(get(cp, "patch"), "operation"));
        const value = get(get(cp, "patch"), "value");
        if (!value) return; // REMOVE has no value
        const type = APPLY_TO[applyTo];
        if (!type) {
          out.problems.push({ severity: "error", code: "envoyfilter", line: cp.line, path: `${where} spec.configPatches[${j}].applyTo`, message: `applyTo ${applyTo ?? "(missing)"}: not an EnvoyFilter target with a known Envoy type` });
          return;
        }
        out.targets.push({ label: `${where} ${base}`, type, node: value, base, partial: op === "MERGE" });
      });
    } else if (kind === "ConfigMap") {
      for (const e of get(doc, "data")?.entries ?? []) {
        if (!/bootstrap/i.test(e.key) || str(e.node) === undefined) continue;
        const inner = parseConfig(e.node.value, /\.json$/i.test(e.key) ? "json" : "yaml", e.node.line);
        out.problems.push(...toProblems(inner));
        // istio-agent merges a bootstrap override into the generated bootstrap: a partial Bootstrap.
        if (inner.root) out.targets.push({ label: `${where} data["${e.key}"]`, type: BOOTSTRAP, node: inner.root, base: "", partial: true });
      }
    } else if (kind) {
      out.skipped.push({ label: where, reason: `${kind}: not Envoy configuration` });
    }
  });
  return out;
}

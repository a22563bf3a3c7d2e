// Kubernetes/Istio manifests under k8s/: they parse, validate against the Kubernetes and Istio API schemas
// (OpenAPI/CRD schemas compiled into the kubernetes-models packages, offline), the kustomizations build, the
// embedded Envoy configuration passes check-envoy-config.mjs, and the wiring (module mounts, stats inclusion,
// stats_tags) is consistent.
import assert from "node:assert/strict";
import { posix } from "node:path";
import { test } from "node:test";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Service } from "kubernetes-models/v1";
import { WasmPlugin } from "@kubernetes-models/istio/extensions.istio.io/v1alpha1";
import { EnvoyFilter } from "@kubernetes-models/istio/networking.istio.io/v1alpha3";
import { Gateway as GatewayV1beta1, VirtualService as VirtualServiceV1beta1 } from "@kubernetes-models/istio/networking.istio.io/v1beta1";
import { IstioOperator } from "@kubernetes-models/istio/install.istio.io/v1alpha1";
import { parse as parseYaml } from "yaml";
import {
  KUSTOMIZE_KINDS, WASM_FILTER_TYPE, describeErrors, isObject, k8sDocuments, kustomizationDirs, kustomizeBuild, patchFiles, rel,
  runChecker, tempJson,
} from "./support.ts";
import type { JsonObject } from "./support.ts";

type Model = new (data: never) => { validate(): void };

// @kubernetes-models/istio 2.3.0 (the newest release for Node 20; 3.x needs Node 22) has no networking.istio.io/v1
// models. Istio 1.22 promoted Gateway and VirtualService to v1 with the v1beta1 schema unchanged, so a v1 object
// is validated by the v1beta1 model under that apiVersion.
function asV1(model: Model): Model {
  return class {
    private readonly inner: { validate(): void };
    constructor(data: never) {
      this.inner = new model({ ...(data as object), apiVersion: "networking.istio.io/v1beta1" } as never);
    }
    validate(): void {
      this.inner.validate();
    }
  };
}
const Gateway = asV1(GatewayV1beta1 as unknown as Model);
const VirtualService = asV1(VirtualServiceV1beta1 as unknown as Model);
const MODELS: Record<string, Model> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "extensions.istio.io/v1alpha1/WasmPlugin": WasmPlugin,
  "networking.istio.io/v1alpha3/EnvoyFilter": EnvoyFilter,
  "networking.istio.io/v1/Gateway": Gateway,
  "networking.istio.io/v1/VirtualService": VirtualService,
  "install.istio.io/v1alpha1/IstioOperator": IstioOperator,
};

// The CRD schemas in @kubernetes-models/istio do not forbid unknown fields (the API server prunes them, or
// rejects them with kubectl --validate=strict). Spec keys of the CRDs we ship, from istio-api
// extensions/v1alpha1/wasm.proto and networking/v1alpha3/envoy_filter.proto:
const SPEC_KEYS: Record<string, string[]> = {
  WasmPlugin: ["selector", "targetRef", "targetRefs", "url", "sha256", "imagePullPolicy", "imagePullSecret",
    "verificationKey", "pluginConfig", "pluginName", "phase", "priority", "vmConfig", "match", "type", "failStrategy"],
  EnvoyFilter: ["workloadSelector", "targetRefs", "configPatches", "priority"],
};

// Message type of an EnvoyFilter patch value, by applyTo (istio-api envoy_filter.proto ApplyTo).
const PATCH_TYPES: Record<string, string> = {
  HTTP_FILTER: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
  NETWORK_FILTER: "envoy.config.listener.v3.Filter",
  LISTENER_FILTER: "envoy.config.listener.v3.ListenerFilter",
  FILTER_CHAIN: "envoy.config.listener.v3.FilterChain",
  LISTENER: "envoy.config.listener.v3.Listener",
  CLUSTER: "envoy.config.cluster.v3.Cluster",
  ROUTE_CONFIGURATION: "envoy.config.route.v3.RouteConfiguration",
  VIRTUAL_HOST: "envoy.config.route.v3.VirtualHost",
  HTTP_ROUTE: "envoy.config.route.v3.Route",
  EXTENSION_CONFIG: "envoy.config.core.v3.TypedExtensionConfig",
  BOOTSTRAP: "envoy.config.bootstrap.v3.Bootstrap",
};

const STATS_TAGS = ["reason", "decision", "direction", "kind", "code"].map((t) => ({
  tag_name: t, regex: `^wasmcustom\\.ws_governor\\.\\w+(\\.${t}\\.(\\w+))$`,
}));

function validateObject(doc: JsonObject, where: string): void {
  const key = `${String(doc.apiVersion)}/${String(doc.kind)}`;
  const model = MODELS[key];
  assert.ok(model, `${where}: no schema known for ${key}`);
  try {
    new model(doc as never).validate();
  } catch (e) {
    assert.fail(`${where} (${key}): ${(e as Error).message}`);
  }
  const meta = doc.metadata as JsonObject;
  assert.ok(isObject(meta) && typeof meta.name === "string", `${where}: metadata.name`);
  if (doc.kind !== "Namespace") assert.equal(typeof meta.namespace, "string", `${where}: namespace not set`);
  const known = SPEC_KEYS[String(doc.kind)];
  if (known) {
    for (const k of Object.keys(doc.spec as JsonObject)) assert.ok(known.includes(k), `${where}: unknown spec field '${k}'`);
  }
}

const docs = k8sDocuments();
const builds = kustomizationDirs().map((dir) => ({ dir, objects: kustomizeBuild(dir) }));

test("delivery: every manifest under k8s/ parses and names apiVersion and kind", () => {
  assert.ok(docs.length >= 10, `only ${docs.length} documents`);
  for (const { file, index, doc } of docs) {
    assert.equal(typeof doc.apiVersion, "string", `${rel(file)}#${index}: apiVersion`);
    assert.equal(typeof doc.kind, "string", `${rel(file)}#${index}: kind`);
  }
});

test("delivery: every Kubernetes/Istio object under k8s/ validates against its API schema", () => {
  const patches = patchFiles(); // partial objects, validated after merging by the kustomize test below
  for (const { file, index, doc } of docs) {
    if (KUSTOMIZE_KINDS.has(String(doc.kind)) || patches.has(file)) continue;
    validateObject(doc, `${rel(file)}#${index}`);
  }
});

test("delivery: every kustomization builds and its output validates", () => {
  const dirs = builds.map((b) => rel(b.dir)).sort();
  assert.deepEqual(dirs, ["k8s", "k8s/base", "k8s/envoyfilter", "k8s/file", "k8s/fleet", "k8s/fleet/etcd", "k8s/gateway", "k8s/istio-1.27", "k8s/lean"]);
  for (const { dir, objects } of builds) {
    const ids = new Set<string>();
    for (const o of objects) {
      validateObject(o, `kustomize build ${rel(dir)}`);
      const m = o.metadata as JsonObject;
      const id = `${String(o.kind)}/${String(m.namespace)}/${String(m.name)}`;
      assert.ok(!ids.has(id), `${rel(dir)}: ${id} twice`);
      ids.add(id);
    }
  }
});

test("delivery: Envoy configuration embedded in k8s/ passes check-envoy-config.mjs --type", () => {
  const byType = new Map<string, Array<{ where: string; value: unknown }>>();
  const add = (type: string, where: string, value: unknown) => byType.set(type, [...(byType.get(type) ?? []), { where, value }]);
  for (const { file, index, doc } of docs) {
    const where = `${rel(file)}#${index}`;
    if (doc.kind === "EnvoyFilter") {
      for (const [i, p] of ((doc.spec as JsonObject).configPatches as JsonObject[]).entries()) {
        const patch = p.patch as JsonObject;
        if (patch.operation === "REMOVE") continue;
        const type = PATCH_TYPES[String(p.applyTo)];
        assert.ok(type, `${where}: applyTo ${String(p.applyTo)} has no message type in the test`);
        add(type, `${where} configPatches[${i}]`, patch.value);
      }
    }
    if (doc.kind === "ConfigMap" && isObject(doc.data) && typeof doc.data["custom_bootstrap.json"] === "string") {
      add("envoy.config.bootstrap.v3.Bootstrap", `${where} custom_bootstrap.json`, JSON.parse(doc.data["custom_bootstrap.json"]));
    }
  }
  assert.ok(byType.has(PATCH_TYPES.HTTP_FILTER!), "no EnvoyFilter HTTP_FILTER patch found");
  assert.ok(byType.has("envoy.config.bootstrap.v3.Bootstrap"), "no bootstrap override found");
  for (const [type, items] of byType) {
    const temps = items.map((it, i) => ({ ...it, tmp: tempJson(`embedded-${i}`, it.value) }));
    try {
      const report = runChecker(temps.map((t) => t.tmp.path), type);
      const names = temps.map((t) => `${t.tmp.path} = ${t.where}`).join("\n");
      assert.equal(report.exitCode, 0, `${type}\n${names}\n${describeErrors(report)}`);
      assert.equal(report.files.length, items.length);
    } finally {
      for (const t of temps) t.tmp.cleanup();
    }
  }
});

function podTemplates(objects: JsonObject[], namespace: string, labels: JsonObject): JsonObject[] {
  return objects.filter((o) => o.kind === "Deployment" && (o.metadata as JsonObject).namespace === namespace)
    .map((o) => ((o.spec as JsonObject).template as JsonObject))
    .filter((t) => {
      const podLabels = ((t.metadata as JsonObject).labels ?? {}) as JsonObject;
      return Object.entries(labels).every(([k, v]) => podLabels[k] === v);
    });
}

function annotations(t: JsonObject): Record<string, string> {
  return ((t.metadata as JsonObject).annotations ?? {}) as Record<string, string>;
}

/** Local module paths each WasmPlugin/EnvoyFilter of a build expects inside istio-proxy, with their pods. */
function localModules(objects: JsonObject[]): Array<{ what: string; path: string; pods: JsonObject[] }> {
  const out: Array<{ what: string; path: string; pods: JsonObject[] }> = [];
  for (const o of objects) {
    const meta = o.metadata as JsonObject;
    const spec = o.spec as JsonObject;
    const what = `${String(o.kind)} ${String(meta.namespace)}/${String(meta.name)}`;
    if (o.kind === "WasmPlugin" && String(spec.url).startsWith("file://")) {
      const labels = ((spec.selector as JsonObject).matchLabels ?? {}) as JsonObject;
      out.push({ what, path: String(spec.url).slice("file://".length), pods: podTemplates(objects, String(meta.namespace), labels) });
    }
    if (o.kind === "EnvoyFilter") {
      const labels = ((spec.workloadSelector as JsonObject).labels ?? {}) as JsonObject;
      const files: string[] = [];
      JSON.stringify(spec, (k, v: unknown) => {
        if (k === "local" && isObject(v) && typeof v.filename === "string") files.push(v.filename);
        return v;
      });
      for (const path of files) out.push({ what, path, pods: podTemplates(objects, String(meta.namespace), labels) });
    }
  }
  return out;
}

test("delivery: local-file modules are mounted into istio-proxy by sidecar.istio.io/userVolume annotations", () => {
  let checked = 0;
  for (const { dir, objects } of builds) {
    for (const { what, path, pods } of localModules(objects)) {
      assert.ok(pods.length > 0, `kustomize build ${rel(dir)}: ${what} selects no pod in the build`);
      for (const t of pods) {
        const a = annotations(t);
        assert.ok(a["sidecar.istio.io/userVolume"] && a["sidecar.istio.io/userVolumeMount"], `${rel(dir)}: ${what}: pods lack userVolume annotations`);
        // the injector ranges over fromJSON(annotation) and uses the map key as the volume name
        const volumes = JSON.parse(a["sidecar.istio.io/userVolume"]) as JsonObject;
        const mounts = JSON.parse(a["sidecar.istio.io/userVolumeMount"]) as JsonObject;
        assert.ok(isObject(volumes) && isObject(mounts), "annotations must be JSON objects keyed by volume name");
        const mount = Object.entries(mounts).find(([, m]) => isObject(m) && posix.dirname(path).startsWith(String(m.mountPath)));
        assert.ok(mount, `${rel(dir)}: ${what}: nothing mounted at ${posix.dirname(path)}`);
        assert.ok(isObject(volumes[mount[0]]), `${rel(dir)}: volume ${mount[0]} mounted but not declared`);
        checked++;
      }
    }
  }
  assert.ok(checked >= 2, "expected the file:// WasmPlugin and the EnvoyFilter variants to be checked");
});

test("delivery: governed pods keep wasmcustom.ws_governor stats and get the contract's stats_tags", () => {
  for (const { dir, objects } of builds) {
    for (const o of objects.filter((x) => x.kind === "WasmPlugin" || x.kind === "EnvoyFilter")) {
      const meta = o.metadata as JsonObject;
      const spec = o.spec as JsonObject;
      const labels = (o.kind === "WasmPlugin" ? (spec.selector as JsonObject).matchLabels : (spec.workloadSelector as JsonObject).labels) as JsonObject;
      for (const t of podTemplates(objects, String(meta.namespace), labels)) {
        const a = annotations(t);
        const proxyConfig: unknown = parseYaml(a["proxy.istio.io/config"] ?? "{}");
        const prefixes = [
          ...((isObject(proxyConfig) && isObject(proxyConfig.proxyStatsMatcher) ? proxyConfig.proxyStatsMatcher.inclusionPrefixes : []) as string[]),
          ...(a["sidecar.istio.io/statsInclusionPrefixes"] ?? "").split(","),
        ];
        assert.ok(prefixes.includes("wasmcustom.ws_governor"), `${rel(dir)}: pods of ${String(meta.name)} do not include wasmcustom.ws_governor`);
        const override = a["sidecar.istio.io/bootstrapOverride"];
        const cm = objects.find((x) => x.kind === "ConfigMap" && (x.metadata as JsonObject).name === override &&
          (x.metadata as JsonObject).namespace === meta.namespace);
        assert.ok(cm, `${rel(dir)}: bootstrapOverride ConfigMap '${override}' not in the build`);
        const boot = JSON.parse(String((cm.data as JsonObject)["custom_bootstrap.json"])) as JsonObject;
        assert.deepEqual((boot.stats_config as JsonObject).stats_tags, STATS_TAGS);
      }
    }
  }
  const op = docs.find((d) => d.doc.kind === "IstioOperator");
  assert.ok(op, "no mesh-wide IstioOperator example");
  const mesh = ((op.doc.spec as JsonObject).meshConfig as JsonObject).defaultConfig as JsonObject;
  assert.ok(((mesh.proxyStatsMatcher as JsonObject).inclusionPrefixes as string[]).includes("wasmcustom.ws_governor"));
});

test("delivery: WasmPlugins and EnvoyFilters follow the plugin's deployment contract", () => {
  const urls: string[] = [];
  const partial = patchFiles(); // kustomize patches: checked after merging, in the builds
  for (const { file, index, doc } of docs.filter((d) => !partial.has(d.file))) {
    const where = `${rel(file)}#${index}`;
    const spec = doc.spec as JsonObject;
    if (doc.kind === "WasmPlugin") {
      urls.push(String(spec.url));
      assert.equal(spec.pluginName, "ws_governor", `${where}: pluginName must be the root_id`);
      assert.match(String(spec.url), /^(oci|file):\/\//, `${where}: url scheme`);
      assert.ok(spec.failStrategy, `${where}: failStrategy must be chosen explicitly`);
      assert.ok(spec.phase, `${where}: phase must be chosen explicitly`);
      const config = spec.pluginConfig as JsonObject;
      const gateway = JSON.stringify(spec.selector).includes("ingressgateway");
      assert.equal(config.mode, gateway ? "upstream" : "inbound", where);
      if (!gateway) assert.deepEqual((spec.match as JsonObject[]).map((m) => m.mode), ["SERVER"], `${where}: inbound only`);
    }
    if (doc.kind === "EnvoyFilter") {
      for (const p of spec.configPatches as JsonObject[]) {
        const match = p.match as JsonObject;
        const patch = p.patch as JsonObject;
        if (p.applyTo === "CLUSTER") { // fleet mode's etcd cluster (test/delivery/fleet.test.ts checks its wiring)
          assert.equal(patch.operation, "ADD", where);
          assert.equal(typeof (patch.value as JsonObject).name, "string", `${where}: the cluster needs the name fleet.cluster uses`);
          continue;
        }
        assert.equal(p.applyTo, "HTTP_FILTER");
        assert.equal(patch.operation, "INSERT_BEFORE");
        assert.equal(JSON.stringify(match.listener).includes('"subFilter":{"name":"envoy.filters.http.router"}'), true, `${where}: before the router`);
        const value = patch.value as JsonObject;
        // the Wasm filter wrapped in ExtensionWithMatcher + SkipFilter: plain requests skip it (docs/extension-matcher.md)
        const outer = value.typed_config as JsonObject;
        assert.equal(outer["@type"], "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher", where);
        assert.ok(outer.xds_matcher, `${where}: xds_matcher`);
        const tc = (outer.extension_config as JsonObject).typed_config as JsonObject;
        assert.equal(tc["@type"], WASM_FILTER_TYPE);
        const config = tc.config as JsonObject;
        assert.equal(config.root_id, "ws_governor");
        assert.ok((config.vm_config as JsonObject).vm_id, `${where}: EnvoyFilter variants exist to set a vm_id`);
        const plugin = JSON.parse(String((config.configuration as JsonObject).value)) as JsonObject;
        assert.equal(plugin.mode, match.context === "GATEWAY" ? "upstream" : "inbound", where);
        assert.ok(["SIDECAR_INBOUND", "GATEWAY"].includes(String(match.context)), where);
      }
    }
  }
  assert.ok(urls.some((u) => u.startsWith("oci://")), "no oci:// WasmPlugin");
  assert.ok(urls.some((u) => u.startsWith("file://")), "no file:// WasmPlugin");
});

test("delivery: the default manifests load on Istio 1.22–1.28 (no FAIL_RELOAD, no failure_policy); k8s/istio-1.27 opts in", () => {
  // WasmPlugin failStrategy FAIL_RELOAD exists only from Istio 1.27 (istio/api#3471); Envoy's failure_policy only
  // from 1.33 (Istio 1.25). Older API servers / Envoys refuse either.
  const partial = patchFiles();
  for (const { file, index, doc } of docs) {
    const where = `${rel(file)}#${index}`;
    const text = JSON.stringify(doc);
    if (rel(file).startsWith("k8s/istio-1.27/")) continue;
    assert.ok(!text.includes("FAIL_RELOAD"), `${where}: FAIL_RELOAD in a default manifest`);
    assert.ok(!text.includes("failure_policy"), `${where}: failure_policy is unknown to Envoy 1.30–1.32`);
    if (doc.kind === "WasmPlugin" && !partial.has(file)) assert.equal((doc.spec as JsonObject).failStrategy, "FAIL_OPEN", where);
  }
  for (const { dir, objects } of builds.filter((b) => !rel(b.dir).startsWith("k8s/istio-1.27"))) { // patched ones too
    for (const o of objects.filter((x) => x.kind === "WasmPlugin")) assert.equal((o.spec as JsonObject).failStrategy, "FAIL_OPEN", rel(dir));
  }
  const overlay = builds.find((b) => rel(b.dir) === "k8s/istio-1.27");
  assert.ok(overlay, "k8s/istio-1.27 builds");
  const plugins = overlay.objects.filter((o) => o.kind === "WasmPlugin");
  assert.equal(plugins.length, 1);
  assert.equal((plugins[0].spec as JsonObject).failStrategy, "FAIL_RELOAD");
  assert.equal(((plugins[0].spec as JsonObject).pluginConfig as JsonObject).mode, "inbound", "the rest of the default install is kept");
});

// Fleet mode's delivery files are wired together: envoy/envoy-fleet.yaml (fleet module, `fleet.cluster` = an
// HTTP/1.1 cluster of the file), the k8s/fleet overlay (WasmPlugin on the fleet module, its `fleet.cluster` = the
// cluster the EnvoyFilter adds to the same pods, that cluster's address = the etcd client Service of the build), and
// the example etcd (3 members named in --initial-cluster, compaction on, resources requested, outside the mesh).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { ROOT, WASM_FILTER_TYPE, isObject, kustomizeBuild } from "./support.ts";
import type { JsonObject } from "./support.ts";

function at(v: unknown, ...path: Array<string | number>): any {
  let cur = v;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

const ms = (d: string): number => {
  const m = /^(\d+(?:\.\d+)?)s$/.exec(d);
  assert.ok(m, `duration ${d}`);
  return Number(m[1]) * 1000;
};

/** An Envoy cluster that proxy_http_call can use for etcd's JSON gateway: HTTP/1.1, connect timeout under the wait. */
function assertEtcdCluster(c: JsonObject, fleet: JsonObject, where: string): { host: string; port: number } {
  assert.ok(["STRICT_DNS", "STATIC", "LOGICAL_DNS"].includes(String(c.type)), `${where}: cluster type ${String(c.type)}`);
  const opts = at(c, "typed_extension_protocol_options", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
  assert.deepEqual(at(opts, "explicit_http_config"), { http_protocol_options: {} }, `${where}: HTTP/1.1 to the JSON gateway`);
  assert.ok(ms(String(c.connect_timeout)) < Number(fleet.call_timeout_ms ?? 250), `${where}: connect_timeout under call_timeout_ms`);
  assert.equal(at(c, "load_assignment", "cluster_name"), c.name, where);
  const eps = (at(c, "load_assignment", "endpoints", 0, "lb_endpoints") as JsonObject[]).map((e) => at(e, "endpoint", "address", "socket_address"));
  assert.equal(eps.length, 1, `${where}: one DNS name for the members`);
  return { host: String(eps[0].address), port: Number(eps[0].port_value) };
}

test("delivery: envoy/envoy-fleet.yaml loads the fleet module and names one of its own clusters for etcd", () => {
  const doc = parseYaml(readFileSync(join(ROOT, "envoy/envoy-fleet.yaml"), "utf8")) as JsonObject;
  const hcm = at(doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config");
  assert.equal(hcm.use_remote_address, true, "edge proxy, as envoy-gateway.yaml");
  // wrapped in ExtensionWithMatcher + SkipFilter like every bootstrap in envoy/ (docs/extension-matcher.md)
  const wasm = (hcm.http_filters as JsonObject[]).find((f) =>
    at(f, "typed_config", "extension_config", "typed_config", "@type") === WASM_FILTER_TYPE);
  const config = at(wasm, "typed_config", "extension_config", "typed_config", "config");
  assert.equal(at(config, "vm_config", "code", "local", "filename"), "/etc/envoy/ws-governor-fleet.wasm");
  assert.equal(at(config, "vm_config", "vm_id"), "ws_governor");
  const plugin = JSON.parse(String(at(config, "configuration", "value"))) as JsonObject;
  assert.equal(plugin.mode, "upstream", "a gateway fleet: each backend pod capped over the fleet at its 101");
  assert.equal(plugin.pod_name, undefined);
  assert.ok(Number(plugin.max_connections_per_pod) > 0);
  const fleet = plugin.fleet as JsonObject;
  assert.ok(isObject(fleet));
  const clusters = at(doc, "static_resources", "clusters") as JsonObject[];
  const etcd = clusters.find((c) => c.name === fleet.cluster);
  assert.ok(etcd, `fleet.cluster ${String(fleet.cluster)} is not a cluster of the file`);
  assert.equal(assertEtcdCluster(etcd, fleet, "envoy-fleet.yaml").port, 2379, "etcd's client port");
  // the same stats_tags as the other bootstraps (the fleet counters have none yet, the local ones keep theirs)
  const gw = parseYaml(readFileSync(join(ROOT, "envoy/envoy-gateway.yaml"), "utf8")) as JsonObject;
  assert.deepEqual(at(doc, "stats_config"), at(gw, "stats_config"));
});

const build = kustomizeBuild(join(ROOT, "k8s/fleet"));
const find = (kind: string, name?: string) => build.filter((o) => o.kind === kind && (name === undefined || at(o, "metadata", "name") === name));

test("delivery: k8s/fleet puts the fleet module on the gateway and adds the etcd cluster its config names to the same pods", () => {
  const plugins = find("WasmPlugin");
  assert.equal(plugins.length, 1, "one WasmPlugin: the gateway's, switched to the fleet module (not both)");
  const spec = plugins[0].spec as JsonObject;
  assert.match(String(spec.url), /^oci:\/\/.*\/ws-governor-fleet[:@]/, "the fleet module's artifact (make oci: build/oci-fleet)");
  assert.equal(spec.failStrategy, "FAIL_OPEN");
  const config = spec.pluginConfig as JsonObject;
  assert.equal(config.mode, "upstream", "the gateway's mode: each backend pod capped over the fleet at its 101");
  assert.equal(config.pod_name, undefined);
  const fleet = config.fleet as JsonObject;

  const filters = find("EnvoyFilter");
  const clusterPatches = filters.flatMap((f) => ((f.spec as JsonObject).configPatches as JsonObject[])
    .filter((p) => p.applyTo === "CLUSTER").map((p) => ({ f, p })));
  assert.equal(clusterPatches.length, 1);
  const { f, p } = clusterPatches[0];
  assert.deepEqual(at(f, "spec", "workloadSelector", "labels"), at(spec, "selector", "matchLabels"), "the cluster goes to the pods the WasmPlugin runs on");
  assert.equal(at(f, "metadata", "namespace"), at(plugins[0], "metadata", "namespace"));
  assert.equal(at(p, "match", "context"), "GATEWAY");
  assert.equal(at(p, "patch", "operation"), "ADD");
  const cluster = at(p, "patch", "value") as JsonObject;
  assert.equal(cluster.name, fleet.cluster, "fleet.cluster = the EnvoyFilter's cluster name");
  const { host, port } = assertEtcdCluster(cluster, fleet, "k8s/fleet EnvoyFilter");

  // the address is the build's etcd client Service, on its client port
  const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(host);
  assert.ok(m, `${host}: a Service DNS name`);
  const svc = find("Service", m[1]).find((s) => at(s, "metadata", "namespace") === m[2]);
  assert.ok(svc, `no Service ${m[1]} in namespace ${m[2]} in the build`);
  const sp = (at(svc, "spec", "ports") as JsonObject[]).find((x) => x.port === port);
  assert.ok(sp, `Service ${m[1]} has no port ${port}`);
  assert.equal(sp.targetPort, "client");
  assert.equal(at(svc, "spec", "clusterIP"), "None", "headless: one record per ready member for STRICT_DNS");
  assert.notEqual(at(svc, "spec", "publishNotReadyAddresses"), true, "clients reach ready members only");
});

test("delivery: k8s/fleet/etcd is a 3-member StatefulSet with compaction, requests and a stable peer Service", () => {
  const [sts] = find("StatefulSet", "etcd");
  assert.ok(sts);
  const spec = sts.spec as JsonObject;
  assert.equal(spec.replicas, 3);
  const ns = String(at(sts, "metadata", "namespace"));
  const [c] = at(spec, "template", "spec", "containers") as JsonObject[];
  const args = [...(c.command as string[]), ...(c.args as string[])];
  const flag = (n: string) => args.find((a) => a.startsWith(`--${n}=`))?.slice(n.length + 3);
  assert.match(String(flag("auto-compaction-retention")), /^\d+[hm]?$/, "compaction keeps the revision history small");
  assert.equal(flag("initial-cluster-state"), "new");
  const members = String(flag("initial-cluster")).split(",").map((x) => x.split("=")[0]);
  assert.deepEqual(members, [0, 1, 2].map((i) => `etcd-${i}`), "every replica named in --initial-cluster");
  assert.equal(flag("name"), "$(POD_NAME)");
  assert.ok(at(c, "resources", "requests", "cpu") && at(c, "resources", "requests", "memory"), "resource requests");
  assert.equal(at(c, "readinessProbe", "httpGet", "path"), "/health");
  // the governing Service publishes members before they are ready (they must find each other to become ready)
  const peer = find("Service", String(spec.serviceName)).find((s) => at(s, "metadata", "namespace") === ns);
  assert.ok(peer, `governing Service ${String(spec.serviceName)}`);
  assert.equal(at(peer, "spec", "clusterIP"), "None");
  assert.equal(at(peer, "spec", "publishNotReadyAddresses"), true);
  assert.deepEqual((at(peer, "spec", "ports") as JsonObject[]).map((p) => p.port).sort(), [2379, 2380]);
  // outside the mesh (the gateway talks plaintext to it), quorum kept through drains
  const [nsObj] = find("Namespace", ns);
  assert.equal(at(nsObj, "metadata", "labels", "istio-injection"), "disabled");
  assert.equal(at(spec, "template", "metadata", "annotations", "sidecar.istio.io/inject"), "false");
  const [pdb] = find("PodDisruptionBudget", "etcd");
  assert.equal(at(pdb, "spec", "maxUnavailable"), 1);
  // labelled as an example in every file
  for (const f of ["kustomization.yaml", "statefulset.yaml"]) {
    assert.match(readFileSync(join(ROOT, "k8s/fleet/etcd", f), "utf8"), /NOT FOR PRODUCTION/, f);
  }
});

test("delivery: envoy/docker-compose.fleet.yaml runs envoy-fleet.yaml unchanged: services named after its hostnames", () => {
  const compose = parseYaml(readFileSync(join(ROOT, "envoy/docker-compose.fleet.yaml"), "utf8"), { merge: true }) as JsonObject;
  const services = compose.services as JsonObject;
  const doc = parseYaml(readFileSync(join(ROOT, "envoy/envoy-fleet.yaml"), "utf8")) as JsonObject;
  const hosts = (at(doc, "static_resources", "clusters") as JsonObject[])
    .map((c) => at(c, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address", "socket_address"));
  for (const h of hosts) assert.ok(isObject(services[String(h.address)]), `no compose service ${String(h.address)} for the cluster address`);
  assert.match(JSON.stringify(at(services, "etcd", "command")), /--advertise-client-urls=http:\/\/etcd:2379/);
  assert.match(JSON.stringify(at(services, "etcd", "command")), /--auto-compaction-retention=/);
  assert.match(JSON.stringify(at(services, "ws-backend", "command")), /"--port","8081","--host","0.0.0.0"/);
  const envoys = Object.keys(services).filter((n) => /^envoy/.test(n));
  assert.ok(envoys.length >= 2, "a fleet: at least two Envoy replicas");
  for (const n of envoys) {
    const vols = at(services, n, "volumes") as string[];
    assert.ok(vols.some((v) => v.endsWith(":/etc/envoy/ws-governor-fleet.wasm:ro") && v.includes("build/ws-governor-fleet.wasm")), `${n}: fleet module mount`);
    assert.ok(vols.some((v) => v.includes("./envoy-fleet.yaml}:/etc/envoy/envoy.yaml")), `${n}: envoy-fleet.yaml`);
  }
});

// docs/extension-matcher.md is executable: its Envoy YAML block replaces the Wasm filter of envoy/envoy.yaml and runs in
// the loopback proxy with the release module (build/ws-governor.wasm, `make build`); its Istio block is checked against
// the shipped EnvoyFilter. Envoy behaviour modelled: see matcher.test.ts (match_delegate/config.cc, wasm context.cc).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import type { PluginHandleImpl } from "./host/index.ts";
import { DEFAULT_CONFIG_PATH, REPO_ROOT, readBootstrap, startProxy, type RunningProxy } from "./proxy/index.ts";
import { evaluate } from "./proxy/matcher.ts";
import { startPods, type PodServer } from "../support/pods.ts";
import { closeWs, connectWs, httpRequest, type WsOutcome } from "../support/ws-client.ts";

const T_WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** the ```yaml block after `<!-- extension-matcher:<marker>` in docs/extension-matcher.md */
function docBlock(marker: string): unknown {
  const md = readFileSync(path.join(REPO_ROOT, "docs/extension-matcher.md"), "utf8");
  const at = md.indexOf(`<!-- extension-matcher:${marker}`);
  assert.ok(at >= 0, `marker ${marker} in docs/extension-matcher.md`);
  const m = /```yaml\n([\s\S]*?)\n```/.exec(md.slice(at));
  assert.ok(m, `yaml block after ${marker}`);
  return parseYaml(m[1]);
}

const httpFilters = (doc: Obj): Obj[] => doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
const load = (file: string): Obj => parseYaml(readFileSync(file, "utf8")) as Obj;
const endpointPaths = (wasmTypedConfig: Obj): string[] => {
  const cfg = JSON.parse(wasmTypedConfig.config.configuration.value) as Obj;
  return [cfg.metrics_path, cfg.health_path].filter((p): p is string => typeof p === "string" && p.length > 0);
};

/** the Wasm filter's typed_config of an http_filters entry, inside an ExtensionWithMatcher or not */
const innerOf = (f: Obj): Obj | undefined => f.typed_config?.extension_config?.typed_config ?? f.typed_config;
const isWasm = (f: Obj) => innerOf(f)?.["@type"] === T_WASM;

/** the bootstrap with its Wasm entry wrapped in the documented ExtensionWithMatcher (xds_matcher from the doc) */
function wrapBootstrap(doc: Obj, xdsMatcher: unknown): Obj {
  const fs = httpFilters(doc);
  const i = fs.findIndex(isWasm);
  assert.ok(i >= 0, "a Wasm filter entry");
  const [entry] = docBlock("envoy") as Obj[];
  fs[i] = { ...entry, typed_config: { ...entry.typed_config, xds_matcher: xdsMatcher,
    extension_config: { ...entry.typed_config.extension_config, typed_config: innerOf(fs[i]) } } };
  return doc;
}

/** the bootstrap with its Wasm entry unwrapped (the filter as it was shipped before issue 13 P0) */
function unwrapBootstrap(doc: Obj): Obj {
  const fs = httpFilters(doc);
  const i = fs.findIndex(isWasm);
  fs[i] = { name: "envoy.filters.http.wasm", typed_config: innerOf(fs[i]) };
  return doc;
}

describe("docs/extension-matcher.md: the YAML", () => {
  test("the Envoy block is envoy.yaml's Wasm entry as shipped (wrapped)", () => {
    const [entry] = docBlock("envoy") as Obj[];
    assert.deepEqual(entry, httpFilters(load(DEFAULT_CONFIG_PATH)).find(isWasm));
  });

  test("every shipped bootstrap in envoy/ and EnvoyFilter in k8s/ wraps its Wasm filter with the documented matcher", () => {
    const [entry] = docBlock("envoy") as Obj[];
    const files = readdirSync(path.join(REPO_ROOT, "envoy")).filter((f) => f.endsWith(".yaml"))
      .map((f) => path.join(REPO_ROOT, "envoy", f)).filter((f) => load(f)?.static_resources);
    const values = [...files.map((f) => httpFilters(load(f)).find(isWasm)!),
      ...["k8s/envoyfilter/envoyfilter.yaml", "k8s/gateway/envoyfilter-gateway.yaml"]
        .map((f) => load(path.join(REPO_ROOT, f)).spec.configPatches[0].patch.value)];
    for (const v of values) {
      assert.equal(v.typed_config["@type"], entry.typed_config["@type"]);
      assert.deepEqual(v.typed_config.xds_matcher, entry.typed_config.xds_matcher);
    }
  });

  test("every bootstrap in envoy/ wrapped: parses; its endpoint paths (with a query) are not skipped, '/' is", () => {
    const [entry] = docBlock("envoy") as Obj[];
    const files = readdirSync(path.join(REPO_ROOT, "envoy")).filter((f) => f.endsWith(".yaml"))
      .map((f) => path.join(REPO_ROOT, "envoy", f)).filter((f) => load(f)?.static_resources);
    assert.ok(files.length >= 3);
    for (const f of files) {
      const doc = load(f);
      const paths = endpointPaths(innerOf(httpFilters(doc).find(isWasm)!)!);
      const tree = readBootstrap(wrapBootstrap(doc, entry.typed_config.xds_matcher)).listener.hcm.wasm!.skipMatcher!;
      for (const p of paths) {
        assert.equal(evaluate(tree, [[":path", p]]), undefined, `${f}: ${p}`);
        assert.equal(evaluate(tree, [[":path", `${p}?x=1`]]), undefined, `${f}: ${p}?x=1`);
      }
      assert.equal(evaluate(tree, [[":path", "/"]])?.action, "skip", f);
      assert.equal(evaluate(tree, [[":path", "/"], ["upgrade", "websocket"]]), undefined, f);
    }
  });

  test("the Istio block: the shipped EnvoyFilter's value, wrapped with the same matcher; the gateway's paths covered", () => {
    const [entry] = docBlock("envoy") as Obj[];
    const ef = docBlock("istio") as Obj;
    const shipped = load(path.join(REPO_ROOT, "k8s/envoyfilter/envoyfilter.yaml"));
    const patch = ef.spec.configPatches[0];
    const want = shipped.spec.configPatches[0];
    assert.deepEqual(patch.match, want.match);
    assert.equal(patch.applyTo, "HTTP_FILTER");
    assert.equal(patch.patch.operation, want.patch.operation);
    const v = patch.patch.value;
    assert.deepEqual(v, want.patch.value);
    assert.deepEqual(v.typed_config.xds_matcher, entry.typed_config.xds_matcher);
    // the value is an HttpFilter the loopback proxy reads like Envoy's bootstrap entry
    const doc = load(DEFAULT_CONFIG_PATH);
    httpFilters(doc)[0] = v;
    const tree = readBootstrap(doc).listener.hcm.wasm!.skipMatcher!;
    const gw = load(path.join(REPO_ROOT, "k8s/gateway/envoyfilter-gateway.yaml"));
    for (const p of [...endpointPaths(innerOf(want.patch.value)!), ...endpointPaths(innerOf(gw.spec.configPatches[0].patch.value)!)]) {
      assert.equal(evaluate(tree, [[":path", p]]), undefined, p);
    }
  });
});

describe("docs/extension-matcher.md: envoy.yaml wrapped, release module in the loopback proxy", () => {
  const wasm = path.join(REPO_ROOT, "build/ws-governor.wasm");
  let pods: PodServer[];
  let wrapped: RunningProxy;
  let plain: RunningProxy;
  const start = (config: object) => startProxy({ config, concurrency: 1, listenerPortOverride: 0, adminPortOverride: 0,
    clusterOverrides: { demo_pods: [{ host: "127.0.0.1", port: pods[0].port }] } });
  const handle = (p: RunningProxy) => p.plugin as PluginHandleImpl;
  const hostCalls = (p: RunningProxy) => Object.values(p.plugin!.hostCalls(0).all()).reduce((a, b) => a + b, 0);
  /** export calls and host calls of one plain GET, once its on_delete ran */
  const plainGet = async (p: RunningProxy, url = "/api") => {
    const e0 = handle(p).entered([0]), h0 = hostCalls(p); // ticks left out: the root's timer, not the request
    const r = await httpRequest(p.url(url));
    for (let i = 0; i < 100 && !handle(p).enteredSince(e0, [0]).proxy_on_delete; i++) {
      await new Promise((res) => setTimeout(res, 10));
    }
    return { r, calls: handle(p).enteredSince(e0, [0]), hostCalls: hostCalls(p) - h0 };
  };

  before(async () => {
    assert.ok(existsSync(wasm), "build/ws-governor.wasm is missing: run `make build`");
    pods = await startPods(1);
    const [entry] = docBlock("envoy") as Obj[];
    wrapped = await start(wrapBootstrap(load(DEFAULT_CONFIG_PATH), entry.typed_config.xds_matcher));
    plain = await start(unwrapBootstrap(load(DEFAULT_CONFIG_PATH)));
  });
  after(async () => {
    await Promise.all([wrapped?.close(), plain?.close()]);
    await Promise.all((pods ?? []).map((p) => p.kill()));
  });

  test("a plain GET: no header callbacks when wrapped, only create and delete (the filter exports no on_log/on_done)", async () => {
    const w = await plainGet(wrapped);
    const u = await plainGet(plain);
    console.log(`# plain GET wrapped: ${JSON.stringify(w.calls)} host calls ${w.hostCalls}`);
    console.log(`# plain GET unwrapped: ${JSON.stringify(u.calls)} host calls ${u.hostCalls}`);
    assert.equal(w.r.status, 200);
    assert.match(w.r.body, /"pod":"pod-a"/);
    assert.deepEqual(w.calls, { proxy_on_context_create: 1, proxy_on_delete: 1 });
    assert.equal(u.calls.proxy_on_request_headers, 1, "unwrapped, the filter sees the request");
    assert.ok(w.hostCalls <= u.hostCalls);
  });

  test("the endpoints are still the filter's: /websocket/health is answered by it, not the pod", async () => {
    const h = await plainGet(wrapped, "/websocket/health?probe=1");
    assert.equal(h.calls.proxy_on_request_headers, 1);
    assert.doesNotMatch(h.r.body, /"pod":/);
  });

  test("upgrades are still governed: the per-pod cap (3 in envoy.yaml) rejects the fourth", async () => {
    const before = handle(wrapped).entered([0]);
    const outs: WsOutcome[] = [];
    for (let i = 0; i < 4; i++) outs.push(await connectWs(wrapped.wsUrl("/ws")));
    try {
      assert.deepEqual(outs.slice(0, 3).map((o) => o.kind), ["open", "open", "open"]);
      assert.equal(outs[3].kind, "rejected");
      assert.equal(handle(wrapped).enteredSince(before, [0]).proxy_on_request_headers, 4);
    } finally {
      for (const o of outs) if (o.kind === "open") await closeWs(o.ws);
    }
  });
});

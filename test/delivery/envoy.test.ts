// Envoy bootstraps under envoy/: Envoy's own API accepts them (check-envoy-config.mjs), and the two delivery
// variants (gateway = upstream mode, sidecar = inbound mode) carry the settings ws-governor depends on.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { ROOT, WASM_FILTER_TYPE, describeErrors, envoyBootstraps, isObject, rel, runChecker } from "./support.ts";
import type { JsonObject } from "./support.ts";

const TAGS = ["reason", "decision", "direction", "kind", "code"];

test("delivery: every Envoy bootstrap under envoy/ passes check-envoy-config.mjs", () => {
  const files = envoyBootstraps();
  assert.ok(files.some((f) => f.endsWith("envoy-gateway.yaml")), "envoy/envoy-gateway.yaml missing");
  assert.ok(files.some((f) => f.endsWith("envoy-sidecar.yaml")), "envoy/envoy-sidecar.yaml missing");
  const report = runChecker(files.map(rel));
  assert.equal(report.exitCode, 0, describeErrors(report));
  assert.equal(report.files.length, files.length);
  for (const f of report.files) assert.equal(f.errors, 0, `${f.file}: ${describeErrors(report)}`);
});

// Envoy reads YAML with yaml-cpp typing; for the structural checks below the YAML 1.2 reading is equivalent
// (all values that matter are strings or explicitly typed).
function load(name: string): JsonObject {
  const doc: unknown = parseYaml(readFileSync(join(ROOT, "envoy", name), "utf8"));
  assert.ok(isObject(doc));
  return doc;
}

function at(v: unknown, ...path: Array<string | number>): unknown {
  let cur = v;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

function hcm(doc: JsonObject): JsonObject {
  const v = at(doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config");
  assert.ok(isObject(v), "first listener has no HTTP connection manager");
  return v;
}

for (const [file, mode] of [["envoy-gateway.yaml", "upstream"], ["envoy-sidecar.yaml", "inbound"]] as const) {
  test(`delivery: envoy/${file} carries the ws-governor deployment settings (mode ${mode})`, () => {
    const doc = load(file);
    // admin on loopback only
    assert.equal(at(doc, "admin", "address", "socket_address", "address"), "127.0.0.1");

    // stats_tags exactly as docs/contracts.md
    const tags = at(doc, "stats_config", "stats_tags") as Array<{ tag_name: string; regex: string }>;
    assert.deepEqual(tags.map((t) => t.tag_name), TAGS);
    for (const t of tags) {
      assert.equal(t.regex, `^wasmcustom\\.ws_governor\\.\\w+(\\.${t.tag_name}\\.(\\w+))$`);
      const re = new RegExp(t.regex);
      const m = re.exec(`wasmcustom.ws_governor.x_total.${t.tag_name}.some_value`);
      assert.ok(m, `${t.tag_name} regex does not match its own stat`);
      assert.equal(m[2], "some_value");
      assert.equal(re.test("wasmcustom.ws_governor.accepted_total"), false);
    }

    const h = hcm(doc);
    assert.deepEqual(h.upgrade_configs, [{ upgrade_type: "websocket" }]);
    assert.equal(at(h, "http2_protocol_options", "allow_connect"), true);

    // WebSocket route: no route timeout, its own idle timeout
    const routes = at(h, "route_config", "virtual_hosts", 0, "routes") as JsonObject[];
    const ws = routes.find((r) => JSON.stringify(at(r, "match", "headers") ?? []).includes("websocket"));
    assert.ok(ws, "no route matching upgrade: websocket");
    assert.equal(at(ws, "route", "timeout"), "0s");
    assert.match(String(at(ws, "route", "idle_timeout")), /^[1-9]\d*s$/);

    // Wasm filter first, router last
    const filters = h.http_filters as JsonObject[];
    assert.equal(filters.at(-1)?.name, "envoy.filters.http.router");
    // wrapped in ExtensionWithMatcher + SkipFilter so plain requests skip it (docs/extension-matcher.md, issue 13 P0)
    const wasm = filters.find((f) => at(f, "typed_config", "extension_config", "typed_config", "@type") === WASM_FILTER_TYPE);
    assert.ok(wasm, "the Wasm filter inside an ExtensionWithMatcher");
    assert.equal(wasm.name, "ws_governor");
    assert.equal(at(wasm, "typed_config", "@type"), "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher");
    assert.ok(at(wasm, "typed_config", "xds_matcher", "matcher_list"), "xds_matcher");
    const config = at(wasm, "typed_config", "extension_config", "typed_config", "config") as JsonObject;
    assert.equal(config.name, "ws_governor");
    assert.equal(config.root_id, "ws_governor");
    assert.equal(at(config, "vm_config", "vm_id"), "ws_governor");
    assert.equal(at(config, "vm_config", "runtime"), "envoy.wasm.runtime.v8");
    assert.equal(at(config, "vm_config", "code", "local", "filename"), "/etc/envoy/ws-governor.wasm");
    assert.ok(config.failure_policy !== undefined || config.fail_open !== undefined, "failure behaviour not set explicitly");
    assert.ok(!(config.failure_policy !== undefined && config.fail_open !== undefined), "fail_open and failure_policy together");
    const plugin: unknown = JSON.parse(String(at(config, "configuration", "value")));
    assert.ok(isObject(plugin));
    assert.equal(plugin.mode, mode);

    if (mode === "inbound") {
      const name = at(doc, "node", "metadata", "NAME");
      assert.equal(typeof name, "string");
      assert.ok((name as string).length > 0, "node.metadata.NAME is the pod identity in inbound mode");
    }
  });
}

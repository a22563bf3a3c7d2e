// schema/ws-governor.schema.json: a strict draft 2020-12 schema of the plugin configuration that matches
// docs/contracts.md, and every configuration shipped in envoy/ and k8s/ validates against it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ErrorObject } from "ajv";
import { SCHEMA_PATH, contractDefaults, embeddedPluginConfigs, isObject } from "./support.ts";
import type { JsonObject } from "./support.ts";

const schema = JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as JsonObject;
const ajv = new Ajv2020({ strict: true, allErrors: true });
const validate = ajv.compile(schema);

function errors(e: ErrorObject[] | null | undefined): string {
  return (e ?? []).map((x) => `${x.instancePath || "/"} ${x.message ?? ""} ${JSON.stringify(x.params)}`).join("; ");
}

/** Every object schema in the document, with its JSON pointer. */
function objectSchemas(v: unknown, ptr = "#"): Array<[string, JsonObject]> {
  if (Array.isArray(v)) return v.flatMap((x, i) => objectSchemas(x, `${ptr}/${i}`));
  if (!isObject(v)) return [];
  const here: Array<[string, JsonObject]> = v.type === "object" ? [[ptr, v]] : [];
  return here.concat(Object.entries(v).filter(([k]) => k !== "default")
    .flatMap(([k, x]) => objectSchemas(x, `${ptr}/${k}`)));
}

test("schema: draft 2020-12, compiles in strict mode, additionalProperties false on every object", () => {
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  const objects = objectSchemas(schema);
  assert.ok(objects.length >= 7);
  for (const [ptr, s] of objects) assert.equal(s.additionalProperties, false, `${ptr} allows additional properties`);
});

test("schema: keys and defaults match docs/contracts.md", () => {
  const contract = contractDefaults();
  const props = schema.properties as JsonObject;
  // fleet is read only by build/ws-governor-fleet.wasm (docs/fleet.md); docs/contracts.md lists the local module's keys
  assert.deepEqual(Object.keys(props).filter((k) => k !== "fleet").sort(), Object.keys(contract).sort());
  // The documented block lists max_pods next to mode "inbound"; the filter allows max_pods only in upstream mode.
  assert.equal(validate(contract), false, "max_pods with mode inbound must be rejected, as the filter does");
  const upstream = { ...contract, mode: "upstream" };
  assert.ok(validate(upstream), `the documented defaults (upstream) do not validate: ${errors(validate.errors)}`);
  const { max_pods: _ignored, ...inbound } = contract;
  assert.ok(validate(inbound), `the documented defaults (inbound) do not validate: ${errors(validate.errors)}`);
  for (const [key, value] of Object.entries(contract)) {
    const p = props[key] as JsonObject;
    if (key === "frames") {
      const fp = p.properties as JsonObject;
      assert.deepEqual(Object.keys(fp).sort(), Object.keys(value as JsonObject).sort());
      for (const [k, v] of Object.entries(value as JsonObject)) assert.deepEqual((fp[k] as JsonObject).default, v, `frames.${k}`);
    } else {
      assert.deepEqual(p.default, value, key);
    }
  }
  const rl = (schema.$defs as JsonObject).rateLimit as JsonObject;
  assert.deepEqual(Object.keys(rl.properties as JsonObject).sort(), Object.keys(contract.rate_limit as JsonObject).sort());
  assert.ok(validate({}), "every key is optional");
});

const good: Array<[string, unknown]> = [
  ["rate_limit null", { rate_limit: null }],
  ["header key", { client_key: { source: "header", header: "x-api-key" }, max_connections_per_client: 5 }],
  ["metadata key", { rate_limit: { requests: 10, window_seconds: 1, key: { source: "metadata", namespace: "envoy.filters.http.jwt_authn", path: ["payload", "sub"] } } }],
  ["disabled endpoints", { metrics_path: "", health_path: "", endpoint_allow: [] }],
  ["bare addresses", { endpoint_allow: ["10.1.2.3", "::1", "fd00::/8"] }],
  ["upstream with max_pods", { mode: "upstream", max_pods: 4096, pod_name: "" }],
  ["message burst with rate", { frames: { messages_per_second: 10, message_burst: 20 } }],
  ["fleet", { pod_name: "p", fleet: { cluster: "etcd", prefix: "/wsg/", lease_ttl_seconds: 2, call_timeout_ms: 10000, block: 1000, local_cap_per_pod: 5, stats_period_ms: 100 } }],
  ["fleet, a global rate limit only", { mode: "upstream", rate_limit: { requests: 100, window_seconds: 10 }, fleet: { cluster: "etcd", rate_horizon_seconds: 2 } }],
  ["fleet, upstream mode (global per-pod caps)", { mode: "upstream", fleet: { cluster: "etcd" } }],
  ["fleet, client caps in upstream mode", { mode: "upstream", max_connections_per_client: 2, fleet: { cluster: "etcd", local_cap_per_client: 1, rebalance_ms: 500 } }],
  ["bounds", { cas_max_attempts: 64, client_buckets: 65536, tick_ms: 100, lease_ticks: 100, rate_limit: { burst: 1000000 } }],
];
const bad: Array<[string, unknown, string]> = [
  ["unknown key", { max_conections_per_pod: 10 }, "additionalProperties"],
  ["unknown nested key", { frames: { enable: true } }, "additionalProperties"],
  ["wrong type", { enforce: "yes" }, "type"],
  ["string number", { max_connections_per_pod: "100" }, "type"],
  ["fraction", { tick_ms: 1000.5 }, "type"],
  ["bad mode", { mode: "outbound" }, "enum"],
  ["cas_max_attempts 0", { cas_max_attempts: 0 }, "minimum"],
  ["cas_max_attempts 65", { cas_max_attempts: 65 }, "maximum"],
  ["client_buckets 0", { client_buckets: 0 }, "minimum"],
  ["tick_ms 99", { tick_ms: 99 }, "minimum"],
  ["lease_ticks 1", { lease_ticks: 1 }, "minimum"],
  ["burst 0", { rate_limit: { burst: 0 } }, "minimum"],
  ["key_prefix chars", { key_prefix: "ws/g" }, "pattern"],
  ["key_prefix length", { key_prefix: "a".repeat(33) }, "pattern"],
  ["global client key", { client_key: { source: "global" } }, "oneOf"],
  ["header key without header", { client_key: { source: "header" } }, "oneOf"],
  ["not an address", { endpoint_allow: ["localhost"] }, "anyOf"],
  ["CIDR prefix too long", { endpoint_allow: ["10.0.0.0/33"] }, "anyOf"],
  ["max_pods in inbound mode", { max_pods: 8 }, "false schema"],
  ["max_pods 4097", { mode: "upstream", max_pods: 4097 }, "maximum"],
  ["pod_name in upstream mode", { mode: "upstream", pod_name: "p" }, "const"],
  ["message_burst without messages_per_second", { frames: { message_burst: 5 } }, "const"],
  ["per-pod cap over 1000000", { max_connections_per_pod: 1000001 }, "maximum"],
  ["metadata path of 9", { client_key: { source: "metadata", namespace: "n", path: ["a", "b", "c", "d", "e", "f", "g", "h", "i"] } }, "oneOf"],
  ["relative metrics path", { metrics_path: "metrics" }, "anyOf"],
  ["negative", { max_connections_per_pod: -1 }, "minimum"],
  ["not an object", [], "type"],
  ["fleet without cluster", { fleet: {} }, "required"],
  ["fleet prefix without a final slash", { fleet: { cluster: "etcd", prefix: "/wsg" } }, "pattern"],
  ["fleet lease TTL 1", { fleet: { cluster: "etcd", lease_ttl_seconds: 1 } }, "minimum"],
  ["fleet unknown key", { fleet: { cluster: "etcd", local_cap: 1 } }, "additionalProperties"],
  ["fleet without a per-pod or per-client cap", { max_connections_per_pod: 0, fleet: { cluster: "etcd" } }, "not"],
  ["fleet rate horizon 0", { fleet: { cluster: "etcd", rate_horizon_seconds: 0 } }, "minimum"],
  ["fleet rate horizon 61", { fleet: { cluster: "etcd", rate_horizon_seconds: 61 } }, "maximum"],
  ["fleet with rate_limit null and no cap", { mode: "upstream", rate_limit: null, max_connections_per_pod: 0, fleet: { cluster: "etcd" } }, "not"],
  ["fleet rebalance below 100 ms", { fleet: { cluster: "etcd", rebalance_ms: 50 } }, "minimum"],
];

for (const [name, cfg] of good) {
  test(`schema: accepts ${name}`, () => assert.ok(validate(cfg), errors(validate.errors)));
}
for (const [name, cfg, keyword] of bad) {
  test(`schema: rejects ${name}`, () => {
    assert.equal(validate(cfg), false);
    assert.ok(validate.errors?.some((e) => e.keyword === keyword), `expected a '${keyword}' error, got ${errors(validate.errors)}`);
  });
}

test("delivery: every plugin configuration in envoy/ and k8s/ validates against the schema", () => {
  const configs = embeddedPluginConfigs();
  const wheres = configs.map((c) => c.where).join("\n");
  for (const want of ["envoy/envoy-gateway.yaml", "envoy/envoy-sidecar.yaml", "k8s/wasmplugin.yaml",
    "k8s/file/wasmplugin-file.yaml", "k8s/envoyfilter/envoyfilter.yaml", "k8s/gateway/wasmplugin-gateway.yaml",
    "k8s/gateway/envoyfilter-gateway.yaml"]) {
    assert.ok(wheres.includes(want), `no plugin configuration found in ${want}:\n${wheres}`);
  }
  for (const c of configs) {
    const value: unknown = c.json.trim() === "" ? {} : JSON.parse(c.json);
    const ok = validate(value);
    if (c.expectValid) assert.ok(ok, `${c.where}: ${errors(validate.errors)}`);
    else assert.equal(ok, false, `${c.where} is a bad-config fixture but validates`);
  }
});

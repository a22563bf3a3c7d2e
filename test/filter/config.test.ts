// Behaviour 2: strict configuration, end to end (on_configure false → Envoy rejects the plugin, one critical line),
// defaults, and the JSON Schema kept in sync with the parser's own key lists and ranges (assembly/core/config.ts).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { PluginLoadError, ROOT, isContinue, loadFailure, makeEnv, open, podTotal, reply, ok } from "./support.ts";

const BAD: Array<[unknown, string]> = [
  [{ max_conections_per_pod: 10 }, "max_conections_per_pod: unknown key"],
  [{ frames: { enable: true } }, "frames.enable: unknown key"],
  [{ rate_limit: { requests: 5, windows: 1 } }, "rate_limit.windows: unknown key"],
  [{ client_key: { source: "header", header: "x", name: "y" } }, "client_key.name: unknown key"],
  [{ enforce: "yes" }, "enforce: must be a boolean, got string"],
  [{ max_connections_per_pod: "100" }, "max_connections_per_pod: must be an integer in 0..1000000"],
  [{ max_connections_per_pod: 1000001 }, "max_connections_per_pod: must be an integer in 0..1000000"],
  [{ max_connections_per_pod: -1 }, "max_connections_per_pod: must be an integer in 0..1000000"],
  [{ tick_ms: 1000.5 }, "tick_ms: must be an integer in 100..60000"],
  ['{"tick_ms": 99}', "tick_ms: must be an integer in 100..60000"],
  [{ cas_max_attempts: 0 }, "cas_max_attempts: must be an integer in 1..64"],
  [{ lease_ticks: 1 }, "lease_ticks: must be an integer in 2..100"],
  [{ mode: "outbound" }, "mode: must be one of \"inbound\", \"upstream\""],
  [{ failure_mode: "half" }, "failure_mode: must be one of \"closed\", \"open\""],
  [{ key_prefix: "ws/g" }, "key_prefix: must be 1..32 characters of [A-Za-z0-9_.-]"],
  [{ rate_limit: 5 }, "rate_limit: must be an object, got number"],
  [{ rate_limit: { burst: 0 } }, "rate_limit.burst: must be an integer in 1..1000000"],
  [{ rate_limit: { key: { source: "cookie" } } }, "rate_limit.key.source: must be one of \"global\", \"address\", \"header\", \"metadata\", \"peer_identity\""],
  [{ rate_limit: { key: {} } }, "rate_limit.key.source: is required"],
  [{ client_key: { source: "global" } }, "client_key.source: \"global\" is not allowed here"],
  [{ client_key: { source: "header" } }, "client_key.header: must be a header name (lower-case token, not a pseudo-header)"],
  [{ client_key: { source: "header", header: ":path" } }, "client_key.header: must be a header name (lower-case token, not a pseudo-header)"],
  [{ client_key: { source: "address", header: "x" } }, "client_key.header: only allowed with source \"header\""],
  [{ client_key: { source: "metadata", path: ["a"] } }, "client_key.namespace: is required with source \"metadata\""],
  [{ client_key: { source: "metadata", namespace: "n", path: [] } }, "client_key.path: must be an array of 1..8 strings"],
  [{ client_key: { source: "metadata", namespace: "n", path: ["a", ""] } }, "client_key.path: must be an array of 1..8 non-empty strings"],
  [{ endpoint_allow: ["localhost"] }, "endpoint_allow[0]: must be an IPv4 or IPv6 address or CIDR"],
  [{ endpoint_allow: "127.0.0.1" }, "endpoint_allow: must be an array of at most 64 CIDR strings"],
  [{ metrics_path: "metrics" }, "metrics_path: must be empty or start with '/' (at most 256 characters, no '?')"],
  [{ health_path: "/health?full=1" }, "health_path: must be empty or start with '/' (at most 256 characters, no '?')"],
  [{ metrics_path: "/m", health_path: "/m" }, "health_path: must differ from metrics_path"],
  [{ max_pods: 8 }, "max_pods: only allowed with mode \"upstream\""],
  [{ mode: "upstream", pod_name: "p" }, "pod_name: only allowed with mode \"inbound\" (upstream mode learns the pod from upstream.address)"],
  [{ frames: { message_burst: 5 } }, "frames.message_burst: requires frames.messages_per_second"],
  [[], "configuration: must be a JSON object, got array"],
  // the local module refuses fleet mode instead of ignoring it (docs/fleet.md §9)
  [{ fleet: { cluster: "etcd" } }, "fleet: needs build/ws-governor-fleet.wasm"],
];

const NO_GLOBAL = "fleet: needs a global limit: max_connections_per_pod > 0, max_connections_per_client > 0 or a rate_limit";
/** Fleet module only (build/ws-governor-fleet.wasm): the fleet block's own errors. */
const FLEET_BAD: Array<[unknown, string]> = [
  [{ fleet: {} }, "fleet.cluster: must be the name of the etcd cluster (1..128 characters)"],
  [{ fleet: { cluster: "etcd", clusters: "x" } }, "fleet.clusters: unknown key"],
  [{ fleet: { cluster: "etcd", prefix: "/wsg" } }, "fleet.prefix: must be 1..128 characters ending in '/'"],
  [{ fleet: { cluster: "etcd", lease_ttl_seconds: 1 } }, "fleet.lease_ttl_seconds: must be an integer in 2..300"],
  [{ fleet: { cluster: "etcd", call_timeout_ms: 10001 } }, "fleet.call_timeout_ms: must be an integer in 10..10000"],
  [{ fleet: { cluster: "etcd", block: 0 } }, "fleet.block: must be an integer in 1..1000"],
  [{ fleet: { cluster: "etcd", local_cap_per_pod: -1 } }, "fleet.local_cap_per_pod: must be an integer in 0..1000000"],
  [{ fleet: { cluster: "etcd", stats_period_ms: 99 } }, "fleet.stats_period_ms: must be an integer in 100..600000"],
  [{ fleet: "etcd" }, "fleet: must be an object, got string"],
  [{ max_connections_per_pod: 0, fleet: { cluster: "etcd" } }, NO_GLOBAL],
  [{ fleet: { cluster: "etcd", local_cap_per_client: 1.5 } }, "fleet.local_cap_per_client: must be an integer in 0..1000000"],
  [{ fleet: { cluster: "etcd", rebalance_ms: 99 } }, "fleet.rebalance_ms: must be an integer in 100..600000"],
  [{ max_conections_per_pod: 1, fleet: { cluster: "etcd" } }, "max_conections_per_pod: unknown key"],
  [{ fleet: { cluster: "etcd", rate_horizon_seconds: 0 } }, "fleet.rate_horizon_seconds: must be an integer in 1..60"],
  [{ fleet: { cluster: "etcd", rate_horizon_seconds: 61 } }, "fleet.rate_horizon_seconds: must be an integer in 1..60"],
  // the default rate limit is global in fleet mode too, but only a written one counts as the fleet block's reason
  [{ mode: "upstream", rate_limit: null, max_connections_per_pod: 0, fleet: { cluster: "etcd" } }, NO_GLOBAL],
];

test("B2 configuration strict: bad configurations are rejected with exactly one critical line naming the field", () => {
  for (const [cfg, why] of BAD) {
    const { error, logs } = loadFailure(cfg as Record<string, unknown> | string);
    ok(error instanceof PluginLoadError, `${JSON.stringify(cfg)} was accepted`);
    const crit = logs.filter((l) => l.level === "critical");
    assert.deepEqual(crit.map((l) => l.message), [`ws_governor: invalid configuration: ${why}`], JSON.stringify(cfg));
    assert.equal(logs.filter((l) => l.message.includes("configured")).length, 0);
  }
});

test("B2 configuration strict (fleet module): bad fleet blocks are rejected with one critical line naming the field; " +
  "a good one loads", () => {
  const fleet = new Uint8Array(readFileSync(join(ROOT, "build/ws-governor-fleet.wasm")));
  for (const [cfg, why] of FLEET_BAD) {
    const { error, logs } = loadFailure(cfg as Record<string, unknown>, fleet);
    ok(error instanceof PluginLoadError, `${JSON.stringify(cfg)} was accepted`);
    assert.deepEqual(logs.filter((l) => l.level === "critical").map((l) => l.message),
      [`ws_governor: invalid configuration: ${why}`], JSON.stringify(cfg));
  }
  const { error, logs } = loadFailure({ pod_name: "p", fleet: { cluster: "etcd" } }, fleet);
  assert.equal(error, undefined, JSON.stringify(logs));
  // a written rate limit is a global limit of its own (upstream mode, no caps)
  const rate = loadFailure({ mode: "upstream", rate_limit: { requests: 10 }, fleet: { cluster: "etcd", rate_horizon_seconds: 60 } }, fleet);
  assert.equal(rate.error, undefined, JSON.stringify(rate.logs));
  // the fleet module without a fleet block is the local filter
  assert.equal(loadFailure({}, fleet).error, undefined);
});

test("B2 configuration strict: malformed JSON names the offset; duplicate keys are errors", () => {
  const cases: Array<[string, RegExp]> = [
    ["{\"mode\": \"inbound\",}", /^ws_governor: invalid configuration: configuration: invalid JSON: expected a string key at offset \d+$/],
    ["{\"mode\": \"inbound\", \"mode\": \"upstream\"}", /^ws_governor: invalid configuration: configuration: invalid JSON: duplicate key "mode" at offset \d+$/],
    ["{\"a\":", /invalid JSON: unexpected end of input at offset 5$/],
    ["{} x", /invalid JSON: unexpected trailing characters at offset 3$/],
    ["[".repeat(100), /invalid JSON: nesting too deep/],
  ];
  for (const [text, re] of cases) {
    const { error, logs } = loadFailure(text);
    ok(error instanceof PluginLoadError, text);
    const crit = logs.filter((l) => l.level === "critical");
    assert.equal(crit.length, 1, text);
    assert.match(crit[0].message, re);
  }
});

test("B2 configuration defaults: empty configuration = 100 per pod, 50 upgrades per 60 s (global)", () => {
  for (const cfg of ["", "{}", "  \n"]) {
    const e = makeEnv({ config: cfg, concurrency: 2 });
    try {
      assert.equal(e.logs.filter((l) => l.level === "critical").length, 0);
      // "" means every default, exactly like "{}": inbound mode provisions INBOUND_POD_SLOTS pod keys, not 64
      assert.equal(e.proc.sharedData.keys("").filter((k) => k.startsWith("wsg:pod:")).length, 4, `pod slots for ${JSON.stringify(cfg)}`);
      const opened = [];
      for (let i = 0; i < 50; i++) {
        const o = open(e.h, i % 2, `10.2.${i}.1:1`);
        ok(o.admitted, `upgrade ${i} of the default burst of 50`);
        opened.push(o);
      }
      const r = open(e.h, 0, "10.9.9.9:1");
      const rep = reply(r.r);
      r.s.complete();
      assert.equal(rep.status, 429, "the 51st upgrade inside the 60 s window");
      assert.equal(rep.headers.find(([k]) => k === "retry-after")?.[1], "2", "T = 60 s / 50 = 1.2 s → 2");
      assert.equal(rep.headers.find(([k]) => k === "ratelimit-limit")?.[1], "50");
      // 50 more after the window refills: the pod cap of 100 is reached at exactly 100
      e.proc.advance(60_000);
      for (let i = 0; i < 50; i++) {
        const o = open(e.h, i % 2, `10.3.${i}.1:1`);
        ok(o.admitted, `upgrade ${50 + i}`);
        opened.push(o);
      }
      e.proc.advance(60_000);
      const full = open(e.h, 1, "10.4.0.1:1");
      assert.equal(reply(full.r).details, "ws_governor_pod_full", "the 101st connection");
      full.s.complete();
      assert.equal(podTotal(e.proc, "pod-a"), 100);
      for (const o of opened) o.s.complete();
      assert.equal(podTotal(e.proc), 0);
      // defaults: endpoints on, allowlist loopback
      const s = e.h.newStream(0, { id: 9, sourceAddress: "127.0.0.1:1", destinationAddress: "127.0.0.1:8080", protocol: "HTTP/1.1" });
      assert.equal(reply(s.decodeHeaders([[":method", "GET"], [":path", "/websocket/health"], [":authority", "a"]], true)).status, 200);
      s.complete();
      const p = e.h.newStream(0, { id: 10, sourceAddress: "127.0.0.1:1", destinationAddress: "127.0.0.1:8080", protocol: "HTTP/1.1" });
      ok(isContinue(p.decodeHeaders([[":method", "GET"], [":path", "/"], [":authority", "a"]], true)));
      p.complete();
    } finally {
      e.close();
    }
  }
});

// ------------------------------------------------------------------ schema ↔ parser (config.ts)

const CONFIG_TS = readFileSync(join(ROOT, "assembly/core/config.ts"), "utf8");
const SCHEMA = JSON.parse(readFileSync(join(ROOT, "schema/ws-governor.schema.json"), "utf8")) as Record<string, any>;

function keyList(name: string): string[] {
  const m = new RegExp(`export const ${name}: string\\[\\] = \\[([^\\]]*)\\]`, "s").exec(CONFIG_TS);
  ok(m, `${name} not found in config.ts`);
  return [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]);
}

/** Every int(obj, "key", lo, hi, dflt) call (obj: root, rl = rate_limit, fr = frames): field → [lo, hi, default expression]. */
function intRanges(): Map<string, [number, number, string]> {
  const out = new Map<string, [number, number, string]>();
  const prefix: Record<string, string> = { root: "", rl: "rate_limit.", fr: "frames.", v: "fleet." };
  for (const m of CONFIG_TS.matchAll(/\bint\((root|rl|fr|v), "(\w+)", (\d+), (\d+), (\d+|[\w.]+)\)/g)) {
    out.set(prefix[m[1]] + m[2], [Number(m[3]), Number(m[4]), m[5].trim()]);
  }
  return out;
}

function schemaProp(field: string): Record<string, any> {
  const parts = field.split(".");
  if (parts.length === 1) return SCHEMA.properties[parts[0]];
  if (parts[0] === "rate_limit") return SCHEMA.$defs.rateLimit.properties[parts[1]];
  if (parts[0] === "frames") return SCHEMA.properties.frames.properties[parts[1]];
  if (parts[0] === "fleet") return SCHEMA.properties.fleet.properties[parts[1]];
  throw new Error(field);
}

test("B2 schema in sync with config.ts: property names of every object = TOP_KEYS/RATE_KEYS/KEY_KEYS/FRAME_KEYS", () => {
  assert.deepEqual(Object.keys(SCHEMA.properties).sort(), keyList("TOP_KEYS").sort());
  assert.deepEqual(Object.keys(SCHEMA.$defs.rateLimit.properties).sort(), keyList("RATE_KEYS").sort());
  assert.deepEqual(Object.keys(SCHEMA.properties.frames.properties).sort(), keyList("FRAME_KEYS").sort());
  const fleetKeys = /const keys: string\[\] = \[([^\]]*)\]/.exec(CONFIG_TS)![1].match(/"(\w+)"/g)!.map((s) => s.slice(1, -1));
  assert.deepEqual(Object.keys(SCHEMA.properties.fleet.properties).sort(), fleetKeys.sort());
  const keyProps = new Set<string>();
  for (const k of ["globalKey", "addressKey", "headerKey", "metadataKey", "peerKey"]) {
    for (const p of Object.keys(SCHEMA.$defs[k].properties)) keyProps.add(p);
  }
  assert.deepEqual([...keyProps].sort(), keyList("KEY_KEYS").sort());
  // the key sources the parser accepts
  const sources = /let sources: string\[\] = \[([^\]]*)\]/.exec(CONFIG_TS)![1].match(/"(\w+)"/g)!.map((s) => s.slice(1, -1));
  const schemaSources = ["globalKey", "addressKey", "headerKey", "metadataKey", "peerKey"].map((k) => SCHEMA.$defs[k].properties.source.const);
  assert.deepEqual(schemaSources, sources);
  assert.deepEqual(SCHEMA.properties.mode.enum, /let modes: string\[\] = \[([^\]]*)\]/.exec(CONFIG_TS)![1].match(/"(\w+)"/g)!.map((s) => s.slice(1, -1)));
  assert.deepEqual(SCHEMA.properties.failure_mode.enum, /let fmodes: string\[\] = \[([^\]]*)\]/.exec(CONFIG_TS)![1].match(/"(\w+)"/g)!.map((s) => s.slice(1, -1)));
});

test("B2 schema in sync with config.ts: integer ranges and defaults of every int field", () => {
  const ranges = intRanges();
  ok(ranges.size >= 15, `only ${ranges.size} integer fields found in config.ts`);
  for (const [field, [lo, hi, dflt]] of ranges) {
    const p = schemaProp(field);
    ok(p, `${field} not in the schema`);
    assert.equal(p.type, "integer", field);
    assert.equal(p.minimum, lo, `${field} minimum`);
    assert.equal(p.maximum, hi, `${field} maximum`);
    if (/^\d+$/.test(dflt)) assert.equal(p.default, Number(dflt), `${field} default`);
    else if (field === "frames.message_burst") assert.equal(p.default, 0, "0 means = messages_per_second (config.ts)");
    else assert.equal(p.default, undefined, `${field}: the default (${dflt}) depends on another field`);
  }
  // the rate_limit object default is what the parser builds
  assert.deepEqual(SCHEMA.properties.rate_limit.default, { requests: 50, window_seconds: 60, burst: 50, key: { source: "global" }, buckets: 1024 });
  // string fields: defaults from the Config class
  for (const [field, member] of [["key_prefix", "keyPrefix"], ["metrics_path", "metricsPath"], ["health_path", "healthPath"], ["pod_name", "podName"]]) {
    const m = new RegExp(`  ${member}: string = "([^"]*)"`).exec(CONFIG_TS);
    ok(m, member);
    assert.equal(SCHEMA.properties[field].default, m[1], field);
  }
  for (const [field, member] of [["enforce", "enforce"], ["draining", "draining"]]) {
    const m = new RegExp(`  ${member}: bool = (true|false)`).exec(CONFIG_TS);
    ok(m, member);
    assert.equal(SCHEMA.properties[field].default, m[1] === "true", field);
  }
  assert.equal(SCHEMA.properties.pod_name.maxLength, Number(/podName\.length > (\d+)/.exec(CONFIG_TS)![1]));
  assert.equal(SCHEMA.properties.endpoint_allow.maxItems, Number(/allow\.count > (\d+)/.exec(CONFIG_TS)![1]));
  assert.equal(SCHEMA.$defs.endpointPath.maxLength, Number(/p\.length <= (\d+)\);\n.*\n  if \(!ok\) must\(key, "empty/.exec(CONFIG_TS)![1]));
  assert.equal(SCHEMA.$defs.endpointPath.anyOf[1].pattern, "^/[^?]*$", "no '?' in an endpoint path (config.ts path())");
});

// The loopback proxy reads every Envoy bootstrap shipped in envoy/ and behaves as Envoy would for the fields they
// use: traffic_direction, route header matchers (string_match, ignore_case, present/invert, repeated headers),
// HTTP filters recognised by their typed_config @type, HttpProtocolOptions (explicit HTTP/1.1), dns_lookup_family,
// LEAST_REQUEST (power of two choices by active requests), histogram_bucket_settings, failure_policy/reload_config.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { HeaderList } from "./host/api.ts";
import { BootstrapError, REPO_ROOT, parseBootstrapYaml, readBootstrap, startProxy, type RunningProxy } from "./proxy/index.ts";
import type { HeaderMatcher } from "./proxy/bootstrap_types.ts";
import { FakePlugin, type FakeStream } from "./proxy/fake-plugin.ts";
import { LoadBalancers, applyFamily, lookupFor } from "./proxy/lb.ts";
import { headerMatches, matchRoute } from "./proxy/routing.ts";
import { startPods, type PodServer } from "../support/pods.ts";
import { closeWs, connectWs, httpRequest } from "../support/ws-client.ts";
import { waitFor } from "../support/wait.ts";

const ENVOY_DIR = path.join(REPO_ROOT, "envoy");
const read = (f: string) => readFileSync(path.join(ENVOY_DIR, f), "utf8");
/** Envoy bootstraps in envoy/ (YAML with static_resources; docker-compose.yaml is not one) */
const bootstraps = () => readdirSync(ENVOY_DIR).filter((f) => /\.ya?ml$/.test(f) && (parseYaml(read(f)) as { static_resources?: unknown })?.static_resources !== undefined);
const hcmOf = (doc: any) => doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const problems = (doc: unknown): string[] => {
  try {
    readBootstrap(doc);
    return [];
  } catch (e) {
    if (e instanceof BootstrapError) return e.problems;
    throw e;
  }
};

describe("every bootstrap in envoy/ is inside the supported subset", () => {
  test("the directory's Envoy bootstraps all parse (a new file is covered automatically)", () => {
    const files = bootstraps();
    assert.ok(files.includes("envoy.yaml") && files.includes("envoy-sidecar.yaml") && files.includes("envoy-gateway.yaml"));
    for (const f of files) assert.deepEqual(problems(parseYaml(read(f))), [], f);
  });

  test("envoy-sidecar.yaml: INBOUND listener, header-matched websocket route, Wasm filter named ws_governor, FAIL_RELOAD", () => {
    const bs = parseBootstrapYaml(read("envoy-sidecar.yaml"));
    assert.equal(bs.listener.trafficDirection, "INBOUND");
    const w = bs.listener.hcm.wasm;
    assert.equal(w?.filterName, "ws_governor");
    assert.equal(w?.failurePolicy, "FAIL_RELOAD");
    assert.equal(w?.reloadBackoffMs, 1000);
    const [ws, http] = bs.listener.hcm.virtualHosts[0].routes;
    assert.equal(ws.name, "websocket");
    assert.deepEqual(ws.match.headers?.map((h) => [h.name, h.spec]), [["upgrade", { kind: "string", m: { kind: "exact", value: "websocket", ignoreCase: true } }]]);
    assert.equal(ws.timeoutMs, 0);
    assert.equal(http.timeoutMs, 15_000);
    const c = bs.clusters.get("local_app")!;
    assert.equal(c.upstreamProtocol, "HTTP/1.1");
    assert.equal(bs.histogramBuckets[0].buckets.length, 11);
    assert.equal(bs.listener.hcm.useRemoteAddress, true);
  });

  test("envoy-gateway.yaml: STRICT_DNS cluster with LEAST_REQUEST, V4_PREFERRED, explicit HTTP/1.1", () => {
    const bs = parseBootstrapYaml(read("envoy-gateway.yaml"));
    const c = bs.clusters.get("ws_backend")!;
    assert.deepEqual([c.type, c.lbPolicy, c.choiceCount, c.dnsLookupFamily, c.upstreamProtocol], ["STRICT_DNS", "LEAST_REQUEST", 2, "V4_PREFERRED", "HTTP/1.1"]);
    assert.equal(bs.listener.trafficDirection, "UNSPECIFIED");
  });
});

describe("bootstrap: fields around the shipped ones", () => {
  test("the Wasm filter is recognised by its @type whatever its name; other filters are refused by @type", () => {
    const doc = parseYaml(read("envoy.yaml"));
    hcmOf(doc).http_filters[0].name = "my.custom.name";
    assert.equal(readBootstrap(doc).listener.hcm.wasm?.filterName, "my.custom.name");
    const other = parseYaml(read("envoy.yaml"));
    hcmOf(other).http_filters[0] = { name: "envoy.filters.http.wasm", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua" } };
    assert.match(problems(other).join("\n"), /http_filters\[0\]\.typed_config\.@type: only the Wasm filter .* not type\.googleapis\.com\/envoy\.extensions\.filters\.http\.lua\.v3\.Lua/);
    const noType = parseYaml(read("envoy.yaml"));
    delete hcmOf(noType).http_filters[0].typed_config;
    assert.match(problems(noType).join("\n"), /http_filters\[0\]\.typed_config: required/);
  });

  test("traffic_direction: INBOUND/OUTBOUND/UNSPECIFIED, anything else refused", () => {
    const doc = parseYaml(read("envoy.yaml"));
    doc.static_resources.listeners[0].traffic_direction = "OUTBOUND";
    assert.equal(readBootstrap(doc).listener.trafficDirection, "OUTBOUND");
    doc.static_resources.listeners[0].traffic_direction = "SIDEWAYS";
    assert.match(problems(doc).join("\n"), /traffic_direction: expected UNSPECIFIED, INBOUND or OUTBOUND/);
  });

  test("HttpProtocolOptions: explicit HTTP/1.1 accepted; HTTP/2, auto_config, downstream protocol, Http1 options refused", () => {
    const withOpts = (o: unknown) => {
      const doc = parseYaml(read("envoy-sidecar.yaml"));
      doc.static_resources.clusters[0].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] = {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions", ...(o as object),
      };
      return problems(doc).join("\n");
    };
    assert.equal(withOpts({ explicit_http_config: { http_protocol_options: {} } }), "");
    assert.match(withOpts({ explicit_http_config: { http2_protocol_options: {} } }), /http2_protocol_options: not modelled/);
    assert.match(withOpts({ auto_config: {} }), /auto_config: not modelled/);
    assert.match(withOpts({ use_downstream_protocol_config: {} }), /use_downstream_protocol_config: not modelled/);
    assert.match(withOpts({ explicit_http_config: { http_protocol_options: { accept_http_10: true } } }), /accept_http_10: field not supported/);
    assert.match(withOpts({}), /upstream_protocol_options is required/);
    const other = parseYaml(read("envoy-sidecar.yaml"));
    other.static_resources.clusters[0].typed_extension_protocol_options = { "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions": {} };
    assert.match(problems(other).join("\n"), /TcpProtocolOptions: field not supported/);
  });

  test("lb_policy, least_request_lb_config.choice_count, dns_lookup_family values", () => {
    const doc = parseYaml(read("envoy-gateway.yaml"));
    const c = doc.static_resources.clusters[0];
    c.least_request_lb_config = { choice_count: 3 };
    c.dns_lookup_family = "V6_ONLY";
    const cl = readBootstrap(doc).clusters.get("ws_backend")!;
    assert.deepEqual([cl.choiceCount, cl.dnsLookupFamily], [3, "V6_ONLY"]);
    c.least_request_lb_config = { choice_count: 1 };
    c.dns_lookup_family = "V5_ONLY";
    c.lb_policy = "RING_HASH";
    const p = problems(doc).join("\n");
    assert.match(p, /choice_count: expected an integer >= 2/);
    assert.match(p, /dns_lookup_family: expected one of AUTO/);
    assert.match(p, /lb_policy: only ROUND_ROBIN or LEAST_REQUEST/);
  });

  test("a STATIC cluster's endpoints must be IP addresses (STRICT_DNS takes hostnames)", async () => {
    const doc = parseYaml(read("envoy-sidecar.yaml"));
    doc.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address = "app.local";
    assert.match(problems(doc).join("\n"), /socket_address\.address: a STATIC cluster needs an IP address/);
    await assert.rejects(startProxy({ configPath: path.join(ENVOY_DIR, "envoy-sidecar.yaml"), filter: "passthrough", clusterOverrides: { local_app: [{ host: "localhost", port: 1 }] }, listenerPortOverride: 0, adminPortOverride: 0 }),
      /local_app is a STATIC cluster, localhost is not an IP address/);
  });

  test("header matcher config: oneof, empty prefix, ignore_case with safe_regex, bad regex are errors", () => {
    const withHeaders = (headers: unknown[]) => {
      const doc = parseYaml(read("envoy-sidecar.yaml"));
      hcmOf(doc).route_config.virtual_hosts[0].routes[0].match.headers = headers;
      return problems(doc).join("\n");
    };
    assert.equal(withHeaders([{ name: "x", present_match: true }, { name: "y" }, { name: "z", range_match: { start: 1, end: 5 } }]), "");
    assert.match(withHeaders([{ name: "x", present_match: true, exact_match: "a" }]), /header_match_specifier is a oneof/);
    assert.match(withHeaders([{ name: "x", string_match: { prefix: "" } }]), /prefix: must not be empty/);
    assert.match(withHeaders([{ name: "x", string_match: { safe_regex: { regex: "a.*" }, ignore_case: true } }]), /ignore_case has no effect for safe_regex/);
    assert.match(withHeaders([{ name: "x", string_match: { safe_regex: { regex: "(" } } }]), /not a valid regular expression/);
    assert.match(withHeaders([{ name: "x", string_match: {} }]), /exactly one of exact, prefix/);
    assert.match(withHeaders([{ name: "x", string_match: { exact: "a", prefix: "b" } }]), /exactly one of exact, prefix/);
  });

  test("histogram_bucket_settings: buckets unique and > 0, sorted", () => {
    const doc = parseYaml(read("envoy-gateway.yaml"));
    doc.stats_config.histogram_bucket_settings[0].buckets = [5, 1, 3];
    assert.deepEqual(readBootstrap(doc).histogramBuckets[0].buckets, [1, 3, 5]);
    doc.stats_config.histogram_bucket_settings[0].buckets = [1, 1];
    assert.match(problems(doc).join("\n"), /buckets: expected unique numbers greater than 0/);
  });
});

describe("header matchers (HeaderUtility::matchHeaders semantics)", () => {
  const m = (spec: HeaderMatcher["spec"], extra: Partial<HeaderMatcher> = {}): HeaderMatcher =>
    ({ name: "upgrade", invert: false, treatMissingAsEmpty: false, spec, ...extra });
  const exact = (value: string, ignoreCase = false): HeaderMatcher["spec"] => ({ kind: "string", m: { kind: "exact", value, ignoreCase } });
  const h = (...pairs: Array<[string, string]>): HeaderList => [[":path", "/"], ...pairs];

  test("string_match exact with ignore_case; without it case matters", () => {
    assert.equal(headerMatches(m(exact("websocket", true)), h(["upgrade", "WebSocket"])), true);
    assert.equal(headerMatches(m(exact("websocket")), h(["upgrade", "WebSocket"])), false);
    assert.equal(headerMatches(m(exact("websocket", true)), h(["upgrade", "websocket2"])), false);
  });

  test("prefix / suffix / contains / regex (whole value), ignore_case", () => {
    const s = (kind: "prefix" | "suffix" | "contains", value: string, ignoreCase = false): HeaderMatcher["spec"] => ({ kind: "string", m: { kind, value, ignoreCase } });
    assert.equal(headerMatches(m(s("prefix", "web")), h(["upgrade", "websocket"])), true);
    assert.equal(headerMatches(m(s("prefix", "WEB", true)), h(["upgrade", "websocket"])), true);
    assert.equal(headerMatches(m(s("suffix", "socket")), h(["upgrade", "websocket"])), true);
    assert.equal(headerMatches(m(s("contains", "bso")), h(["upgrade", "websocket"])), true);
    assert.equal(headerMatches(m(s("contains", "xyz")), h(["upgrade", "websocket"])), false);
    const re: HeaderMatcher["spec"] = { kind: "string", m: { kind: "regex", value: "web.*", ignoreCase: false, regex: /^(?:web.*)$/s } };
    assert.equal(headerMatches(m(re), h(["upgrade", "websocket"])), true);
    const part: HeaderMatcher["spec"] = { kind: "string", m: { kind: "regex", value: "sock", ignoreCase: false, regex: /^(?:sock)$/s } };
    assert.equal(headerMatches(m(part), h(["upgrade", "websocket"])), false, "RE2 FullMatch, not a search");
  });

  test("repeated headers are matched as one value joined with ','", () => {
    // x-custom is not an inline header: two lines stay two entries, the matcher sees "a,b"
    const two = h(["x-custom", "a"], ["x-custom", "b"]);
    assert.equal(headerMatches(m(exact("a"), { name: "x-custom" }), two), false);
    assert.equal(headerMatches(m(exact("a,b"), { name: "x-custom" }), two), true);
    // an Upgrade merged by the codec from two lines ("websocket,h2c") does not equal "websocket"
    assert.equal(headerMatches(m(exact("websocket", true)), h(["upgrade", "websocket,h2c"])), false);
  });

  test("missing header: value specifiers never match (inverted or not) unless treat_missing_header_as_empty", () => {
    assert.equal(headerMatches(m(exact("websocket")), h()), false);
    assert.equal(headerMatches(m(exact("websocket"), { invert: true }), h()), false);
    assert.equal(headerMatches(m(exact("websocket"), { invert: true, treatMissingAsEmpty: true }), h()), true);
    assert.equal(headerMatches(m(exact(""), { treatMissingAsEmpty: true }), h()), true);
    assert.equal(headerMatches(m(exact("websocket"), { invert: true }), h(["upgrade", "h2c"])), true);
    assert.equal(headerMatches(m(exact("websocket"), { invert: true }), h(["upgrade", "websocket"])), false);
  });

  test("present_match true/false with invert_match; no specifier = present", () => {
    const present = (p: boolean): HeaderMatcher["spec"] => ({ kind: "present", present: p });
    const there = h(["upgrade", ""]), gone = h();
    assert.deepEqual([headerMatches(m(present(true)), there), headerMatches(m(present(true)), gone)], [true, false], "an empty value is present");
    assert.deepEqual([headerMatches(m(present(false)), there), headerMatches(m(present(false)), gone)], [false, true]);
    assert.deepEqual([headerMatches(m(present(true), { invert: true }), there), headerMatches(m(present(true), { invert: true }), gone)], [false, true]);
    assert.deepEqual([headerMatches(m(present(false), { invert: true }), there), headerMatches(m(present(false), { invert: true }), gone)], [true, false]);
  });

  test("range_match is [start, end) on an integer value", () => {
    const r: HeaderMatcher["spec"] = { kind: "range", start: 1, end: 5 };
    assert.deepEqual(["0", "1", "4", "5", "x", "-1", "2.5"].map((v) => headerMatches(m(r, { name: "n" }), h(["n", v]))), [false, true, true, false, false, false, false]);
  });

  test("envoy-sidecar.yaml routing: websocket route (timeout 0s) for an upgrade, http route (15s) otherwise", () => {
    const bs = parseBootstrapYaml(read("envoy-sidecar.yaml"));
    const pick = (...extra: Array<[string, string]>) => matchRoute(bs, [[":authority", "pod"], [":path", "/ws"], [":method", "GET"], ...extra])?.route;
    const up = pick(["upgrade", "WebSocket"], ["connection", "Upgrade"]);
    assert.deepEqual([up?.name, up?.timeoutMs, up?.idleTimeoutMs], ["websocket", 0, 3_600_000]);
    const plain = pick();
    assert.deepEqual([plain?.name, plain?.timeoutMs], ["http", 15_000]);
    assert.equal(pick(["upgrade", "h2c"])?.name, "http");
  });
});

describe("LEAST_REQUEST and dns_lookup_family", () => {
  const cluster = (n: number, lbPolicy: "LEAST_REQUEST" | "ROUND_ROBIN" = "LEAST_REQUEST") => ({
    name: "c", type: "STATIC" as const, connectTimeoutMs: 1000, lbPolicy, choiceCount: 2, dnsLookupFamily: "AUTO" as const,
    upstreamProtocol: "HTTP/1.1" as const, endpoints: Array.from({ length: n }, (_, i) => ({ address: "127.0.0.1", port: 1000 + i })),
  });

  test("power of two choices: fewer active requests wins, a tie keeps the first sample, the same host twice is possible", () => {
    const seq = [0, 1, 0, 1, 0, 1, 2, 2, 4, 3];
    const lb = new LoadBalancers(() => seq.shift()!);
    const c = cluster(3);
    const take = () => {
      const e = lb.pick(c)!;
      lb.requestActive(`127.0.0.1:${e.port}`, 1);
      return e.port - 1000;
    };
    assert.equal(take(), 0, "0 vs 1, both idle: the first sample");
    assert.equal(take(), 1, "0 (1 active) vs 1 (idle)");
    assert.equal(take(), 0, "0 (1) vs 1 (1): tie keeps the first");
    assert.equal(take(), 2, "2 sampled twice (random % 3)");
    lb.requestActive("127.0.0.1:1000", -2);
    assert.equal(take(), 0, "4 % 3 = 1 (1 active) vs 3 % 3 = 0 (idle again)");
    assert.equal(lb.activeRequests("127.0.0.1:1000"), 1);
  });

  test("one host: no sampling; ROUND_ROBIN unchanged", () => {
    const lb = new LoadBalancers(() => { throw new Error("random() must not be called"); });
    assert.equal(lb.pick(cluster(1))?.port, 1000);
    const rr = cluster(3, "ROUND_ROBIN");
    assert.deepEqual([lb.pick(rr)!.port, lb.pick(rr)!.port, lb.pick(rr)!.port, lb.pick(rr)!.port], [1000, 1001, 1002, 1000]);
  });

  test("dns_lookup_family orders and filters the resolved addresses", async () => {
    const both = [{ address: "::1", family: 6 }, { address: "127.0.0.1", family: 4 }];
    assert.deepEqual(applyFamily(both, "AUTO").map((a) => a.address), ["::1"]);
    assert.deepEqual(applyFamily(both, "V4_PREFERRED").map((a) => a.address), ["127.0.0.1"]);
    assert.deepEqual(applyFamily(both, "V4_ONLY").map((a) => a.address), ["127.0.0.1"]);
    assert.deepEqual(applyFamily(both.slice(1), "AUTO").map((a) => a.address), ["127.0.0.1"], "AUTO falls back to v4");
    assert.deepEqual(applyFamily(both.slice(0, 1), "V4_PREFERRED").map((a) => a.address), ["::1"], "V4_PREFERRED falls back to v6");
    assert.deepEqual(applyFamily(both.slice(1), "V6_ONLY"), []);
    assert.equal(applyFamily(both, "ALL").length, 2);
    const fake = ((_h: string, _o: unknown, cb: (e: null, a: typeof both) => void) => cb(null, both)) as never;
    const ask = (fam: "V4_ONLY" | "V6_ONLY") => new Promise<string>((resolve) =>
      lookupFor(fam, fake)("backend", {}, (err, a) => resolve(err ? `error ${err.code}` : String(a))));
    assert.equal(await ask("V4_ONLY"), "127.0.0.1");
    assert.equal(await ask("V6_ONLY"), "::1");
  });
});

describe("envoy-gateway.yaml and envoy-sidecar.yaml running (scripted plugin)", () => {
  let pods: PodServer[];
  before(async () => {
    pods = await startPods(3);
  });
  after(async () => {
    await Promise.all(pods.map((p) => p.kill()));
  });

  test("gateway: LEAST_REQUEST sends a new WebSocket to the pod with fewer open ones; a hostname endpoint resolves per dns_lookup_family", async () => {
    const seq = [0, 1, 0, 1, 0, 1, 2, 0];
    let proxy: RunningProxy | undefined;
    const open: Array<import("ws").WebSocket> = [];
    try {
      proxy = await startProxy({
        configPath: path.join(ENVOY_DIR, "envoy-gateway.yaml"), plugin: new FakePlugin(2), lbRandom: () => seq.shift() ?? 0,
        clusterOverrides: { ws_backend: pods.map((p) => ({ host: "127.0.0.1", port: p.port })) }, listenerPortOverride: 0, adminPortOverride: 0,
      });
      const p = proxy;
      const podOf = async () => {
        const o = await connectWs(p.wsUrl("/ws"));
        assert.equal(o.kind, "open");
        if (o.kind !== "open") return "";
        open.push(o.ws);
        return String(o.headers["x-pod"]);
      };
      assert.equal(await podOf(), "pod-a", "a vs b, both idle: first sample");
      assert.equal(await podOf(), "pod-b", "a (1 open) vs b (0)");
      assert.equal(await podOf(), "pod-a", "a (1) vs b (1): the tie keeps the first sample (round robin would say pod-c)");
      const active = () => p.endpoints().map((e) => e.activeRequests);
      assert.deepEqual(active(), [2, 1, 0], "an open WebSocket is an active request of its host");
      assert.equal(await podOf(), "pod-c", "c (0) vs a (2)");
      for (const ws of open.splice(0)) await closeWs(ws);
      await waitFor(() => active().every((n) => n === 0), { what: "active requests back to 0" });
    } finally {
      for (const ws of open) ws.terminate();
      await proxy?.close();
    }
    // STRICT_DNS with a hostname endpoint: "localhost" resolved as V4_ONLY reaches the IPv4 pod
    const doc = parseYaml(read("envoy-gateway.yaml"));
    doc.static_resources.clusters[0].dns_lookup_family = "V4_ONLY";
    doc.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address = { address: "localhost", port_value: pods[0].port };
    const p2 = await startProxy({ config: doc, plugin: new FakePlugin(2), listenerPortOverride: 0, adminPortOverride: 0 });
    try {
      const r = await httpRequest(p2.url("/x"));
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).pod, "pod-a");
    } finally {
      await p2.close();
    }
  });

  test("sidecar: the filter sees route 'websocket' for an upgrade and 'http' for plain requests, incl. an Upgrade header without Connection: upgrade", async () => {
    const plugin = new FakePlugin(2);
    const proxy = await startProxy({
      configPath: path.join(ENVOY_DIR, "envoy-sidecar.yaml"), plugin,
      clusterOverrides: { local_app: [{ host: "127.0.0.1", port: pods[0].port }] }, listenerPortOverride: 0, adminPortOverride: 0,
    });
    const routeOf = (s: FakeStream) => s.calls.find((c) => c.op === "setRoute");
    try {
      const o = await connectWs(proxy.wsUrl("/ws"), { headers: { upgrade: "WebSocket" } });
      assert.equal(o.kind, "open");
      if (o.kind === "open") await closeWs(o.ws);
      assert.deepEqual(routeOf(plugin.streams.at(-1)!), { op: "setRoute", clusterName: "local_app", routeName: "websocket" });
      assert.equal((await httpRequest(proxy.url("/x"))).status, 200);
      assert.equal((routeOf(plugin.streams.at(-1)!) as { routeName?: string }).routeName, "http");
      // the HCM removes Upgrade from a request that is not an upgrade (no Connection: upgrade), so it routes as http
      assert.equal((await httpRequest(proxy.url("/x"), { headers: { upgrade: "websocket" } })).status, 200);
      assert.equal((routeOf(plugin.streams.at(-1)!) as { routeName?: string }).routeName, "http");
    } finally {
      await proxy.close();
    }
  });

  test("sidecar: the chosen route's timeout applies — http (shortened to 0.3s here) answers 504, the websocket route (0s) waits", async () => {
    const silent = net.createServer((s) => { held.push(s); }); // accepts and never answers
    const held: net.Socket[] = [];
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const doc = parseYaml(read("envoy-sidecar.yaml"));
    hcmOf(doc).route_config.virtual_hosts[0].routes[1].route.timeout = "0.3s";
    const proxy = await startProxy({
      config: doc, plugin: new FakePlugin(2), listenerPortOverride: 0, adminPortOverride: 0,
      clusterOverrides: { local_app: [{ host: "127.0.0.1", port: (silent.address() as net.AddressInfo).port }] },
    });
    try {
      const t0 = Date.now();
      const r = await httpRequest(proxy.url("/slow"));
      assert.equal(r.status, 504);
      assert.equal(r.body, "upstream request timeout");
      assert.ok(Date.now() - t0 >= 250, "after the http route's timeout");
      const ws = await connectWs(proxy.wsUrl("/slow"), { timeoutMs: 800 });
      assert.equal(ws.kind, "error", "no 504 on the websocket route: the handshake just waits");
      if (ws.kind === "error") assert.match(ws.error.message, /timed out|within/i);
    } finally {
      await proxy.close();
      for (const s of held) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

// ExtensionWithMatcher + SkipFilter around the Wasm filter (docs/extension-matcher.md), as Envoy 1.30–1.36 run it:
//   source/common/http/match_delegate/config.cc :: DelegatingFactoryCallbacks (addStreamFilter wraps the filter in a
//     DelegatingStreamFilter, addAccessLogHandler passes the filter through unwrapped), DelegatingStreamFilter::
//     decodeHeaders (evaluate on the request headers; skipped → Continue without calling the filter), encode*/decode*
//     (skipped → Continue), onDestroy (always forwarded)
//   source/extensions/common/wasm/context.cc :: Context::log (onCreate() when the VM context was never created, then
//     onLog), Context::onDestroy (onDone, onDelete once created)
//   source/common/http/matching/inputs.h :: HttpHeadersDataInputBase::get (LowerCaseString, values joined with ",",
//     absent header → no value)
// So a skipped stream costs the Wasm VM exactly on_context_create → on_log → on_done → on_delete (envoy/envoy#44825
// asks to stop that; the opt-in fix envoy.reloadable_features.match_delegate_lazy_creation is not in 1.30–1.36).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { BootstrapError, DEFAULT_CONFIG_PATH, readBootstrap } from "./proxy/index.ts";
import { evaluate, predicateMatches, type MatchTree } from "./proxy/matcher.ts";
import { traceProbe } from "./probes/trace.ts";
import { rawExchange, startInProxy, statusLine, type InProxy } from "./probes/in_proxy.ts";
import { startPods, type PodServer } from "../support/pods.ts";

const T_EWM = "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher";
const T_SKIP = "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter";
const T_HDR = "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput";
const SKIP = { action: { name: "skip", typed_config: { "@type": T_SKIP } } };
const input = (h: string) => ({ name: h, typed_config: { "@type": T_HDR, header_name: h } });
const single = (h: string, value_match: object) => ({ single_predicate: { input: input(h), value_match } });
const ANY = { safe_regex: { google_re2: {}, regex: ".*" } };

/** the P0 matcher: skip unless an `upgrade` header is present or :path is an endpoint path (query allowed) */
const P0 = {
  matcher_list: {
    matchers: [{
      predicate: {
        and_matcher: {
          predicate: [
            { not_matcher: single("upgrade", ANY) },
            { not_matcher: single(":path", { safe_regex: { google_re2: {}, regex: "/websocket/(metrics|health)(\\?.*)?" } }) },
          ],
        },
      },
      on_match: SKIP,
    }],
  },
};

type Doc = { static_resources: { listeners: Array<{ filter_chains: Array<{ filters: Array<{ typed_config: { http_filters: Array<Record<string, unknown>> } }> }> }> } };

/** envoy/envoy.yaml with its Wasm filter entry wrapped in ExtensionWithMatcher (or `entry` replacing its typed_config) */
function wrapped(xdsMatcher: object | undefined, edit: (ewm: Record<string, unknown>) => void = () => {}): Doc {
  const doc = parseYaml(readFileSync(DEFAULT_CONFIG_PATH, "utf8")) as Doc;
  const filters = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
  const wasm = filters[0] as { typed_config: { extension_config?: { typed_config: unknown } } };
  const inner = wasm.typed_config.extension_config?.typed_config ?? wasm.typed_config; // envoy.yaml ships it wrapped
  const ewm: Record<string, unknown> = {
    "@type": T_EWM,
    extension_config: { name: "envoy.filters.http.wasm", typed_config: inner },
  };
  if (xdsMatcher !== undefined) ewm.xds_matcher = xdsMatcher;
  edit(ewm);
  filters[0] = { name: "ws_governor", typed_config: ewm };
  return doc;
}

function problems(doc: object): string[] {
  try {
    readBootstrap(doc);
  } catch (e) {
    if (e instanceof BootstrapError) return e.problems;
    throw e;
  }
  return [];
}

const H = (...pairs: Array<[string, string]>) => [[":authority", "a"], [":path", "/"], [":method", "GET"], ...pairs] as Array<[string, string]>;

describe("reader: ExtensionWithMatcher wrapping the Wasm filter", () => {
  test("the P0 wrapper parses; the Wasm config inside is the filter's", () => {
    const bs = readBootstrap(wrapped(P0));
    const w = bs.listener.hcm.wasm!;
    assert.equal(w.name, "ws_governor");
    assert.equal(w.skipMatcher?.kind, "list");
  });

  test("forms outside the model are refused with their path", () => {
    const base = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config";
    const cases: Array<[object | undefined, (e: Record<string, unknown>) => void, string]> = [
      [undefined, () => {}, `${base}.xds_matcher: required`],
      [P0, (e) => { e.matcher = {}; }, `${base}.matcher: the deprecated`],
      [{ matcher_list: { matchers: [{ predicate: single("x", { exact: "1" }), on_match: { ...SKIP, keep_matching: true } }] } }, () => {},
        `${base}.xds_matcher.matcher_list.matchers[0].on_match.keep_matching: not modelled`],
      [{ matcher_list: { matchers: [{ predicate: single("x", { exact: "1" }), on_match: { matcher: P0 } }] } }, () => {},
        `${base}.xds_matcher.matcher_list.matchers[0].on_match.matcher: nested matchers are not modelled`],
      [{ matcher_list: { matchers: [{ predicate: { single_predicate: { input: { name: "r", typed_config: {
        "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpResponseHeaderMatchInput", header_name: "x" } }, value_match: { exact: "1" } } },
      on_match: SKIP }] } }, () => {}, `${base}.xds_matcher.matcher_list.matchers[0].predicate.single_predicate.input.typed_config.@type: only`],
      [{ matcher_list: { matchers: [{ predicate: { single_predicate: { input: input("x"), custom_match: { name: "c" } } }, on_match: SKIP }] } },
        () => {}, `${base}.xds_matcher.matcher_list.matchers[0].predicate.single_predicate.custom_match: custom input matchers`],
      [{ matcher_list: { matchers: [{ predicate: { or_matcher: { predicate: [single("x", { exact: "1" })] } }, on_match: SKIP }] } }, () => {},
        `${base}.xds_matcher.matcher_list.matchers[0].predicate.or_matcher.predicate: at least two`],
      [{ matcher_list: { matchers: [{ predicate: single("x", { safe_regex: { regex: "a" } }), on_match: SKIP }] } }, () => {},
        `${base}.xds_matcher.matcher_list.matchers[0].predicate.single_predicate.value_match.safe_regex.google_re2: required`],
      [{ matcher_list: { matchers: [{ predicate: single("x", { prefix: "" }), on_match: SKIP }] } }, () => {},
        `${base}.xds_matcher.matcher_list.matchers[0].predicate.single_predicate.value_match.prefix: must not be empty`],
      [{ matcher_list: { matchers: [{ predicate: single("x", { exact: "1" }), on_match: { action: { name: "a", typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.ExecuteFilterAction" } } } }] } }, () => {},
        `${base}.xds_matcher.matcher_list.matchers[0].on_match.action.typed_config.@type: only the SkipFilter action`],
      [{ on_no_match: SKIP }, () => {}, `${base}.xds_matcher: exactly one of matcher_list, matcher_tree`],
      [P0, (e) => { (e.extension_config as Record<string, unknown>).typed_config = { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }; },
        `${base}.extension_config.typed_config.@type: only the Wasm filter`],
    ];
    for (const [m, edit, want] of cases) {
      const got = problems(wrapped(m, edit));
      assert.ok(got.some((p) => p.startsWith(want)), `expected "${want}…" in:\n  ${got.join("\n  ")}`);
    }
  });
});

describe("evaluation (Matcher::evaluateMatch on request headers)", () => {
  const tree = (m: object): MatchTree => readBootstrap(wrapped(m)).listener.hcm.wasm!.skipMatcher!;

  test("missing header: a value predicate is false (StringInputMatcher), its not_matcher true; an empty value is a value", () => {
    const p = tree({ matcher_list: { matchers: [{ predicate: single("x-k", ANY), on_match: SKIP }] } });
    assert.equal(evaluate(p, H()), undefined, "absent: no match, no on_no_match → the filter runs");
    assert.equal(evaluate(p, H(["x-k", ""]))?.action, "skip", "present with an empty value: '.*' matches");
    const n = tree({ matcher_list: { matchers: [{ predicate: { not_matcher: single("x-k", { exact: "v" }) }, on_match: SKIP }] } });
    assert.equal(evaluate(n, H())?.action, "skip");
    assert.equal(evaluate(n, H(["x-k", "v"])), undefined);
  });

  test("matcher_tree: an absent header goes to on_no_match; exact map; longest prefix wins", () => {
    const ex = tree({ matcher_tree: { input: input("x-k"), exact_match_map: { map: { a: SKIP } } }, on_no_match: SKIP });
    assert.equal(evaluate(ex, H())?.action, "skip", "absent → on_no_match");
    assert.equal(evaluate(ex, H(["x-k", "a"]))?.action, "skip");
    const ex2 = tree({ matcher_tree: { input: input("x-k"), exact_match_map: { map: { a: SKIP } } } });
    assert.equal(evaluate(ex2, H(["x-k", "b"])), undefined);
    assert.equal(evaluate(ex2, H()), undefined);
    const px = tree({ matcher_tree: { input: input(":path"), prefix_match_map: { map: { "/a": SKIP, "/ab": { action: { name: "s2", typed_config: { "@type": T_SKIP } } } } } } });
    assert.equal(evaluate(px, [[":path", "/abc"]])?.name, "s2");
    assert.equal(evaluate(px, [[":path", "/ax"]])?.name, "skip");
    assert.equal(evaluate(px, [[":path", "/b"]]), undefined);
  });

  test("header_name is lower-cased (LowerCaseString); repeated entries are one value joined with ','", () => {
    const t = tree({ matcher_list: { matchers: [{ predicate: single("X-Skip", { exact: "a,b" }), on_match: SKIP }] } });
    assert.equal(evaluate(t, H(["x-skip", "a"], ["x-skip", "b"]))?.action, "skip");
    assert.equal(evaluate(t, H(["x-skip", "a"])), undefined);
    assert.equal(predicateMatches({ kind: "single", header: "x", match: { kind: "prefix", value: "A", ignoreCase: true } }, [["x", "ab"]]), true);
  });

  test("the P0 matcher: skip a plain request, not an upgrade or an endpoint path (with or without a query)", () => {
    const t = tree(P0);
    assert.equal(evaluate(t, [[":path", "/x"], [":method", "GET"]])?.action, "skip");
    assert.equal(evaluate(t, H(["upgrade", "websocket"])), undefined);
    for (const p of ["/websocket/metrics", "/websocket/health", "/websocket/health?probe=1"]) {
      assert.equal(evaluate(t, [[":path", p]]), undefined, p);
    }
    assert.equal(evaluate(t, [[":path", "/websocket/metricsx"]])?.action, "skip", "RE2 full match: not a prefix");
  });
});

describe("loopback proxy: a skipped stream gets only create → log → done → delete", () => {
  let pods: PodServer[];
  let e: InProxy;
  const counts = new Map<string, number>();
  const snapshot = () => new Map(counts);
  const diff = (a: Map<string, number>) => {
    const out: Record<string, number> = {};
    for (const [k, v] of counts) if (v !== (a.get(k) ?? 0)) out[k] = v - (a.get(k) ?? 0);
    return out;
  };
  /** one exchange; resolves with the response and the callbacks of that stream once its on_delete ran */
  const exchange = async (lines: string[]) => {
    const before = snapshot();
    const resp = await rawExchange(e.proxy.listenerPort, lines);
    for (let i = 0; i < 100 && (counts.get("delete") ?? 0) === (before.get("delete") ?? 0); i++) await new Promise((r) => setTimeout(r, 10));
    return { resp, calls: diff(before) };
  };
  const LIFECYCLE = { create: 1, log: 1, done: 1, delete: 1 };
  const UPGRADE = ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="];

  before(async () => {
    pods = await startPods(1);
    const p0 = wrapped({
      matcher_list: {
        matchers: [
          ...P0.matcher_list.matchers,
          { predicate: single("X-Skip", { exact: "a,b" }), on_match: SKIP }, // merged-value case, name in upper case
          { predicate: single("x-present", ANY), on_match: SKIP },             // missing vs empty
        ],
      },
    });
    e = await startInProxy(traceProbe().build(), p0, { clusterOverrides: { demo_pods: [{ host: "127.0.0.1", port: pods[0].port }] } },
      { onLog: (l) => counts.set(l.message, (counts.get(l.message) ?? 0) + 1) });
  });
  after(async () => {
    await e.close();
    await Promise.all(pods.map((p) => p.kill()));
  });

  test("plain GET: skipped — no header/body callback, the upstream still answers, the VM sees the lifecycle only", async () => {
    const { resp, calls } = await exchange(["GET /api HTTP/1.1", "Host: example.com", "Connection: close"]);
    assert.equal(statusLine(resp), "HTTP/1.1 200 OK");
    assert.match(resp, /"pod":"pod-a"/);
    assert.deepEqual(calls, LIFECYCLE);
  });

  test("plain POST with a body: skipped, no on_request_body / on_response_body either", async () => {
    const { resp, calls } = await exchange(["POST /api HTTP/1.1", "Host: example.com", "Connection: close", "Content-Length: 3", "", "abc"]);
    assert.equal(statusLine(resp), "HTTP/1.1 200 OK");
    assert.deepEqual(calls, LIFECYCLE);
  });

  test("WebSocket upgrade: not skipped — the filter sees the request and the 101", async () => {
    const { resp, calls } = await exchange(["GET /ws HTTP/1.1", "Host: example.com", ...UPGRADE]);
    assert.equal(statusLine(resp), "HTTP/1.1 101 Switching Protocols");
    assert.equal(calls.req_headers, 1);
    assert.equal(calls.resp_headers, 1);
    assert.equal(calls.create, 1);
    assert.equal(calls.delete, 1);
  });

  test("header-name case on the wire does not matter (UPGRADE / CONNECTION)", async () => {
    const { resp, calls } = await exchange(["GET /ws HTTP/1.1", "Host: example.com", "CONNECTION: upgrade", "UPGRADE: websocket",
      "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]);
    assert.equal(statusLine(resp), "HTTP/1.1 101 Switching Protocols");
    assert.equal(calls.req_headers, 1);
  });

  test("an Upgrade header without Connection: upgrade is removed by the HCM before the matcher runs: skipped", async () => {
    const { resp, calls } = await exchange(["GET /x HTTP/1.1", "Host: example.com", "Connection: close", "Upgrade: websocket"]);
    assert.equal(statusLine(resp), "HTTP/1.1 200 OK");
    assert.deepEqual(calls, LIFECYCLE);
  });

  test("endpoint paths are not skipped (query included); a longer path is", async () => {
    for (const p of ["/websocket/metrics", "/websocket/health", "/websocket/health?probe=1"]) {
      const { calls } = await exchange([`GET ${p} HTTP/1.1`, "Host: example.com", "Connection: close"]);
      assert.equal(calls.req_headers, 1, p);
    }
    const { calls } = await exchange(["GET /websocket/metrics/x HTTP/1.1", "Host: example.com", "Connection: close"]);
    assert.deepEqual(calls, LIFECYCLE);
  });

  test("merged headers: two X-Skip lines are one value 'a,b' for the input (a third matcher skips on it)", async () => {
    // an endpoint path, so only the X-Skip matcher can skip
    const two = await exchange(["GET /websocket/health HTTP/1.1", "Host: example.com", "Connection: close", "X-Skip: a", "x-skip: b"]);
    assert.deepEqual(two.calls, LIFECYCLE);
    const one = await exchange(["GET /websocket/health HTTP/1.1", "Host: example.com", "Connection: close", "X-Skip: a"]);
    assert.equal(one.calls.req_headers, 1);
  });

  test("missing header: no value, so '.*' does not match; an empty value does", async () => {
    const missing = await exchange(["GET /websocket/health HTTP/1.1", "Host: example.com", "Connection: close"]);
    assert.equal(missing.calls.req_headers, 1);
    const empty = await exchange(["GET /websocket/health HTTP/1.1", "Host: example.com", "Connection: close", "X-Present:"]);
    assert.deepEqual(empty.calls, LIFECYCLE);
  });
});

// Behaviour 9 (the filter's own endpoints) and draining, in the emulated Envoy: metrics and health, who may read them
// (endpoint_allow, and the loopback rule that x-forwarded-for cannot satisfy: envoy-host.md §13.2), health as readiness.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  bodyText, conn, finishReply, H200, header, isContinue, makeEnv, open, parseProm, plainHeaders, podTotal, reply, ok,
} from "./support.ts";

// ------------------------------------------------------------------ B9 endpoints

test("B9 endpoints: metrics in Prometheus text with per-pod gauges and the Lua names; health; 403 outside the allowlist", () => {
  const e = makeEnv({ pod: "pod-a", config: { max_connections_per_pod: 2, rate_limit: { requests: 3, window_seconds: 60 } } });
  try {
    const get = (path: string, src: string, w = 0) => {
      const s = e.h.newStream(w, conn(src));
      const rep = reply(s.decodeHeaders(plainHeaders(path), true));
      finishReply(s);
      return rep;
    };
    const h = get("/websocket/health", "127.0.0.1:5555");
    assert.equal(h.status, 200);
    assert.equal(bodyText(h), "ok\n");
    const m0 = get("/websocket/metrics?x=1", "127.0.0.1:5555", 1);
    assert.equal(m0.status, 200);
    assert.match(header(m0.headers, "content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.equal(parseProm(bodyText(m0)).get('websocket_connections_active_total{pod="pod-a"}'), 0, "pod shown before its first connection");

    const a = open(e.h, 0), b = open(e.h, 1);
    ok(a.admitted && b.admitted);
    const c = open(e.h, 0);
    assert.equal(c.admitted, false);
    finishReply(c.s);
    const d = open(e.h, 1);
    assert.equal(reply(d.r).status, 429);
    finishReply(d.s);
    // The page reads Envoy's stats: the serving VM's own counters are exact, the others' (and every VM's gauge share)
    // arrive on their tick (README "Statistics": at most one tick_ms behind).
    e.proc.tickAll();

    for (const src of ["127.0.0.1:40000", "[::1]:40000"]) {
      const rep = get("/websocket/metrics", src);
      assert.equal(rep.status, 200, src);
      const text = bodyText(rep);
      const m = parseProm(text);
      assert.equal(m.get('websocket_connections_active_total{pod="pod-a"}'), 2);
      assert.equal(m.get('websocket_connections_rejected_total{pod="pod-a"}'), 1);
      assert.equal(m.get("websocket_connection_rate_limited_total"), 1);
      assert.equal(m.get('ws_governor_rejected_total{reason="pod_full"}'), 1);
      assert.equal(m.get('ws_governor_rejected_total{reason="rate_limited"}'), 1);
      assert.equal(m.get("ws_governor_active_connections"), 2);
      assert.match(text, /^# TYPE websocket_connections_active_total gauge$/m);
      assert.match(text, /^# TYPE ws_governor_rejected_total counter$/m);
    }
    for (const path of ["/websocket/metrics", "/websocket/health"]) {
      for (const src of ["10.1.2.3:5555", "[fd00::1]:5555"]) {
        const rep = get(path, src);
        assert.equal(rep.status, 403, `${path} from ${src}`);
        assert.equal(rep.details, "ws_governor_forbidden");
      }
    }
    // §13.2: with use_remote_address false Envoy takes source.address from x-forwarded-for, so a remote client can
    // present 127.0.0.1; its connection still arrived at the pod's address, not a loopback one → 403
    for (const path of ["/websocket/metrics", "/websocket/health"]) {
      for (const src of ["127.0.0.1:5555", "[::1]:5555"]) {
        const s = e.h.newStream(0, conn(src, "HTTP/1.1", "10.0.0.10:8080"));
        const rep = reply(s.decodeHeaders(plainHeaders(path), true));
        finishReply(s);
        assert.equal(rep.status, 403, `${path} from ${src} (named in x-forwarded-for) to the pod address`);
      }
    }
    // endpoints are not upgrades and not rate limited
    assert.equal(e.stat("upgrades_total"), 4);
    a.s.complete();
    b.s.complete();
  } finally {
    e.close();
  }
  // disabled endpoints pass through to the upstream
  const e2 = makeEnv({ config: { metrics_path: "", health_path: "", endpoint_allow: ["10.0.0.0/8"] } });
  try {
    const s = e2.h.newStream(0, conn("10.1.2.3:1"));
    ok(isContinue(s.decodeHeaders(plainHeaders("/websocket/metrics"), true)));
    s.complete();
  } finally {
    e2.close();
  }
});

test("draining true → 503 ws_governor_draining for upgrades and the health endpoint (readiness); plain traffic and metrics unaffected", () => {
  const e = makeEnv({ config: { draining: true } });
  try {
    const o = open(e.h, 0);
    assert.equal(o.admitted, false);
    const rep = reply(o.r);
    finishReply(o.s);
    assert.equal(rep.status, 503);
    assert.equal(rep.details, "ws_governor_draining");
    assert.equal(e.stat("rejected_total.reason.draining"), 1);
    assert.equal(podTotal(e.proc), 0);
    const p = e.h.newStream(1, conn());
    ok(isContinue(p.decodeHeaders(plainHeaders(), true)));
    p.complete();
    const hs = e.h.newStream(1, conn("127.0.0.1:1"));
    const hr = reply(hs.decodeHeaders(plainHeaders("/websocket/health"), true));
    finishReply(hs);
    assert.equal(hr.status, 503, "not ready while draining");
    assert.equal(bodyText(hr), "draining\n");
    const ms = e.h.newStream(1, conn("127.0.0.1:1"));
    assert.equal(reply(ms.decodeHeaders(plainHeaders("/websocket/metrics"), true)).status, 200);
    finishReply(ms);
  } finally {
    e.close();
  }
});

test("host calls of a plain request, unwrapped with the endpoints on: 2 without a body (`upgrade`, `:path`), 1 with a body (`upgrade`); a request with a body is never answered as an endpoint", () => {
  const e = makeEnv({ config: { max_connections_per_pod: 1 } });
  try {
    const calls = (fn: () => void) => {
      const c = e.h.hostCalls(0);
      c.reset();
      fn();
      return c.all();
    };
    // bodyless GET (HTTP/1: headers with eos = 1): `upgrade` (absent) and `:path` (not an endpoint)
    const get = calls(() => {
      const s = e.h.newStream(0, conn());
      ok(isContinue(s.decodeHeaders(plainHeaders(), true)));
      ok(isContinue(s.encodeHeaders(H200, false)));
      ok(isContinue(s.encodeData(new TextEncoder().encode("ok"), true)));
      s.complete();
    });
    assert.deepEqual(get, { proxy_get_header_map_value: 2 });
    // POST with a body (eos = 0 on the headers, as gRPC always is): `upgrade` alone
    const post = calls(() => {
      const s = e.h.newStream(0, conn());
      ok(isContinue(s.decodeHeaders(plainHeaders("/api/x", [["content-length", "2"]]).map(
        ([k, v]) => [k, k === ":method" ? "POST" : v] as [string, string]), false)));
      ok(isContinue(s.decodeData(new TextEncoder().encode("{}"), false)));
      ok(isContinue(s.decodeData(new Uint8Array(0), true)));
      ok(isContinue(s.encodeHeaders(H200, false)));
      ok(isContinue(s.encodeData(new TextEncoder().encode("ok"), true)));
      s.complete();
    });
    assert.deepEqual(post, { proxy_get_header_map_value: 1 });
    // the metrics path with a body (or headers without END_STREAM) goes upstream, unanswered, from any source
    const m = e.h.newStream(0, conn("127.0.0.1:1"));
    ok(isContinue(m.decodeHeaders(plainHeaders("/websocket/metrics"), false)));
    ok(isContinue(m.decodeData(new Uint8Array(0), true)));
    m.complete();
    // the same path without a body is answered
    const m2 = e.h.newStream(0, conn("127.0.0.1:1"));
    assert.equal(reply(m2.decodeHeaders(plainHeaders("/websocket/metrics"), true)).status, 200);
    finishReply(m2);
  } finally {
    e.close();
  }
});

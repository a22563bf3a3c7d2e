// Behaviours 1, 3, 5, 6, 10 (+ shadow mode; 9 and draining in endpoints.test.ts) of the issue, end to end: the release module in the emulated
// Envoy, driven callback by callback as Envoy would (envoy-host.md §2.3–§2.5, §7, §8).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  G, H101, H200, VMID, clientTotal, conn, finishReply, header, isContinue, makeEnv, open,
  plainHeaders, podLedgers, podTotal, reply, sharedCalls, upgradeHeaders, ok,
} from "./support.ts";
import type { HeaderList } from "./support.ts";

const NO_RATE = { rate_limit: null };

// ------------------------------------------------------------------ B1 upgrade detection

test("B1 upgrade detection: token lists, case-insensitive; lookalikes are plain traffic with zero shared-data calls", () => {
  const e = makeEnv({ config: { ...NO_RATE, max_connections_per_pod: 1000 } });
  try {
    const upgrades: Array<[string, string]> = [
      ["websocket", "Upgrade"], ["WebSocket", "upgrade"], ["websocket", "keep-alive, Upgrade"],
      ["h2c, websocket", "Upgrade, HTTP2-Settings"], ["websocket", "  upgrade\t"], ["websocket", "close,UPGRADE"],
    ];
    for (const [u, c] of upgrades) {
      const before = e.stat("upgrades_total");
      const s = e.h.newStream(0, conn());
      const r = s.decodeHeaders([[":method", "GET"], [":path", "/ws"], [":authority", "a"], ["upgrade", u], ["connection", c]], false);
      ok(isContinue(r), `${u} / ${c}`);
      assert.equal(e.stat("upgrades_total"), before + 1, `upgrade: ${u}, connection: ${c} is a WebSocket upgrade`);
      s.reset("client");
    }
    // `upgrade` without the "upgrade" token in `connection` never reaches a filter: Envoy's HCM strips both headers
    // first (envoy-host.md §8.1; the emulated proxy does, test/e2e "plain HTTP is untouched"), so the filter reads
    // `upgrade` alone. What it must still tell apart: the upgrade protocol.
    const plain: HeaderList[] = [
      plainHeaders(),
      plainHeaders("/ws", [["upgrade", "websockets"], ["connection", "upgrade"]]),
      plainHeaders("/ws", [["upgrade", "h2c"], ["connection", "upgrade"]]),
      plainHeaders("/ws", [["upgrade", "not-websocket"], ["connection", "upgrade"]]),
      plainHeaders("/websocket/metricsX"),
    ];
    for (const w of [0, 1]) {
      for (const hs of plain) {
        const up = e.stat("upgrades_total");
        const before = sharedCalls(e.h, w);
        const s = e.h.newStream(w, conn());
        const r = s.decodeHeaders(hs, true);
        ok(isContinue(r), JSON.stringify(hs));
        ok(isContinue(s.encodeHeaders(H200, false)));
        ok(isContinue(s.encodeData(new Uint8Array([111, 107]), true)));
        s.complete();
        assert.equal(sharedCalls(e.h, w), before, `plain request made shared-data calls: ${JSON.stringify(hs)}`);
        assert.equal(e.stat("upgrades_total"), up, `counted as an upgrade: ${JSON.stringify(hs)}`);
      }
    }
    assert.equal(podTotal(e.proc), 0);
  } finally {
    e.close();
  }
});

// Envoy's HTTP/2 (and HTTP/3) server codec rewrote :method CONNECT + :protocol websocket into this GET (§8.3). A client
// that sets END_STREAM on those HEADERS gets eos = 1 passed on: nothing on the way rejects it and the upgrade chain runs,
// so eos = 1 does not mean a plain request (skipping the `upgrade` read there would let such streams past the caps).
for (const endStream of [false, true]) {
  test(`B1 upgrade detection: HTTP/2 extended CONNECT (END_STREAM ${endStream ? "set" : "not set"}) arrives as an HTTP/1-style upgrade GET and is governed`, () => {
    const e = makeEnv({ config: { ...NO_RATE, max_connections_per_pod: 1 } });
    try {
      const h2: HeaderList = [[":method", "GET"], [":path", "/ws"], [":authority", "a"], [":scheme", "https"],
        ["upgrade", "websocket"], ["connection", "upgrade"], ["sec-websocket-version", "13"]];
      const s = e.h.newStream(0, conn("10.0.0.2:1", "HTTP/2"));
      ok(isContinue(s.decodeHeaders(h2, endStream)));
      ok(isContinue(s.encodeHeaders(H101, false)));
      assert.equal(e.stat("active_connections"), 1);
      const s2 = e.h.newStream(1, conn("10.0.0.3:1", "HTTP/2"));
      assert.equal(reply(s2.decodeHeaders(h2, endStream)).details, "ws_governor_pod_full");
      finishReply(s2);
      // the client's END_STREAM, when not on the headers, is a body callback with eos = 1; then the stream completes
      if (!endStream) ok(isContinue(s.decodeData(new Uint8Array(0), true)));
      s.complete();
      assert.equal(e.stat("active_connections"), 0);
      assert.equal(podTotal(e.proc), 0);
    } finally {
      e.close();
    }
  });
}

// ------------------------------------------------------------------ B3 rate limit

test("B3 rate limit: 429 with Retry-After (whole seconds, rounded up) and RateLimit-* headers after the burst", () => {
  const e = makeEnv({ config: { max_connections_per_pod: 0, rate_limit: { requests: 3, window_seconds: 10, burst: 3 } } });
  try {
    for (let i = 0; i < 3; i++) {
      const o = open(e.h, i % 2);
      ok(o.admitted, `upgrade ${i} within the burst`);
      o.s.complete();
    }
    const s = e.h.newStream(0, conn());
    const rep = reply(s.decodeHeaders(upgradeHeaders(), false));
    finishReply(s);
    assert.equal(rep.status, 429);
    assert.equal(rep.details, "ws_governor_rate_limited");
    // T = 10 s / 3 = 3.333 s → Retry-After rounds up to 4
    assert.equal(header(rep.headers, "retry-after"), "4");
    assert.equal(header(rep.headers, "ratelimit-limit"), "3");
    assert.equal(header(rep.headers, "ratelimit-remaining"), "0");
    assert.equal(header(rep.headers, "ratelimit-reset"), "4");
    assert.equal(e.stat("rejected_total.reason.rate_limited"), 1);
    assert.equal(e.stat("accepted_total"), 3);
    // one interval later exactly one more passes (not earlier: 3.0 s is still inside the interval)
    e.proc.advance(3000);
    const early = open(e.h, 0);
    assert.equal(reply(early.r).status, 429);
    finishReply(early.s);
    e.proc.advance(400);
    const next = open(e.h, 1);
    ok(next.admitted, "one request per emission interval after the burst");
    next.s.complete();
    const s2 = e.h.newStream(1, conn());
    const rep2 = reply(s2.decodeHeaders(upgradeHeaders(), false));
    finishReply(s2);
    assert.equal(rep2.status, 429);
    assert.match(header(rep2.headers, "retry-after") ?? "", /^[1-4]$/);
    // plain traffic never consumes the allowance
    for (let i = 0; i < 10; i++) {
      const p = e.h.newStream(0, conn());
      ok(isContinue(p.decodeHeaders(plainHeaders(), true)));
      p.complete();
    }
    assert.equal(e.stat("rejected_total.reason.rate_limited"), 3);
  } finally {
    e.close();
  }
});

test("B3 rate limit: per key — address, header, metadata each get their own allowance; global is shared", () => {
  type Mk = { src: string; extra: HeaderList; meta?: string };
  const mk = (x: Mk): Mk => x;
  const cases: Array<{ key: Record<string, unknown> }> = [
    { key: { source: "address" } },
    { key: { source: "header", header: "x-api-key" } },
    { key: { source: "metadata", namespace: "envoy.filters.http.jwt_authn", path: ["payload", "sub"] } },
  ];
  for (const c of cases) {
    const e = makeEnv({ config: { max_connections_per_pod: 0, rate_limit: { requests: 2, window_seconds: 60, key: c.key, buckets: 4096 } } });
    try {
      const src = c.key.source as string;
      const who = (n: number): Mk => mk({
        src: src === "address" ? `10.9.0.${n}:${1000 + n}` : "10.0.0.1:1",
        extra: src === "header" ? [["x-api-key", `key-${n}`]] : [],
        meta: src === "metadata" ? `user-${n}` : undefined,
      });
      const attempt = (w: Mk, port = 0): boolean => {
        const s = e.h.newStream(port % 2, conn(port ? w.src.replace(/:\d+$/, `:${port}`) : w.src));
        if (w.meta !== undefined) s.setDynamicMetadata!("envoy.filters.http.jwt_authn", { payload: { sub: w.meta } });
        const r = s.decodeHeaders(upgradeHeaders(w.extra), false);
        if (r.kind === "continue") {
          s.encodeHeaders(H101, false);
          s.complete();
          return true;
        }
        assert.equal(reply(r).status, 429, src);
        finishReply(s);
        return false;
      };
      const A = who(1), B = who(2);
      // A's allowance (even from another source port for address keys) is independent of B's
      assert.equal(attempt(A, 5001), true, `${src}: A 1`);
      assert.equal(attempt(A, 5002), true, `${src}: A 2`);
      assert.equal(attempt(A, 5003), false, `${src}: A 3 over its allowance`);
      assert.equal(attempt(B), true, `${src}: B has its own allowance`);
      assert.equal(attempt(B), true, `${src}: B 2`);
      assert.equal(attempt(B), false, `${src}: B 3`);
      assert.equal(e.stat("rejected_total.reason.rate_limited"), 2, src);
    } finally {
      e.close();
    }
  }
  // global: one allowance for everybody
  const e = makeEnv({ config: { max_connections_per_pod: 0, rate_limit: { requests: 2, window_seconds: 60 } } });
  try {
    ok(open(e.h, 0, "10.1.0.1:1").admitted);
    ok(open(e.h, 1, "10.1.0.2:1").admitted);
    assert.equal(open(e.h, 0, "10.1.0.3:1").admitted, false);
  } finally {
    e.close();
  }
});

test("B3 rate limit: buckets bounded — a flood of distinct client keys never grows the set of shared-data keys", () => {
  const e = makeEnv({ config: { max_connections_per_pod: 0, rate_limit: { requests: 5, window_seconds: 1, key: { source: "header", header: "x-api-key" }, buckets: 64 } } });
  try {
    const keys0 = e.proc.sharedData.keys(VMID).slice().sort();
    assert.equal(keys0.filter((k) => k.startsWith("wsg:rl:")).length, 64, "rate buckets provisioned at configure");
    let admitted = 0;
    for (let i = 0; i < 3000; i++) {
      const s = e.h.newStream(i % 2, conn(`10.${(i >> 8) & 255}.${i & 255}.1:${i}`));
      const r = s.decodeHeaders(upgradeHeaders([["x-api-key", `client-${i}-${"z".repeat(i % 50)}`]]), false);
      if (r.kind === "continue") { admitted++; s.encodeHeaders(H101, false); }
      s.complete();
    }
    ok(admitted > 0);
    assert.deepEqual(e.proc.sharedData.keys(VMID).slice().sort(), keys0, "no key was added by client traffic");
  } finally {
    e.close();
  }
});

// ------------------------------------------------------------------ B5 per-client cap

test("B5 per-client cap: 429 ws_governor_client_limit over the cap, per source address across workers and ports", () => {
  const e = makeEnv({ config: { ...NO_RATE, max_connections_per_pod: 0, max_connections_per_client: 2 } });
  try {
    const a1 = open(e.h, 0, "10.5.0.1:1000"), a2 = open(e.h, 1, "10.5.0.1:1001");
    ok(a1.admitted && a2.admitted);
    const s = e.h.newStream(0, conn("10.5.0.1:1002"));
    const rep = reply(s.decodeHeaders(upgradeHeaders(), false));
    finishReply(s);
    assert.equal(rep.status, 429);
    assert.equal(rep.details, "ws_governor_client_limit");
    assert.equal(e.stat("rejected_total.reason.client_full"), 1);
    const b = open(e.h, 1, "10.5.0.2:1000");
    ok(b.admitted, "another client is not affected");
    a1.s.complete();
    const a3 = open(e.h, 1, "10.5.0.1:1003");
    ok(a3.admitted, "a slot freed by a close is available again");
    for (const x of [a2, b, a3]) x.s.complete();
    assert.equal(clientTotal(e.proc), 0);
    assert.equal(e.stat("active_connections"), 0);
  } finally {
    e.close();
  }
});

test("B5 pod identity never comes from a client header", () => {
  const e = makeEnv({ pod: "pod-a", config: { ...NO_RATE, max_connections_per_pod: 1 } });
  try {
    const spoof: HeaderList = [["x-pod", "pod-b"], ["x-pod-name", "pod-b"], ["x-envoy-peer-metadata-id", "sidecar~1~pod-b.ns~x"],
      ["x-envoy-original-dst-host", "10.0.0.99:8080"], ["host", "pod-b"]];
    const a = open(e.h, 0, "10.0.0.1:1", spoof);
    ok(a.admitted);
    const b = open(e.h, 1, "10.0.0.2:1", [["x-pod", "pod-c"]]);
    assert.equal(b.admitted, false, "the cap of pod-a applies whatever the client says");
    assert.equal(reply(b.r).details, "ws_governor_pod_full");
    finishReply(b.s);
    const names = [...podLedgers(e.proc).values()].map((l) => l.name).filter((n) => n !== "");
    assert.deepEqual(names, ["pod-a"]);
    a.s.complete();
  } finally {
    e.close();
  }
});

// ------------------------------------------------------------------ B6 exactly-once release

test("B6 exactly-once release on every end path: gauge 0, ledger 0, no orphan", () => {
  const e = makeEnv({ config: { ...NO_RATE, max_connections_per_pod: 2, max_connections_per_client: 5 } });
  try {
    const check = (what: string, released: number) => {
      assert.equal(e.stat("active_connections"), 0, `${what}: gauge`);
      assert.equal(podTotal(e.proc), 0, `${what}: pod ledger`);
      assert.equal(clientTotal(e.proc), 0, `${what}: client ledger`);
      assert.equal(e.stat("orphan_releases_total"), 0, `${what}: a second release found no share`);
      assert.equal(e.stat("released_total"), released, `${what}: released_total`);
    };
    const frame = new Uint8Array([0x81, 0x02, 0x68, 0x69]);

    // normal close
    let o = open(e.h, 0);
    ok(o.admitted);
    assert.equal(e.stat("active_connections"), 1);
    ok(isContinue(o.s.decodeData(frame, false)));
    ok(isContinue(o.s.encodeData(frame, false)));
    e.proc.advance(1500);
    o.s.complete();
    check("normal close", 1);

    // client reset
    o = open(e.h, 1);
    o.s.decodeData(frame, false);
    o.s.reset("downstream_remote_disconnect");
    check("client reset", 2);

    // upstream close: an empty non-eos chunk, then the reset
    o = open(e.h, 0);
    o.s.encodeData(new Uint8Array(0), false);
    o.s.reset("upstream_reset_after_response_started{remote_reset}");
    check("upstream close", 3);

    // non-101 response (upstream refuses the upgrade)
    let s = e.h.newStream(1, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)));
    assert.equal(podTotal(e.proc), 1, "reserved at request headers");
    ok(isContinue(s.encodeHeaders([[":status", "403"], ["content-length", "0"]], true)));
    assert.equal(podTotal(e.proc), 0, "released at the non-101");
    s.complete();
    check("non-101", 3);

    // upstream connect failure: the router's 503 through the encoder chain (§2.5 C)
    s = e.h.newStream(0, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)));
    const body = Buffer.from("upstream connect error or disconnect/reset before headers. reset reason: remote connection failure");
    s.encodeHeaders([[":status", "503"], ["content-length", String(body.length)], ["content-type", "text/plain"]], false,
      "upstream_reset_before_response_started{remote_connection_failure}");
    s.encodeData(body, true);
    s.complete();
    check("connect failure", 3);

    // this filter's own local reply, which comes back through its on_response_headers (§2.5 A)
    const keep = [open(e.h, 0, "10.0.0.7:1"), open(e.h, 1, "10.0.0.8:1")];
    s = e.h.newStream(0, conn("10.0.0.9:1"));
    assert.equal(reply(s.decodeHeaders(upgradeHeaders(), false)).details, "ws_governor_pod_full");
    finishReply(s);
    assert.equal(podTotal(e.proc), 2);
    assert.equal(clientTotal(e.proc), 2, "the rejected stream's client slot was given back");
    for (const k of keep) k.s.complete();
    check("own local reply", 5);

    // rejected by another filter before this one saw headers (§2.5 D): only on_log/on_done/on_delete
    const before = sharedCalls(e.h, 1);
    s = e.h.newStream(1, conn());
    s.complete();
    assert.equal(sharedCalls(e.h, 1), before);
    check("rejected before headers", 5);

    // reset between the reservation and the 101
    s = e.h.newStream(0, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)));
    s.reset("downstream_remote_disconnect");
    check("reset before 101", 5);

    // a later filter answers locally (router 404) after this one reserved (§2.5 E)
    s = e.h.newStream(1, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)));
    s.encodeHeaders([[":status", "404"]], true, "route_not_found");
    s.complete();
    check("router 404", 5);
    assert.equal(e.stat("accepted_total"), 5);
    assert.equal(e.proc.stats.samples(G + "connection_duration_ms")!.length, 5, "one duration sample per confirmed connection");
  } finally {
    e.close();
  }
});

// ------------------------------------------------------------------ B10 logs

test("B10 logs: one info line per rejection with reason, key and pod; nothing per accepted stream", () => {
  const e = makeEnv({ pod: "pod-a", config: { max_connections_per_pod: 1, max_connections_per_client: 1, rate_limit: { requests: 2, window_seconds: 60, key: { source: "address" } } } });
  try {
    const n0 = e.logs.length;
    const a = open(e.h, 0, "10.7.0.1:1");
    ok(a.admitted);
    a.s.decodeData(new Uint8Array([0x81, 0]), false);
    assert.equal(e.logs.length, n0, "no log line for an accepted upgrade");
    const c = open(e.h, 1, "10.7.0.1:2"); // client full
    finishReply(c.s);
    const p = open(e.h, 1, "10.7.0.2:1"); // pod full
    finishReply(p.s);
    const r = open(e.h, 0, "10.7.0.1:3"); // rate: 3rd upgrade of this address
    finishReply(r.s);
    const lines = e.logs.slice(n0).filter((l) => l.message.includes("rejected"));
    assert.deepEqual(lines.map((l) => [l.level, l.message]), [
      ["info", "ws_governor: rejected reason=client_full key=10.7.0.1 pod="],
      ["info", "ws_governor: rejected reason=pod_full key= pod=pod-a"],
      ["info", "ws_governor: rejected reason=rate_limited key=10.7.0.1 pod="],
    ]);
    assert.equal(e.logs.slice(n0).length, 3, "exactly one line per rejection");
    a.s.complete();
  } finally {
    e.close();
  }
});

// ------------------------------------------------------------------ shadow mode, draining

test("shadow mode (enforce false): nothing rejected, shadow_rejected_total counted per reason", () => {
  const e = makeEnv({ config: { enforce: false, max_connections_per_pod: 1, max_connections_per_client: 1, rate_limit: { requests: 2, window_seconds: 60 } } });
  try {
    const n0 = e.logs.length;
    const opened = [];
    for (let i = 0; i < 4; i++) {
      const o = open(e.h, i % 2, "10.3.0.1:" + (100 + i));
      ok(o.admitted, `shadow: upgrade ${i} admitted`);
      opened.push(o);
    }
    for (const r of ["rate_limited", "pod_full", "client_full"]) {
      assert.equal(e.stat(`rejected_total.reason.${r}`), 0, r);
    }
    assert.equal(e.stat("shadow_rejected_total.reason.rate_limited"), 2);
    assert.equal(e.stat("shadow_rejected_total.reason.pod_full"), 3);
    assert.equal(e.stat("shadow_rejected_total.reason.client_full"), 3);
    assert.equal(e.stat("active_connections"), 4);
    assert.equal(podTotal(e.proc), 4, "shadow admissions are counted in the ledger");
    assert.equal(e.logs.slice(n0).filter((l) => l.level !== "debug").length, 0);
    for (const o of opened) o.s.complete();
    assert.equal(podTotal(e.proc), 0);
    assert.equal(clientTotal(e.proc), 0);
    assert.equal(e.stat("active_connections"), 0);
  } finally {
    e.close();
  }
});

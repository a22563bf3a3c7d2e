// envoy-host.md §13.3: header maps as Envoy's HTTP/1 codec builds them — repeated inline headers merged with ","
// (and Envoy's own upgrade decision on the merged value), other repeated headers kept separate (value → first,
// pairs → all), and the codec's limits (431 before any filter runs).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { parsePairs, type PluginHandleImpl } from "./host/index.ts";
import { Probe, RES } from "./probes/build.ts";
import { conn, start } from "./probes/helpers.ts";
import { bootstrap, rawExchange, startInProxy, statusLine, type InProxy } from "./probes/in_proxy.ts";
import { startPods, type PodServer } from "../support/pods.ts";
import { waitFor } from "../support/wait.ts";

// slot 0: on_request_headers calls; 1: get(connection); 2: get(x-custom); 3: get_pairs; 4: on_log calls
function headerProbe(ret = "(i32.const 0)"): Uint8Array {
  const p = new Probe();
  p.on("proxy_on_request_headers", `
    ${p.store(0, `(i32.add (i32.load (i32.const ${RES})) (i32.const 1))`)}
    ${p.store(1, `(call $proxy_get_header_map_value (i32.const 0) ${p.s("connection")} (i32.const 512) (i32.const 516))`)}
    ${p.store(2, `(call $proxy_get_header_map_value (i32.const 0) ${p.s("x-custom")} (i32.const 520) (i32.const 524))`)}
    ${p.store(3, "(call $proxy_get_header_map_pairs (i32.const 0) (i32.const 528) (i32.const 532))")}
    ${ret}`);
  p.on("proxy_on_log", p.store(4, `(i32.add (i32.load (i32.const ${RES + 16})) (i32.const 1))`));
  return p.build();
}

function read(h: PluginHandleImpl) {
  const m = h.vm(0).mem;
  m.refresh();
  const u = (a: number) => m.dv.getUint32(a, true);
  const str = (slot: number, ptr: number) => (u(RES + 4 * slot) === 0 ? Buffer.from(m.bytes(u(ptr), u(ptr + 4))!).toString("latin1") : undefined);
  return {
    calls: u(RES), logs: u(RES + 16),
    connection: str(1, 512), custom: str(2, 520),
    pairs: parsePairs(m.bytes(u(528), u(532))!),
  };
}

test("§13.3 host: get_header_map_value returns the first of a repeated header, get_header_map_pairs all of them", () => {
  const { proc, h } = start(headerProbe(), { concurrency: 1 });
  const s = h.newStream(0, conn());
  s.decodeHeaders([[":authority", "a"], [":path", "/"], [":method", "GET"], [":scheme", "http"],
    ["x-custom", "one"], ["x-custom", "two"]], true);
  const r = read(h);
  assert.equal(r.custom, "one");
  assert.deepEqual(r.pairs.filter(([k]) => k === "x-custom"), [["x-custom", "one"], ["x-custom", "two"]]);
  proc.close();
});

describe("§13.3 loopback proxy: inline headers merged, upgrade decided on the merged value, 431 limits", () => {
  let pods: PodServer[];
  let e: InProxy;
  before(async () => {
    pods = await startPods(1);
    e = await startInProxy(headerProbe(), bootstrap({ hcm: { common_http_protocol_options: { max_headers_count: 8 } } }),
      { clusterOverrides: { demo_pods: [{ host: "127.0.0.1", port: pods[0].port }] } });
  });
  after(async () => {
    await e.close();
    await Promise.all(pods.map((p) => p.kill()));
  });

  test("two Connection lines reach the filter as one value, and the proxy upgrades on that same value", async () => {
    const r = await rawExchange(e.proxy.listenerPort, ["GET /ws HTTP/1.1", "Host: example.com", "Connection: keep-alive",
      "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "X-Custom: a", "X-Custom: b"]);
    assert.equal(statusLine(r), "HTTP/1.1 101 Switching Protocols");
    const got = read(e.h);
    assert.equal(got.connection, "keep-alive,Upgrade", "merged in wire order, joined with ','");
    assert.equal(got.pairs.filter(([k]) => k === "connection").length, 1, "one entry");
    assert.equal(got.custom, "a", "a non-inline repeated header: the first value …");
    assert.deepEqual(got.pairs.filter(([k]) => k === "x-custom").map(([, v]) => v), ["a", "b"], "… and all in pairs");
  });

  test("an Upgrade value merged from two lines is not websocket: 403 before the filter sees headers (it only logs)", async () => {
    // the previous test's WebSocket has ended (its on_log ran before the gauge went down)
    await waitFor(() => (e.proxy.stat("http.ingress_ws.downstream_cx_upgrades_active") ?? 0) === 0);
    const before = read(e.h);
    const stat = () => e.proxy.stat("http.ingress_ws.downstream_rq_ws_on_non_ws_route") ?? 0;
    const nonWs = stat();
    const r = await rawExchange(e.proxy.listenerPort, ["GET /ws HTTP/1.1", "Host: example.com", "Connection: Upgrade",
      "Upgrade: websocket", "Upgrade: h2c", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]);
    assert.equal(statusLine(r), "HTTP/1.1 403 Forbidden");
    assert.equal(read(e.h).calls, before.calls);
    assert.equal(read(e.h).logs, before.logs + 1, "the filter object exists and logs (§2.5 D)");
    assert.equal(stat(), nonWs + 1);
  });

  test("an h2c upgrade is not one: the codec strips it and the request goes on as a normal one (keep-alive too)", async () => {
    const before = read(e.h);
    const s = net.connect(e.proxy.listenerPort, "127.0.0.1");
    let buf = "";
    s.on("data", (d) => { buf += d.toString("latin1"); });
    /** one whole response off the connection: its head and its body (content-length, or chunked) */
    const response = async () => {
      const r = await waitFor(() => {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return undefined;
        const head = buf.slice(0, end);
        const m = /content-length: *(\d+)/i.exec(head);
        if (m) return buf.length >= end + 4 + Number(m[1]) ? { head, body: buf.substr(end + 4, Number(m[1])), used: end + 4 + Number(m[1]) } : undefined;
        let body = "", p = end + 4;
        while (true) { // chunked
          const le = buf.indexOf("\r\n", p);
          if (le < 0) return undefined;
          const n = parseInt(buf.slice(p, le), 16);
          if (buf.length < le + 2 + n + 2) return undefined;
          if (n === 0) return { head, body, used: le + 4 };
          body += buf.substr(le + 2, n);
          p = le + 2 + n + 2;
        }
      });
      buf = buf.slice(r.used);
      return r;
    };
    try {
      await new Promise<void>((ok) => s.once("connect", () => ok()));
      s.write(["GET /h2c HTTP/1.1", "Host: example.com", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"].join("\r\n") + "\r\n\r\n");
      const r1 = await response();
      assert.equal(statusLine(r1.head), "HTTP/1.1 200 OK");
      const seen = JSON.parse(r1.body) as { path: string; headers: Record<string, string> };
      assert.equal(seen.path, "/h2c");
      assert.equal(seen.headers.upgrade, undefined, "no upgrade reached the pod");
      assert.equal(seen.headers["http2-settings"], undefined);
      const got = read(e.h);
      assert.equal(got.calls, before.calls + 1, "the filter saw the request headers");
      assert.equal(got.connection, undefined, "a normal request: the HCM removed connection (and upgrade)");
      s.write(["GET /again HTTP/1.1", "Host: example.com"].join("\r\n") + "\r\n\r\n");
      const r2 = await response();
      assert.equal(statusLine(r2.head), "HTTP/1.1 200 OK", "the connection is still parsed as HTTP/1.1");
      assert.equal(read(e.h).calls, before.calls + 2);
    } finally {
      s.destroy();
    }
  });

  test("more than max_headers_count entries → 431 and no filter callback with headers; merged lines count once", async () => {
    const before = read(e.h);
    const eight = ["Host: example.com", "Connection: keep-alive", "Connection: close", "A: 1", "B: 2", "C: 3", "D: 4", "E: 5", "F: 6"];
    const ok = await rawExchange(e.proxy.listenerPort, ["GET /x HTTP/1.1", ...eight]);
    assert.notEqual(statusLine(ok), "HTTP/1.1 431 Request Header Fields Too Large", "8 entries after merging");
    assert.equal(read(e.h).calls, before.calls + 1);
    const r = await rawExchange(e.proxy.listenerPort, ["GET /x HTTP/1.1", ...eight, "G: 7"]);
    assert.equal(statusLine(r), "HTTP/1.1 431 Request Header Fields Too Large");
    assert.match(r, /\r\n\r\nRequest Header Fields Too Large$/);
    const after = read(e.h);
    assert.equal(after.calls, before.calls + 1, "on_request_headers did not run for the 431");
    assert.equal(after.logs, before.logs + 2, "the filter still logs the request (§2.5 D)");
  });

  test("request headers over max_request_headers_kb (default 60 KiB) → 431", async () => {
    const big = "x".repeat(60 * 1024);
    const before = read(e.h).calls;
    const r = await rawExchange(e.proxy.listenerPort, ["GET /x HTTP/1.1", "Host: example.com", `Big: ${big}`]);
    assert.equal(statusLine(r), "HTTP/1.1 431 Request Header Fields Too Large");
    const calls = read(e.h).calls;
    assert.equal(calls, before, "the 431 ran no filter callback");
    await rawExchange(e.proxy.listenerPort, ["GET /x HTTP/1.1", "Host: example.com", `Big: ${big.slice(0, 60 * 1024 - 40)}`]);
    // (the echo pod itself refuses such a head with node's 16 KiB limit; what matters is that the filter saw it)
    assert.equal(read(e.h).calls, calls + 1, "just under the limit: the filter runs");
  });
});

test("§13.3 max_request_headers_kb is read from the HCM", async () => {
  const e = await startInProxy(headerProbe("(i32.const 1)"), bootstrap({ hcm: { max_request_headers_kb: 1 } }));
  try {
    const r = await rawExchange(e.proxy.listenerPort, ["GET /x HTTP/1.1", "Host: example.com", `Big: ${"y".repeat(1100)}`]);
    assert.equal(statusLine(r), "HTTP/1.1 431 Request Header Fields Too Large");
    assert.equal(read(e.h).calls, 0);
  } finally {
    await e.close();
  }
});

test("§2.5 D / FilterManager::createFilterChain: an upgrade type without a chain and without a route runs the default chain with its upgrade headers, then 404", async () => {
  const routes = { route_config: { name: "r", virtual_hosts: [{ name: "app", domains: ["*"], routes: [{ name: "app", match: { prefix: "/app" }, route: { cluster: "demo_pods" } }] }] } };
  const e = await startInProxy(headerProbe(), bootstrap({ hcm: routes }));
  try {
    const before = read(e.h);
    const up = ["Connection: Upgrade", "Upgrade: websocket", "Upgrade: h2c", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="];
    const r = await rawExchange(e.proxy.listenerPort, ["GET /ws HTTP/1.1", "Host: example.com", ...up]);
    assert.equal(statusLine(r), "HTTP/1.1 404 Not Found", "no route: the router's 404");
    const got = read(e.h);
    assert.equal(got.calls, before.calls + 1, "the filter saw the request headers");
    assert.equal(got.connection, "Upgrade", "with the upgrade headers kept (isUpgrade holds)");
    // the same request on a routed path: 403 before the filter
    const r2 = await rawExchange(e.proxy.listenerPort, ["GET /app/ws HTTP/1.1", "Host: example.com", ...up]);
    assert.equal(statusLine(r2), "HTTP/1.1 403 Forbidden");
    assert.equal(read(e.h).calls, before.calls + 1);
  } finally {
    await e.close();
  }
});

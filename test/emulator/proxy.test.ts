// Self-tests of the loopback proxy's plumbing, without the host emulator or the filter: pass-through mode and a
// scripted fake plugin (test/emulator/proxy/fake-plugin.ts). Real `ws` clients and echo pods on 127.0.0.1.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import {
  BootstrapError, DEFAULT_CONFIG_PATH, REPO_ROOT, parseBootstrapYaml, resolveWasmPath, startProxy, type RunningProxy,
} from "./proxy/index.ts";
import { Probe } from "./probes/build.ts";
import { FakePlugin, type FakeStream } from "./proxy/fake-plugin.ts";
import { startPods, type PodServer } from "../support/pods.ts";
import { freePort } from "../support/ports.ts";
import { closeWs, connectWs, echo, httpRequest, waitClosed } from "../support/ws-client.ts";
import { waitFor } from "../support/wait.ts";
import { upgradeRequest } from "../support/frames.ts";

const yamlText = readFileSync(DEFAULT_CONFIG_PATH, "utf8");

function overrides(pods: PodServer[]) {
  return { demo_pods: pods.map((p) => ({ host: "127.0.0.1", port: p.port })) };
}

describe("bootstrap reader", () => {
  test("envoy/envoy.yaml is inside the supported subset", () => {
    const bs = parseBootstrapYaml(yamlText);
    assert.equal(bs.listener.hcm.statPrefix, "ingress_ws");
    assert.equal(bs.listener.hcm.websocketUpgrade, true);
    assert.equal(bs.listener.hcm.wasm?.name, "ws_governor");
    assert.equal(bs.listener.hcm.wasm?.filename, "/etc/envoy/ws-governor.wasm");
    assert.equal(bs.listener.hcm.virtualHosts[0].routes[0].idleTimeoutMs, 3_600_000);
    assert.equal(bs.listener.hcm.virtualHosts[0].routes[0].timeoutMs, 0);
    assert.equal(bs.clusters.get("demo_pods")?.endpoints.length, 3);
    assert.equal(bs.node.metadata?.NAME, "demo-pod");
    JSON.parse(bs.listener.hcm.wasm?.configuration ?? "");
  });

  test("an unsupported field is an error naming its path", () => {
    const doc = parseYaml(yamlText);
    const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    hcm.access_log = [];
    doc.static_resources.clusters[0].health_checks = [];
    assert.throws(
      () => parseBootstrapYaml(JSON.stringify(doc)),
      (e: unknown) =>
        e instanceof BootstrapError &&
        e.problems.includes("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.access_log: field not supported by the loopback proxy") &&
        e.problems.includes("static_resources.clusters[0].health_checks: field not supported by the loopback proxy"),
    );
  });

  test("the router must be last and routes must name known clusters", () => {
    const doc = parseYaml(yamlText);
    const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    hcm.http_filters.reverse();
    hcm.route_config.virtual_hosts[0].routes[0].route.cluster = "nope";
    assert.throws(() => parseBootstrapYaml(JSON.stringify(doc)), /last HTTP filter must be envoy.filters.http.router[\s\S]*unknown cluster nope/);
  });
});

describe("module path (vm_config.code.local.filename)", () => {
  test("a relative filename is resolved against the working directory, as Envoy does; /etc/envoy/<f> → build/<f>", async () => {
    assert.equal(resolveWasmPath("/etc/envoy/x.wasm"), path.join(REPO_ROOT, "build/x.wasm"));
    assert.equal(resolveWasmPath("/opt/x.wasm"), "/opt/x.wasm");
    assert.equal(resolveWasmPath("mods/x.wasm"), path.join(process.cwd(), "mods/x.wasm"));
    const dir = mkdtempSync(path.join(tmpdir(), "emu-wasm-"));
    try {
      writeFileSync(path.join(dir, "probe.wasm"), new Probe().build());
      const rel = path.relative(process.cwd(), path.join(dir, "probe.wasm"));
      assert.ok(!path.isAbsolute(rel));
      const doc = parseYaml(yamlText);
      const f0 = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0];
      (f0.typed_config.extension_config?.typed_config ?? f0.typed_config).config.vm_config.code.local.filename = rel;
      const p = await startProxy({ config: doc, listenerPortOverride: 0, adminPortOverride: 0 });
      assert.ok(p.plugin, "the module was found relative to the working directory");
      await p.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("pass-through proxy", () => {
  let pods: PodServer[];
  let proxy: RunningProxy;
  before(async () => {
    pods = await startPods(3);
    proxy = await startProxy({ filter: "passthrough", clusterOverrides: overrides(pods), listenerPortOverride: 0, adminPortOverride: 0 });
  });
  after(async () => {
    await proxy.close();
    await Promise.all(pods.map((p) => p.kill()));
  });

  test("plain HTTP is proxied with the HCM's request headers", async () => {
    const r = await httpRequest(proxy.url("/hello?x=1"), { headers: { "x-test": "1" } });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body);
    assert.equal(seen.path, "/hello?x=1");
    assert.equal(seen.headers["x-test"], "1");
    assert.equal(seen.headers["x-forwarded-proto"], "http");
    assert.match(seen.headers["x-request-id"], /^[0-9a-f-]{36}$/);
    assert.equal(r.headers.server, "envoy");
    assert.ok(r.headers["x-envoy-upstream-service-time"] !== undefined);
  });

  test("POST bodies arrive intact", async () => {
    const r = await httpRequest(proxy.url("/post"), { method: "POST", body: "abc", headers: { "content-type": "text/plain" } });
    assert.equal(JSON.parse(r.body).body, "abc");
  });

  test("round robin over the cluster's endpoints", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(JSON.parse((await httpRequest(proxy.url("/rr"))).body).pod);
    assert.deepEqual([...seen].sort(), ["pod-a", "pod-b", "pod-c"]);
  });

  test("WebSocket upgrade echoes, and the upgrade gauge returns to 0", async () => {
    const o = await connectWs(proxy.wsUrl("/ws"));
    assert.equal(o.kind, "open");
    if (o.kind !== "open") return;
    assert.match(String(o.headers["x-pod"]), /^pod-[abc]$/);
    assert.equal(await echo(o.ws, "hello"), "hello");
    assert.equal(proxy.stat("http.ingress_ws.downstream_cx_upgrades_active"), 1);
    await closeWs(o.ws);
    await waitFor(() => proxy.stat("http.ingress_ws.downstream_cx_upgrades_active") === 0, { what: "upgrades_active 0" });
    await waitFor(() => pods.every((p) => p.state().open === 0), { what: "pods back to 0" });
  });

  test("client terminate() releases the upstream socket", async () => {
    const o = await connectWs(proxy.wsUrl("/ws"));
    assert.equal(o.kind, "open");
    if (o.kind !== "open") return;
    await waitFor(() => pods.some((p) => p.state().open === 1), { what: "pod sees the socket" });
    o.ws.terminate();
    await waitFor(() => pods.every((p) => p.state().open === 0), { what: "pods back to 0" });
    await waitFor(() => proxy.stat("http.ingress_ws.downstream_cx_upgrades_active") === 0, { what: "upgrades_active 0" });
  });

  test("admin: /ready, /stats, /stats/prometheus, /demo/state", async () => {
    const ready = await httpRequest(proxy.adminUrl("/ready"));
    assert.equal(ready.status, 200);
    assert.equal(ready.body, "LIVE\n");
    const stats = await httpRequest(proxy.adminUrl("/stats"));
    assert.match(stats.body, /^http\.ingress_ws\.downstream_cx_upgrades_active: 0$/m);
    assert.match(stats.body, /^http\.ingress_ws\.downstream_cx_upgrades_total: \d+$/m);
    const prom = await httpRequest(proxy.adminUrl("/stats/prometheus"));
    assert.match(prom.body, /^envoy_http_downstream_cx_upgrades_active\{envoy_http_conn_manager_prefix="ingress_ws"\} 0$/m);
    const filtered = await httpRequest(proxy.adminUrl("/stats?filter=upgrades_active"));
    assert.equal(filtered.body.trim(), "http.ingress_ws.downstream_cx_upgrades_active: 0");
    const demo = JSON.parse((await httpRequest(proxy.adminUrl("/demo/state"))).body);
    assert.equal(demo.pods.length, 3);
  });
});

describe("router local replies (pass-through)", () => {
  test("upstream connect failure → 503 with Envoy's body text", async () => {
    const deadPort = await freePort();
    const proxy = await startProxy({
      filter: "passthrough",
      clusterOverrides: { demo_pods: [{ host: "127.0.0.1", port: deadPort }] },
      listenerPortOverride: 0,
      adminPortOverride: 0,
    });
    try {
      const r = await httpRequest(proxy.url("/x"));
      assert.equal(r.status, 503);
      assert.equal(
        r.body,
        "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: 111",
      );
      const w = await connectWs(proxy.wsUrl("/ws"));
      assert.equal(w.kind, "rejected");
      if (w.kind === "rejected") assert.equal(w.status, 503);
      assert.equal(proxy.stat("cluster.demo_pods.upstream_cx_connect_fail"), 2);
    } finally {
      await proxy.close();
    }
  });

  test("no route → 404", async () => {
    const doc = parseYaml(yamlText);
    doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].match = { path: "/only" };
    const proxy = await startProxy({ config: doc, filter: "passthrough", listenerPortOverride: 0, adminPortOverride: 0 });
    try {
      const r = await httpRequest(proxy.url("/elsewhere"));
      assert.equal(r.status, 404);
      assert.equal(r.body, "");
    } finally {
      await proxy.close();
    }
  });
});

describe("filter plumbing with a scripted plugin", () => {
  let pods: PodServer[];
  let plugin: FakePlugin;
  let proxy: RunningProxy;
  before(async () => {
    pods = await startPods(1);
    plugin = new FakePlugin(2);
    // envoy.yaml with the Wasm entry unwrapped from its ExtensionWithMatcher: this suite follows every callback of a
    // plain request too (matcher.test.ts covers the skip)
    const doc = parseYaml(yamlText);
    const fs = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
    fs[0] = fs[0].typed_config.extension_config ?? fs[0];
    proxy = await startProxy({ config: doc, plugin, clusterOverrides: overrides(pods), listenerPortOverride: 0, adminPortOverride: 0 });
  });
  after(async () => {
    await proxy.close();
    await Promise.all(pods.map((p) => p.kill()));
  });
  const last = (): FakeStream => plugin.streams[plugin.streams.length - 1];

  test("upgrade: callback order, header map shape, client close → reset", async () => {
    plugin.script = {};
    const o = await connectWs(proxy.wsUrl("/ws?a=1"));
    assert.equal(o.kind, "open");
    if (o.kind !== "open") return;
    assert.equal(await echo(o.ws, "ping-1"), "ping-1");
    await closeWs(o.ws);
    const s = last();
    await waitFor(() => s.ended, { what: "stream end" });
    const ops = s.ops();
    assert.deepEqual(ops.slice(0, 5), ["decodeHeaders(0)", "setRoute", "setUpstream", "encodeHeaders(0)", "decodeData(0)"]);
    assert.ok(ops.includes("encodeData(0)"));
    assert.ok(!ops.some((o) => o.endsWith("(1)")), "no eos on an upgraded HTTP/1 stream");
    assert.equal(ops[ops.length - 1], "reset");
    const dh = s.calls[0];
    assert.ok(dh.op === "decodeHeaders");
    if (dh.op !== "decodeHeaders") return;
    assert.deepEqual(dh.headers.slice(0, 4).map(([k]) => k), [":authority", ":path", ":method", ":scheme"]);
    assert.equal(dh.headers[1][1], "/ws?a=1");
    assert.ok(!dh.headers.some(([k]) => k === "host"));
    assert.ok(dh.headers.some(([k, v]) => k === "upgrade" && v === "websocket"));
    assert.ok(dh.headers.some(([k]) => k === "connection"));
    assert.ok(dh.headers.some(([k]) => k === "x-request-id"));
    const eh = s.calls.find((c) => c.op === "encodeHeaders");
    assert.ok(eh && eh.op === "encodeHeaders" && eh.headers[0][0] === ":status" && eh.headers[0][1] === "101");
    assert.equal(s.conn.protocol, "HTTP/1.1");
    assert.match(s.conn.sourceAddress, /^127\.0\.0\.1:\d+$/);
  });

  test("plain GET: eos on headers, response end as an empty eos chunk, then complete()", async () => {
    plugin.script = {};
    const r = await httpRequest(proxy.url("/plain"));
    assert.equal(r.status, 200);
    const s = last();
    await waitFor(() => s.ended, { what: "stream end" });
    assert.deepEqual(s.ops(), ["decodeHeaders(1)", "setRoute", "setUpstream", "encodeHeaders(0)", "encodeData(0)", "encodeData(1)", "complete"]);
    const dh = s.calls[0];
    assert.ok(dh.op === "decodeHeaders" && !dh.headers.some(([k]) => k === "connection"));
  });

  test("local reply from decodeHeaders reaches the client; the upgrade connection is closed", async () => {
    plugin.script = {
      decodeHeaders: () => ({
        kind: "localReply",
        reply: {
          status: 429,
          headers: [[":status", "429"], ["retry-after", "7"], ["content-length", "12"], ["content-type", "text/plain"]],
          body: Buffer.from("rate limited"),
          details: "ws_governor_rate_limited",
        },
      }),
    };
    const w = await connectWs(proxy.wsUrl("/ws"));
    assert.equal(w.kind, "rejected");
    if (w.kind !== "rejected") return;
    assert.equal(w.status, 429);
    assert.equal(w.headers["retry-after"], "7");
    assert.equal(w.body, "rate limited");
    assert.equal(pods[0].state().open, 0);
    // raw socket: the proxy closes the connection after the reply
    const sock = net.connect(proxy.listenerPort, "127.0.0.1");
    sock.write(upgradeRequest("/ws", `127.0.0.1:${proxy.listenerPort}`));
    let text = "";
    sock.on("data", (d) => (text += d.toString()));
    await waitFor(() => sock.destroyed || sock.readableEnded, { what: "connection closed by the proxy" });
    assert.match(text, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(text, /\r\nconnection: close\r\n/i);
    sock.destroy();
  });

  test("connections are spread over workers round robin", async () => {
    plugin.script = {};
    const before = plugin.streams.length;
    for (let i = 0; i < 4; i++) assert.equal((await httpRequest(proxy.url("/w"))).status, 200);
    const workers = plugin.streams.slice(before).map((s) => s.worker);
    assert.deepEqual(workers.sort(), [0, 0, 1, 1]);
  });

  test("the filter's data replacement is forwarded", async () => {
    plugin.script = {
      encodeData: (d) => {
        // rewrite the echo's text payload: server frames are unmasked, 2-byte header for short text
        if (d.length >= 2 && d[0] === 0x81) {
          const payload = Buffer.from(d.subarray(2)).toString().toUpperCase();
          return { kind: "continue", data: Buffer.concat([Buffer.from([0x81, payload.length]), Buffer.from(payload)]) };
        }
        return { kind: "continue" };
      },
    };
    const o = await connectWs(proxy.wsUrl("/ws"));
    assert.equal(o.kind, "open");
    if (o.kind !== "open") return;
    assert.equal(await echo(o.ws, "shout"), "SHOUT");
    await closeWs(o.ws);
  });

  test("upstream death: encodeData(empty) then reset, client sees the close", async () => {
    plugin.script = {};
    const extra = (await startPods(1))[0];
    const p2 = await startProxy({ plugin, clusterOverrides: overrides([extra]), listenerPortOverride: 0, adminPortOverride: 0 });
    try {
      const o = await connectWs(p2.wsUrl("/ws"));
      assert.equal(o.kind, "open");
      if (o.kind !== "open") return;
      const s = last();
      await extra.kill();
      await waitClosed(o.ws);
      await waitFor(() => s.ended, { what: "stream end" });
      const ops = s.ops();
      assert.deepEqual(ops.slice(-2), ["encodeData(0)", "reset"]);
      await waitFor(() => p2.stat("http.ingress_ws.downstream_cx_upgrades_active") === 0, { what: "gauge 0" });
    } finally {
      await p2.close();
    }
  });

  test("crash(): every socket reset, the listener gone, and no filter callback (a killed process ends nothing)", async () => {
    plugin.script = {};
    const extra = (await startPods(1))[0];
    const p2 = await startProxy({ plugin, clusterOverrides: overrides([extra]), listenerPortOverride: 0, adminPortOverride: 0 });
    try {
      const o = await connectWs(p2.wsUrl("/ws"));
      assert.equal(o.kind, "open");
      if (o.kind !== "open") return;
      const s = last();
      const opsBefore = s.ops().length;
      await p2.crash();
      await waitClosed(o.ws);
      await waitFor(() => extra.state().open === 0, { what: "the pod to see its socket go" });
      assert.equal(s.ended, false, "the stream was not completed or reset: no on_log/on_done");
      assert.equal(s.ops().length, opsBefore, "no filter callback after the crash");
      const again = await connectWs(p2.wsUrl("/ws"), { timeoutMs: 1000 });
      assert.equal(again.kind, "error", "the listener is gone");
    } finally {
      await p2.close();
      await extra.kill();
    }
  });
});

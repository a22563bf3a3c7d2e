// The lean module (build/ws-governor-lean.wasm) in the running emulated Envoy (envoy/envoy-sidecar.yaml with the Wasm
// filter taken out of its ExtensionWithMatcher, as an Istio WasmPlugin installs it; two worker VMs, real `ws` echo pods
// and clients): the same admission as the local module, and no Wasm entry at all while WebSocket messages flow or a
// plain request's body passes (it exports no body callback; Envoy calls only the exports a module has,
// envoy-host.md §2.1).
//   two WebSockets admitted and echoing, the third refused with 503 (max_connections_per_pod 2); 40 messages up to
//   64 KiB each way and a POST with a body enter no export on any VM; the metrics endpoint still answers; closing the
//   clients brings active_connections back to 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type WebSocket from "ws";
import { REPO_ROOT, startProxy, type RunningProxy } from "../emulator/proxy/index.ts";
import type { PluginHandleImpl } from "../emulator/host/index.ts";
import { startPods, type PodServer } from "../support/pods.ts";
import { closeWs, connectWs, echo, httpRequest } from "../support/ws-client.ts";
import { waitFor } from "../support/wait.ts";

const TICK_MS = 100;
const PLUGIN = JSON.stringify({
  mode: "inbound", max_connections_per_pod: 2, max_connections_per_client: 0, rate_limit: null, tick_ms: TICK_MS,
  metrics_path: "/websocket/metrics", health_path: "/websocket/health",
});
const STAT = (n: string) => `wasmcustom.ws_governor.${n}`;

/** envoy-sidecar.yaml with the Wasm filter unwrapped: every request runs it (a WasmPlugin cannot wrap it) */
function unwrapped(): object {
  const doc = parseYaml(readFileSync(path.join(REPO_ROOT, "envoy/envoy-sidecar.yaml"), "utf8"));
  const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const f = hcm.http_filters.find((x: { name: string }) => x.name === "ws_governor");
  assert.match(f.typed_config["@type"], /ExtensionWithMatcher$/);
  f.typed_config = f.typed_config.extension_config.typed_config;
  return doc;
}

test("lean module in the running proxy: 503 at the cap, messages and bodies enter no Wasm export, gauge back to 0", async () => {
  const pods: PodServer[] = await startPods(1);
  const open: WebSocket[] = [];
  let proxy: RunningProxy | undefined;
  try {
    proxy = await startProxy({
      config: unwrapped(), wasmPath: path.join(REPO_ROOT, "build/ws-governor-lean.wasm"),
      pluginConfiguration: PLUGIN, concurrency: 2,
      clusterOverrides: { local_app: [{ host: "127.0.0.1", port: pods[0].port }] },
      listenerPortOverride: 0, adminPortOverride: 0,
    });
    const p = proxy;
    const plugin = p.plugin as PluginHandleImpl;
    const entered = () => plugin.entered(); // every worker VM, ticks left out
    const stat = (n: string) => p.stat(STAT(n)) ?? 0;

    for (let i = 0; i < 2; i++) {
      const o = await connectWs(p.wsUrl("/ws"));
      assert.equal(o.kind, "open", `connection ${i + 1}: ${JSON.stringify(o.kind === "rejected" ? o.status : o.kind)}`);
      if (o.kind === "open") open.push(o.ws);
    }
    const third = await connectWs(p.wsUrl("/ws"));
    assert.equal(third.kind, "rejected");
    assert.equal(third.kind === "rejected" && third.status, 503, "the pod's 3rd WebSocket");
    await waitFor(() => stat("active_connections") === 2, { timeoutMs: 5000, intervalMs: 20, what: "active_connections == 2" });

    const before = entered();
    const big = "x".repeat(65536);
    for (let i = 0; i < 20; i++) {
      for (const ws of open) assert.equal(await echo(ws, i % 5 === 0 ? big : `m${i}`), i % 5 === 0 ? big : `m${i}`);
    }
    assert.deepEqual(entered(), before, "40 echoed messages: no export entered");

    // a plain POST with a body: headers, log, done, delete, no body callback
    const post = await httpRequest(p.url("/api/items"), { method: "POST", body: "y".repeat(10_000), headers: { "content-type": "text/plain" } });
    assert.ok(post.status > 0);
    const after = entered();
    await waitFor(() => (entered().proxy_on_delete ?? 0) > (before.proxy_on_delete ?? 0), { timeoutMs: 5000, intervalMs: 10, what: "the POST's on_delete" });
    assert.equal(Object.keys(entered()).filter((k) => k.includes("_body")).length, 0, "no body callback exists to enter");
    assert.equal((after.proxy_on_request_headers ?? 0) - (before.proxy_on_request_headers ?? 0), 1, "the POST's headers");

    const metrics = await httpRequest(p.url("/websocket/metrics"));
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /ws_governor_accepted_total 2\b/);

    for (const ws of open.splice(0)) await closeWs(ws);
    await waitFor(() => stat("active_connections") === 0, { timeoutMs: 5000, intervalMs: 20, what: "active_connections == 0" });
    assert.equal(stat("released_total"), 2);
    for (let w = 0; w < plugin.workers; w++) assert.equal(plugin.vmFailed(w), false, `worker ${w} trapped`);
  } finally {
    for (const ws of open) ws.terminate();
    await proxy?.close();
    await Promise.all(pods.map((s) => s.kill()));
  }
});

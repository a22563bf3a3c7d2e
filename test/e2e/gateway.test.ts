// Gateway (upstream mode) end to end: the emulated Envoy (envoy/envoy.yaml, whose plugin configuration is replaced
// by an upstream-mode one, so that round robin fills the pods in a known order; envoy/envoy-gateway.yaml, with
// LEAST_REQUEST, runs in test/e2e/spoofing.test.ts) with three real
// `ws` pods. The pod is whichever endpoint Envoy picked (upstream.address), known only at the 101; a full pod is
// answered with 503 from the response path, straight to the client (envoy-host.md §7.3).
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { REPO_ROOT, startProxy, type RunningProxy } from "../emulator/proxy/index.ts";
import { startPods, type PodServer } from "../support/pods.ts";
import { connectWs, closeWs, echo, httpRequest } from "../support/ws-client.ts";
import { waitFor } from "../support/wait.ts";
import type WebSocket from "ws";

const CAP = 2;
const PLUGIN = JSON.stringify({
  mode: "upstream", key_prefix: "wsg_gw", max_connections_per_pod: CAP, max_connections_per_client: 0,
  rate_limit: null, max_pods: 8, metrics_path: "/websocket/metrics",
});

function activeByPod(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    const r = /^websocket_connections_active_total\{pod="([^"]+)"\} (\d+)$/.exec(line);
    if (r) m.set(r[1], Number(r[2]));
  }
  return m;
}

test("gateway (upstream mode): per-pod cap on the pod Envoy picked, 503 from the response path, release on close", async () => {
  const pods: PodServer[] = await startPods(3);
  let proxy: RunningProxy | undefined;
  const open: WebSocket[] = [];
  try {
    proxy = await startProxy({
      configPath: path.join(REPO_ROOT, "envoy/envoy.yaml"),
      pluginConfiguration: PLUGIN,
      wasmPath: path.join(REPO_ROOT, "build/ws-governor.wasm"),
      clusterOverrides: { demo_pods: pods.map((p) => ({ host: "127.0.0.1", port: p.port })) },
      listenerPortOverride: 0,
      adminPortOverride: 0,
    });
    const p = proxy;
    // Round robin over three pods: 3 × CAP connections fill every pod exactly.
    for (let i = 0; i < 3 * CAP; i++) {
      const o = await connectWs(p.wsUrl("/ws"), { headers: { upgrade: "websocket" } });
      assert.equal(o.kind, "open", `connection ${i + 1} of ${3 * CAP} is admitted`);
      if (o.kind === "open") { open.push(o.ws); assert.match(await echo(o.ws, `m${i}`), new RegExp(`m${i}`)); }
    }
    const metrics = async () => (await httpRequest(p.url("/websocket/metrics"))).body;
    const full = activeByPod(await metrics());
    assert.equal(full.size, 3, "three pods, named by upstream.address");
    for (const [pod, n] of full) assert.equal(n, CAP, `${pod} is full`);
    for (const pod of full.keys()) assert.ok(pods.some((s) => pod === `127.0.0.1:${s.port}`), `${pod} is one of the pods`);

    // Every pod is full: the upstream answers 101, the filter turns it into 503 before it reaches the client.
    const rejected = await connectWs(p.wsUrl("/ws"));
    assert.equal(rejected.kind, "rejected");
    if (rejected.kind === "rejected") assert.equal(rejected.status, 503);
    // counted on the filter's tick (counters reach Envoy at most one tick_ms late)
    await waitFor(() => p.stat("wasmcustom.ws_governor.rejected_total.reason.pod_full") === 1,
      { timeoutMs: 5000, what: "rejected_total.reason.pod_full == 1" });

    // One connection closes: its pod has a free slot again, and only that pod.
    await closeWs(open.shift()!);
    await waitFor(async () => [...activeByPod(await metrics()).values()].reduce((a, b) => a + b, 0) === 3 * CAP - 1,
      { timeoutMs: 5000, what: "the closed connection's slot is released" });
    const after = activeByPod(await metrics());
    assert.deepEqual([...after.values()].sort(), [CAP - 1, CAP, CAP]);

    for (const ws of open.splice(0)) await closeWs(ws);
    await waitFor(async () => [...activeByPod(await metrics()).values()].every((n) => n === 0),
      { timeoutMs: 5000, what: "every pod back to 0" });
    await waitFor(() => p.stat("wasmcustom.ws_governor.active_connections") === 0, { timeoutMs: 5000, what: "gauge 0" });
    assert.equal(p.stat("wasmcustom.ws_governor.accepted_total"), 3 * CAP);
  } finally {
    for (const ws of open) ws.terminate();
    await proxy?.close();
    await Promise.all(pods.map((s) => s.kill()));
  }
});

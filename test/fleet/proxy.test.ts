// Fleet mode end to end: real `ws` clients through two loopback proxies (each its own emulated Envoy process with 2
// workers, envoy/envoy.yaml plus an `etcd` cluster, the fleet module) in front of one ws echo pod, sharing a real
// etcd. The per-pod cap holds across both proxies: exactly `cap` sockets open, the rest get 503 pod_full, and the
// sockets that waited for etcd work (echo).
//   node --import tsx --test --test-reporter=tap test/fleet/proxy.test.ts
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type WebSocket from "ws";
import { startProxy, type RunningProxy } from "../emulator/proxy/index.ts";
import { renderBootstrap } from "../e2e/targets/render.ts";
import { etcdGate } from "../support/etcd.ts";
import { closeWs, connectWs, echo } from "../support/ws-client.ts";
import { FLEET_WASM, etcdSlots, sum, useEtcdAndPod } from "./support.ts";

const gate = etcdGate();
const T = { skip: gate.skip, timeout: 60_000 };
const CAP = 5;

function bootstrapWithEtcd(prefix: string): object {
  const doc = renderBootstrap({
    pluginConfig: {
      mode: "inbound", pod_name: "pod-x", max_connections_per_pod: CAP, rate_limit: null, tick_ms: 200,
      fleet: { cluster: "etcd", prefix, lease_ttl_seconds: 5, call_timeout_ms: 1000, block: 2 },
    },
  }) as { static_resources: { clusters: object[] } };
  doc.static_resources.clusters.push({
    name: "etcd", type: "STATIC", connect_timeout: "1s",
    load_assignment: { cluster_name: "etcd", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 1 } } } }] }] },
  });
  return doc;
}

describe("fleet mode through two loopback proxies, real ws clients [etcd]", () => {
  const proxies: RunningProxy[] = [];
  const env = useEtcdAndPod(gate, proxies);

  test(`${CAP} sockets open across both proxies, the others 503 pod_full; waited sockets echo`, T, async () => {
    const { etcd, pods } = env;
    assert.ok(etcd);
    const port = Number(new URL(etcd.clientUrl).port);
    const prefix = "/t-proxy/";
    for (let i = 0; i < 2; i++) {
      proxies.push(await startProxy({
        config: bootstrapWithEtcd(prefix), wasmPath: FLEET_WASM, concurrency: 2,
        clusterOverrides: { demo_pods: [{ host: "127.0.0.1", port: pods[0].port }], etcd: [{ host: "127.0.0.1", port }] },
        listenerPortOverride: 0, adminPortOverride: 0,
      }));
    }
    const outcomes = await Promise.all(Array.from({ length: CAP + 4 }, (_, i) =>
      connectWs(proxies[i % 2].wsUrl("/ws"), { timeoutMs: 8000 })));
    const open: WebSocket[] = [];
    const refused: Array<[number, string]> = [];
    for (const o of outcomes) {
      if (o.kind === "open") open.push(o.ws);
      else if (o.kind === "rejected") refused.push([o.status, o.body]);
      else assert.fail(`client error: ${o.error.message}`);
    }
    console.log(`# fleet proxies: ${open.length} open, ${refused.length} refused (cap ${CAP} across 2 proxies)`);
    assert.equal(open.length, CAP, `open ${open.length}, refused ${JSON.stringify(refused)}`);
    assert.equal(refused.length, 4);
    for (const [status] of refused) assert.equal(status, 503);
    for (const [i, ws] of open.entries()) assert.equal(await echo(ws, `m${i}`), `m${i}`);
    assert.equal(sum(await etcdSlots(etcd.clientUrl, prefix)), CAP, "etcd granted exactly the cap");
    await Promise.all(open.map((ws) => closeWs(ws)));
  });
});

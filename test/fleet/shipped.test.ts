// The shipped envoy/envoy-fleet.yaml as a fleet: two loopback proxies (two emulated Envoy processes, 2 workers each)
// run the file unchanged except for a small cap and a longer call timeout, its ws_backend cluster pointed at one echo
// pod and its etcd cluster at a real etcd. The cap holds across both: exactly `cap` sockets open, the rest 503, etcd holds exactly the cap
// under the file's own prefix, for the backend pod's upstream.address.
//   node --import tsx --test --test-reporter=tap test/fleet/shipped.test.ts
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import type WebSocket from "ws";
import { parse as parseYaml } from "yaml";
import { REPO_ROOT, readBootstrap, startProxy, type RunningProxy } from "../emulator/proxy/index.ts";
import { etcdGate } from "../support/etcd.ts";
import { closeWs, connectWs, echo } from "../support/ws-client.ts";
import { etcdSlots, sum, useEtcdAndPod } from "./support.ts";

const gate = etcdGate();
const T = { skip: gate.skip, timeout: 60_000 };
const FILE = path.join(REPO_ROOT, "envoy/envoy-fleet.yaml");
const CAP = 4;

describe("envoy/envoy-fleet.yaml on two replicas sharing a real etcd [etcd]", () => {
  const proxies: RunningProxy[] = [];
  const env = useEtcdAndPod(gate, proxies);

  test(`cap ${CAP} across both replicas: ${CAP} open, the others 503; etcd holds the cap under the file's prefix`, T, async () => {
    const { etcd, pods } = env;
    assert.ok(etcd);
    const own = JSON.parse(readBootstrap(parseYaml(readFileSync(FILE, "utf8"))).listener.hcm.wasm!.configuration) as
      { mode: string; fleet: { cluster: string; prefix: string }; max_connections_per_pod: number };
    assert.equal(own.mode, "upstream", "the shipped gateway caps each backend pod (its upstream.address)");
    // call_timeout_ms 250 is for a LAN; a loaded test machine's cold etcd may take longer to answer the first lease
    // grant (504 from the call timeout), and the waiting upgrades would get failure_mode's 503 instead of a slot
    const configuration = JSON.stringify({ ...own, max_connections_per_pod: CAP, fleet: { ...own.fleet, call_timeout_ms: 2000 } });
    const warnings: string[] = [];
    for (let i = 0; i < 2; i++) {
      proxies.push(await startProxy({
        configPath: FILE, pluginConfiguration: configuration, concurrency: 2, // module: /etc/envoy/ws-governor-fleet.wasm → build/
        clusterOverrides: { ws_backend: [{ host: "127.0.0.1", port: pods[0].port }], [own.fleet.cluster]: [{ host: "127.0.0.1", port: Number(new URL(etcd.clientUrl).port) }] },
        listenerPortOverride: 0, adminPortOverride: 0,
        onLog: (e) => { if (/warn|error|critical/.test(e.level)) warnings.push(`proxy ${i}: ${e.line}`); },
      }));
    }
    const outcomes = await Promise.all(Array.from({ length: CAP + 4 }, (_, i) =>
      connectWs(proxies[i % 2].wsUrl("/ws"), { timeoutMs: 8000 })));
    const open: WebSocket[] = [];
    const refused: number[] = [];
    for (const o of outcomes) {
      if (o.kind === "open") open.push(o.ws);
      else if (o.kind === "rejected") refused.push(o.status);
      else assert.fail(`client error: ${o.error.message}`);
    }
    const perProxy = proxies.map((p) => p.stat("wasmcustom.ws_governor.accepted_total") ?? 0);
    // grants come in blocks of `block` (16) slots, cut to the cap: whoever asks first may hold all of them
    console.log(`envoy-fleet.yaml × 2: ${open.length} open (per replica ${perProxy.join(" + ")}), ${refused.length} refused, cap ${CAP}`);
    assert.equal(open.length, CAP);
    assert.deepEqual(refused, refused.map(() => 503));
    assert.equal(refused.length, 4);
    for (const [i, ws] of open.entries()) assert.equal(await echo(ws, `m${i}`), `m${i}`);
    // the one backend pod, as Envoy's router chose it (upstream.address)
    assert.equal(sum(await etcdSlots(etcd.clientUrl, own.fleet.prefix, `127.0.0.1:${pods[0].port}`)), CAP, "etcd granted exactly the cap");
    assert.deepEqual(warnings, [], "no warnings (a failed etcd call logs one)");
    await Promise.all(open.map((ws) => closeWs(ws)));
  });
});

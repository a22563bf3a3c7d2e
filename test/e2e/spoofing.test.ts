// Spoofing matrix: every Envoy bootstrap in envoy/ (read from the directory, so a new file is covered) plus an
// Istio-sidecar-like variant of envoy-sidecar.yaml without use_remote_address (Istio's sidecar inbound leaves it
// false), each in the emulated Envoy with the release module and real `ws` echo pods. A bootstrap whose plugin
// configuration has a `fleet` block (envoy-fleet.yaml) runs build/ws-governor-fleet.wasm, its `fleet.cluster` pointed
// at a real etcd started for it (test/support/etcd.ts; without etcd that row is skipped with the reason, CI=true
// fails). The plugin configuration is the file's own with max_connections_per_client 1, client_key
// {"source":"address"}, the default endpoint allowlist and tick_ms 100 (the filter's counters reach Envoy on its tick).
// Remote clients are played on loopback with ProxyOptions.networkView: a client bound to 127.0.0.7 is the peer
// 10.1.2.7:<port> reaching the pod address 10.0.0.10:8080.
//   (a) a remote client's second WebSocket with x-forwarded-for 10.9.9.9: the same client (429, client_full) when
//       Envoy takes the peer; a new bucket when the HCM believes the XFF entry (forgeable, README "Who is the client")
//   (b) /websocket/metrics and /websocket/health with x-forwarded-for 127.0.0.1 from the remote client: 403 always;
//       a genuine local client (127.0.0.1 → 127.0.0.1): 200
//   (c) `Connection: keep-alive` + `Connection: Upgrade` lines (merged by the codec, §13.3) are an upgrade the filter
//       governs: refused with the client's cap full, counted in upgrades_total when admitted
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import type WebSocket from "ws";
import { REPO_ROOT, readBootstrap, startProxy, type RunningProxy } from "../emulator/proxy/index.ts";
import { startPods, type PodServer } from "../support/pods.ts";
import { connectWs, httpRequest, type WsOutcome } from "../support/ws-client.ts";
import { upgradeRequest } from "../support/frames.ts";
import { etcdGate, startEtcd, type Etcd } from "../support/etcd.ts";
import { afterTick, waitFor } from "../support/wait.ts";

const ENVOY_DIR = path.join(REPO_ROOT, "envoy");
const WASM = path.join(REPO_ROOT, "build/ws-governor.wasm");
const FLEET_WASM = path.join(REPO_ROOT, "build/ws-governor-fleet.wasm");
const REMOTE = "127.0.0.7", OTHER = "127.0.0.8"; // loopback IPs the networkView turns into remote peers
const VIEW: Record<string, string> = { [REMOTE]: "10.1.2.7", [OTHER]: "10.1.2.8" };
const POD_ADDRESS = "10.0.0.10:8080";
const STAT = (n: string) => `wasmcustom.ws_governor.${n}`;
/** the filter hands its counters to Envoy on its tick: 100 ms (the minimum) keeps the waits for them short */
const TICK_MS = 100;

/** What the shipped files say today (a new file is checked against its own HCM settings only). */
const SHIPPED_USE_REMOTE_ADDRESS: Record<string, boolean> = { "envoy.yaml": true, "envoy-sidecar.yaml": true, "envoy-gateway.yaml": true, "envoy-fleet.yaml": true };

interface Variant { name: string; doc: any }

function variants(): Variant[] {
  const out: Variant[] = [];
  for (const f of readdirSync(ENVOY_DIR).sort()) {
    if (!/\.ya?ml$/.test(f)) continue;
    const doc = parseYaml(readFileSync(path.join(ENVOY_DIR, f), "utf8"));
    if (doc?.static_resources === undefined) continue; // docker-compose.yaml is not an Envoy bootstrap
    out.push({ name: f, doc });
  }
  const istio = parseYaml(readFileSync(path.join(ENVOY_DIR, "envoy-sidecar.yaml"), "utf8"));
  delete istio.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.use_remote_address;
  out.push({ name: "istio-like sidecar (no use_remote_address)", doc: istio });
  return out;
}

/** The etcd cluster a fleet configuration names, or undefined for a local one. */
function fleetCluster(own: string): string | undefined {
  const f = (JSON.parse(own) as { fleet?: { cluster?: string } }).fleet;
  return f ? String(f.cluster) : undefined;
}

function pluginConfig(own: string): string {
  const c = JSON.parse(own);
  c.max_connections_per_client = 1;
  c.client_key = { source: "address" };
  c.metrics_path = "/websocket/metrics";
  c.health_path = "/websocket/health";
  c.tick_ms = TICK_MS;
  delete c.endpoint_allow; // the default: 127.0.0.0/8 and ::1/128
  if (c.fleet) c.fleet.call_timeout_ms = 2000; // a loaded test machine's cold etcd may be slower than a LAN's 250 ms
  return JSON.stringify(c);
}

/** A raw HTTP/1.1 upgrade whose Connection header comes on two lines; resolves with the status and the open socket. */
function twoConnectionLines(port: number, localAddress: string): Promise<{ status: number; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    let buf = "";
    const timer = setTimeout(() => { socket.destroy(); reject(new Error("no response head within 5 s")); }, 5000);
    socket.on("error", (e) => { clearTimeout(timer); reject(e); });
    socket.on("data", (d) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      clearTimeout(timer);
      socket.removeAllListeners("data");
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1] ?? 0), socket });
    });
    // upgradeRequest's own "Connection: Upgrade" follows a "Connection: keep-alive" line
    socket.write(upgradeRequest("/ws", "pod", { "X-Probe": "two-connection-lines" }).replace("Connection: Upgrade\r\n", "Connection: keep-alive\r\nConnection: Upgrade\r\n"));
  });
}

const outcome = (o: WsOutcome): string => (o.kind === "open" ? "101" : o.kind === "rejected" ? String(o.status) : `error ${o.error.message}`);

test("spoofing matrix: per-client cap, endpoints, two Connection lines — every bootstrap in envoy/ + an Istio-like sidecar", async () => {
  const pods: PodServer[] = await startPods(2);
  const rows: Array<Record<string, string>> = [];
  let etcd: Etcd | undefined;
  try {
    for (const v of variants()) {
      const bs = readBootstrap(v.doc);
      const hcm = bs.listener.hcm;
      if (v.name in SHIPPED_USE_REMOTE_ADDRESS) assert.equal(hcm.useRemoteAddress, SHIPPED_USE_REMOTE_ADDRESS[v.name], `${v.name}: use_remote_address`);
      // the only XFF entry is believed when exactly the trusted hops it needs are configured (§13.2)
      const xffTrusted = hcm.xffNumTrustedHops === (hcm.useRemoteAddress ? 1 : 0);
      const logs: string[] = [];
      const clusters = Object.fromEntries([...bs.clusters.keys()].map((c) => [c, pods.map((p) => ({ host: "127.0.0.1", port: p.port }))]));
      const etcdCluster = fleetCluster(hcm.wasm!.configuration);
      if (etcdCluster !== undefined) {
        const gate = etcdGate();
        if (gate.failReason) throw new Error(`${v.name}: ${gate.failReason}`);
        if (gate.skip) {
          console.log(`# ${v.name}: skipped (${gate.skip})`);
          rows.push({ config: v.name, use_remote_address: `skipped: ${gate.skip}` });
          continue;
        }
        assert.ok(bs.clusters.has(etcdCluster), `${v.name}: fleet.cluster ${etcdCluster} is not a cluster of the file`);
        etcd ??= await startEtcd();
        clusters[etcdCluster] = [{ host: "127.0.0.1", port: Number(new URL(etcd.clientUrl).port) }];
      }
      const proxy: RunningProxy = await startProxy({
        config: v.doc, wasmPath: etcdCluster === undefined ? WASM : FLEET_WASM,
        pluginConfiguration: pluginConfig(hcm.wasm!.configuration), clusterOverrides: clusters,
        listenerPortOverride: 0, adminPortOverride: 0,
        networkView: (ip, port) => (VIEW[ip] ? { peer: `${VIEW[ip]}:${port}`, local: POD_ADDRESS } : undefined),
        onLog: (e) => logs.push(e.line),
      });
      const open: WebSocket[] = [];
      const raw: net.Socket[] = [];
      // counters reach Envoy on the filter's tick: a count that must change is polled for (then read exactly), one
      // that must not change (or a baseline) is read one tick after the event
      const stat = (n: string) => proxy.stat(STAT(n)) ?? 0;
      const statReaches = (n: string, want: number) =>
        waitFor(() => stat(n) >= want, { timeoutMs: 5000, intervalMs: 20, what: `${v.name}: ${n} reaching ${want}` })
          .catch(() => undefined); // the exact assertion below reports it
      const row: Record<string, string> = { config: v.name, use_remote_address: String(hcm.useRemoteAddress) };
      try {
        // (b) endpoints: a remote client naming 127.0.0.1 in x-forwarded-for, then a genuine local client
        for (const ep of ["metrics", "health"]) {
          const forged = await httpRequest(proxy.url(`/websocket/${ep}`), { localAddress: REMOTE, headers: { "x-forwarded-for": "127.0.0.1" } });
          assert.equal(forged.status, 403, `${v.name}: remote ${ep} with XFF 127.0.0.1`);
          row[`remote ${ep} (XFF 127.0.0.1)`] = String(forged.status);
          const local = await httpRequest(proxy.url(`/websocket/${ep}`));
          assert.equal(local.status, 200, `${v.name}: local ${ep}: ${local.body}`);
          row[`local ${ep}`] = String(local.status);
        }
        assert.match((await httpRequest(proxy.url("/websocket/metrics"))).body, /websocket_connections_active_total/);

        // (a) per-client cap 1: the remote client's first WebSocket, then a second one claiming to be 10.9.9.9
        const first = await connectWs(proxy.wsUrl("/ws"), { localAddress: REMOTE });
        assert.equal(first.kind, "open", `${v.name}: the remote client's first WebSocket`);
        if (first.kind === "open") open.push(first.ws);
        const rejectedBefore = stat("rejected_total.reason.client_full");
        const spoofed = await connectWs(proxy.wsUrl("/ws"), { localAddress: REMOTE, headers: { "x-forwarded-for": "10.9.9.9" } });
        if (spoofed.kind === "open") open.push(spoofed.ws);
        await (xffTrusted ? afterTick(TICK_MS) : statReaches("rejected_total.reason.client_full", rejectedBefore + 1));
        row["2nd WS, XFF 10.9.9.9"] = outcome(spoofed) + (stat("rejected_total.reason.client_full") > rejectedBefore ? " client_full" : "");
        if (xffTrusted) {
          assert.equal(outcome(spoofed), "101", `${v.name}: the XFF entry chooses the bucket (forgeable)`);
          assert.equal(stat("rejected_total.reason.client_full"), rejectedBefore);
        } else {
          assert.equal(outcome(spoofed), "429", `${v.name}: the same client, whatever x-forwarded-for says`);
          assert.equal(stat("rejected_total.reason.client_full"), rejectedBefore + 1, "rejected as client_full (ws_governor_client_limit)");
          assert.ok(logs.some((l) => /rejected reason=client_full key=10\.1\.2\.7\b/.test(l)), `${v.name}: the key is the TCP peer`);
        }

        // (c) two Connection lines: with the remote client's cap full → refused like any upgrade …
        if (!xffTrusted) await afterTick(TICK_MS); // baselines: both WebSockets above counted on whichever VM took them
        const upgrades0 = stat("upgrades_total");
        const clientFull0 = stat("rejected_total.reason.client_full");
        const full = await twoConnectionLines(proxy.listenerPort, REMOTE);
        raw.push(full.socket);
        await statReaches("rejected_total.reason.client_full", clientFull0 + 1);
        await statReaches("upgrades_total", upgrades0 + 1);
        row["2×Connection, cap full"] = `${full.status}${stat("rejected_total.reason.client_full") > clientFull0 ? " client_full" : ""}`;
        assert.equal(full.status, 429, `${v.name}: governed, no ungoverned tunnel`);
        assert.equal(stat("rejected_total.reason.client_full"), clientFull0 + 1, "refused by the client cap");
        assert.equal(stat("upgrades_total"), upgrades0 + 1, "seen by the filter as an upgrade");
        // … and from another client with room: admitted, counted
        const accepted0 = stat("accepted_total");
        const ok = await twoConnectionLines(proxy.listenerPort, OTHER);
        raw.push(ok.socket);
        await statReaches("upgrades_total", upgrades0 + 2);
        await statReaches("accepted_total", accepted0 + 1);
        row["2×Connection, admitted"] = String(ok.status);
        assert.equal(ok.status, 101, `${v.name}: another client is admitted`);
        assert.equal(stat("upgrades_total"), upgrades0 + 2, "counted in upgrades_total");
        assert.equal(stat("accepted_total"), accepted0 + 1, "counted in accepted_total");
        if (etcdCluster !== undefined) { // the fleet module took its slots from etcd, through the file's own cluster
          await statReaches("fleet_calls_total", 2);
          row["etcd calls"] = `${stat("fleet_calls_total")} (${stat("fleet_call_failures_total")} failed)`;
          assert.ok(stat("fleet_calls_total") >= 2, `${v.name}: a lease grant and a slot grant at least`);
        }
      } finally {
        for (const ws of open) ws.terminate();
        for (const s of raw) s.destroy();
        rows.push(row);
        await proxy.close(); // rejects with HostDefectError on a §13.1 module defect
      }
    }
  } finally {
    await Promise.all(pods.map((p) => p.kill()));
    await etcd?.stop();
    printMatrix(rows);
  }
});

function printMatrix(rows: Array<Record<string, string>>): void {
  if (rows.length === 0) return;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(width[i])).join(" | ")} |`;
  console.log(["", "spoofing matrix (config × request → outcome)", line(cols), line(width.map((w) => "-".repeat(w))),
    ...rows.map((r) => line(cols.map((c) => r[c] ?? "—")))].join("\n"));
}

// Target-agnostic end-to-end scenarios: real `ws` clients → proxy (emulated, Docker Envoy or an Envoy binary) with
// the ws-governor filter → real `ws` echo pods. Every scenario gets a fresh deployment with its own plugin
// configuration (envoy/envoy.yaml's, patched). Assertions use only what a real deployment exposes: client-visible
// responses, admin /stats and /stats/prometheus, the filter's metrics endpoint, and the pods' own counts.
import assert from "node:assert/strict";
import type WebSocket from "ws";
import { parseStatsText } from "../emulator/proxy/stats.ts";
import { closeWs, connectWs, echo, httpRequest, waitClosed, type WsOutcome } from "../support/ws-client.ts";
import { afterTick, waitFor } from "../support/wait.ts";
import type { Deployment } from "./targets/types.ts";

export interface Scenario {
  name: string;
  /** patch over envoy.yaml's plugin configuration (shallow; undefined removes a key, null disables e.g. rate_limit) */
  config?: Record<string, unknown>;
  /** "lean": the lean module, unwrapped as a WasmPlugin installs it (DeployOptions.module) */
  module?: "lean";
  /** the deployment must refuse to start, with an error/log text matching this */
  expectLoadFailure?: RegExp;
  run?(d: Deployment): Promise<void>;
}

const G = "wasmcustom.ws_governor.";
const UPGRADES_ACTIVE = "http.ingress_ws.downstream_cx_upgrades_active";
const METRICS_PATH = "/websocket/metrics";
const NO_RATE = { rate_limit: null };
/** Every scenario runs with this tick_ms (e2e.test.ts puts it under the scenario's own config): the filter hands its
 *  counters and gauge to Envoy on its tick, and 100 ms (the minimum) keeps the reads that wait for it short. */
export const TICK_MS = 100;

// ------------------------------------------------------------------ helpers

/** Admin /stats once the filter's next tick has handed its counters and gauge to Envoy (at most one tick_ms behind,
 *  README "Statistics"); rawAdminStats for polling. */
export async function adminStats(d: Deployment): Promise<Map<string, number>> {
  await afterTick(TICK_MS);
  return rawAdminStats(d);
}

export async function rawAdminStats(d: Deployment): Promise<Map<string, number>> {
  const r = await httpRequest(d.adminUrl("/stats"));
  assert.equal(r.status, 200, "admin /stats");
  return parseStatsText(r.body);
}

async function stat(d: Deployment, name: string): Promise<number> {
  return (await adminStats(d)).get(name) ?? 0;
}

/** The filter's own Prometheus endpoint (served from the listener to 127.0.0.1), as "name{labels}" → value. */
export async function metricsEndpoint(d: Deployment): Promise<Map<string, number>> {
  await afterTick(TICK_MS); // the serving VM's counters are exact, the other VMs' arrive on their tick
  const r = await httpRequest(d.httpUrl(METRICS_PATH));
  assert.equal(r.status, 200, `GET ${METRICS_PATH}: ${r.status} ${r.body.slice(0, 200)}`);
  const out = new Map<string, number>();
  for (const line of r.body.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(-?[0-9.eE+]+)\s*$/.exec(line.trim());
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

async function openOk(d: Deployment, path = "/ws"): Promise<WebSocket> {
  const o = await connectWs(d.wsUrl(path));
  assert.equal(o.kind, "open", `expected the upgrade to pass, got ${describe(o)}`);
  return (o as Extract<WsOutcome, { kind: "open" }>).ws;
}

async function rejected(d: Deployment, status: number, path = "/ws"): Promise<Extract<WsOutcome, { kind: "rejected" }>> {
  const o = await connectWs(d.wsUrl(path));
  if (o.kind === "open") o.ws.terminate();
  assert.equal(o.kind, "rejected", `expected ${status}, got ${describe(o)}`);
  const r = o as Extract<WsOutcome, { kind: "rejected" }>;
  assert.equal(r.status, status, `status (body: ${r.body})`);
  return r;
}

function describe(o: WsOutcome): string {
  if (o.kind === "open") return "101 (open)";
  if (o.kind === "rejected") return `${o.status} ${o.body.slice(0, 200)}`;
  return `error ${o.error.message}`;
}

/** Wait until the governor, Envoy and the pods all report zero open WebSockets. */
async function countsBackToZero(d: Deployment, { pods = true } = {}): Promise<void> {
  await waitFor(
    async () => {
      const s = await rawAdminStats(d);
      return (s.get(`${G}active_connections`) ?? -1) === 0 && (s.get(UPGRADES_ACTIVE) ?? -1) === 0;
    },
    { timeoutMs: 10_000, intervalMs: 50, what: "active_connections and downstream_cx_upgrades_active back to 0" },
  );
  const m = await metricsEndpoint(d);
  assert.equal(m.get(`websocket_connections_active_total{pod="${d.podName}"}`), 0, "metrics endpoint active gauge");
  if (pods) {
    await waitFor(async () => (await d.podStates()).every((p) => p.open === 0), {
      timeoutMs: 10_000, intervalMs: 50, what: "every pod back to 0 open sockets",
    });
  }
}

async function waitActive(d: Deployment, n: number): Promise<void> {
  await waitFor(async () => ((await rawAdminStats(d)).get(`${G}active_connections`) ?? 0) === n, {
    timeoutMs: 10_000, intervalMs: 50, what: `active_connections == ${n}`,
  });
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

// ------------------------------------------------------------------ scenarios

export const scenarios: Scenario[] = [
  {
    name: "upgrade passes, echoes, and is counted",
    config: NO_RATE,
    async run(d) {
      const ws = await openOk(d);
      assert.equal(await echo(ws, "hello"), "hello");
      assert.equal(await echo(ws, "x".repeat(70_000)), "x".repeat(70_000), "a 70 kB message crosses many TCP reads");
      await waitActive(d, 1);
      const s = await adminStats(d);
      assert.equal(s.get(`${G}upgrades_total`), 1);
      assert.equal(s.get(`${G}accepted_total`), 1);
      assert.equal(s.get(UPGRADES_ACTIVE), 1);
      assert.equal((await d.podStates()).reduce((a, p) => a + p.open, 0), 1);
      await closeWs(ws);
      await countsBackToZero(d);
      assert.equal(await stat(d, `${G}released_total`), 1);
    },
  },
  {
    name: "plain HTTP is untouched (and not rate limited)",
    config: { rate_limit: { requests: 2, window_seconds: 60 } },
    async run(d) {
      for (let i = 0; i < 5; i++) {
        const r = await httpRequest(d.httpUrl(`/api/item/${i}?q=1`), { headers: { "x-demo": "1" } });
        assert.equal(r.status, 200);
        const seen = JSON.parse(r.body);
        assert.equal(seen.path, `/api/item/${i}?q=1`);
        assert.equal(seen.headers["x-demo"], "1");
        assert.match(seen.pod, /^pod-[abc]$/);
      }
      const post = await httpRequest(d.httpUrl("/api/echo"), { method: "POST", body: "payload", headers: { "content-type": "text/plain" } });
      assert.equal(JSON.parse(post.body).body, "payload");
      // `upgrade` without "upgrade" in `connection` is a normal request: Envoy strips both before the filters
      // (envoy-host.md §8.1), which is why the filter reads `upgrade` alone
      for (const connection of ["keep-alive", "close, noupgrade"]) {
        const r = await httpRequest(d.httpUrl("/api/x"), { headers: { upgrade: "websocket", connection } });
        assert.equal(r.status, 200, connection);
        assert.equal(JSON.parse(r.body).headers.upgrade, undefined, `upgrade reached the pod (connection: ${connection})`);
      }
      // and upgrades still get the full allowance afterwards
      const a = await openOk(d);
      const b = await openOk(d);
      await closeWs(a);
      await closeWs(b);
      await countsBackToZero(d);
      // exactly the two WebSockets were upgrades (counters reach Envoy on the filter's tick)
      const s = await adminStats(d);
      assert.equal(s.get(`${G}upgrades_total`) ?? 0, 2);
      assert.equal(s.get(`${G}rejected_total.reason.rate_limited`) ?? 0, 0);
    },
  },
  {
    name: "rate limit: 429 after the allowance, with Retry-After and RateLimit headers",
    config: { rate_limit: { requests: 3, window_seconds: 60 }, max_connections_per_pod: 0 },
    async run(d) {
      for (let i = 0; i < 3; i++) await closeWs(await openOk(d));
      const r = await rejected(d, 429);
      const retryAfter = header(r.headers, "retry-after");
      assert.match(retryAfter ?? "", /^\d+$/, "Retry-After is delta-seconds");
      const ra = Number(retryAfter);
      assert.ok(ra >= 1 && ra <= 20, `Retry-After ${ra} within one emission interval (60 s / 3 = 20 s)`);
      const rl = Object.keys(r.headers).filter((k) => k.startsWith("ratelimit"));
      assert.ok(rl.length > 0, `RateLimit-* headers present (got ${Object.keys(r.headers).join(", ")})`);
      const limit = header(r.headers, "ratelimit-limit");
      if (limit !== undefined) assert.match(limit, /^3\b/);
      const remaining = header(r.headers, "ratelimit-remaining");
      if (remaining !== undefined) assert.equal(remaining, "0");
      const policy = header(r.headers, "ratelimit-policy");
      if (policy !== undefined) assert.match(policy, /^3;\s*w=60/);
      const s = await adminStats(d);
      assert.equal(s.get(`${G}rejected_total.reason.rate_limited`), 1);
      assert.equal(s.get(`${G}accepted_total`), 3);
      const m = await metricsEndpoint(d);
      assert.equal(m.get("websocket_connection_rate_limited_total"), 1);
      const pods = await d.podStates();
      assert.equal(pods.reduce((a, p) => a + p.accepted, 0), 3, "the rejected upgrade never reached a pod");
      await countsBackToZero(d);
    },
  },
  {
    name: "pod cap: 503 at the cap, admission again after one connection closes",
    config: { ...NO_RATE, max_connections_per_pod: 3 },
    async run(d) {
      // separate connections → spread over both worker VMs; the cap must hold across them (shared-data CAS)
      const open = [await openOk(d), await openOk(d), await openOk(d)];
      for (const ws of open) assert.equal(await echo(ws, "alive"), "alive");
      const r = await rejected(d, 503);
      assert.ok(r.body.length >= 0);
      assert.equal(await stat(d, `${G}rejected_total.reason.pod_full`), 1);
      await waitActive(d, 3);
      await closeWs(open.shift()!);
      await waitActive(d, 2);
      const again = await openOk(d);
      assert.equal(await echo(again, "welcome back"), "welcome back");
      await rejected(d, 503);
      const s = await adminStats(d);
      assert.equal(s.get(`${G}rejected_total.reason.pod_full`), 2);
      assert.equal(s.get(`${G}accepted_total`), 4);
      for (const ws of [...open, again]) await closeWs(ws);
      await countsBackToZero(d);
    },
  },
  {
    name: "per-client cap: 429 for the client over its share",
    config: { ...NO_RATE, max_connections_per_pod: 0, max_connections_per_client: 2, client_key: { source: "address" } },
    async run(d) {
      const a = await openOk(d);
      const b = await openOk(d);
      await rejected(d, 429);
      assert.equal(await stat(d, `${G}rejected_total.reason.client_full`), 1);
      await closeWs(a);
      await waitActive(d, 1);
      const c = await openOk(d);
      await closeWs(b);
      await closeWs(c);
      await countsBackToZero(d);
    },
  },
  {
    name: "counts return to 0 after client resets (socket.destroy, terminate)",
    config: { ...NO_RATE, max_connections_per_pod: 0 },
    async run(d) {
      const ws = [await openOk(d), await openOk(d), await openOk(d), await openOk(d)];
      await waitActive(d, 4);
      // abrupt: TCP close without a close frame, and an RST-like destroy mid-stream
      ws[0].terminate();
      (ws[1] as unknown as { _socket: import("node:net").Socket })._socket.destroy();
      ws[2].send("bytes in flight");
      ws[2].terminate();
      (ws[3] as unknown as { _socket: import("node:net").Socket })._socket.resetAndDestroy?.() ??
        (ws[3] as unknown as { _socket: import("node:net").Socket })._socket.destroy();
      await countsBackToZero(d);
      assert.equal(await stat(d, `${G}released_total`), 4);
      const again = await openOk(d);
      await closeWs(again);
      await countsBackToZero(d);
    },
  },
  {
    name: "counts return to 0 after the upstream pods are killed",
    config: { ...NO_RATE, max_connections_per_pod: 0 },
    async run(d) {
      const ws = [await openOk(d), await openOk(d), await openOk(d)];
      await waitActive(d, 3);
      const closed = ws.map((w) => waitClosed(w, 10_000));
      await d.killPods();
      await Promise.all(closed);
      await countsBackToZero(d, { pods: false });
      assert.equal(await stat(d, `${G}released_total`), 3);
    },
  },
  {
    name: "metrics endpoint and admin /stats agree with what the clients saw",
    config: { rate_limit: { requests: 4, window_seconds: 60 }, max_connections_per_pod: 2 },
    async run(d) {
      const seen = { open: 0, s503: 0, s429: 0 };
      const open: WebSocket[] = [];
      for (let i = 0; i < 6; i++) {
        const o = await connectWs(d.wsUrl("/ws"));
        if (o.kind === "open") {
          seen.open++;
          open.push(o.ws);
        } else if (o.kind === "rejected" && o.status === 503) seen.s503++;
        else if (o.kind === "rejected" && o.status === 429) seen.s429++;
        else assert.fail(`unexpected outcome ${describe(o)}`);
      }
      assert.equal(seen.open, 2, "the pod cap admits 2");
      assert.equal(seen.s503 + seen.s429, 4, "every other upgrade is rejected (503 pod cap or 429 rate, per the policy order)");
      await waitActive(d, 2);
      const s = await adminStats(d);
      assert.equal(s.get(`${G}upgrades_total`), 6);
      assert.equal(s.get(`${G}accepted_total`), seen.open);
      assert.equal(s.get(`${G}rejected_total.reason.pod_full`) ?? 0, seen.s503);
      assert.equal(s.get(`${G}rejected_total.reason.rate_limited`) ?? 0, seen.s429);
      assert.equal(s.get(UPGRADES_ACTIVE), 2);
      const m = await metricsEndpoint(d);
      assert.equal(m.get(`websocket_connections_active_total{pod="${d.podName}"}`), 2);
      assert.equal(m.get("websocket_connection_rate_limited_total"), seen.s429);
      const rejectedTotal = m.get(`websocket_connections_rejected_total{pod="${d.podName}"}`);
      assert.ok(rejectedTotal === seen.s503 || rejectedTotal === seen.s503 + seen.s429, `rejected_total ${rejectedTotal}`);
      const prom = (await httpRequest(d.adminUrl("/stats/prometheus"))).body;
      if (seen.s503 > 0) assert.match(prom, new RegExp(`^ws_governor_rejected_total\\{reason="pod_full"\\} ${seen.s503}$`, "m"));
      assert.match(prom, /^ws_governor_active_connections(\{\})? 2$/m);
      // the endpoint is not proxied and not an upgrade
      assert.equal((await d.podStates()).reduce((a, p) => a + p.accepted, 0), 2);
      for (const ws of open) await closeWs(ws);
      await countsBackToZero(d);
    },
  },
  {
    name: "shadow mode: would-be rejections are counted, nothing is rejected",
    config: { ...NO_RATE, enforce: false, max_connections_per_pod: 1 },
    async run(d) {
      const ws = [await openOk(d), await openOk(d), await openOk(d)];
      for (const w of ws) assert.equal(await echo(w, "shadow"), "shadow");
      const s = await adminStats(d);
      assert.equal(s.get(`${G}shadow_rejected_total.reason.pod_full`), 2);
      assert.equal(s.get(`${G}rejected_total.reason.pod_full`) ?? 0, 0);
      assert.equal(s.get(`${G}accepted_total`), 3);
      for (const w of ws) await closeWs(w);
      await countsBackToZero(d);
    },
  },
  {
    // k8s/lean: the lean module where the filter cannot be wrapped (an Istio WasmPlugin), so every request runs it
    name: "lean module, unwrapped: 503 at the cap, plain requests with and without a body pass, metrics answer, counts return to 0",
    module: "lean",
    config: { ...NO_RATE, max_connections_per_pod: 2 },
    async run(d) {
      const open = [await openOk(d), await openOk(d)];
      for (const ws of open) assert.equal(await echo(ws, "y".repeat(70_000)), "y".repeat(70_000));
      await rejected(d, 503);
      const get = await httpRequest(d.httpUrl("/api/item/1"));
      assert.equal(get.status, 200);
      const post = await httpRequest(d.httpUrl("/api/echo"), { method: "POST", body: "payload", headers: { "content-type": "text/plain" } });
      assert.equal(JSON.parse(post.body).body, "payload", "a request body passes a module without body callbacks");
      // a body on the metrics path goes upstream: the endpoints answer bodyless requests only (the echo pod answers)
      const bodied = await httpRequest(d.httpUrl(METRICS_PATH), { method: "POST", body: "x", headers: { "content-type": "text/plain" } });
      assert.equal(JSON.parse(bodied.body).path, METRICS_PATH);
      await waitActive(d, 2);
      const m = await metricsEndpoint(d);
      assert.equal(m.get(`websocket_connections_active_total{pod="${d.podName}"}`), 2);
      const s = await adminStats(d);
      assert.equal(s.get(`${G}upgrades_total`), 3);
      assert.equal(s.get(`${G}rejected_total.reason.pod_full`), 1);
      for (const ws of open) await closeWs(ws);
      await countsBackToZero(d);
    },
  },
  {
    name: "lean module: frame inspection is refused at load, naming the modules that have it",
    module: "lean",
    config: { frames: { enabled: true } },
    expectLoadFailure: /frames\.enabled: needs build\/ws-governor\.wasm or build\/ws-governor-fleet\.wasm/,
  },
  {
    name: "bad configuration is rejected at load",
    config: { max_conections_per_pod: 3 },
    expectLoadFailure: /invalid configuration: max_conections_per_pod/,
  },
];

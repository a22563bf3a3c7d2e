// Wall-clock steps (NTP, VM migration; envoy-host.md §13.4) through the running emulated Envoy (envoy/envoy.yaml, two
// worker VMs, the release module, real `ws` echo pods and clients). README "How it decides": leases count silence in
// ticks (monotonic), never by comparing timestamps, so a step expires no live VM; the GCRA rate limit keeps its state
// on the wall clock and, after a step back, admits one request and then one per interval (no stall, no fresh burst).
//   +1 h (admin POST /emulator/wall_clock): ticks pass on both VMs, nothing is reclaimed, the active gauge is unchanged,
//        the per-pod cap still refuses exactly the (cap+1)-th WebSocket with 503
//   −2 h (RunningProxy.stepWallClock): exactly one upgrade is admitted at once, then 429 (Retry-After 1) until the
//        one-second emission interval has passed; still nothing reclaimed; closing everything brings every count to 0
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import type WebSocket from "ws";
import { REPO_ROOT, parseStatsText, startProxy, type RunningProxy } from "../emulator/proxy/index.ts";
import { startPods, type PodServer } from "../support/pods.ts";
import { closeWs, connectWs, echo, httpRequest, type WsOutcome } from "../support/ws-client.ts";
import { afterTick, delay, waitFor } from "../support/wait.ts";

const CAP = 4;
const TICK_MS = 100, LEASE_TICKS = 2;
const RATE = { requests: 60, window_seconds: 60, burst: 3 }; // one upgrade per second, three at once
const INTERVAL_MS = (RATE.window_seconds * 1000) / RATE.requests;
const HOUR = 3_600_000;
const PLUGIN = JSON.stringify({
  mode: "inbound", max_connections_per_pod: CAP, max_connections_per_client: 0, rate_limit: RATE,
  tick_ms: TICK_MS, lease_ticks: LEASE_TICKS, metrics_path: "/websocket/metrics", health_path: "/websocket/health",
});
const STAT = (n: string) => `wasmcustom.ws_governor.${n}`;

const status = (o: WsOutcome): string => (o.kind === "open" ? "101" : o.kind === "rejected" ? String(o.status) : `error ${o.error.message}`);

test("wall clock +1 h / −2 h in the running proxy: no lease expiry, cap unchanged, rate limit neither stalls nor bursts", async () => {
  const pods: PodServer[] = await startPods(2);
  const logs: string[] = [];
  const open: WebSocket[] = [];
  let proxy: RunningProxy | undefined;
  try {
    proxy = await startProxy({
      configPath: path.join(REPO_ROOT, "envoy/envoy.yaml"), wasmPath: path.join(REPO_ROOT, "build/ws-governor.wasm"),
      pluginConfiguration: PLUGIN, concurrency: 2,
      clusterOverrides: { demo_pods: pods.map((p) => ({ host: "127.0.0.1", port: p.port })) },
      listenerPortOverride: 0, adminPortOverride: 0, onLog: (e) => logs.push(e.line),
    });
    const p = proxy;
    const plugin = p.plugin!;
    assert.equal(plugin.workers, 2, "two worker VMs share the counts");
    // the filter hands counters and the gauge to Envoy on its tick (at most TICK_MS late): a value that must change
    // is polled for, a value that must not change is read after one tick
    const stat = (n: string) => p.stat(STAT(n)) ?? 0;
    const statBecomes = (n: string, v: number, what: string) =>
      waitFor(() => stat(n) === v, { timeoutMs: 5000, intervalMs: 20, what: `${n} == ${v} (${what})` });
    const adminStat = async (n: string) => parseStatsText((await httpRequest(p.adminUrl("/stats"))).body).get(STAT(n));
    const podsOpen = () => pods.reduce((a, s) => a + s.state().open, 0);
    const connect = async () => {
      const o = await connectWs(p.wsUrl("/ws"));
      if (o.kind === "open") open.push(o.ws);
      return o;
    };
    const noReclaim = (when: string) => {
      assert.equal(stat("reclaimed_total"), 0, `${when}: reclaimed_total`);
      assert.equal(stat("orphan_releases_total"), 0, `${when}: no share was taken from a live VM`);
      assert.deepEqual(logs.filter((l) => /reclaimed/.test(l)), [], `${when}: no "reclaimed" log line`);
    };
    /** let lease_ticks + 3 tick periods pass and check that every VM really ticked (each tick's heartbeat writes the
     *  lease table, with the VM's beat number: one shared-data write per tick while no stream is active) */
    const letTicksPass = async (when: string) => {
      for (let w = 0; w < plugin.workers; w++) plugin.hostCalls(w).reset();
      await delay((LEASE_TICKS + 3) * TICK_MS);
      for (let w = 0; w < plugin.workers; w++) {
        const n = plugin.hostCalls(w).get("proxy_set_shared_data");
        assert.ok(n >= LEASE_TICKS + 1, `${when}: worker ${w} ticked (${n} lease writes in ${(LEASE_TICKS + 3) * TICK_MS} ms)`);
      }
    };

    // Three WebSockets: the whole burst.
    for (let i = 0; i < RATE.burst; i++) {
      const o = await connect();
      assert.equal(status(o), "101", `connection ${i + 1}`);
      assert.equal(await echo((o as { ws: WebSocket }).ws, `m${i}`), `m${i}`);
    }
    await statBecomes("active_connections", 3, "three admitted");

    // +1 h through the admin hook.
    const step = await httpRequest(p.adminUrl(`/emulator/wall_clock?step_ms=${HOUR}`), { method: "POST" });
    assert.equal(step.status, 200, "admin wall-clock step");
    await letTicksPass("+1 h");
    noReclaim("+1 h");
    assert.equal(stat("active_connections"), 3, "+1 h: the active gauge is unchanged");
    assert.equal(podsOpen(), 3, "+1 h: the pods still hold their WebSockets");
    assert.equal(await echo(open[0], "still here"), "still here", "+1 h: the connections are alive");

    // The cap (4) is still exact: the 4th is admitted, the 5th refused with 503 pod_full.
    const fourth = await connect();
    assert.equal(status(fourth), "101", `connection ${CAP} (the cap) is admitted`);
    const fifth = await connect();
    assert.equal(status(fifth), "503", `connection ${CAP + 1} is refused by the per-pod cap`);
    await afterTick(TICK_MS); // every VM has handed its counts over
    assert.equal(stat("rejected_total.reason.pod_full"), 1);
    assert.equal(stat("rejected_total.reason.rate_limited"), 0, "the step forward refilled at most one burst");
    assert.equal(stat("active_connections"), CAP);

    // Make room for two, then −2 h (the wall clock is now an hour behind real time).
    for (const ws of open.splice(0, 2)) await closeWs(ws);
    await waitFor(() => stat("active_connections") === CAP - 2, { timeoutMs: 5000, what: "two slots released" });
    p.stepWallClock(-2 * HOUR);

    const t0 = Date.now();
    const sixth = await connect();
    assert.equal(status(sixth), "101", "−2 h: one upgrade is admitted at once (no stall until the clock catches up)");
    const seventh = await connect();
    assert.equal(status(seventh), "429", "−2 h: no fresh burst");
    await statBecomes("rejected_total.reason.rate_limited", 1, "the 7th refused by the rate limit");
    assert.equal((seventh as { headers: Record<string, unknown> }).headers["retry-after"], "1", "Retry-After: one interval, not an hour");

    // 429 until one emission interval has passed (real time), then admitted. Bounded: 40 attempts, 100 ms apart.
    let admittedAfterMs = -1;
    let refused = 0;
    for (let i = 0; i < 40 && admittedAfterMs < 0; i++) {
      await delay(100);
      const o = await connect();
      if (o.kind === "open") admittedAfterMs = Date.now() - t0;
      else {
        assert.equal(status(o), "429", "only the rate limit refuses while waiting");
        refused++;
      }
    }
    console.log(`−2 h: 1 admitted at once, then 429 (Retry-After 1) ×${refused}; admitted again ${admittedAfterMs} ms after the step`);
    assert.ok(admittedAfterMs >= INTERVAL_MS - 50, `not admitted before one interval (${admittedAfterMs} ms)`);
    assert.ok(admittedAfterMs <= 2.5 * INTERVAL_MS, `admitted about one interval later (${admittedAfterMs} ms)`);
    assert.ok(refused >= 3, `refused in between (${refused} attempts)`);

    await letTicksPass("−2 h"); // (ticks passed on every VM: the counts are Envoy's)
    assert.equal(stat("rejected_total.reason.rate_limited"), 1 + refused);
    noReclaim("−2 h");
    assert.equal(stat("active_connections"), CAP);
    await waitFor(() => podsOpen() === CAP, { timeoutMs: 3000, what: "the pods hold the cap" });

    // Close everything: every count back to 0.
    for (const ws of open.splice(0)) await closeWs(ws);
    await waitFor(async () => (await adminStat("active_connections")) === 0, { timeoutMs: 5000, what: "active gauge 0 (admin /stats)" });
    await waitFor(() => podsOpen() === 0, { timeoutMs: 5000, what: "no WebSocket open on the pods" });
    assert.equal(stat("released_total"), stat("accepted_total"), "every admitted connection released once");
    assert.equal(stat("accepted_total"), 6);
    noReclaim("end");
  } finally {
    for (const ws of open) ws.terminate();
    await proxy?.close();
    await Promise.all(pods.map((s) => s.kill()));
  }
});

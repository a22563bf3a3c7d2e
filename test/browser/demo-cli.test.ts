// `make demo` / `make demo-serve` with ARGS="--config FILE" (scripts/demo.ts as a child process, ports chosen by the OS,
// stopped by its PID): any plugin configuration runs, the printed websocket/metrics/admin lines work, the page's series
// names the pod the filter caps; a configuration the filter refuses ends with its critical log line and exit 1, a
// missing file with exit 2. No browser needed (it sits with demo-page.test.ts, which `make test-browser` runs too).
//   node --import tsx --test --test-reporter=tap test/browser/demo-cli.test.ts
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { wasmMissing } from "../e2e/frames_harness.ts";
import { closeWs, connectWs, echo, httpRequest } from "../support/ws-client.ts";
import { waitFor } from "../support/wait.ts";
import { allowsLoopback, effectiveConfig, snapshotFromMetrics } from "../../scripts/demo-governor.ts";
import { Series } from "../../scripts/demo-series.ts";
import { runDemo, startDemo, stopDemo } from "./demo-process.ts";

const missing = wasmMissing();
const skip = missing ? `unavailable: ${missing}` : false;
const dir = mkdtempSync(path.join(os.tmpdir(), "ws-governor-demo-"));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
after(() => rmSync(dir, { recursive: true, force: true }));

interface SeriesJson {
  capped: Array<{ pod: string; active: number; rejected: number }>;
  points: Array<{ t: number; active: number; rejectedPerSecond: number }>;
  events: Array<{ kind: string; text: string }>;
}

describe("demo --config FILE", () => {
  test("serve: the printed websocket, metrics and admin lines work; the series names the configured pod", { skip, timeout: 60_000 }, async () => {
    const cfg = file("good.json", JSON.stringify({ pod_name: "ws-test-pod", max_connections_per_pod: 2, rate_limit: { requests: 20, window_seconds: 60 } }));
    const d = await startDemo(60, ["--config", cfg]);
    try {
      assert.match(d.websocket, /^ws:\/\/127\.0\.0\.1:\d+\/chat$/);
      assert.match(d.metrics ?? "", /^http:\/\/127\.0\.0\.1:\d+\/websocket\/metrics$/);
      assert.match(d.admin, /^http:\/\/127\.0\.0\.1:\d+\/stats$/);
      assert.match(d.output.join(""), /capped pod: ws-test-pod \(this sidecar's pod/);
      const a = await connectWs(d.websocket);
      const b = await connectWs(d.websocket);
      assert.equal(a.kind, "open");
      assert.equal(b.kind, "open");
      if (a.kind !== "open" || b.kind !== "open") return;
      assert.equal(await echo(a.ws, "hi"), "hi");
      const c = await connectWs(d.websocket);
      assert.equal(c.kind === "rejected" && c.status, 503, "the third connection finds ws-test-pod full (cap 2 from FILE)");
      const m = await httpRequest(d.metrics!);
      assert.match(m.body, /^websocket_connections_active_total\{pod="ws-test-pod"\} 2$/m);
      // admin /stats: the filter hands its counters to Envoy on its tick (at most tick_ms, 1 s here, late)
      const podFull = /wasmcustom\.ws_governor\.rejected_total\.reason\.pod_full: (\d+)/;
      const stats = await waitFor(async () => {
        const r = await httpRequest(d.admin + "?filter=rejected_total");
        return Number(podFull.exec(r.body)?.[1] ?? 0) >= 1 ? r : undefined;
      }, { timeoutMs: 5000, intervalMs: 50, what: "the 503 counted in admin /stats" });
      assert.match(stats.body, /wasmcustom\.ws_governor\.rejected_total\.reason\.pod_full: 1\n/);

      const series = async () => JSON.parse((await httpRequest(d.adminUrl("/demo/series"))).body) as SeriesJson;
      const s = await waitFor(async () => {
        const x = await series();
        return x.events.some((e) => e.kind === "pod_full") && x.points.some((p) => p.active === 2) ? x : undefined;
      }, { timeoutMs: 10_000, what: "the sampler to see the 503" });
      assert.deepEqual(s.capped.map((p) => p.pod), ["ws-test-pod"]);
      assert.ok(s.events.some((e) => e.kind === "accepted" && /ws-test-pod now holds [12]\/2/.test(e.text)), JSON.stringify(s.events));
      assert.ok(s.events.some((e) => e.text.startsWith("503 pod full: ws-test-pod already holds 2/2")), JSON.stringify(s.events));
      assert.ok(s.points.some((p) => p.rejectedPerSecond > 0), "a rejection shows in the per-second series");

      await closeWs(a.ws);
      await closeWs(b.ws);
      // the per-pod count (shared data) drops at once, the active gauge on the filter's next tick: both reach 0
      const after = await waitFor(async () => {
        const x = await series();
        return x.events.some((e) => e.text.includes("ws-test-pod back to 0/2")) && x.points.at(-1)?.active === 0 ? x : undefined;
      }, { timeoutMs: 10_000, what: "a release back to 0 and the chart's active gauge at 0" });
      assert.equal(after.points.at(-1)?.active, 0);
    } finally {
      assert.equal(await stopDemo(d), 0, d.output.join(""));
    }
  });

  for (const c of [
    { name: "an unknown key", text: '{"max_conections_per_pod": 3}', log: /critical.*invalid configuration: max_conections_per_pod: unknown key/i },
    { name: "not JSON", text: "max_connections_per_pod = 3\n", log: /invalid configuration: configuration: invalid JSON/ },
    { name: "a value out of range", text: '{"rate_limit": {"requests": 0}}', log: /invalid configuration: rate_limit\.requests: must be an integer/ },
  ]) {
    test(`serve with ${c.name}: the filter's critical log line, exit 1, no hang, no stack trace`, { skip, timeout: 40_000 }, async () => {
      const r = await runDemo(["--serve", "--port", "0", "--admin-port", "0", "--config", file("bad.json", c.text)], 30_000);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, c.log);
      assert.match(r.stderr, /the filter refused the configuration in .*bad\.json/);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
      assert.doesNotMatch(r.stdout, /websocket:/, "nothing was served");
    });
  }

  test("a missing FILE: a clear error and exit 2", { timeout: 30_000 }, async () => {
    const r = await runDemo(["--serve", "--config", path.join(dir, "nope.json")], 20_000);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--config .*nope\.json: cannot read it \(no such file\)/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });

  test("the tour runs with an upstream-mode FILE and ends by itself", { skip, timeout: 60_000 }, async () => {
    const cfg = file("up.json", JSON.stringify({ mode: "upstream", max_connections_per_pod: 1, rate_limit: { requests: 8, window_seconds: 60 } }));
    const r = await runDemo(["--config", cfg], 50_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /websocket:\s+ws:\/\/127\.0\.0\.1:\d+\/chat/);
    assert.match(r.stdout, /✓ client 4: 503 pod full: Envoy picked pod-[abc] \(127\.0\.0\.1:\d+\), which already holds 1\/1/);
    assert.match(r.stdout, /429 rate: more than a burst of 8 upgrades/);
    assert.match(r.stdout, /All steps went as expected\./);
  });
});

describe("demo series (the page's events and chart points)", () => {
  const metrics = (active: number, podFull: number, accepted: number, released: number) => [
    `websocket_connections_active_total{pod="demo-pod"} ${active}`,
    `websocket_connections_rejected_total{pod="demo-pod"} ${podFull}`,
    `ws_governor_accepted_total ${accepted}`,
    `ws_governor_released_total ${released}`,
    `ws_governor_rejected_total{reason="pod_full"} ${podFull}`,
    `ws_governor_rejected_total{reason="rate_limited"} 0`,
    `ws_governor_active_connections ${active}`,
  ].join("\n");

  test("one line per thing that happened, naming the capped pod; rejections per second", () => {
    const e = effectiveConfig('{"max_connections_per_pod": 3}');
    const s = new Series(e, (p) => p);
    s.add(snapshotFromMetrics(metrics(0, 0, 0, 0), 1000));
    s.add(snapshotFromMetrics(metrics(3, 0, 3, 0), 2000));
    s.add(snapshotFromMetrics(metrics(3, 2, 3, 0), 3000));
    s.add(snapshotFromMetrics(metrics(0, 2, 3, 3), 4000));
    assert.deepEqual(s.events.map((x) => x.text), [
      "accepted ×3 (101): demo-pod now holds 3/3",
      "503 pod full ×2: demo-pod already holds 3/3 (max_connections_per_pod); refused before Envoy routes it",
      "released ×3: demo-pod back to 0/3",
    ]);
    assert.deepEqual(s.points.map((p) => [p.active, p.rejectedPerSecond]), [[0, 0], [3, 0], [3, 2], [0, 0]]);
    assert.deepEqual(s.capped().map((p) => p.pod), ["demo-pod"]);
  });
});

describe("demo configuration helpers", () => {
  test("endpoint_allow decides whether the demo may read the metrics endpoint from 127.0.0.1", () => {
    assert.equal(allowsLoopback(effectiveConfig("{}")), true, "default 127.0.0.0/8");
    assert.equal(allowsLoopback(effectiveConfig('{"endpoint_allow": ["10.0.0.0/8"]}')), false);
    assert.equal(allowsLoopback(effectiveConfig('{"endpoint_allow": ["0.0.0.0/0"]}')), true);
    assert.equal(allowsLoopback(effectiveConfig('{"endpoint_allow": ["127.0.0.2/32", "::1/128"]}')), false);
  });
});

// ws-governor demo: three ws echo pods + the loopback proxy built from envoy/envoy.yaml with build/ws-governor.wasm.
//   node --import tsx scripts/demo.ts                       scripted tour, summary table, metrics; exit 0 if as expected
//   node --import tsx scripts/demo.ts --serve               keep running (Ctrl-C stops), print the URLs
//   node --import tsx scripts/demo.ts --serve --seconds 5   … and stop by itself after 5 s
// Options: --port N (listener; serve default 10000 from envoy.yaml, tour default any free port), --admin-port N
// (serve default 9901), --concurrency N (default 2), --fake-filter (harness check only: a TypeScript stand-in for
// host + filter, test/emulator/proxy/fake-governor.ts — not the product). Builds nothing: run `make build` first.
// Live demo page: GET <admin>/demo (scripts/demo-page.html: per-pod bars, rejection counters, open/close buttons),
// polling GET <admin>/demo/state (JSON: per-pod active upgrades, governor counters) and <admin>/demo/config.
import { existsSync, readFileSync } from "node:fs";
import type http from "node:http";
import path from "node:path";
import { REPO_ROOT, startProxy, type RunningProxy } from "../test/emulator/proxy/index.ts";
import { FakeGovernorProcess } from "../test/emulator/proxy/fake-governor.ts";
import { startPods, type PodServer } from "../test/support/pods.ts";
import { httpRequest } from "../test/support/ws-client.ts";
import { runTour, table } from "./demo-tour.ts";

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(`--${n}`);
const num = (n: string): number | undefined => {
  const i = args.indexOf(`--${n}`);
  if (i < 0) return undefined;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 0) {
    console.error(`--${n} needs a non-negative integer`);
    process.exit(2);
  }
  return v;
};

const serve = flag("serve");
const seconds = num("seconds");
const concurrency = num("concurrency") ?? 2;
const fake = flag("fake-filter");
const wasmPath = path.join(REPO_ROOT, "build/ws-governor.wasm");

async function main(): Promise<number> {
  if (!existsSync(wasmPath)) {
    console.error("build/ws-governor.wasm is missing: run `make build` first");
    return 2;
  }
  const pods: PodServer[] = await startPods(3);
  let proxy: RunningProxy | undefined;
  // the live demo page (scripts/demo-page.html) on the admin server: /demo, its settings at /demo/config
  let pageConfig: Record<string, unknown> = {};
  const sendPage = (type: string, body: string) => (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
    res.end(body);
  };
  const adminRoutes = {
    "/demo": (req: http.IncomingMessage, res: http.ServerResponse) =>
      sendPage("text/html; charset=utf-8", readFileSync(path.join(REPO_ROOT, "scripts/demo-page.html"), "utf8"))(req, res),
    "/demo/config": (req: http.IncomingMessage, res: http.ServerResponse) =>
      sendPage("application/json", JSON.stringify(pageConfig))(req, res),
  };
  const stop = async () => {
    await proxy?.close();
    await Promise.all(pods.map((p) => p.kill()));
  };
  try {
    proxy = await startProxy({
      wasmPath,
      process: fake ? new FakeGovernorProcess("demo-pod") : undefined,
      concurrency,
      clusterOverrides: { demo_pods: pods.map((p) => ({ host: "127.0.0.1", port: p.port })) },
      listenerPortOverride: num("port") ?? (serve ? undefined : 0),
      adminPortOverride: num("admin-port") ?? (serve ? undefined : 0),
      adminRoutes,
      onLog: (e) => {
        if (e.level === "critical" || e.level === "error") console.error(`[envoy] ${e.line}`);
      },
    });
  } catch (e) {
    console.error(`the proxy did not start: ${(e as Error).message}`);
    await stop();
    return 1;
  }
  const cfg = JSON.parse(proxy.bootstrap.listener.hcm.wasm?.configuration ?? "{}") as Record<string, unknown>;
  const metricsPath = String(cfg.metrics_path ?? "/websocket/metrics");
  console.log(
    fake
      ? "ws-governor demo — FAKE FILTER (TypeScript stand-in, harness check only; not the product)"
      : "ws-governor demo (emulated Envoy: loopback proxy + proxy-wasm host emulator, not a real Envoy)",
  );
  console.log(`  pods:       ${pods.map((p) => `${p.name}@127.0.0.1:${p.port}`).join(", ")}`);
  console.log(`  websocket:  ${proxy.wsUrl("/chat")}`);
  console.log(`  metrics:    ${proxy.url(metricsPath)}`);
  console.log(`  admin:      ${proxy.adminUrl("/stats")}  (also /stats/prometheus, /ready, /demo/state)`);
  pageConfig = {
    engine: fake ? "FAKE filter (harness check)" : "emulated Envoy + build/ws-governor.wasm",
    listener: `ws://127.0.0.1:${proxy.listenerPort}`,
    wsPath: "/chat",
    cap: Number(cfg.max_connections_per_pod ?? 100),
    rate_limit: cfg.rate_limit === undefined ? { requests: 50, window_seconds: 60 } : cfg.rate_limit,
    enforce: cfg.enforce !== false,
    podNames: Object.fromEntries(pods.map((p) => [`127.0.0.1:${p.port}`, p.name])),
  };
  console.log(`  demo page:  ${proxy.adminUrl("/demo")}  (live bars and rejection counters; polls /demo/state)`);
  console.log(`  limits:     max_connections_per_pod=${cfg.max_connections_per_pod}, rate_limit=${JSON.stringify(cfg.rate_limit)}`);

  if (serve) {
    console.log(seconds !== undefined ? `serving for ${seconds} s …` : "serving until Ctrl-C …");
    await new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer); // a pending --seconds timer would keep the process alive after SIGINT/SIGTERM
        resolve();
      };
      process.once("SIGINT", done);
      process.once("SIGTERM", done);
      if (seconds !== undefined) timer = setTimeout(done, seconds * 1000);
    });
    console.log("stopping");
    await stop();
    return 0;
  }

  const p = proxy;
  const rows = await runTour(
    { ws: (x) => p.wsUrl(x), http: (x) => p.url(x), admin: (x) => p.adminUrl(x) },
    (s) => console.log(s),
    Number(cfg.max_connections_per_pod ?? 3),
  );
  const metrics = await httpRequest(p.url(metricsPath)).catch((e: Error) => ({ status: 0, body: e.message }));
  rows.push({ step: `GET ${metricsPath} from 127.0.0.1`, expected: "200", got: String(metrics.status), detail: "", ok: metrics.status === 200 });
  console.log("\nSummary\n");
  console.log(table(rows));
  console.log(`\nGET ${metricsPath} → ${metrics.status}\n${metrics.body.trim()}`);
  const stats = await httpRequest(p.adminUrl("/stats?filter=" + encodeURIComponent("ws_governor\\.(upgrades_total|accepted_total|released_total|active_connections|rejected_total)|upgrades_active")));
  console.log(`\nadmin /stats (ws_governor, upgrades)\n${stats.body.trim()}`);
  const demo = p.demoState();
  console.log(`\nper pod (proxy view): ${demo.pods.map((x) => `${x.address} total=${x.totalUpgrades} active=${x.activeUpgrades}`).join(", ")}`);
  await stop();
  const failed = rows.filter((r) => !r.ok);
  if (failed.length) {
    console.log(`\n${failed.length} step(s) did not go as expected.`);
    return 1;
  }
  console.log("\nAll steps went as expected.");
  return 0;
}

process.exitCode = await main();

// ws-governor demo: three ws echo pods + the loopback proxy built from envoy/envoy.yaml with build/ws-governor.wasm.
//   node --import tsx scripts/demo.ts                       scripted tour, summary table, metrics; exit 0 if as expected
//   node --import tsx scripts/demo.ts --serve               keep running (Ctrl-C stops), print the URLs
//   node --import tsx scripts/demo.ts --serve --seconds 5   … and stop by itself after 5 s
//   node --import tsx scripts/demo.ts --config FILE         the filter runs with FILE's JSON (the plugin `configuration`
//                                                           StringValue; README "Configuration") instead of envoy.yaml's
// Options: --port N (listener; serve default 10000 from envoy.yaml, tour default any free port), --admin-port N
// (serve default 9901), --concurrency N (default 2), --fake-filter (harness check only: a TypeScript stand-in for
// host + filter, test/emulator/proxy/fake-governor.ts — not the product). Builds nothing: run `make build` first.
// A configuration the filter refuses ends the demo with its critical log line and exit 1; an unreadable FILE, exit 2.
// Live demo page: GET <admin>/demo (scripts/demo-page.html + demo-page.js: the capped pod, what just happened, a
// five-minute chart, per-pod bars, open/close buttons), polling <admin>/demo/state (proxy view), /demo/series (the
// filter's counters sampled every second, scripts/demo-series.ts) and /demo/config.
import { existsSync, readFileSync } from "node:fs";
import type http from "node:http";
import path from "node:path";
import { REPO_ROOT, startProxy, type RunningProxy } from "../test/emulator/proxy/index.ts";
import { FakeGovernorProcess } from "../test/emulator/proxy/fake-governor.ts";
import { startPods, type PodServer } from "../test/support/pods.ts";
import { httpRequest } from "../test/support/ws-client.ts";
import { allowsLoopback, effectiveConfig, podSource, readSnapshot } from "./demo-governor.ts";
import { Series, startSampling } from "./demo-series.ts";
import { runTour, table } from "./demo-tour.ts";

const args = process.argv.slice(2);
const KNOWN = new Map([["serve", false], ["fake-filter", false], ["seconds", true], ["concurrency", true], ["port", true], ["admin-port", true], ["config", true]]);
function usage(msg: string): never {
  console.error(`demo: ${msg}\nusage: scripts/demo.ts [--serve [--seconds N]] [--config FILE] [--port N] [--admin-port N] [--concurrency N] [--fake-filter]`);
  process.exit(2);
}
for (let i = 0; i < args.length; i++) {
  const takes = KNOWN.get(args[i].replace(/^--/, ""));
  if (!args[i].startsWith("--") || takes === undefined) usage(`unknown argument ${JSON.stringify(args[i])}`);
  if (takes && (i + 1 >= args.length || args[i + 1].startsWith("--"))) usage(`${args[i]} needs a value`);
  if (takes) i++;
}
const flag = (n: string) => args.includes(`--${n}`);
const str = (n: string): string | undefined => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : undefined);
const num = (n: string): number | undefined => {
  const s = str(n);
  if (s === undefined) return undefined;
  const v = Number(s);
  if (!Number.isInteger(v) || v < 0) usage(`--${n} needs a non-negative integer`);
  return v;
};

const serve = flag("serve");
const seconds = num("seconds");
const concurrency = num("concurrency") ?? 2;
const fake = flag("fake-filter");
const configFile = str("config");
const wasmPath = path.join(REPO_ROOT, "build/ws-governor.wasm");

/** --config FILE: its text, or exit 2 with a reason. */
function readConfigFile(file: string): string {
  try {
    return readFileSync(path.resolve(file), "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EISDIR" ? "a directory, not a file" : err.message;
    console.error(`demo: --config ${file}: cannot read it (${why}); give the filter's JSON configuration, e.g. {"max_connections_per_pod": 3}`);
    process.exit(2);
  }
}

async function main(): Promise<number> {
  const pluginConfiguration = configFile === undefined ? undefined : readConfigFile(configFile);
  if (!existsSync(wasmPath)) {
    console.error("build/ws-governor.wasm is missing: run `make build` first");
    return 2;
  }
  const pods: PodServer[] = await startPods(3);
  let proxy: RunningProxy | undefined;
  let sampler: { stop(): void } | undefined;
  // the live demo page on the admin server: /demo, its script, its settings and the sampled series
  let pageConfig: Record<string, unknown> = {};
  let series: Series | undefined;
  const send = (type: string, body: () => string) => (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
    res.end(body());
  };
  const file = (f: string) => () => readFileSync(path.join(REPO_ROOT, "scripts", f), "utf8");
  const adminRoutes = {
    "/demo": send("text/html; charset=utf-8", file("demo-page.html")),
    "/demo/page.js": send("text/javascript; charset=utf-8", file("demo-page.js")),
    "/demo/config": send("application/json", () => JSON.stringify(pageConfig)),
    "/demo/series": send("application/json", () => series?.json() ?? "{}"),
  };
  const stop = async () => {
    sampler?.stop();
    await proxy?.close();
    await Promise.all(pods.map((p) => p.kill()));
  };
  try {
    proxy = await startProxy({
      wasmPath,
      process: fake ? new FakeGovernorProcess("demo-pod") : undefined,
      pluginConfiguration,
      concurrency,
      clusterOverrides: { demo_pods: pods.map((p) => ({ host: "127.0.0.1", port: p.port })) },
      listenerPortOverride: num("port") ?? (serve ? undefined : 0),
      adminPortOverride: num("admin-port") ?? (serve ? undefined : 0),
      adminRoutes,
      onLog: (e) => {
        if (e.level === "critical" || e.level === "error") console.error(`[envoy][${e.level}] ${e.line}`);
      },
    });
  } catch (e) {
    const first = (e as Error).message.split("\n")[0];
    console.error(`demo: the proxy did not start: ${first}`);
    if (configFile !== undefined) console.error(`demo: the filter refused the configuration in ${configFile} (its critical log line is above)`);
    await stop();
    return 1;
  }
  const cfgText = pluginConfiguration ?? proxy.bootstrap.listener.hcm.wasm?.configuration ?? "";
  const cfg = effectiveConfig(cfgText);
  const metricsUrl = cfg.metricsPath ? proxy.url(cfg.metricsPath) : undefined;
  const podNames = Object.fromEntries(pods.map((p) => [`127.0.0.1:${p.port}`, p.name]));
  console.log(
    fake
      ? "ws-governor demo — FAKE FILTER (TypeScript stand-in, harness check only; not the product)"
      : "ws-governor demo (emulated Envoy: loopback proxy + proxy-wasm host emulator, not a real Envoy)",
  );
  if (configFile !== undefined) console.log(`  config:     ${configFile} (mode ${cfg.mode})`);
  console.log(`  pods:       ${pods.map((p) => `${p.name}@127.0.0.1:${p.port}`).join(", ")}`);
  console.log(`  websocket:  ${proxy.wsUrl("/chat")}`);
  console.log(`  metrics:    ${metricsUrl ?? "(off: metrics_path is \"\")"}`);
  console.log(`  admin:      ${proxy.adminUrl("/stats")}  (also /stats/prometheus, /ready, /demo/state)`);
  const p = proxy;
  const first = await readSnapshot(metricsUrl, p.adminUrl("/stats?filter=ws_governor")).catch(() => undefined);
  const capped = cfg.mode === "inbound" ? first?.pods[0]?.pod : undefined;
  pageConfig = {
    engine: fake ? "FAKE filter (harness check)" : "emulated Envoy + build/ws-governor.wasm",
    configFile: configFile ?? "envoy/envoy.yaml",
    listener: `ws://127.0.0.1:${p.listenerPort}`,
    wsPath: "/chat",
    mode: cfg.mode,
    podSource: podSource(cfg),
    cap: cfg.cap,
    clientCap: cfg.clientCap,
    rate_limit: cfg.rate && { requests: cfg.rate.requests, window_seconds: cfg.rate.windowSeconds, burst: cfg.rate.burst },
    enforce: cfg.enforce,
    draining: cfg.draining,
    metrics: metricsUrl ?? null,
    podNames,
  };
  console.log(`  demo page:  ${p.adminUrl("/demo")}  (the capped pod, a live chart, bars; polls /demo/state and /demo/series)`);
  console.log(`  capped pod: ${cfg.mode === "upstream" ? "each upstream pod Envoy picks (upstream mode)" : capped ? `${capped} (this sidecar's pod, from the filter's metrics endpoint)` : `not named (the filter's metrics endpoint ${metricsUrl ? "did not answer 127.0.0.1" : "is off"})`}`);
  console.log(`  limits:     max_connections_per_pod=${cfg.cap}, max_connections_per_client=${cfg.clientCap}, rate_limit=${cfg.rate ? `${cfg.rate.requests}/${cfg.rate.windowSeconds}s burst ${cfg.rate.burst}` : "off"}` +
    `${cfg.enforce ? "" : ", enforce=false (shadow)"}${cfg.draining ? ", draining" : ""}`);

  if (serve) {
    series = new Series(cfg, (pod) => (podNames[pod] ? `${podNames[pod]} (${pod})` : pod));
    sampler = startSampling(series, () => readSnapshot(metricsUrl, p.adminUrl("/stats?filter=ws_governor")));
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

  const rows = await runTour({
    urls: { ws: (x) => p.wsUrl(x), metrics: metricsUrl, admin: (x) => p.adminUrl(x) },
    config: cfg,
    pods: pods.map((x) => ({ name: x.name, address: `127.0.0.1:${x.port}` })),
    log: (s) => console.log(s),
  });
  if (metricsUrl) {
    const metrics = await httpRequest(metricsUrl).catch((e: Error) => ({ status: 0, body: e.message }));
    const want = allowsLoopback(cfg) ? "200" : "403"; // endpoint_allow decides
    rows.push({ step: `GET ${cfg.metricsPath} from 127.0.0.1`, expected: want, got: String(metrics.status), detail: "", ok: String(metrics.status) === want });
    const keep = metrics.body.split("\n").filter((l) => /^(# TYPE )?(websocket_|ws_governor_(upgrades|accepted|rejected|released|active))/.test(l));
    console.log(`\nGET ${cfg.metricsPath} → ${metrics.status} (the per-pod lines and the admission counters)\n${keep.join("\n")}`);
  }
  console.log("\nSummary\n");
  console.log(table(rows));
  const demo = p.demoState();
  console.log(`\nupstream echo pods (proxy view, not what is capped in inbound mode): ${demo.pods.map((x) => `${podNames[x.address] ?? x.address} total=${x.totalUpgrades} active=${x.activeUpgrades}`).join(", ")}`);
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

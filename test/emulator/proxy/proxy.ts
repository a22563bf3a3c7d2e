// The loopback proxy: an Envoy-like HTTP/1.1 proxy driven by the same envoy/envoy.yaml real Envoy uses, with the
// ws-governor Wasm filter running in the proxy-wasm host emulator (test/emulator/host/). Listener and admin bind to
// 127.0.0.1 only. Downstream connections are spread over the worker VMs round robin (Envoy's listener balancing).
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type {
  EnvoyProcessApi, EnvoyVersion, LogEntry, LogLevel, PluginHandle, PluginOptions, ProcessOptions,
} from "../host/api.ts";
import { adminViews, createAdminServer, type DemoState, type EndpointState } from "./admin.ts";
import { readBootstrap, parseBootstrapYaml, type ClusterConfig, type ProxyBootstrap, type SocketAddress } from "./bootstrap.ts";
import { LoadBalancers } from "./lb.ts";
import { matchRoute } from "./routing.ts";
import { createListener, defaultLocalIp, type NetworkView } from "./listener.ts";
import { ProxyStats } from "./stats.ts";
import { ProxyStream, type StreamEnv } from "./stream.ts";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const DEFAULT_CONFIG_PATH = path.join(REPO_ROOT, "envoy/envoy.yaml");

export type { DemoState, EndpointState } from "./admin.ts";

export interface ProxyOptions {
  /** envoy bootstrap file (default envoy/envoy.yaml) … */
  configPath?: string;
  /** … or its content: YAML text or an already parsed object */
  config?: string | object;
  /** module to load instead of vm_config.code.local.filename (default: /etc/envoy/<f>.wasm → build/<f>.wasm; a
   *  relative filename is resolved against the working directory, as Envoy does) */
  wasmPath?: string;
  /** replaces the plugin configuration StringValue from the bootstrap */
  pluginConfiguration?: string;
  concurrency?: number;                 // worker VMs, default 2
  envoyVersion?: EnvoyVersion;          // default "1.36"
  clusterOverrides?: Record<string, Array<{ host: string; port: number }>>;
  listenerPortOverride?: number;        // 0 = any free port
  adminPortOverride?: number;           // 0 = any free port
  /** "wasm" (default) runs the filter; "passthrough" skips it (proxy self-tests without the host emulator) */
  filter?: "wasm" | "passthrough";
  /** test hook: use this plugin (and optional process) instead of loading the host emulator */
  plugin?: PluginHandle;
  process?: EnvoyProcessApi;
  logLevel?: LogLevel;
  onLog?: (e: LogEntry) => void;
  /** Envoy's local_info address, appended to x-forwarded-for for a loopback peer when use_remote_address is set
   *  (§13.2); default: the host's first non-loopback IPv4 address, else 127.0.0.1 */
  localAddress?: string;
  /** test hook: the peer/local addresses Envoy would see for a loopback peer IP (listener.ts NetworkView) */
  networkView?: NetworkView;
  /** LEAST_REQUEST sampling: an unsigned integer per call, as Envoy's random() (default Math.random based) */
  lbRandom?: () => number;
  /** extra admin routes, e.g. a demo page: path → handler */
  adminRoutes?: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => void>;
}

export interface RunningProxy {
  readonly listenerPort: number;
  readonly adminPort: number;
  readonly bootstrap: ProxyBootstrap;
  readonly host?: EnvoyProcessApi;
  readonly plugin?: PluginHandle;
  url(p?: string): string;
  wsUrl(p?: string): string;
  adminUrl(p?: string): string;
  /** merged /stats view (host wasm stats + proxy stats) */
  statsText(): string;
  statsPrometheus(): string;
  stat(name: string): number | undefined;
  endpoints(): EndpointState[];
  demoState(): DemoState;
  /** §13.4: step the emulated Envoy's wall clock by ms (negative = backward); ticks stay monotonic. Also reachable
   *  from another process as admin POST /emulator/wall_clock?step_ms=<ms> (a test hook; real Envoy has none). */
  stepWallClock(ms: number): void;
  /** stops everything; rejects with HostDefectError (after the shutdown) if the module had a §13.1 defect */
  close(): Promise<void>;
  /** test hook (fleet drills): the process is killed. The host stops first (no timer fires, no HTTP call is answered
   *  or sent), then every downstream and upstream socket is destroyed with no filter callback (no on_done: nothing is
   *  released, no etcd lease revoked), the listener and admin stop. Rejects like close() on a recorded defect. */
  crash(): Promise<void>;
}

export class ProxyStartError extends Error {}

/** Resolve the module file the same way for every caller (documented in envoy/README.md). */
export function resolveWasmPath(filename: string, override?: string): string {
  if (override) return override;
  if (filename.startsWith("/etc/envoy/")) return path.join(REPO_ROOT, "build", path.basename(filename));
  return path.resolve(process.cwd(), filename); // Envoy opens a relative filename against its working directory
}

function loadBootstrap(opts: ProxyOptions): ProxyBootstrap {
  if (opts.config !== undefined) {
    return typeof opts.config === "string" ? parseBootstrapYaml(opts.config) : readBootstrap(opts.config);
  }
  return parseBootstrapYaml(readFileSync(opts.configPath ?? DEFAULT_CONFIG_PATH, "utf8"));
}

type HostModule = { EnvoyProcess: new (o: ProcessOptions) => EnvoyProcessApi };

async function loadHostModule(): Promise<HostModule> {
  const spec = "../host/index.ts"; // resolved at run time: the host is developed separately
  try {
    const mod = (await import(spec)) as Partial<HostModule>;
    if (typeof mod.EnvoyProcess !== "function") throw new Error("test/emulator/host/index.ts does not export EnvoyProcess");
    return mod as HostModule;
  } catch (e) {
    throw new ProxyStartError(`cannot load the proxy-wasm host emulator (test/emulator/host/index.ts): ${(e as Error).message}`);
  }
}

export async function startProxy(opts: ProxyOptions = {}): Promise<RunningProxy> {
  const bs = loadBootstrap(opts);
  for (const [name, eps] of Object.entries(opts.clusterOverrides ?? {})) {
    const c = bs.clusters.get(name);
    if (!c) throw new ProxyStartError(`clusterOverrides: unknown cluster ${name}`);
    const bad = c.type === "STATIC" ? eps.find((e) => !net.isIP(e.host)) : undefined;
    if (bad) throw new ProxyStartError(`clusterOverrides: ${name} is a STATIC cluster, ${bad.host} is not an IP address`);
    c.endpoints = eps.map((e) => ({ address: e.host, port: e.port }));
  }
  const hcm = bs.listener.hcm;
  const concurrency = opts.concurrency ?? 2;

  // ---- the Wasm filter
  let host: EnvoyProcessApi | undefined = opts.process;
  let plugin: PluginHandle | undefined = opts.plugin;
  const logs: LogEntry[] = [];
  if (!plugin && hcm.wasm && (opts.filter ?? "wasm") === "wasm") {
    const w = hcm.wasm;
    const file = resolveWasmPath(w.filename, opts.wasmPath);
    let wasm: Uint8Array;
    try {
      wasm = readFileSync(file);
    } catch (e) {
      throw new ProxyStartError(`Wasm module ${w.filename} (read from ${file}): ${(e as Error).message}`);
    }
    if (!host) {
      const { EnvoyProcess } = await loadHostModule();
      host = new EnvoyProcess({
        envoyVersion: opts.envoyVersion ?? "1.36",
        concurrency,
        node: bs.node,
        statsTags: bs.statsTags,
        useAllDefaultTags: bs.useAllDefaultTags,
        virtualTime: false,
        logLevel: opts.logLevel ?? "info",
        onLog: (e) => {
          logs.push(e);
          if (logs.length > 1000) logs.shift();
          opts.onLog?.(e);
        },
      });
    }
    registerClusters(host, bs);
    const p: PluginOptions = {
      wasm,
      name: w.name,
      rootId: w.rootId,
      vmId: w.vmId,
      runtime: w.runtime,
      configuration: opts.pluginConfiguration ?? w.configuration,
      vmConfiguration: w.vmConfiguration,
      failurePolicy: w.failurePolicy,
      failOpen: w.failOpen,
      reloadBackoffMs: w.reloadBackoffMs,
      allowOnHeadersStopIteration: w.allowOnHeadersStopIteration,
      environment: w.environment,
    };
    try {
      plugin = host.addPlugin(p);
    } catch (e) {
      host.close();
      const logLines = (host.logs ?? logs).filter((l) => ["warn", "error", "critical"].includes(l.level)).map((l) => `  ${l.line}`);
      throw new ProxyStartError(
        `Wasm filter ${w.name} rejected at load: ${(e as Error).message}` + (logLines.length ? `\n${logLines.join("\n")}` : ""),
        { cause: e },
      );
    }
  }

  // a host passed in by the caller (with its plugin already added) learns the clusters now
  if (host && opts.process) registerClusters(host, bs);

  // ---- proxy stats
  const stats = new ProxyStats();
  const sp = hcm.statPrefix;
  for (const n of ["downstream_cx_total", "downstream_rq_total", "downstream_cx_upgrades_total"]) stats.define(`http.${sp}.${n}`, "counter");
  for (const n of ["downstream_cx_active", "downstream_cx_upgrades_active"]) stats.define(`http.${sp}.${n}`, "gauge");
  for (const c of bs.clusters.values()) {
    stats.define(`cluster.${c.name}.upstream_rq_total`, "counter");
    stats.define(`cluster.${c.name}.upstream_cx_connect_fail`, "counter");
  }

  // ---- routing and load balancing
  const lbs = new LoadBalancers(opts.lbRandom);
  const endpointState = new Map<string, EndpointState>();
  for (const c of bs.clusters.values()) {
    for (const e of c.endpoints) {
      const key = `${e.address}:${e.port}`;
      endpointState.set(key, { cluster: c.name, address: key, activeUpgrades: 0, totalUpgrades: 0 });
    }
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const streams = new Set<ProxyStream>();
  let connectionIds = 0;
  const env: StreamEnv = {
    stats,
    statPrefix: sp,
    hcm,
    agent,
    route: (h) => matchRoute(bs, h),
    cluster: (n) => bs.clusters.get(n),
    pickEndpoint: (c: ClusterConfig): SocketAddress | undefined => lbs.pick(c),
    requestActive: (key, delta) => lbs.requestActive(key, delta),
    upgradeActive: (key, delta) => {
      const e = endpointState.get(key);
      if (!e) return;
      e.activeUpgrades = Math.max(0, e.activeUpgrades + delta);
      if (delta > 0) e.totalUpgrades += delta;
    },
    forget: (s) => streams.delete(s),
    nextConnectionId: () => ++connectionIds,
  };

  // ---- listener (codec limits, HCM header mutation, TLS): listener.ts
  const { server, openSockets } = createListener({
    bs, env, stats, concurrency, plugin, streams,
    localIp: opts.localAddress ?? defaultLocalIp(),
    networkView: opts.networkView,
    minor: Number((opts.envoyVersion ?? "1.36").split(".")[1]),
  });

  const listenPort = opts.listenerPortOverride ?? bs.listener.address.port;
  await listen(server, listenPort, "listener");

  // ---- admin
  const views = adminViews({ host, stats, statPrefix: sp, endpointState, listenerPort: () => port(server) });
  const stepWallClock = (ms: number): void => {
    if (!host?.stepWallClock) throw new Error("the host of this proxy has no wall clock to step");
    host.stepWallClock(ms);
  };
  const { statsText, statsPrometheus, demoState } = views;
  let closing: Promise<void> | undefined;
  const admin = createAdminServer({
    views,
    concurrency,
    customRoute: (p) => opts.adminRoutes?.[p],
    stepWallClock: host?.stepWallClock ? stepWallClock : undefined,
    draining: () => closing !== undefined,
    // a module defect (§13.1) makes close() reject; the admin caller has already had its 200, so report it here
    quit: () => void proxy.close().catch((e: Error) => console.error(`loopback proxy: ${e.message}`)),
  });
  const adminPort = opts.adminPortOverride ?? bs.admin?.port ?? 0;
  try {
    await listen(admin, adminPort, "admin");
  } catch (e) {
    server.close();
    host?.close();
    throw e;
  }

  const listenerPort = port(server);
  const aPort = port(admin);
  const proxy: RunningProxy = {
    listenerPort,
    adminPort: aPort,
    bootstrap: bs,
    host,
    plugin,
    url: (p = "/") => `http://127.0.0.1:${listenerPort}${p}`,
    wsUrl: (p = "/") => `ws://127.0.0.1:${listenerPort}${p}`,
    adminUrl: (p = "/") => `http://127.0.0.1:${aPort}${p}`,
    statsText,
    statsPrometheus,
    stat: (name) => stats.get(name) ?? host?.stats.get(name),
    endpoints: () => [...endpointState.values()].map((e) => ({ ...e, activeRequests: lbs.activeRequests(e.address) })),
    demoState,
    stepWallClock,
    close: () => {
      closing ??= (async () => {
        for (const st of [...streams]) st.abort();
        for (const s of openSockets) s.destroy();
        agent.destroy();
        await Promise.all([closeServer(server), closeServer(admin)]);
        host?.close();
      })();
      return closing;
    },
    crash: () => {
      closing ??= (async () => {
        let defect: unknown;
        try {
          host?.close(); // timers and HTTP calls stop before the defect check can throw
        } catch (e) {
          defect = e;
        }
        for (const st of [...streams]) st.kill();
        for (const s of openSockets) s.destroy();
        agent.destroy();
        await Promise.all([closeServer(server), closeServer(admin)]);
        if (defect) throw defect;
      })();
      return closing;
    },
  };
  return proxy;
}

/** proxy_http_call names Envoy clusters: the bootstrap's static_resources.clusters, clusterOverrides applied. Envoy
 *  initializes static clusters before the listeners' filters, so this runs before the plugin is added. */
function registerClusters(host: EnvoyProcessApi, bs: ProxyBootstrap): void {
  for (const c of bs.clusters.values()) {
    host.setCluster?.(c.name, { endpoints: c.endpoints.map((e) => ({ host: e.address, port: e.port })), connectTimeoutMs: c.connectTimeoutMs });
  }
}

function listen(server: http.Server, p: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error) => reject(new ProxyStartError(`${what}: cannot listen on 127.0.0.1:${p}: ${e.message}`));
    server.once("error", onErr);
    server.listen(p, "127.0.0.1", () => {
      server.off("error", onErr);
      resolve();
    });
  });
}

function port(server: http.Server): number {
  const a = server.address();
  return typeof a === "object" && a ? a.port : 0;
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

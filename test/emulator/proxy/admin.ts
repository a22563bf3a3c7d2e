// Admin side of the loopback proxy: the merged /stats views, the demo state and the admin HTTP server (127.0.0.1).
import http from "node:http";
import type { EnvoyProcessApi } from "../host/api.ts";
import { parseStatsText, type ProxyStats } from "./stats.ts";

export interface EndpointState {
  cluster: string;
  address: string;       // "host:port"
  activeUpgrades: number;
  totalUpgrades: number;
  /** host rq_active (what LEAST_REQUEST compares); filled in by RunningProxy.endpoints() */
  activeRequests?: number;
}

export interface DemoState {
  time: string;
  listener: string;
  pods: EndpointState[];
  governor: {
    activeConnections?: number;
    upgrades?: number;
    accepted?: number;
    released?: number;
    rejected: Record<string, number>;
    shadowRejected: Record<string, number>;
  };
  proxy: { upgradesActive: number; upgradesTotal: number };
}

/** What the admin views read from the running proxy. */
export interface AdminSources {
  readonly host: EnvoyProcessApi | undefined;
  readonly stats: ProxyStats;
  readonly statPrefix: string;
  readonly endpointState: ReadonlyMap<string, EndpointState>;
  listenerPort(): number;
}

export interface AdminViews {
  /** merged /stats view (host wasm stats + proxy stats) */
  statsText(): string;
  statsPrometheus(): string;
  demoState(): DemoState;
}

export function adminViews(src: AdminSources): AdminViews {
  const { host, stats, statPrefix: sp, endpointState } = src;
  const statsText = (): string => {
    const lines = [...(host ? host.stats.renderText().split("\n") : []), ...stats.textLines()].filter((l) => l.trim() !== "");
    return lines.sort().join("\n") + "\n";
  };
  const statsPrometheus = (): string => (host ? host.stats.renderPrometheus() : "") + stats.renderPrometheus();
  const demoState = (): DemoState => {
    const m = parseStatsText(statsText());
    const byTag = (prefix: string) => {
      const out: Record<string, number> = {};
      for (const [k, v] of m) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
      return out;
    };
    return {
      time: new Date().toISOString(),
      listener: `ws://127.0.0.1:${src.listenerPort()}`,
      pods: [...endpointState.values()].map((e) => ({ ...e })),
      governor: {
        activeConnections: m.get("wasmcustom.ws_governor.active_connections"),
        upgrades: m.get("wasmcustom.ws_governor.upgrades_total"),
        accepted: m.get("wasmcustom.ws_governor.accepted_total"),
        released: m.get("wasmcustom.ws_governor.released_total"),
        rejected: byTag("wasmcustom.ws_governor.rejected_total.reason."),
        shadowRejected: byTag("wasmcustom.ws_governor.shadow_rejected_total.reason."),
      },
      proxy: {
        upgradesActive: stats.get(`http.${sp}.downstream_cx_upgrades_active`) ?? 0,
        upgradesTotal: stats.get(`http.${sp}.downstream_cx_upgrades_total`) ?? 0,
      },
    };
  };
  return { statsText, statsPrometheus, demoState };
}

export interface AdminServerOptions {
  readonly views: AdminViews;
  readonly concurrency: number;
  /** extra admin routes (ProxyOptions.adminRoutes), looked up per request */
  customRoute(path: string): ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;
  /** true once close() has started: /ready and /server_info report DRAINING */
  draining(): boolean;
  /** POST /quitquitquit: close the proxy */
  quit(): void;
  /** test hook POST /emulator/wall_clock?step_ms=<ms> (§13.4); undefined when the host has no wall clock */
  stepWallClock?: (ms: number) => void;
}

export function createAdminServer(o: AdminServerOptions): http.Server {
  const { statsText, statsPrometheus, demoState } = o.views;
  const concurrency = o.concurrency;
  return http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://admin");
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-cache, max-age=0" });
      res.end(body);
    };
    const custom = o.customRoute(u.pathname);
    if (custom) return custom(req, res);
    switch (u.pathname) {
      case "/ready":
        return send(o.draining() ? 503 : 200, "text/plain; charset=UTF-8", o.draining() ? "DRAINING\n" : "LIVE\n");
      case "/stats": {
        if (u.searchParams.has("format") && u.searchParams.get("format") === "prometheus") return send(200, "text/plain; charset=UTF-8", statsPrometheus());
        const filter = u.searchParams.get("filter");
        let text = statsText();
        if (filter) {
          let re: RegExp;
          try {
            re = new RegExp(filter);
          } catch {
            return send(400, "text/plain", "Invalid re2 regex\n");
          }
          text = text.split("\n").filter((l) => l && re.test(l.slice(0, l.lastIndexOf(":")))).join("\n") + "\n";
        }
        return send(200, "text/plain; charset=UTF-8", text);
      }
      case "/stats/prometheus":
        return send(200, "text/plain; version=0.0.4; charset=UTF-8", statsPrometheus());
      case "/demo/state":
        return send(200, "application/json", JSON.stringify(demoState(), null, 2));
      case "/server_info":
        return send(200, "application/json", JSON.stringify({ state: o.draining() ? "DRAINING" : "LIVE", command_line_options: { concurrency } }));
      case "/emulator/wall_clock": {
        if (req.method !== "POST") return send(405, "text/plain", "This endpoint requires POST\n");
        const ms = Number(u.searchParams.get("step_ms"));
        if (!o.stepWallClock) return send(404, "text/plain", "no emulated wall clock\n");
        if (!Number.isFinite(ms)) return send(400, "text/plain", "step_ms must be a number of milliseconds\n");
        o.stepWallClock(ms);
        return send(200, "text/plain", "OK\n");
      }
      case "/quitquitquit":
        if (req.method !== "POST") return send(405, "text/plain", "This endpoint requires POST\n");
        send(200, "text/plain", "OK\n");
        o.quit();
        return;
      default:
        return send(404, "text/plain", "invalid path. admin commands are: /ready /stats /stats/prometheus /demo/state /server_info /quitquitquit\n");
    }
  });
}

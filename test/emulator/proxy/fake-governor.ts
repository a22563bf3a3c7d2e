// A TypeScript stand-in for the ws-governor filter + host (NOT the product): enough of docs/contracts.md to check
// the e2e harness, the proxy and the demo end to end before the real host emulator and filter exist. Used only by
// the `fake` e2e target (E2E_TARGETS=fake). One process-wide state, like shared data; no CAS, no VMs.
import type {
  DownstreamConnection, EnvoyProcessApi, FilterStream, HeaderList, LocalReply, PluginHandle, PluginOptions, SharedDataView,
  StatsView, StepResult, StreamEvents,
} from "../host/api.ts";
import { PluginLoadError } from "../host/api.ts";

const KEYS = new Set([
  "mode", "pod_name", "key_prefix", "enforce", "failure_mode", "cas_max_attempts", "max_connections_per_pod",
  "max_connections_per_client", "client_key", "client_buckets", "rate_limit", "max_pods", "tick_ms", "lease_ticks",
  "metrics_path", "health_path", "endpoint_allow", "draining", "frames",
]);

interface Cfg {
  enforce: boolean;
  perPod: number;
  perClient: number;
  rate?: { requests: number; window: number; burst: number };
  metricsPath: string;
  healthPath: string;
}

const G = "ws_governor.";

export class FakeGovernorProcess implements EnvoyProcessApi {
  private counters = new Map<string, number>();
  logs = [];
  sharedData: SharedDataView = { get: () => undefined, keys: () => [] };
  constructor(private readonly podName: string) {}

  readonly stats: StatsView = {
    get: (n) => this.counters.get(n),
    samples: () => undefined,
    renderText: () => [...this.counters].map(([k, v]) => `${k}: ${v}`).sort().join("\n") + "\n",
    renderPrometheus: () => {
      const out: string[] = [];
      for (const [k, v] of [...this.counters].sort()) {
        const m = /^wasmcustom\.(ws_governor\.\w+)(?:\.(reason|decision|direction|kind|code)\.(\w+))?$/.exec(k);
        if (!m) continue;
        out.push(`${m[1].replace(/\./g, "_")}${m[2] ? `{${m[2]}="${m[3]}"}` : ""} ${v}`);
      }
      return out.join("\n") + "\n";
    },
  };

  add(name: string, d = 1): void {
    this.counters.set(`wasmcustom.${G}${name}`, (this.counters.get(`wasmcustom.${G}${name}`) ?? 0) + d);
  }

  addPlugin(p: PluginOptions): PluginHandle {
    const raw = typeof p.configuration === "string" ? p.configuration : new TextDecoder().decode(p.configuration ?? new Uint8Array());
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(raw || "{}");
    } catch {
      throw new PluginLoadError("Unable to create Wasm HTTP filter ws_governor: ws_governor: invalid configuration: (root): not JSON");
    }
    for (const k of Object.keys(j)) {
      if (!KEYS.has(k)) throw new PluginLoadError(`Unable to create Wasm HTTP filter ws_governor: ws_governor: invalid configuration: ${k}: unknown key`);
    }
    const rl = j.rate_limit === undefined ? { requests: 50, window_seconds: 60 } : (j.rate_limit as Record<string, number> | null);
    const cfg: Cfg = {
      enforce: j.enforce !== false,
      perPod: Number(j.max_connections_per_pod ?? 100),
      perClient: Number(j.max_connections_per_client ?? 0),
      rate: rl ? { requests: rl.requests, window: rl.window_seconds, burst: rl.burst ?? rl.requests } : undefined,
      metricsPath: String(j.metrics_path ?? "/websocket/metrics"),
      healthPath: String(j.health_path ?? "/websocket/health"),
    };
    for (const n of ["upgrades_total", "accepted_total", "released_total"]) this.add(n, 0);
    for (const r of ["rate_limited", "pod_full", "client_full"]) {
      this.add(`rejected_total.reason.${r}`, 0);
      this.add(`shadow_rejected_total.reason.${r}`, 0);
    }
    this.counters.set(`wasmcustom.${G}active_connections`, 0);
    return new FakeGovernorPlugin(this, cfg, this.podName);
  }

  advance(): void {}
  close(): void {}
}

class FakeGovernorPlugin implements PluginHandle {
  readonly name = "ws_governor";
  readonly workers = 2;
  active = 0;
  perClient = new Map<string, number>();
  tat = 0; // GCRA theoretical arrival time, ms
  rateLimited = 0;
  rejected = 0;
  constructor(readonly proc: FakeGovernorProcess, readonly cfg: Cfg, readonly pod: string) {}
  newStream(worker: number, conn: DownstreamConnection): FilterStream {
    return new FakeGovernorStream(this, worker, conn);
  }
  vmFailed(): boolean {
    return false;
  }
  trapOnNextHostCall(): void {}
  hostCalls() {
    return { get: () => 0, all: () => ({}), reset: () => {} };
  }
  memoryBytes(): number {
    return 0;
  }
  remove(): void {}
  setActive(n: number): void {
    this.active = n;
    this.proc.stats.get(""); // no-op, keeps the interface honest
    (this.proc as unknown as { counters: Map<string, number> }).counters.set(`wasmcustom.${G}active_connections`, n);
  }
}

let ids = 2;

class FakeGovernorStream implements FilterStream {
  readonly contextId = ids++;
  events: StreamEvents = {};
  ended = false;
  private admitted = false;
  private client = "";
  constructor(private readonly p: FakeGovernorPlugin, readonly worker: number, readonly conn: DownstreamConnection) {}
  setUpstream(): void {}
  setRoute(): void {}

  private reply(status: number, body: string, details: string, extra: HeaderList = []): StepResult {
    this.ended = true;
    const reply: LocalReply = {
      status,
      headers: [[":status", String(status)], ...extra, ["content-length", String(Buffer.byteLength(body))], ["content-type", "text/plain"]],
      body: Buffer.from(body),
      details,
    };
    return { kind: "localReply", reply };
  }

  decodeHeaders(h: HeaderList): StepResult {
    const get = (n: string) => h.find(([k]) => k === n)?.[1];
    const path = (get(":path") ?? "/").split("?")[0];
    const c = this.p.cfg;
    if (path === c.metricsPath) {
      const body = [
        `websocket_connections_active_total{pod="${this.p.pod}"} ${this.p.active}`,
        `websocket_connections_rejected_total{pod="${this.p.pod}"} ${this.p.rejected}`,
        `websocket_connection_rate_limited_total ${this.p.rateLimited}`,
      ].join("\n") + "\n";
      return this.reply(200, body, "ws_governor_metrics", [["content-type", "text/plain; version=0.0.4"]]);
    }
    const upgrade = (get("upgrade") ?? "").toLowerCase() === "websocket";
    if (!upgrade) return { kind: "continue" };
    this.p.proc.add("upgrades_total");
    const shadow = (reason: string) => this.p.proc.add(`shadow_rejected_total.reason.${reason}`);
    if (c.rate) {
      const now = Date.now();
      const interval = (c.rate.window * 1000) / c.rate.requests;
      const tat = Math.max(this.p.tat, now);
      if (tat - now > interval * (c.rate.burst - 1)) {
        if (c.enforce) {
          this.p.proc.add("rejected_total.reason.rate_limited");
          this.p.rateLimited++;
          const retry = Math.max(1, Math.ceil((tat - now - interval * (c.rate.burst - 1)) / 1000));
          return this.reply(429, "rate limited\n", "ws_governor_rate_limited", [
            ["retry-after", String(retry)],
            ["ratelimit-limit", String(c.rate.requests)],
            ["ratelimit-remaining", "0"],
            ["ratelimit-reset", String(retry)],
          ]);
        }
        shadow("rate_limited");
      } else this.p.tat = tat + interval;
    }
    if (c.perPod > 0 && this.p.active >= c.perPod) {
      if (c.enforce) {
        this.p.proc.add("rejected_total.reason.pod_full");
        this.p.rejected++;
        return this.reply(503, "pod full\n", "ws_governor_pod_full");
      }
      shadow("pod_full");
    }
    this.client = this.conn.sourceAddress.replace(/:\d+$/, "");
    const mine = this.p.perClient.get(this.client) ?? 0;
    if (c.perClient > 0 && mine >= c.perClient) {
      if (c.enforce) {
        this.p.proc.add("rejected_total.reason.client_full");
        return this.reply(429, "client limit\n", "ws_governor_client_limit", [["retry-after", "1"]]);
      }
      shadow("client_full");
    }
    this.admitted = true;
    this.p.setActive(this.p.active + 1);
    this.p.perClient.set(this.client, mine + 1);
    this.p.proc.add("accepted_total");
    return { kind: "continue" };
  }
  decodeData(): StepResult {
    return { kind: "continue" };
  }
  encodeHeaders(): StepResult {
    return { kind: "continue" };
  }
  encodeData(): StepResult {
    return { kind: "continue" };
  }
  private release(): void {
    this.ended = true;
    if (!this.admitted) return;
    this.admitted = false;
    this.p.setActive(this.p.active - 1);
    this.p.perClient.set(this.client, (this.p.perClient.get(this.client) ?? 1) - 1);
    this.p.proc.add("released_total");
  }
  complete(): void {
    this.release();
  }
  reset(): void {
    this.release();
  }
}

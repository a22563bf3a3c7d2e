// What the demo knows about the running filter: its effective configuration (the JSON it was given, with the
// defaults of README "Configuration"), snapshots of its counters read from the filter's own metrics endpoint (per-pod
// gauges from shared data: the only place that names the pod actually capped) or, when that endpoint is off, from
// admin /stats, and the one-line explanations the tour and the live page print.
import { parseStatsText } from "../test/emulator/proxy/stats.ts";
import { httpRequest } from "../test/support/ws-client.ts";

export const REASONS = ["pod_full", "rate_limited", "client_full", "draining", "contention"] as const;
export const STATUS: Record<string, number> = { pod_full: 503, draining: 503, contention: 503, rate_limited: 429, client_full: 429 };

export interface Effective {
  mode: "inbound" | "upstream";
  podName: string;             // configured pod_name ("" = from node metadata)
  cap: number;                 // max_connections_per_pod, 0 = no cap
  clientCap: number;           // max_connections_per_client, 0 = off
  rate: { requests: number; windowSeconds: number; burst: number } | null;
  enforce: boolean;
  draining: boolean;
  metricsPath: string;         // "" = off
  endpointAllow: string[];     // addresses or CIDRs allowed to read the metrics endpoint
  tickMs: number;              // tick_ms: the filter hands its counters and active gauge to Envoy on its tick
}

/** The configuration the filter runs with; call only with JSON the filter accepted ("" = every default). */
export function effectiveConfig(text: string): Effective {
  const c = (text.trim() === "" ? {} : JSON.parse(text)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const rl = c.rate_limit === undefined ? { requests: 50, window_seconds: 60 } : c.rate_limit;
  return {
    mode: c.mode === "upstream" ? "upstream" : "inbound",
    podName: typeof c.pod_name === "string" ? c.pod_name : "",
    cap: c.max_connections_per_pod ?? 100,
    clientCap: c.max_connections_per_client ?? 0,
    rate: rl === null ? null : { requests: rl.requests ?? 50, windowSeconds: rl.window_seconds ?? 60, burst: rl.burst ?? rl.requests ?? 50 },
    enforce: c.enforce !== false,
    draining: c.draining === true,
    metricsPath: c.metrics_path ?? "/websocket/metrics",
    endpointAllow: c.endpoint_allow ?? ["127.0.0.0/8", "::1/128"],
    tickMs: c.tick_ms ?? 1000,
  };
}

/** Does endpoint_allow let 127.0.0.1 (where the demo reads from) read the metrics endpoint? */
export function allowsLoopback(e: Effective): boolean {
  const ip = (a: string) => a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
  return e.endpointAllow.some((entry) => {
    const [addr, bits = "32"] = entry.split("/");
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(addr)) return false;
    const n = Number(bits);
    const span = 2 ** (32 - n);
    return Math.floor(ip(addr) / span) === Math.floor(ip("127.0.0.1") / span);
  });
}

/** Where the capped pod's name comes from, in one phrase. */
export function podSource(e: Effective): string {
  if (e.mode === "upstream") return "upstream mode: each pod Envoy picks is capped on its own, named by its address (upstream.address)";
  return e.podName
    ? `inbound mode: the sidecar caps the pod it fronts, named by pod_name in the configuration`
    : "inbound mode: the sidecar caps the pod it fronts, named from node metadata NAME (envoy.yaml node.metadata)";
}

export interface PodCount { pod: string; active: number; rejected: number }

export interface Snapshot {
  t: number;
  source: "metrics" | "admin";
  active: number;
  upgrades: number;
  accepted: number;
  released: number;
  rejected: Record<string, number>;
  shadow: Record<string, number>;
  /** per pod, from the filter's metrics endpoint (websocket_connections_*{pod}); empty when it is off */
  pods: PodCount[];
}

const LINE = /^([A-Za-z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/;

/** Prometheus text → name → [labels, value] rows. */
export function parsePrometheus(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const rows = [];
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m || line.startsWith("#")) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    rows.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return rows;
}

export function snapshotFromMetrics(text: string, t = Date.now()): Snapshot {
  const s: Snapshot = { t, source: "metrics", active: 0, upgrades: 0, accepted: 0, released: 0, rejected: {}, shadow: {}, pods: [] };
  const pods = new Map<string, PodCount>();
  const pod = (name: string) => pods.get(name) ?? pods.set(name, { pod: name, active: 0, rejected: 0 }).get(name)!;
  for (const r of parsePrometheus(text)) {
    if (r.name === "websocket_connections_active_total" && r.labels.pod !== undefined) pod(r.labels.pod).active = r.value;
    else if (r.name === "websocket_connections_rejected_total" && r.labels.pod !== undefined) pod(r.labels.pod).rejected = r.value;
    else if (r.name === "ws_governor_active_connections") s.active = r.value;
    else if (r.name === "ws_governor_upgrades_total") s.upgrades = r.value;
    else if (r.name === "ws_governor_accepted_total") s.accepted = r.value;
    else if (r.name === "ws_governor_released_total") s.released = r.value;
    else if (r.name === "ws_governor_rejected_total" && r.labels.reason) s.rejected[r.labels.reason] = r.value;
    else if (r.name === "ws_governor_shadow_rejected_total" && r.labels.reason) s.shadow[r.labels.reason] = r.value;
  }
  s.pods = [...pods.values()];
  return s;
}

export function snapshotFromAdmin(text: string, t = Date.now()): Snapshot {
  const m = parseStatsText(text);
  const G = "wasmcustom.ws_governor.";
  const tagged = (p: string) => {
    const out: Record<string, number> = {};
    for (const [k, v] of m) if (k.startsWith(G + p)) out[k.slice(G.length + p.length)] = v;
    return out;
  };
  return {
    t, source: "admin", pods: [],
    active: m.get(G + "active_connections") ?? 0,
    upgrades: m.get(G + "upgrades_total") ?? 0,
    accepted: m.get(G + "accepted_total") ?? 0,
    released: m.get(G + "released_total") ?? 0,
    rejected: tagged("rejected_total.reason."),
    shadow: tagged("shadow_rejected_total.reason."),
  };
}

/** One reading: the filter's metrics endpoint on the listener (from 127.0.0.1), else admin /stats. */
export async function readSnapshot(metricsUrl: string | undefined, adminStatsUrl: string): Promise<Snapshot> {
  if (metricsUrl) {
    const r = await httpRequest(metricsUrl, { timeoutMs: 2000 }).catch(() => undefined);
    if (r?.status === 200) return snapshotFromMetrics(r.body);
  }
  const a = await httpRequest(adminStatsUrl, { timeoutMs: 2000 });
  return snapshotFromAdmin(a.body);
}

export const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** Names a pod for people: "pod-a (127.0.0.1:18081)" for an upstream address the demo started, else the name. */
export type PodLabel = (pod: string) => string;

export function capText(e: Effective): string {
  return e.cap > 0 ? String(e.cap) : "∞";
}

// ---- one line per thing that happened (the tour and the live page print the same sentences)

export function explainAccepted(e: Effective, pod: string | undefined, active: number | undefined): string {
  const where = pod ? `: ${pod} now holds ${active ?? "?"}/${capText(e)}` : "";
  return `accepted (101)${where}`;
}

export function explainRejected(e: Effective, reason: string, pod?: string, retryAfter?: string): string {
  switch (reason) {
    case "pod_full":
      return e.mode === "upstream"
        ? `503 pod full: Envoy picked ${pod ?? "a pod"}, which already holds ${e.cap}/${e.cap} (max_connections_per_pod); refused at its 101`
        : `503 pod full: ${pod ?? "this pod"} already holds ${e.cap}/${e.cap} (max_connections_per_pod); refused before Envoy routes it`;
    case "rate_limited": {
      const r = e.rate;
      const what = r ? `more than a burst of ${r.burst} upgrades (rate_limit ${r.requests} per ${r.windowSeconds} s)` : "rate limit";
      return `429 rate: ${what}${retryAfter ? `; Retry-After: ${retryAfter} s` : ""}`;
    }
    case "client_full":
      return `429 client full: this client already holds ${e.clientCap} (max_connections_per_client)`;
    case "draining":
      return "503 draining: the configuration says draining, so new upgrades are refused";
    case "contention":
      return "503 contention: compare-and-swap retries ran out (failure_mode closed)";
    default:
      return `refused (${reason})`;
  }
}

export function explainShadow(reason: string): string {
  return `shadow: would have been ${STATUS[reason] ?? "?"} ${reason.replace("_", " ")}; admitted because enforce is false`;
}

export function explainReleased(e: Effective, pod: string | undefined, active: number | undefined): string {
  return pod ? `released: ${pod} back to ${active ?? "?"}/${capText(e)}` : `released: back to ${active ?? "?"} active`;
}

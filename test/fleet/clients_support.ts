// Helpers of test/fleet/clients.test.ts: real `ws` clients through loopback proxies (test/emulator/proxy, the fleet
// module) in front of one counting ws pod, sharing one real etcd.
//
// Ground truth for over-admission: the pod counts the WebSockets it has open, and every close of the race starts AT
// THE POD (the client sends "bye", the pod takes the socket off its count, then destroys it; the proxy sees its
// upstream go and only then ends the filter's stream, which frees the slot). An upgrade reaches the pod only after
// the filter admitted it. So every interval the pod counts lies inside an interval the filter holds a slot for, and
// the pod's count can exceed the cap only if the filters admitted more than the cap at one instant (no false alarm
// from a close that the pod learns of late).
import http from "node:http";
import type net from "node:net";
import { Worker } from "node:worker_threads";
import WebSocket, { WebSocketServer } from "ws";
import { startProxy, parseStatsText, type RunningProxy } from "../emulator/proxy/index.ts";
import { renderBootstrap } from "../e2e/targets/render.ts";
import { connectWs, waitClosed } from "../support/ws-client.ts";
import { afterTick, waitFor } from "../support/wait.ts";
import { FLEET_WASM } from "./support.ts";

/** tick_ms of these proxies: the filter hands its counters to Envoy on its tick, so a stats read that must show what
 *  just happened waits for it (statsAfterTick, or a poll) */
export const TICK_MS = 200;
export const statsAfterTick = (): Promise<void> => afterTick(TICK_MS);

export const G = "wasmcustom.ws_governor.";

// ---------------------------------------------------------------------------------------------------- the pod

export interface CountingPod {
  readonly port: number;
  /** WebSockets open at the pod now */
  open(): number;
  /** … of them, those that came through these proxies (the clients' x-test-proxy header: the proxy's ws URL) */
  openThrough(ps: RunningProxy[]): number;
  /** the largest open() seen, and how many opens found more than `cap` open (over-admissions) */
  readonly seen: { max: number; over: number; accepted: number; firstOverAt?: number };
  /** a new limit for `over` (and reset max/over): per round or drill */
  reset(cap: number): void;
  /** called on every open with the count after it (drills watch it) */
  onOpen?: (open: number) => void;
  close(): Promise<void>;
}

export async function startCountingPod(cap: number): Promise<CountingPod> {
  let open = 0;
  let limit = cap;
  const byProxy = new Map<string, number>();
  const seen = { max: 0, over: 0, accepted: 0 } as CountingPod["seen"];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => res.end("pod\n"));
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const pod: CountingPod = {
    port: 0,
    open: () => open,
    openThrough: (ps) => ps.reduce((a, p) => a + (byProxy.get(p.wsUrl("/ws")) ?? 0), 0),
    seen,
    reset: (c) => {
      limit = c;
      seen.max = open;
      seen.over = 0;
      seen.firstOverAt = undefined;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      wss.close();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
  server.on("upgrade", (req, socket, head) => {
    const via = String(req.headers["x-test-proxy"] ?? "");
    wss.handleUpgrade(req, socket, head, (ws) => {
      let counted = true;
      open++;
      byProxy.set(via, (byProxy.get(via) ?? 0) + 1);
      seen.accepted++;
      if (open > seen.max) seen.max = open;
      if (open > limit) {
        seen.over++;
        seen.firstOverAt ??= Date.now();
      }
      pod.onOpen?.(open);
      const uncount = () => {
        if (counted) { counted = false; open--; byProxy.set(via, (byProxy.get(via) ?? 0) - 1); }
      };
      ws.on("message", (data) => {
        if (data.toString() === "bye") { uncount(); ws.terminate(); } // off the count first, then gone
        else ws.send(data);
      });
      ws.on("error", () => {});
      ws.on("close", uncount); // closes the pod did not start (a crashed proxy, a client that went away)
    });
  });
  await new Promise<void>((res, rej) => {
    server.once("error", rej);
    server.listen(0, "127.0.0.1", () => res());
  });
  const a = server.address();
  (pod as { port: number }).port = typeof a === "object" && a ? a.port : 0;
  return pod;
}

// ---------------------------------------------------------------------------------------------------- proxies

export interface FleetProxyOptions {
  name: string;
  etcdPort: number;
  podPort: number;
  prefix: string;
  cap: number;
  plugin?: Record<string, unknown>;
  fleet?: Record<string, unknown>;
}

/** envoy/envoy.yaml with the fleet module's configuration, an `etcd` cluster and this replica's own node id. */
export async function startFleetProxy(o: FleetProxyOptions): Promise<RunningProxy> {
  const doc = renderBootstrap({
    pluginConfig: {
      mode: "inbound", pod_name: "pod-x", max_connections_per_pod: o.cap, rate_limit: null, tick_ms: TICK_MS, ...o.plugin,
      fleet: { cluster: "etcd", prefix: o.prefix, lease_ttl_seconds: 5, call_timeout_ms: 1000, block: 2, ...o.fleet },
    },
  }) as { node: { id: string }; static_resources: { clusters: object[] } };
  doc.node.id = `router~127.0.0.1~${o.name}.default~default.svc.cluster.local`;
  doc.static_resources.clusters.push({
    name: "etcd", type: "STATIC", connect_timeout: "1s",
    load_assignment: { cluster_name: "etcd", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 1 } } } }] }] },
  });
  return startProxy({
    config: doc, wasmPath: FLEET_WASM, concurrency: 2,
    clusterOverrides: { demo_pods: [{ host: "127.0.0.1", port: o.podPort }], etcd: [{ host: "127.0.0.1", port: o.etcdPort }] },
    listenerPortOverride: 0, adminPortOverride: 0,
    logLevel: "warn", // no info line per refusal; a trap is logged at error level whatever the level
  });
}

/** The proxy's Envoy stats as its admin endpoint serves them (GET /stats). */
export async function adminStats(p: RunningProxy): Promise<Map<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = http.get(p.adminUrl("/stats"), { agent: false, timeout: 3000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
    req.on("timeout", () => req.destroy(new Error("admin /stats timed out")));
    req.on("error", reject);
  });
  return parseStatsText(text);
}

export const FLEET_STATS = ["accepted_total", "fleet_calls_total", "fleet_call_failures_total", "fleet_waits_total",
  "fleet_unavailable_total", "fleet_open_admits_total", "fleet_lease_lost_total"];
export const REASONS = ["pod_full", "contention", "rate_limited", "client_full", "draining"];

/** Adds a proxy's filter stats (fleet counters, refusals by reason) into `into`. */
export async function addStats(into: Record<string, number>, p: RunningProxy): Promise<void> {
  const m = await adminStats(p);
  for (const n of FLEET_STATS) into[n] = (into[n] ?? 0) + (m.get(G + n) ?? 0);
  for (const r of REASONS) {
    const v = m.get(`${G}rejected_total.reason.${r}`) ?? 0;
    if (v > 0) into[`ws_governor_${r}`] = (into[`ws_governor_${r}`] ?? 0) + v;
  }
}

/** Log lines of a trap in a proxy's Wasm VMs (an abort in the module, a failed export). */
export function proxyTraps(p: RunningProxy, name: string): string[] {
  return (p.host?.logs ?? []).filter((l) => /failed: Uncaught|ws_governor: abort/.test(l.message))
    .map((l) => `${name}: ${l.message}`);
}

// ---------------------------------------------------------------------------------------------------- clients

export interface LoadCounts {
  attempts: number;
  admitted: number;
  /** refusals by HTTP status */
  refused: Record<string, number>;
  /** handshakes that failed (reset, timeout): only expected from a crashed proxy */
  errors: number;
  errorSamples: string[];
  /** the most sockets open at once as the clients see them (open event → close event) */
  clientMax: number;
  /** admitted upgrades by target ws URL */
  admitsByTarget: Record<string, number>;
}

export interface LoadOptions {
  /** the proxies a client may pick at random */
  targets: RunningProxy[];
  clients: number;
  seed: number;
  /** an admitted client keeps its socket for holdMin ≤ t < holdMax ms, then sends "bye" (the pod closes it) */
  holdMin: number;
  holdMax: number;
  /** pause after a refusal, ms (0: try again at once) */
  backoffMs?: number;
}

export interface Load {
  /** from now on clients pick among these (a drill takes a killed proxy away) */
  setTargets(ps: RunningProxy[]): void;
  /** stop starting upgrades; resolves when every client has ended its socket ("bye") and its loop */
  stop(): Promise<LoadCounts>;
}

const wsTargets = (ps: RunningProxy[]) => ps.map((p) => p.wsUrl("/ws"));

let worker: { w: Worker; failed: Promise<never> } | undefined;

/** `clients` concurrent `ws` clients in a worker thread (clients-load.mjs, one for the suite: stopWorker() ends it),
 *  so that the proxies, the pod and the etcd calls keep this thread. One load at a time. */
export function startLoad(o: LoadOptions): Load {
  if (!worker) {
    const w = new Worker(new URL("./clients-load.mjs", import.meta.url), { execArgv: [] }); // plain JS: no loader hooks
    const failed = new Promise<never>((_, rej) => {
      w.on("error", rej);
      w.on("exit", (code) => rej(new Error(`the load worker exited (${code})`)));
    });
    failed.catch(() => {});
    worker = { w, failed };
  }
  const { w, failed } = worker;
  w.postMessage({ cmd: "start", ...o, targets: wsTargets(o.targets) });
  return {
    setTargets: (ps) => w.postMessage({ cmd: "targets", targets: wsTargets(ps) }),
    stop: async () => {
      const answer = new Promise<{ counts: LoadCounts }>((res) => w.once("message", res));
      w.postMessage({ cmd: "stop" });
      return (await Promise.race([answer, failed])).counts;
    },
  };
}

export async function stopWorker(): Promise<void> {
  const w = worker?.w;
  worker = undefined;
  await w?.terminate();
}

/** The refusal reason a proxy counted since `before` (its rejected_total.reason.* stats, read in process). */
function reasonSince(p: RunningProxy, before: Record<string, number>): string | undefined {
  for (const r of REASONS) if ((p.stat(`${G}rejected_total.reason.${r}`) ?? 0) > (before[r] ?? 0)) return `ws_governor_${r}`;
  return undefined;
}

function reasonCounts(p: RunningProxy): Record<string, number> {
  return Object.fromEntries(REASONS.map((r) => [r, p.stat(`${G}rejected_total.reason.${r}`) ?? 0]));
}

/** One socket at a time through `proxies` in turn, kept open, until each proxy has refused `refusals` times in a row
 *  with 503 pod_full (each refusal's detail is read from the proxy's stats). A contention refusal (etcd calls still
 *  recovering) is retried after 200 ms. Bounded: at most `maxAttempts` upgrades. */
export async function fillFleet(proxies: RunningProxy[], refusals: number, maxAttempts = 300):
    Promise<{ open: WebSocket[]; details: Record<string, number>; attempts: number }> {
  const open: WebSocket[] = [];
  const inARow = proxies.map(() => 0);
  const details: Record<string, number> = {};
  let attempts = 0;
  await statsAfterTick(); // what happened before the fill is in the stats, so a refusal's reason is this attempt's
  for (let i = 0; attempts < maxAttempts && inARow.some((n) => n < refusals); i++) {
    const k = i % proxies.length;
    if (inARow[k] >= refusals) continue;
    attempts++;
    const before = reasonCounts(proxies[k]);
    const r = await connectWs(proxies[k].wsUrl("/ws"), { timeoutMs: 8000 });
    if (r.kind === "open") {
      open.push(r.ws);
      inARow.fill(0); // the fleet's state moved: every proxy is asked again
      continue;
    }
    if (r.kind !== "rejected") throw new Error(`fill: ${r.error.message}`);
    // the refusal is counted on the proxy's tick: polled for (bounded), "?" if no reason moved
    const why = await waitFor(() => reasonSince(proxies[k], before), { timeoutMs: TICK_MS + 1000, intervalMs: 10 }).catch(() => undefined);
    const d = `${r.status} ${why ?? "?"}`;
    details[d] = (details[d] ?? 0) + 1;
    if (d === "503 ws_governor_pod_full") inARow[k]++;
    else await new Promise((res) => setTimeout(res, 200));
  }
  return { open, details, attempts };
}

/** Ends sockets from the pod side ("bye") and waits for each close (bounded). */
export async function byeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map(async (ws) => {
    const closed = waitClosed(ws, 5000).catch(() => ws.terminate());
    if (ws.readyState === WebSocket.OPEN) ws.send("bye");
    await closed;
  }));
}

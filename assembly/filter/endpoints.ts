// The filter's own endpoints: Prometheus metrics (per-pod gauges read from shared data, the Lua filter's names kept)
// and health. Both answer 403 to sources outside endpoint_allow, and to a loopback source.address on a connection that
// did not arrive at a loopback address: with use_remote_address false (Envoy's default, Istio's sidecar inbound)
// Envoy takes source.address from x-forwarded-for, so a remote client can name 127.0.0.1 there, but it cannot make
// its connection's destination.address (the socket's local address) a loopback one (envoy-host.md §13.2).
import { allowed } from "../core/cidr";
import { Mode, defaultAllow } from "../core/config";
import { renderMetrics, podSample, ACTIVE, REJECTED } from "../core/prom";
import { decodeLedger } from "../core/codec";
import { ST_OK } from "../core/store";
import { podKey, leaseKey } from "../core/ledger";
import { S, STAT_COUNT } from "../core/stats";
import { getHeader, outPtr, outLen, freeBytes, sendLocalReply, OK, MAP_REQUEST_HEADERS } from "../host/abi";
import { sourceAddress, destinationAddress } from "./keys";
import { Root } from "./root";
import { CONTINUE, STOP } from "./stream";
import { FleetStream } from "./fleet_stream"; // fleet module only: the use is under `if (FLEET)`
import { utf8Encode, utf8Is } from "../core/utf8";
import { fleetScrape } from "./fleet_view"; // fleet module only: the use is under `if (FLEET)`

const H_PATH = utf8Encode(":path");
const LOOPBACK = defaultAllow(); // 127.0.0.0/8 and ::1

export function serveEndpoint(root: Root, id: u32): u32 {
  const cfg = root.config;
  if (cfg.metricsPath.length == 0 && cfg.healthPath.length == 0) return CONTINUE;
  if (getHeader(MAP_REQUEST_HEADERS, H_PATH) != OK) return CONTINUE;
  // the path without its query, compared where the host left it (no string per request)
  let n = 0;
  while (n < outLen && load<u8>(outPtr + n) != 0x3f) n++;
  const isMetrics = cfg.metricsPath.length > 0 && utf8Is(outPtr, n, cfg.metricsPath);
  const isHealth = cfg.healthPath.length > 0 && utf8Is(outPtr, n, cfg.healthPath);
  freeBytes();
  if (!isMetrics && !isHealth) return CONTINUE;
  const src = sourceAddress();
  if (!allowed(cfg.endpointAllow, src) || (allowed(LOOPBACK, src) && !allowed(LOOPBACK, destinationAddress()))) {
    sendLocalReply(403, "ws_governor_forbidden", "forbidden\n", []);
    return STOP;
  }
  if (isHealth) { // readiness: 503 while draining, so a load balancer stops sending new upgrades here
    const st = root.store.get(leaseKey(cfg.keyPrefix));
    root.store.done();
    if (st != ST_OK) sendLocalReply(503, "ws_governor_health", "shared data unreadable\n", ["content-type", "text/plain"]);
    else if (root.isDraining()) sendLocalReply(503, "ws_governor_health", "draining\n", ["content-type", "text/plain"]);
    else sendLocalReply(200, "ws_governor_health", "ok\n", ["content-type", "text/plain"]);
    return STOP;
  }
  if (FLEET) { // + the fleet's view: the scrape waits for etcd as a stream of its own
    if (cfg.fleet !== null) {
      const s = new FleetStream(id, root);
      s.replied = true;
      fleetScrape(s, metricsText(root));
      return STOP;
    }
  }
  sendLocalReply(200, "ws_governor_metrics", metricsText(root), ["content-type", "text/plain; version=0.0.4"]);
  return STOP;
}

function metricsText(root: Root): string {
  const cfg = root.config;
  let active = "";
  let rejected = "";
  let seen = cfg.mode != Mode.Inbound;
  for (let i: u32 = 0; i < cfg.maxPods; i++) {
    if (root.store.get(podKey(cfg.keyPrefix, i32(i))) != ST_OK) { root.store.done(); continue; }
    const l = decodeLedger(root.store.valuePtr, root.store.valueLen);
    root.store.done();
    if (l === null || l.name.length == 0) continue;
    active += podSample(ACTIVE, l.name, l.total());
    rejected += podSample(REJECTED, l.name, l.rejected);
    if (l.name == root.pod) seen = true;
  }
  if (!seen) { // inbound: this sidecar's pod before its first connection
    active += podSample(ACTIVE, root.pod, 0);
    rejected += podSample(REJECTED, root.pod, 0);
  }
  const values = new Array<u64>(STAT_COUNT);
  root.metrics.flushCounters(); // this VM's counters are exact on its own page; other VMs' lag by ≤ one tick
  for (let i = 0; i < STAT_COUNT; i++) values[i] = root.metrics.value(i);
  return renderMetrics(active, rejected, values);
}

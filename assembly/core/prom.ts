// Prometheus text for the filter's metrics endpoint. Pure. Keeps the Lua filter's three names for existing
// dashboards, then the process-wide ws_governor_* counters with their tags as labels.
import { S, statKind, COUNTER, GAUGE, promStatName, promFamily } from "./stats";

export class PodLine {
  pod: string = "";
  active: u64 = 0;
  rejected: u64 = 0;
}

/** Escapes a label value (backslash, quote, newline). */
export function escapeLabel(v: string): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c == 0x5c || c == 0x22 || c == 0x0a) {
      out += v.substring(start, i);
      if (c == 0x0a) out += "\\n";
      else out += "\\" + String.fromCharCode(c);
      start = i + 1;
    }
  }
  return out + v.substring(start);
}

export function renderMetrics(pods: Array<PodLine>, values: Array<u64>): string {
  let out = "";
  out += "# TYPE websocket_connections_active_total gauge\n";
  for (let i = 0; i < pods.length; i++) {
    out += "websocket_connections_active_total{pod=\"" + escapeLabel(pods[i].pod) + "\"} " + pods[i].active.toString() + "\n";
  }
  out += "# TYPE websocket_connections_rejected_total counter\n";
  for (let i = 0; i < pods.length; i++) {
    out += "websocket_connections_rejected_total{pod=\"" + escapeLabel(pods[i].pod) + "\"} " + pods[i].rejected.toString() + "\n";
  }
  out += "# TYPE websocket_connection_rate_limited_total counter\n";
  out += "websocket_connection_rate_limited_total " + values[S.RejRate].toString() + "\n";
  let last = "";
  for (let i = 0; i < S.COUNT; i++) {
    const kind = statKind(i);
    if (kind != COUNTER && kind != GAUGE) continue; // histograms are in Envoy's own /stats/prometheus
    const fam = promFamily(i);
    if (fam != last) {
      let type = " counter\n";
      if (kind == GAUGE) type = " gauge\n";
      out += "# TYPE " + fam + type;
      last = fam;
    }
    out += promStatName(i) + " " + values[i].toString() + "\n";
  }
  return out;
}

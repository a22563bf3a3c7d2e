// Prometheus text for the filter's metrics endpoint. Pure. Keeps the Lua filter's three names for existing
// dashboards, then the process-wide ws_governor_* counters with their tags as labels.
import { S, STAT_COUNT, statKind, COUNTER, GAUGE, promStatName, promFamily } from "./stats";

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

/** One sample of a per-pod family: `<name>{pod="<pod>"} <value>` and a newline. */
export function podSample(name: string, pod: string, value: u64): string {
  return name + "{pod=\"" + escapeLabel(pod) + "\"} " + value.toString() + "\n";
}

export const ACTIVE = "websocket_connections_active_total";
export const REJECTED = "websocket_connections_rejected_total";

/** The whole page: the Lua filter's families (per-pod samples built with podSample), then every counter and gauge. */
export function renderMetrics(activeSamples: string, rejectedSamples: string, values: Array<u64>): string {
  let out = "# TYPE " + ACTIVE + " gauge\n" + activeSamples;
  out += "# TYPE " + REJECTED + " counter\n" + rejectedSamples;
  out += "# TYPE websocket_connection_rate_limited_total counter\n";
  out += "websocket_connection_rate_limited_total " + values[S.RejRate].toString() + "\n";
  let last = "";
  for (let i = 0; i < STAT_COUNT; i++) {
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

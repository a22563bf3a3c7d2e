// Reader for static_resources.clusters[]: type, connect_timeout, lb_policy (ROUND_ROBIN, LEAST_REQUEST with
// least_request_lb_config.choice_count), dns_lookup_family, typed_extension_protocol_options (HttpProtocolOptions with
// explicit HTTP/1.1 only: the loopback proxy speaks HTTP/1.1 upstream) and load_assignment.
import net from "node:net";
import { RouteReader } from "./bootstrap_route.ts";
import type { ClusterConfig, DnsLookupFamily, SocketAddress } from "./bootstrap_types.ts";

const HPO = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const T_HPO = `type.googleapis.com/${HPO}`;
const FAMILIES: DnsLookupFamily[] = ["AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED", "ALL"];

export class ClusterReader extends RouteReader {
  /** typed_extension_protocol_options: a map from extension name to Any. Only HttpProtocolOptions with
   *  explicit_http_config.http_protocol_options (HTTP/1.1, no options set) is accepted. */
  private protocolOptions(path: string, v: unknown): void {
    const m = this.obj(path, v, [HPO]);
    if (!m || m[HPO] === undefined) return;
    const p = `${path}.${HPO}`;
    const o = this.any(p, m[HPO], T_HPO, ["explicit_http_config", "use_downstream_protocol_config", "auto_config", "common_http_protocol_options"]);
    if (!o) return;
    for (const k of ["use_downstream_protocol_config", "auto_config"]) {
      if (o[k] !== undefined) this.err(`${p}.${k}`, "not modelled: the loopback proxy speaks explicit HTTP/1.1 upstream only");
    }
    if (o.common_http_protocol_options !== undefined) this.err(`${p}.common_http_protocol_options`, "field not supported by the loopback proxy");
    if (o.explicit_http_config === undefined) {
      if (o.use_downstream_protocol_config === undefined && o.auto_config === undefined) {
        this.err(p, "upstream_protocol_options is required (explicit_http_config, use_downstream_protocol_config or auto_config)");
      }
      return;
    }
    const e = this.obj(`${p}.explicit_http_config`, o.explicit_http_config, ["http_protocol_options", "http2_protocol_options", "http3_protocol_options"]);
    if (!e) return;
    for (const k of ["http2_protocol_options", "http3_protocol_options"]) {
      if (e[k] !== undefined) this.err(`${p}.explicit_http_config.${k}`, "not modelled: the loopback proxy speaks HTTP/1.1 upstream only");
    }
    const set = ["http_protocol_options", "http2_protocol_options", "http3_protocol_options"].filter((k) => e[k] !== undefined);
    if (set.length !== 1) this.err(`${p}.explicit_http_config`, "exactly one of http_protocol_options, http2_protocol_options, http3_protocol_options");
    // Http1ProtocolOptions: every option changes wire behaviour the proxy does not model, so only {} is accepted
    if (e.http_protocol_options !== undefined) this.obj(`${p}.explicit_http_config.http_protocol_options`, e.http_protocol_options, []);
  }

  protected cluster(path: string, v: unknown): ClusterConfig | undefined {
    const c = this.obj(path, v, [
      "name", "type", "connect_timeout", "lb_policy", "least_request_lb_config", "dns_lookup_family", "typed_extension_protocol_options",
      "load_assignment",
    ]);
    if (!c) return undefined;
    const name = this.str(`${path}.name`, c.name, true) ?? "";
    const type = String(c.type ?? "STATIC").toUpperCase();
    if (type !== "STATIC" && type !== "STRICT_DNS" && type !== "LOGICAL_DNS") this.err(`${path}.type`, "only STATIC, STRICT_DNS, LOGICAL_DNS");
    const lb = String(c.lb_policy ?? "ROUND_ROBIN").toUpperCase();
    if (lb !== "ROUND_ROBIN" && lb !== "LEAST_REQUEST") this.err(`${path}.lb_policy`, "only ROUND_ROBIN or LEAST_REQUEST");
    let choiceCount = 2;
    if (c.least_request_lb_config !== undefined) {
      const lc = this.obj(`${path}.least_request_lb_config`, c.least_request_lb_config, ["choice_count"]);
      if (lb !== "LEAST_REQUEST") this.err(`${path}.least_request_lb_config`, "only with lb_policy LEAST_REQUEST");
      if (lc && lc.choice_count !== undefined) {
        const n = lc.choice_count;
        if (typeof n !== "number" || !Number.isInteger(n) || n < 2) this.err(`${path}.least_request_lb_config.choice_count`, "expected an integer >= 2");
        else choiceCount = n;
      }
    }
    const fam = String(c.dns_lookup_family ?? "AUTO").toUpperCase() as DnsLookupFamily;
    if (!FAMILIES.includes(fam)) this.err(`${path}.dns_lookup_family`, `expected one of ${FAMILIES.join(", ")}`);
    if (c.typed_extension_protocol_options !== undefined) {
      this.protocolOptions(`${path}.typed_extension_protocol_options`, c.typed_extension_protocol_options);
    }
    const endpoints: SocketAddress[] = [];
    const la = this.obj(`${path}.load_assignment`, c.load_assignment, ["cluster_name", "endpoints"]);
    if (la) {
      this.list(`${path}.load_assignment.endpoints`, la.endpoints).forEach((e, i) => {
        const ep = `${path}.load_assignment.endpoints[${i}]`;
        const o = this.obj(ep, e, ["lb_endpoints"]);
        if (!o) return;
        this.list(`${ep}.lb_endpoints`, o.lb_endpoints).forEach((le, j) => {
          const lp = `${ep}.lb_endpoints[${j}]`;
          const lo = this.obj(lp, le, ["endpoint"]);
          const en = lo && this.obj(`${lp}.endpoint`, lo.endpoint, ["address"]);
          const sa = en && this.socketAddress(`${lp}.endpoint.address`, en.address);
          // Envoy: a STATIC cluster's endpoints are IP addresses ("malformed IP address"); DNS types take hostnames
          if (sa && type === "STATIC" && !net.isIP(sa.address)) this.err(`${lp}.endpoint.address.socket_address.address`, "a STATIC cluster needs an IP address");
          if (sa) endpoints.push(sa);
        });
      });
    }
    return {
      name,
      type: type as ClusterConfig["type"],
      connectTimeoutMs: this.dur(`${path}.connect_timeout`, c.connect_timeout, 5000),
      lbPolicy: lb === "LEAST_REQUEST" ? "LEAST_REQUEST" : "ROUND_ROBIN",
      choiceCount,
      dnsLookupFamily: FAMILIES.includes(fam) ? fam : "AUTO",
      upstreamProtocol: "HTTP/1.1",
      endpoints,
    };
  }
}

// Reads the subset of an Envoy v3 static bootstrap that the loopback proxy implements. Strict: any field outside the
// subset is an error naming its path; nothing is silently ignored. The same envoy/envoy.yaml is used by real Envoy
// (validated by make check-config, tools/checks/check-config.mjs), so this reader only has to say "supported or not".
import { parse as parseYaml } from "yaml";
import type { Obj } from "./bootstrap_fields.ts";
import { MatcherReader, T_EXTENSION_WITH_MATCHER } from "./bootstrap_matcher.ts";
import {
  BootstrapError, type ClusterConfig, type HcmConfig, type ProxyBootstrap, type RouteEntry, type SocketAddress, type VirtualHost,
  type WasmFilterConfig, type TlsListenerConfig,
} from "./bootstrap_types.ts";

export { durationMs } from "./bootstrap_fields.ts";
export { BootstrapError } from "./bootstrap_types.ts";
export type {
  TlsListenerConfig, ClusterConfig, HcmConfig, ProxyBootstrap, RouteEntry, SocketAddress, VirtualHost, WasmFilterConfig,
} from "./bootstrap_types.ts";

const T_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const T_WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const T_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const T_STRING = "type.googleapis.com/google.protobuf.StringValue";

/** Parse YAML text (Envoy's bootstrap) and read it. */
export function parseBootstrapYaml(text: string): ProxyBootstrap {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new BootstrapError([`yaml: ${(e as Error).message}`]);
  }
  return readBootstrap(doc);
}

/** Read an already-parsed bootstrap object. */
export function readBootstrap(doc: unknown): ProxyBootstrap {
  const r = new Reader();
  const out = r.bootstrap(doc);
  if (r.problems.length > 0 || !out) throw new BootstrapError(r.problems);
  return out;
}

class Reader extends MatcherReader {
  bootstrap(doc: unknown): ProxyBootstrap | undefined {
    const b = this.obj("", doc, ["node", "admin", "static_resources", "stats_config"]);
    if (!b) return undefined;
    const node: ProxyBootstrap["node"] = {};
    if (b.node !== undefined) {
      const n = this.obj("node", b.node, ["id", "cluster", "metadata"]);
      if (n) {
        node.id = this.str("node.id", n.id);
        node.cluster = this.str("node.cluster", n.cluster);
        if (n.metadata !== undefined) {
          if (n.metadata && typeof n.metadata === "object" && !Array.isArray(n.metadata)) node.metadata = n.metadata as Obj;
          else this.err("node.metadata", "expected an object (google.protobuf.Struct)");
        }
      }
    }
    let admin: SocketAddress | undefined;
    if (b.admin !== undefined) {
      const a = this.obj("admin", b.admin, ["address"]);
      if (a) admin = this.socketAddress("admin.address", a.address);
    }
    const statsTags: ProxyBootstrap["statsTags"] = [];
    let histogramBuckets: ProxyBootstrap["histogramBuckets"] = [];
    let useAllDefaultTags = true;
    if (b.stats_config !== undefined) {
      const sc = this.obj("stats_config", b.stats_config, ["stats_tags", "use_all_default_tags", "histogram_bucket_settings"]);
      if (sc) {
        if (sc.use_all_default_tags !== undefined) {
          if (typeof sc.use_all_default_tags !== "boolean") this.err("stats_config.use_all_default_tags", "expected a bool");
          else useAllDefaultTags = sc.use_all_default_tags;
        }
        histogramBuckets = this.histogramBuckets("stats_config.histogram_bucket_settings", sc.histogram_bucket_settings);
        this.list("stats_config.stats_tags", sc.stats_tags).forEach((t, i) => {
          const p = `stats_config.stats_tags[${i}]`;
          const o = this.obj(p, t, ["tag_name", "regex"]);
          if (!o) return;
          const tagName = this.str(`${p}.tag_name`, o.tag_name, true) ?? "";
          const regex = this.str(`${p}.regex`, o.regex, true) ?? "";
          try {
            new RegExp(regex);
          } catch {
            this.err(`${p}.regex`, "not a valid regular expression");
          }
          statsTags.push({ tagName, regex });
        });
      }
    }
    const sr = this.obj("static_resources", b.static_resources, ["listeners", "clusters"]);
    if (!sr) return undefined;
    const listeners = this.list("static_resources.listeners", sr.listeners);
    if (listeners.length !== 1) {
      this.err("static_resources.listeners", `exactly one listener is supported (found ${listeners.length})`);
      if (listeners.length === 0) return undefined;
    }
    const listener = this.listener("static_resources.listeners[0]", listeners[0]);
    const clusters = new Map<string, ClusterConfig>();
    this.list("static_resources.clusters", sr.clusters).forEach((c, i) => {
      const cl = this.cluster(`static_resources.clusters[${i}]`, c);
      if (!cl) return;
      if (clusters.has(cl.name)) this.err(`static_resources.clusters[${i}].name`, `duplicate cluster ${cl.name}`);
      clusters.set(cl.name, cl);
    });
    if (listener) {
      for (const vh of listener.hcm.virtualHosts) {
        for (const r of vh.routes) {
          if (!clusters.has(r.cluster)) this.err(`route ${vh.name}/${r.name || "?"}`, `unknown cluster ${r.cluster}`);
        }
      }
    }
    if (!listener) return undefined;
    return { node, admin, statsTags, useAllDefaultTags, histogramBuckets, listener, clusters };
  }

  private listener(path: string, v: unknown): ProxyBootstrap["listener"] | undefined {
    const l = this.obj(path, v, ["name", "address", "filter_chains", "traffic_direction"]);
    if (!l) return undefined;
    const trafficDirection = String(l.traffic_direction ?? "UNSPECIFIED").toUpperCase();
    if (!["UNSPECIFIED", "INBOUND", "OUTBOUND"].includes(trafficDirection)) {
      this.err(`${path}.traffic_direction`, "expected UNSPECIFIED, INBOUND or OUTBOUND");
    }
    const name = this.str(`${path}.name`, l.name) ?? "listener_0";
    const address = this.socketAddress(`${path}.address`, l.address);
    const chains = this.list(`${path}.filter_chains`, l.filter_chains);
    if (chains.length !== 1) {
      this.err(`${path}.filter_chains`, `exactly one filter chain is supported (found ${chains.length})`);
      if (chains.length === 0) return undefined;
    }
    const fc = this.obj(`${path}.filter_chains[0]`, chains[0], ["filters", "transport_socket"]);
    if (!fc) return undefined;
    const tls = fc.transport_socket === undefined ? undefined
      : this.transportSocket(`${path}.filter_chains[0].transport_socket`, fc.transport_socket);
    const filters = this.list(`${path}.filter_chains[0].filters`, fc.filters);
    if (filters.length !== 1) {
      this.err(`${path}.filter_chains[0].filters`, "exactly one network filter (the HTTP connection manager) is supported");
      if (filters.length === 0) return undefined;
    }
    const fp = `${path}.filter_chains[0].filters[0]`;
    const f = this.obj(fp, filters[0], ["name", "typed_config"]);
    if (!f) return undefined;
    if (f.name !== "envoy.filters.network.http_connection_manager") this.err(`${fp}.name`, "only envoy.filters.network.http_connection_manager");
    const hcm = this.hcm(`${fp}.typed_config`, f.typed_config);
    if (!hcm || !address) return undefined;
    return { name, address, hcm, tls, trafficDirection: trafficDirection as ProxyBootstrap["listener"]["trafficDirection"] };
  }

  private hcm(path: string, v: unknown): HcmConfig | undefined {
    const h = this.any(path, v, T_HCM, [
      "stat_prefix", "codec_type", "stream_idle_timeout", "upgrade_configs", "http2_protocol_options", "route_config", "http_filters",
      "use_remote_address", "xff_num_trusted_hops", "skip_xff_append", "max_request_headers_kb", "common_http_protocol_options",
    ]);
    if (!h) return undefined;
    const statPrefix = this.str(`${path}.stat_prefix`, h.stat_prefix, true) ?? "";
    const codecType = this.str(`${path}.codec_type`, h.codec_type) ?? "AUTO";
    if (!["AUTO", "HTTP1"].includes(codecType)) this.err(`${path}.codec_type`, "only AUTO (served as HTTP/1.1) or HTTP1");
    const streamIdleTimeoutMs = this.dur(`${path}.stream_idle_timeout`, h.stream_idle_timeout, 300_000);
    let websocketUpgrade = false;
    this.list(`${path}.upgrade_configs`, h.upgrade_configs).forEach((u, i) => {
      const p = `${path}.upgrade_configs[${i}]`;
      const o = this.obj(p, u, ["upgrade_type", "enabled"]);
      if (!o) return;
      const t = this.str(`${p}.upgrade_type`, o.upgrade_type, true) ?? "";
      if (t.toLowerCase() !== "websocket") this.err(`${p}.upgrade_type`, "only websocket");
      if (o.enabled !== undefined && typeof o.enabled !== "boolean") this.err(`${p}.enabled`, "expected a bool");
      websocketUpgrade = o.enabled !== false;
    });
    let allowConnect = false;
    if (h.http2_protocol_options !== undefined) {
      const o = this.obj(`${path}.http2_protocol_options`, h.http2_protocol_options, ["allow_connect"]);
      if (o && o.allow_connect !== undefined) {
        if (typeof o.allow_connect !== "boolean") this.err(`${path}.http2_protocol_options.allow_connect`, "expected a bool");
        else allowConnect = o.allow_connect;
      }
    }
    const rc = this.obj(`${path}.route_config`, h.route_config, ["name", "virtual_hosts"]);
    const routeConfigName = (rc && this.str(`${path}.route_config.name`, rc.name)) ?? "";
    const virtualHosts: VirtualHost[] = [];
    if (rc) {
      this.list(`${path}.route_config.virtual_hosts`, rc.virtual_hosts).forEach((vh, i) => {
        const vp = `${path}.route_config.virtual_hosts[${i}]`;
        const o = this.obj(vp, vh, ["name", "domains", "routes"]);
        if (!o) return;
        const domains = this.list(`${vp}.domains`, o.domains).map((d, j) => this.str(`${vp}.domains[${j}]`, d) ?? "");
        const routes: RouteEntry[] = [];
        this.list(`${vp}.routes`, o.routes).forEach((r, j) => {
          const re = this.route(`${vp}.routes[${j}]`, r);
          if (re) routes.push(re);
        });
        virtualHosts.push({ name: this.str(`${vp}.name`, o.name, true) ?? "", domains, routes });
      });
    }
    const filters = this.list(`${path}.http_filters`, h.http_filters);
    let wasm: WasmFilterConfig | undefined;
    // Envoy finds an HTTP filter's factory by its typed_config @type; `name` only labels it (stats, logs)
    filters.forEach((f, i) => {
      const fp = `${path}.http_filters[${i}]`;
      const o = this.obj(fp, f, ["name", "typed_config"]);
      if (!o) return;
      this.str(`${fp}.name`, o.name, true);
      const t = o.typed_config && typeof o.typed_config === "object" ? (o.typed_config as Obj)["@type"] : undefined;
      if (o.typed_config === undefined) {
        this.err(`${fp}.typed_config`, "required (the filter is recognised by its @type)");
        return;
      }
      const isLast = i === filters.length - 1;
      if (isLast) {
        if (t !== T_ROUTER) this.err(`${fp}.typed_config.@type`, `the last HTTP filter must be envoy.filters.http.router (${T_ROUTER})`);
        else this.any(`${fp}.typed_config`, o.typed_config, T_ROUTER, []);
        return;
      }
      // ExtensionWithMatcher (match_delegate) wrapping the Wasm filter: bootstrap_matcher.ts, matcher.ts
      const wrapped = t === T_EXTENSION_WITH_MATCHER ? this.extensionWithMatcher(`${fp}.typed_config`, o.typed_config) : undefined;
      if (t === T_EXTENSION_WITH_MATCHER && !wrapped) return;
      const inner = wrapped ? wrapped.typedConfig : o.typed_config;
      const ip = wrapped ? `${fp}.typed_config.extension_config.typed_config` : `${fp}.typed_config`;
      const it = inner && typeof inner === "object" ? (inner as Obj)["@type"] : undefined;
      if (it !== T_WASM) {
        const what = wrapped ? "inside ExtensionWithMatcher" : "before the router";
        this.err(`${ip}.@type`, `only the Wasm filter (${T_WASM}) ${what} is supported, not ${String(it)}`);
        return;
      }
      if (wasm) {
        this.err(fp, "only one Wasm filter is supported");
        return;
      }
      wasm = this.wasm(ip, inner, String(o.name ?? ""));
      if (wasm && wrapped) wasm.skipMatcher = wrapped.matcher;
    });
    if (filters.length === 0) this.err(`${path}.http_filters`, "at least the router is required");
    const bool = (k: string): boolean => {
      if (h[k] === undefined) return false;
      if (typeof h[k] !== "boolean") this.err(`${path}.${k}`, "expected a bool");
      return h[k] === true;
    };
    const uint = (p: string, v: unknown, dflt: number, max: number): number => {
      if (v === undefined) return dflt;
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
        this.err(p, `expected an integer 0..${max}`);
        return dflt;
      }
      return v;
    };
    let maxHeadersCount = 100;
    if (h.common_http_protocol_options !== undefined) {
      const o = this.obj(`${path}.common_http_protocol_options`, h.common_http_protocol_options, ["max_headers_count"]);
      if (o) maxHeadersCount = uint(`${path}.common_http_protocol_options.max_headers_count`, o.max_headers_count, 100, 2 ** 32 - 1);
    }
    const maxRequestHeadersKb = uint(`${path}.max_request_headers_kb`, h.max_request_headers_kb, 60, 8192);
    if (h.max_request_headers_kb === 0) this.err(`${path}.max_request_headers_kb`, "must be greater than 0");
    return {
      statPrefix, codecType, streamIdleTimeoutMs, websocketUpgrade, allowConnect, routeConfigName, virtualHosts, wasm,
      useRemoteAddress: bool("use_remote_address"),
      xffNumTrustedHops: uint(`${path}.xff_num_trusted_hops`, h.xff_num_trusted_hops, 0, 2 ** 32 - 1),
      skipXffAppend: bool("skip_xff_append"),
      maxRequestHeadersKb,
      maxHeadersCount: maxHeadersCount === 0 ? 100 : maxHeadersCount,
    };
  }

  private stringValue(path: string, v: unknown): string | undefined {
    if (v === undefined) return undefined;
    const o = this.any(path, v, T_STRING, ["value"]);
    if (!o) return undefined;
    return this.str(`${path}.value`, o.value) ?? "";
  }

  private wasm(path: string, v: unknown, filterName: string): WasmFilterConfig | undefined {
    const w = this.any(path, v, T_WASM, ["config"]);
    if (!w) return undefined;
    const cp = `${path}.config`;
    const c = this.obj(cp, w.config, [
      "name", "root_id", "vm_config", "configuration", "failure_policy", "fail_open", "reload_config", "allow_on_headers_stop_iteration",
    ]);
    if (!c) return undefined;
    const vp = `${cp}.vm_config`;
    const vm = this.obj(vp, c.vm_config, ["vm_id", "runtime", "code", "configuration", "environment_variables"]);
    if (!vm) return undefined;
    const code = this.obj(`${vp}.code`, vm.code, ["local"]);
    const local = code && this.obj(`${vp}.code.local`, code.local, ["filename"]);
    const filename = (local && this.str(`${vp}.code.local.filename`, local.filename, true)) ?? "";
    let environment: Record<string, string> | undefined;
    if (vm.environment_variables !== undefined) {
      const ev = this.obj(`${vp}.environment_variables`, vm.environment_variables, ["key_values"]);
      if (ev && ev.key_values !== undefined) {
        const kv = this.obj(`${vp}.environment_variables.key_values`, ev.key_values, Object.keys(ev.key_values as Obj ?? {}));
        if (kv) environment = Object.fromEntries(Object.entries(kv).map(([k, val]) => [k, String(val)]));
      }
    }
    let failurePolicy: WasmFilterConfig["failurePolicy"];
    if (c.failure_policy !== undefined) {
      const fp = String(c.failure_policy).toUpperCase();
      if (fp === "FAIL_CLOSED" || fp === "FAIL_OPEN" || fp === "FAIL_RELOAD") failurePolicy = fp;
      else this.err(`${cp}.failure_policy`, "expected FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD");
    }
    let failOpen: boolean | undefined;
    if (c.fail_open !== undefined) {
      if (typeof c.fail_open !== "boolean") this.err(`${cp}.fail_open`, "expected a bool");
      else failOpen = c.fail_open;
    }
    let reloadBackoffMs: number | undefined;
    if (c.reload_config !== undefined) {
      const rc = this.obj(`${cp}.reload_config`, c.reload_config, ["backoff"]);
      const bo = rc && rc.backoff !== undefined ? this.obj(`${cp}.reload_config.backoff`, rc.backoff, ["base_interval"]) : undefined;
      if (bo && bo.base_interval !== undefined) reloadBackoffMs = this.dur(`${cp}.reload_config.backoff.base_interval`, bo.base_interval, 1000);
    }
    if (c.allow_on_headers_stop_iteration !== undefined && typeof c.allow_on_headers_stop_iteration !== "boolean") {
      this.err(`${cp}.allow_on_headers_stop_iteration`, "expected a bool");
    }
    return {
      filterName,
      name: this.str(`${cp}.name`, c.name) ?? "",
      rootId: this.str(`${cp}.root_id`, c.root_id) ?? "",
      vmId: this.str(`${vp}.vm_id`, vm.vm_id) ?? "",
      runtime: this.str(`${vp}.runtime`, vm.runtime) ?? "",
      filename,
      configuration: this.stringValue(`${cp}.configuration`, c.configuration) ?? "",
      vmConfiguration: this.stringValue(`${vp}.configuration`, vm.configuration),
      failurePolicy,
      failOpen,
      reloadBackoffMs,
      allowOnHeadersStopIteration: c.allow_on_headers_stop_iteration as boolean | undefined,
      environment,
    };
  }
}

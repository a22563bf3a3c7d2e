// Types of the Envoy bootstrap subset the loopback proxy implements, and the error that lists what falls outside it.
import type { MatchTree } from "./matcher.ts";

export interface SocketAddress { address: string; port: number }

/** envoy.type.matcher.v3.StringMatcher (safe_regex: RE2 full match, approximated by an anchored JS RegExp) */
export interface StringMatch {
  kind: "exact" | "prefix" | "suffix" | "contains" | "regex";
  value: string;
  ignoreCase: boolean;
  regex?: RegExp;
}

/** config.route.v3.HeaderMatcher: the value is every entry of the header joined with "," (getAllOfHeaderAsString) */
export interface HeaderMatcher {
  name: string;
  invert: boolean;
  treatMissingAsEmpty: boolean;
  spec: { kind: "present"; present: boolean } | { kind: "string"; m: StringMatch } | { kind: "range"; start: number; end: number };
}

export interface RouteEntry {
  name: string;
  match: { prefix?: string; path?: string; headers?: HeaderMatcher[] };
  cluster: string;
  timeoutMs: number;      // 0 = disabled (default 15000)
  idleTimeoutMs?: number; // per-route override of stream_idle_timeout
}

export interface VirtualHost { name: string; domains: string[]; routes: RouteEntry[] }

export interface WasmFilterConfig {
  filterName: string;          // http_filters[].name
  name: string;                // PluginConfig.name
  rootId: string;
  vmId: string;
  runtime: string;
  filename: string;            // vm_config.code.local.filename
  configuration: string;       // StringValue
  vmConfiguration?: string;
  failurePolicy?: "FAIL_CLOSED" | "FAIL_OPEN" | "FAIL_RELOAD";
  failOpen?: boolean;
  reloadBackoffMs?: number;
  allowOnHeadersStopIteration?: boolean;
  environment?: Record<string, string>;
  /** set when the filter entry is an ExtensionWithMatcher wrapping the Wasm filter: its xds_matcher (matcher.ts) */
  skipMatcher?: MatchTree;
}

/** filter_chains[0].transport_socket: DownstreamTlsContext (file paths as written in the bootstrap) */
export interface TlsListenerConfig {
  certChain: string;
  privateKey: string;
  trustedCa?: string;                 // validation_context.trusted_ca: client certificates are requested and verified
  requireClientCertificate: boolean;
}

export interface HcmConfig {
  statPrefix: string;
  useRemoteAddress: boolean;   // default false (§13.2)
  xffNumTrustedHops: number;   // default 0
  skipXffAppend: boolean;      // default false
  maxRequestHeadersKb: number; // default 60 (§13.3)
  maxHeadersCount: number;     // common_http_protocol_options.max_headers_count, default 100
  codecType: string;
  streamIdleTimeoutMs: number; // default 300000; 0 = disabled
  websocketUpgrade: boolean;
  allowConnect: boolean;
  routeConfigName: string;
  virtualHosts: VirtualHost[];
  wasm?: WasmFilterConfig;     // the filter before the router, if present
}

export type DnsLookupFamily = "AUTO" | "V4_ONLY" | "V6_ONLY" | "V4_PREFERRED" | "ALL";

export interface ClusterConfig {
  name: string;
  type: "STATIC" | "STRICT_DNS" | "LOGICAL_DNS";
  connectTimeoutMs: number;    // default 5000
  lbPolicy: "ROUND_ROBIN" | "LEAST_REQUEST";
  choiceCount: number;         // least_request_lb_config.choice_count, default 2
  dnsLookupFamily: DnsLookupFamily; // default AUTO (v6 first, then v4)
  /** typed_extension_protocol_options HttpProtocolOptions: only explicit HTTP/1.1 (also the default) is modelled */
  upstreamProtocol: "HTTP/1.1";
  endpoints: SocketAddress[];
}

export interface ProxyBootstrap {
  node: { id?: string; cluster?: string; metadata?: Record<string, unknown> };
  admin?: SocketAddress;
  statsTags: Array<{ tagName: string; regex: string }>;
  useAllDefaultTags: boolean;
  listener: {
    name: string; address: SocketAddress; hcm: HcmConfig; tls?: TlsListenerConfig;
    trafficDirection: "UNSPECIFIED" | "INBOUND" | "OUTBOUND"; // recorded only (Envoy: stats/tracing, listener_direction)
  };
  /** stats_config.histogram_bucket_settings (read and validated; the host renders its default buckets) */
  histogramBuckets: Array<{ match: StringMatch; buckets: number[] }>;
  clusters: Map<string, ClusterConfig>;
}

export class BootstrapError extends Error {
  constructor(readonly problems: string[]) {
    super(`unsupported or invalid bootstrap for the loopback proxy:\n  ${problems.join("\n  ")}`);
  }
}

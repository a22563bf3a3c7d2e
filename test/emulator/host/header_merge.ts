// Envoy's header maps as codecs build them (envoy-host.md §13.3): repeated inline headers are merged into one entry
// joined with ","; every other header keeps one entry per line. Used by the loopback proxy's codec and by the
// host's HTTP calls (response headers of proxy_http_call).
import type { HeaderList } from "./api.ts";

/** Envoy's inline request headers (header_map.h INLINE_REQ_*_HEADERS and INLINE_REQ_RESP_*_HEADERS, plus `referer`,
 *  registered as a custom inline header by the CEL expression context that the Wasm filter links). Repeated lines of
 *  these are merged into one entry joined with "," as they are parsed; every other header keeps one entry per line. */
export const REQUEST_INLINE = new Set([
  "x-client-trace-id", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node", "x-envoy-external-address",
  "x-envoy-force-trace", "x-envoy-hedge-on-per-try-timeout", "x-envoy-internal", "x-envoy-ip-tags", "x-envoy-retry-on",
  "x-envoy-retry-grpc-on", "x-envoy-retriable-status-codes", "x-envoy-retriable-header-names", "x-envoy-is-timeout-retry",
  "x-envoy-original-path", "x-envoy-original-url", "x-envoy-upstream-alt-stat-name", "x-envoy-upstream-rq-timeout-alt-response",
  "expect", "x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "grpc-timeout", "host",
  "te", "user-agent", "x-envoy-expected-rq-timeout-ms", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms",
  "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-stream-duration-ms", "referer",
  // INLINE_REQ_RESP_*
  "connection", "content-type", "x-envoy-decorator-operation", "keep-alive", "proxy-connection", "proxy-status",
  "x-request-id", "transfer-encoding", "upgrade", "via", "content-length",
]);
/** INLINE_RESP_*_HEADERS and INLINE_REQ_RESP_*_HEADERS */
export const RESPONSE_INLINE = new Set([
  "date", "x-envoy-degraded", "x-envoy-immediate-health-check-fail", "x-envoy-ratelimited", "x-envoy-upstream-canary",
  "x-envoy-upstream-healthchecked-cluster", "grpc-message", "grpc-status", "location", "server",
  "x-envoy-upstream-service-time",
  "connection", "content-type", "x-envoy-decorator-operation", "keep-alive", "proxy-connection", "proxy-status",
  "x-request-id", "transfer-encoding", "upgrade", "via", "content-length",
]);

/** rawHeaders → lower-cased pairs in wire order, inline headers merged into their first entry with ",". */
export function mergedPairs(raw: string[], inline: Set<string>): HeaderList {
  const out: HeaderList = [];
  const at = new Map<string, number>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i].toLowerCase(), v = raw[i + 1];
    const j = inline.has(k) ? at.get(k) : undefined;
    if (j === undefined) {
      if (inline.has(k)) at.set(k, out.length);
      out.push([k, v]);
    } else out[j][1] = out[j][1] === "" ? v : `${out[j][1]},${v}`; // appendToHeader
  }
  return out;
}

// The HTTP connection manager's work on request headers before any filter runs (envoy-host.md §2.8, §13.2, §13.3):
// inline-header merging as the HTTP/1 codec parses (header_map_impl.cc :: addViaMove/appendToHeader), the codec's
// header limits (431), and ConnectionManagerUtility::mutateRequestHeaders, which also decides the stream's remote
// address (the `source.address` property).
import { randomUUID } from "node:crypto";
import net from "node:net";
import type { HeaderList } from "../host/api.ts";
export { REQUEST_INLINE, RESPONSE_INLINE, mergedPairs } from "../host/header_merge.ts";
import type { HcmConfig } from "./bootstrap.ts";

/** HTTP/1 codec limits (codec_impl.cc checkMaxHeadersSize / completeCurrentHeader): byteSize Σ(key+value) of the
 *  parsed map over max_request_headers_kb·1024, or more entries than max_headers_count → 431 before any filter. */
export function headerLimitError(merged: HeaderList, hcm: HcmConfig): string | undefined {
  let bytes = 0;
  for (const [k, v] of merged) bytes += k.length + v.length;
  if (bytes > hcm.maxRequestHeadersKb * 1024) return "http1.headers_too_large";
  if (merged.length > hcm.maxHeadersCount) return "http1.too_many_headers";
  return undefined;
}

export interface Peer { ip: string; port: number }

export function formatAddress(ip: string, port: number): string {
  return net.isIPv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Utility::getLastAddressFromXFF: skip `skip` entries from the right, then the last one; must parse as an IP
 *  (whitespace trimmed). `single`: no comma left before it (allow_trusted_address_checks). */
export function lastAddressFromXff(xff: string | undefined, skip: number): { ip?: string; single: boolean } {
  if (xff === undefined) return { single: false };
  let s = xff;
  for (let i = 0; i < skip; i++) {
    const c = s.lastIndexOf(",");
    if (c < 0) return { single: false };
    s = s.slice(0, c);
  }
  const c = s.lastIndexOf(",");
  if (c >= 0 && c + 1 < s.length) s = s.slice(c + 1);
  s = s.trim();
  return net.isIP(s) ? { ip: s, single: c < 0 } : { single: false };
}

const isLoopback = (ip: string) => ip.startsWith("127.") || ip === "::1";

/** DefaultInternalAddressConfig. Up to 1.33 it trusted RFC1918 / fd00::/8; the runtime guard
 *  envoy.reloadable_features.explicit_internal_address_config (default true by 1.34 — boundary UNVERIFIED; guard
 *  removed in 1.36) makes no address internal unless internal_address_config says so. */
function isInternal(ip: string, minor: number): boolean {
  if (minor >= 34) return false;
  if (/^10\./.test(ip) || /^192\.168\./.test(ip)) return true;
  const m = /^172\.(\d+)\./.exec(ip);
  if (m && Number(m[1]) >= 16 && Number(m[1]) <= 31) return true;
  return /^fd/i.test(ip);
}

const ALWAYS_STRIPPED = new Set(["keep-alive", "proxy-connection", "transfer-encoding", "x-envoy-internal"]);
const CLEANED = new Set(["x-envoy-retriable-status-codes", "x-envoy-retriable-header-names", "x-envoy-retry-on",
  "x-envoy-retry-grpc-on", "x-envoy-max-retries", "x-envoy-upstream-alt-stat-name", "x-envoy-upstream-rq-timeout-ms",
  "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms",
  "x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-original-url", "x-envoy-hedge-on-per-try-timeout"]);
const CLEANED_EDGE = new Set(["x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node"]);

export interface MutateInput {
  merged: HeaderList;       // wire headers, inline ones merged
  url: string;
  method: string;
  upgrade: boolean;
  hcm: HcmConfig;
  peer: Peer;               // the downstream socket's remote address
  localIp: string;          // Envoy's local_info address, appended to XFF for a loopback peer
  tls: boolean;
  minor: number;
}

/** ConnectionManagerUtility::mutateRequestHeaders: the map the filter sees in on_request_headers, and the final
 *  remote address ("ip:port"; port 0 when it came from XFF) that becomes source.address. */
export function mutateRequestHeaders(o: MutateInput): { headers: HeaderList; remoteAddress: string } {
  const { hcm } = o;
  const get = (k: string) => o.merged.find(([n]) => n === k)?.[1];
  const out: HeaderList = [[":authority", get("host") ?? ""], [":path", o.url], [":method", o.method]];
  for (const [k, v] of o.merged) {
    if (k === "host" || ALWAYS_STRIPPED.has(k)) continue;
    if (!o.upgrade && (k === "connection" || k === "upgrade")) continue;
    if (!o.upgrade && k === "te" && v.trim().toLowerCase() !== "trailers") continue;
    out.push([k, v]);
  }
  const find = (k: string) => out.findIndex(([n]) => n === k);
  const set = (k: string, v: string) => {
    const i = find(k);
    if (i >= 0) out[i][1] = v;
    else out.push([k, v]);
  };
  const remove = (names: Set<string>) => {
    for (let i = out.length - 1; i >= 0; i--) if (names.has(out[i][0])) out.splice(i, 1);
  };
  const xffNow = () => { const i = find("x-forwarded-for"); return i >= 0 ? out[i][1] : undefined; };
  const proto = o.tls ? "https" : "http";
  let finalIp: string | undefined;
  let finalPort = 0;
  let allowTrusted = false;
  if (hcm.useRemoteAddress) {
    allowTrusted = xffNow() === undefined;
    if (hcm.xffNumTrustedHops > 0) finalIp = lastAddressFromXff(xffNow(), hcm.xffNumTrustedHops - 1).ip;
    if (finalIp === undefined) { finalIp = o.peer.ip; finalPort = o.peer.port; }
    if (!hcm.skipXffAppend) {
      const add = isLoopback(o.peer.ip) ? o.localIp : o.peer.ip; // appendXff(config.localAddress()) for loopback
      const cur = xffNow();
      set("x-forwarded-for", cur === undefined || cur === "" ? add : `${cur},${add}`);
    }
    if (hcm.xffNumTrustedHops === 0 || find("x-forwarded-proto") < 0) set("x-forwarded-proto", proto);
  } else {
    const r = lastAddressFromXff(xffNow(), hcm.xffNumTrustedHops); // the XFF original-IP detection (default)
    if (r.ip !== undefined) { finalIp = r.ip; allowTrusted = r.single; }
  }
  if (find("x-forwarded-proto") < 0) set("x-forwarded-proto", proto);
  const xfp = out[find("x-forwarded-proto")][1].toLowerCase();
  out.splice(3, 0, [":scheme", xfp === "http" || xfp === "https" ? xfp : proto]);
  const internal = allowTrusted && finalIp !== undefined && isInternal(finalIp, o.minor);
  if (finalIp === undefined) { finalIp = o.peer.ip; finalPort = o.peer.port; }
  const edge = !internal && hcm.useRemoteAddress;
  if (internal) set("x-envoy-internal", "true");
  else {
    remove(CLEANED);
    if (edge) remove(CLEANED_EDGE);
  }
  if (edge) set("x-envoy-external-address", finalIp);
  if (edge || find("x-request-id") < 0) set("x-request-id", randomUUID()); // force_set for edge requests
  remove(new Set(["x-forwarded-client-cert"])); // forward_client_cert_details SANITIZE, the default (mutateXfccRequestHeader)
  return { headers: out, remoteAddress: formatAddress(finalIp, finalPort) };
}

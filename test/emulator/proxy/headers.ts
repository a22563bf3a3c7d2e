// Header handling of the HCM and router (envoy-host.md §2.8, §7.4, §8.2), independent of sockets.
import type { HeaderList } from "../host/api.ts";
import { RESPONSE_INLINE, mergedPairs } from "./hcm.ts";

const HOP_BY_HOP_RESPONSE = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

/** rawHeaders → lower-cased pairs in wire order. */
export function rawPairs(raw: string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i].toLowerCase(), raw[i + 1]]);
  return out;
}

/** Utility::isUpgrade on the merged map: Upgrade present and the (merged) Connection value has the token "upgrade" */
export function isUpgradeRequest(pairs: HeaderList): boolean {
  const upgrade = pairs.some(([k]) => k === "upgrade");
  const conn = (pairs.find(([k]) => k === "connection")?.[1] ?? "").split(",");
  return upgrade && conn.some((t) => t.trim().toLowerCase() === "upgrade");
}

export function upgradeType(pairs: HeaderList): string {
  return (pairs.find(([k]) => k === "upgrade")?.[1] ?? "").trim().toLowerCase();
}

export function headerValue(h: HeaderList, name: string): string | undefined {
  return h.find(([k]) => k === name)?.[1];
}

/** Header list → what node:http's client sends (flat raw array), :authority as host, pseudo-headers dropped. */
export function upstreamRequestHeaders(h: HeaderList): { method: string; path: string; flat: string[] } {
  const flat: string[] = [];
  const authority = headerValue(h, ":authority");
  if (authority !== undefined) flat.push("host", authority);
  for (const [k, v] of h) if (!k.startsWith(":")) flat.push(k, v);
  return { method: headerValue(h, ":method") ?? "GET", path: headerValue(h, ":path") ?? "/", flat };
}

/** Response headers from the upstream, as the filter sees them in on_response_headers (inline headers merged, §13.3). */
export function responseHeadersForFilter(status: number, raw: string[], serviceTimeMs: number): HeaderList {
  return [[":status", String(status)], ...mergedPairs(raw, RESPONSE_INLINE), ["x-envoy-upstream-service-time", String(Math.max(0, Math.round(serviceTimeMs)))]];
}

/** After the filter chain: drop pseudo and (for non-upgrades) hop-by-hop headers; Envoy's server header. */
export function finalResponseHeaders(h: HeaderList, upgrade: boolean): HeaderList {
  const out: HeaderList = [];
  for (const [k, v] of h) {
    if (k.startsWith(":") || k === "server" || k === "date") continue;
    if (!upgrade && HOP_BY_HOP_RESPONSE.has(k)) continue;
    out.push([k, v]);
  }
  out.push(["date", new Date().toUTCString()], ["server", "envoy"]);
  return out;
}

export function statusOf(h: HeaderList, fallback = 200): number {
  const s = Number(headerValue(h, ":status"));
  return Number.isInteger(s) && s >= 100 && s <= 999 ? s : fallback;
}

/** Serialize a response head for raw socket writes. */
export function responseHead(status: number, reason: string, h: HeaderList): string {
  return `HTTP/1.1 ${status} ${reason}\r\n` + h.map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
}

/** Group a header list for ServerResponse.setHeader. */
export function toHeaderObject(h: HeaderList): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of h) {
    const cur = out[k];
    if (cur === undefined) out[k] = v;
    else out[k] = Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}

// Route selection as Envoy's router config does it: virtual host by :authority (exact, then wildcard suffix/prefix,
// then "*"), then the first route whose path/prefix AND every header matcher match (config_impl.cc
// RouteEntryImplBase::matchRoute → HeaderUtility::matchHeaders). The headers are the map after the HCM's
// mutateRequestHeaders (so a plain request's Connection/Upgrade are already gone, §2.8) and after the filters.
import type { HeaderList } from "../host/api.ts";
import type { HeaderMatcher, ProxyBootstrap, RouteEntry, StringMatch } from "./bootstrap_types.ts";
import { headerValue } from "./headers.ts";

/** StringMatcherImpl::match; ignore_case compares ASCII case-insensitively (absl::EqualsIgnoreCase & co.) */
export function stringMatches(m: StringMatch, value: string): boolean {
  if (m.kind === "regex") return m.regex!.test(value);
  const v = m.ignoreCase ? value.toLowerCase() : value;
  const want = m.ignoreCase ? m.value.toLowerCase() : m.value;
  switch (m.kind) {
    case "exact": return v === want;
    case "prefix": return v.startsWith(want);
    case "suffix": return v.endsWith(want);
    case "contains": return v.includes(want);
  }
}

/** HeaderUtility::getAllOfHeaderAsString: no entry → undefined, one → its value, several → joined with "," */
export function allOfHeader(h: HeaderList, name: string): string | undefined {
  const vals = h.filter(([k]) => k === name).map(([, v]) => v);
  return vals.length === 0 ? undefined : vals.join(",");
}

/** One HeaderMatcher against a request header map. A missing header never matches a value specifier, inverted or
 *  not, unless treat_missing_header_as_empty; present_match (true) on a missing header is false, inverted true. */
export function headerMatches(m: HeaderMatcher, h: HeaderList): boolean {
  const value = allOfHeader(h, m.name);
  if (m.spec.kind === "present") return (value !== undefined) === m.spec.present ? !m.invert : m.invert;
  if (value === undefined && !m.treatMissingAsEmpty) return false;
  const v = value ?? "";
  let match: boolean;
  if (m.spec.kind === "range") {
    const n = /^[+-]?\d+$/.test(v) ? Number(v) : NaN; // absl::SimpleAtoi
    match = Number.isSafeInteger(n) && n >= m.spec.start && n < m.spec.end;
  } else {
    match = stringMatches(m.spec.m, v);
  }
  return match !== m.invert;
}

export function routeMatches(r: RouteEntry, h: HeaderList): boolean {
  const p = headerValue(h, ":path") ?? "/";
  if (r.match.path !== undefined && p.split("?")[0] !== r.match.path) return false;
  if (r.match.prefix !== undefined && !p.startsWith(r.match.prefix)) return false;
  return (r.match.headers ?? []).every((m) => headerMatches(m, h));
}

export function matchRoute(bs: ProxyBootstrap, h: HeaderList): { vhost: string; route: RouteEntry } | undefined {
  const authority = (headerValue(h, ":authority") ?? "").toLowerCase();
  const hostNoPort = authority.replace(/:\d+$/, "");
  const vhs = bs.listener.hcm.virtualHosts;
  const domainMatch = (d: string, a: string): boolean => {
    d = d.toLowerCase();
    if (d === "*") return true;
    if (d.startsWith("*")) return a.endsWith(d.slice(1));
    if (d.endsWith("*")) return a.startsWith(d.slice(0, -1));
    return a === d;
  };
  // exact, then suffix/prefix wildcards, then "*" (Envoy's precedence), host with and without the port
  const ranked = (a: string) =>
    vhs.find((v) => v.domains.some((d) => d.toLowerCase() === a)) ??
    vhs.find((v) => v.domains.some((d) => d !== "*" && domainMatch(d, a)));
  const vh = ranked(authority) ?? ranked(hostNoPort) ?? vhs.find((v) => v.domains.includes("*"));
  if (!vh) return undefined;
  const r = vh.routes.find((x) => routeMatches(x, h));
  return r ? { vhost: vh.name, route: r } : undefined;
}

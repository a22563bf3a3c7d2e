// The generic matcher of Envoy's ExtensionWithMatcher (HTTP filter "envoy.filters.http.match_delegate"), the subset the
// loopback proxy models: an xds.type.matcher.v3.Matcher over request headers whose only action is SkipFilter.
// Sources (read, not copied; docs/extension-matcher.md has the details):
//   source/common/http/match_delegate/config.cc :: DelegatingStreamFilter::decodeHeaders, FilterMatchState::evaluateMatchTree
//   source/common/http/matching/inputs.h :: HttpHeadersDataInputBase::get (LowerCaseString name, getAllOfHeaderAsString ",")
//   source/common/matcher/list_matcher.h, field_matcher.h (SingleFieldMatcher, AnyFieldMatcher, AllFieldMatcher,
//   NotFieldMatcher), value_input_matcher.h (StringInputMatcher: a missing value never matches),
//   exact_map_matcher.h / prefix_map_matcher.h / map_matcher.h (a missing value → on_no_match).
import type { HeaderList } from "../host/api.ts";
import type { StringMatch } from "./bootstrap_types.ts";
import { allOfHeader, stringMatches } from "./routing.ts";

/** OnMatch: only `action: SkipFilter` is modelled (nested matchers and keep_matching are refused by the reader). */
export interface SkipOnMatch { action: "skip"; name: string }

/** xds.type.matcher.v3.Matcher.MatcherList.Predicate; inputs are HttpRequestHeaderMatchInput header names (lower case) */
export type Predicate =
  | { kind: "single"; header: string; match: StringMatch }
  | { kind: "or"; list: Predicate[] }
  | { kind: "and"; list: Predicate[] }
  | { kind: "not"; p: Predicate };

export type MatchTree =
  | { kind: "list"; matchers: Array<{ predicate: Predicate; onMatch: SkipOnMatch }>; onNoMatch?: SkipOnMatch }
  | { kind: "exact_map" | "prefix_map"; header: string; map: Map<string, SkipOnMatch>; onNoMatch?: SkipOnMatch };

/** HttpRequestHeadersDataInput::get: every entry of the header joined with "," (no entry → no value) */
function input(h: HeaderList, header: string): string | undefined {
  return allOfHeader(h, header);
}

/** SingleFieldMatcher → StringInputMatcher: no value (the header is absent) is false; an empty value is a value. */
export function predicateMatches(p: Predicate, h: HeaderList): boolean {
  switch (p.kind) {
    case "single": {
      const v = input(h, p.header);
      return v !== undefined && stringMatches(p.match, v);
    }
    case "or": return p.list.some((q) => predicateMatches(q, h));
    case "and": return p.list.every((q) => predicateMatches(q, h));
    case "not": return !predicateMatches(p.p, h);
  }
}

/** Matcher::evaluateMatch over the request headers (all data available, so the result is final at decodeHeaders).
 *  Returns the OnMatch reached, or undefined for "no match" (no on_no_match): the filter then runs normally. */
export function evaluate(t: MatchTree, h: HeaderList): SkipOnMatch | undefined {
  if (t.kind === "list") {
    for (const m of t.matchers) if (predicateMatches(m.predicate, h)) return m.onMatch;
    return t.onNoMatch;
  }
  const v = input(h, t.header);
  if (v === undefined) return t.onNoMatch; // MapMatcher::match: monostate input → on_no_match
  if (t.kind === "exact_map") return t.map.get(v) ?? t.onNoMatch;
  // PrefixMapMatcher: the longest key that prefixes the value (with actions only, no shorter fallback matters)
  let best: string | undefined;
  for (const k of t.map.keys()) if (v.startsWith(k) && (best === undefined || k.length > best.length)) best = k;
  return best !== undefined ? t.map.get(best) : t.onNoMatch;
}

/** DelegatingStreamFilter: true when the wrapped filter is skipped for this stream (decided at request headers). */
export function skipsFilter(t: MatchTree | undefined, h: HeaderList): boolean {
  if (!t) return false;
  return evaluate(t, h)?.action === "skip";
}

// Reader for an HTTP filter whose typed_config is envoy.extensions.common.matching.v3.ExtensionWithMatcher (Envoy's
// match_delegate filter) wrapping the Wasm filter. Strict like the rest of the bootstrap reader: every matcher form
// outside the modelled subset (matcher.ts) is refused with its path and the reason.
import type { Obj } from "./bootstrap_fields.ts";
import { ClusterReader } from "./bootstrap_cluster.ts";
import type { MatchTree, Predicate, SkipOnMatch } from "./matcher.ts";

export const T_EXTENSION_WITH_MATCHER = "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher";
const T_SKIP = "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter";
const T_REQUEST_HEADER = "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput";
// envoy.type.matcher.v3.HttpRequestHeaderMatchInput.header_name: well_known_regex HTTP_HEADER_NAME (pseudo-headers allowed)
const HEADER_NAME = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;

export interface WrappedFilter {
  /** extension_config.name / typed_config (the wrapped filter) */
  name: string;
  typedConfig: unknown;
  matcher: MatchTree;
}

export class MatcherReader extends ClusterReader {
  protected extensionWithMatcher(path: string, v: unknown): WrappedFilter | undefined {
    const o = this.any(path, v, T_EXTENSION_WITH_MATCHER, ["extension_config", "xds_matcher", "matcher"]);
    if (!o) return undefined;
    if (o.matcher !== undefined) {
      this.err(`${path}.matcher`, "the deprecated envoy.config.common.matcher.v3.Matcher is not modelled; use xds_matcher");
    }
    if (o.xds_matcher === undefined) {
      // match_delegate: no match tree at all is interpreted as a skip on every stream — refused rather than modelled
      this.err(`${path}.xds_matcher`, "required by the loopback proxy (without a match tree Envoy skips the filter on every stream)");
    }
    const ext = this.obj(`${path}.extension_config`, o.extension_config, ["name", "typed_config"]);
    if (!ext) return undefined;
    const name = this.str(`${path}.extension_config.name`, ext.name, true) ?? "";
    if (ext.typed_config === undefined) this.err(`${path}.extension_config.typed_config`, "required");
    const matcher = o.xds_matcher === undefined ? undefined : this.xdsMatcher(`${path}.xds_matcher`, o.xds_matcher);
    if (!matcher) return undefined;
    return { name, typedConfig: ext.typed_config, matcher };
  }

  private xdsMatcher(path: string, v: unknown): MatchTree | undefined {
    const o = this.obj(path, v, ["matcher_list", "matcher_tree", "on_no_match"]);
    if (!o) return undefined;
    const onNoMatch = o.on_no_match === undefined ? undefined : this.onMatch(`${path}.on_no_match`, o.on_no_match);
    if ((o.matcher_list === undefined) === (o.matcher_tree === undefined)) {
      this.err(path, "exactly one of matcher_list, matcher_tree (a Matcher with on_no_match only is not modelled)");
      return undefined;
    }
    if (o.matcher_list !== undefined) {
      const l = this.obj(`${path}.matcher_list`, o.matcher_list, ["matchers"]);
      if (!l) return undefined;
      const list = this.list(`${path}.matcher_list.matchers`, l.matchers);
      if (list.length === 0) this.err(`${path}.matcher_list.matchers`, "at least one FieldMatcher (min_items 1)");
      const matchers: Array<{ predicate: Predicate; onMatch: SkipOnMatch }> = [];
      list.forEach((m, i) => {
        const p = `${path}.matcher_list.matchers[${i}]`;
        const fm = this.obj(p, m, ["predicate", "on_match"]);
        if (!fm) return;
        if (fm.on_match === undefined) this.err(`${p}.on_match`, "required");
        const predicate = this.predicate(`${p}.predicate`, fm.predicate);
        const onMatch = fm.on_match === undefined ? undefined : this.onMatch(`${p}.on_match`, fm.on_match);
        if (predicate && onMatch) matchers.push({ predicate, onMatch });
      });
      return { kind: "list", matchers, onNoMatch };
    }
    const tp = `${path}.matcher_tree`;
    const t = this.obj(tp, o.matcher_tree, ["input", "exact_match_map", "prefix_match_map", "custom_match"]);
    if (!t) return undefined;
    const header = this.input(`${tp}.input`, t.input);
    if (t.custom_match !== undefined) this.err(`${tp}.custom_match`, "custom tree matchers are not modelled");
    const kinds = (["exact_match_map", "prefix_match_map"] as const).filter((k) => t[k] !== undefined);
    if (kinds.length !== 1) {
      if (t.custom_match === undefined) this.err(tp, "exactly one of exact_match_map, prefix_match_map");
      return undefined;
    }
    const mp = `${tp}.${kinds[0]}`;
    const mm = this.obj(mp, t[kinds[0]], ["map"]);
    const entries = mm ? this.obj(`${mp}.map`, mm.map, Object.keys((mm.map ?? {}) as Obj)) : undefined;
    const map = new Map<string, SkipOnMatch>();
    for (const [k, om] of Object.entries(entries ?? {})) {
      const r = this.onMatch(`${mp}.map.${k}`, om);
      if (r) map.set(k, r);
    }
    if (entries && Object.keys(entries).length === 0) this.err(`${mp}.map`, "at least one entry (min_pairs 1)");
    if (header === undefined) return undefined;
    return { kind: kinds[0] === "exact_match_map" ? "exact_map" : "prefix_map", header, map, onNoMatch };
  }

  private predicate(path: string, v: unknown): Predicate | undefined {
    const o = this.obj(path, v, ["single_predicate", "or_matcher", "and_matcher", "not_matcher"]);
    if (!o) return undefined;
    const set = Object.keys(o);
    if (set.length !== 1) {
      this.err(path, "exactly one of single_predicate, or_matcher, and_matcher, not_matcher (match_type is a required oneof)");
      return undefined;
    }
    const k = set[0];
    if (k === "not_matcher") {
      const p = this.predicate(`${path}.not_matcher`, o.not_matcher);
      return p && { kind: "not", p };
    }
    if (k === "or_matcher" || k === "and_matcher") {
      const lo = this.obj(`${path}.${k}`, o[k], ["predicate"]);
      if (!lo) return undefined;
      const items = this.list(`${path}.${k}.predicate`, lo.predicate);
      if (items.length < 2) this.err(`${path}.${k}.predicate`, "at least two predicates (PredicateList min_items 2)");
      const list = items.map((x, i) => this.predicate(`${path}.${k}.predicate[${i}]`, x));
      if (list.some((x) => x === undefined)) return undefined;
      return { kind: k === "or_matcher" ? "or" : "and", list: list as Predicate[] };
    }
    const sp = `${path}.single_predicate`;
    const s = this.obj(sp, o.single_predicate, ["input", "value_match", "custom_match"]);
    if (!s) return undefined;
    const header = this.input(`${sp}.input`, s.input);
    if (s.custom_match !== undefined) {
      this.err(`${sp}.custom_match`, "custom input matchers (e.g. CEL, IP) are not modelled; use value_match");
      return undefined;
    }
    if (s.value_match === undefined) {
      this.err(`${sp}.value_match`, "required (value_match or custom_match is a required oneof)");
      return undefined;
    }
    // xds.type.matcher.v3.StringMatcher: exact, prefix/suffix/contains (min_len 1), safe_regex {google_re2, regex};
    // `custom` is refused as an unsupported field
    const match = this.stringMatcher(`${sp}.value_match`, s.value_match);
    if (match?.kind === "regex") this.requireRe2(`${sp}.value_match.safe_regex`, s.value_match);
    return header !== undefined && match ? { kind: "single", header, match } : undefined;
  }

  /** xds.type.matcher.v3.RegexMatcher: the engine_type oneof is required (google_re2: {}) */
  private requireRe2(path: string, vm: unknown): void {
    const re = (vm as Obj).safe_regex as Obj | undefined;
    if (re && re.google_re2 === undefined) this.err(`${path}.google_re2`, "required in xds.type.matcher.v3.RegexMatcher");
  }

  /** TypedExtensionConfig input: only HttpRequestHeaderMatchInput; the name is lower-cased (LowerCaseString) */
  private input(path: string, v: unknown): string | undefined {
    const o = this.obj(path, v, ["name", "typed_config"]);
    if (!o) return undefined;
    const name = this.str(`${path}.name`, o.name, true);
    if (name === "") this.err(`${path}.name`, "must not be empty (min_len 1)");
    const tc = o.typed_config as Obj | undefined;
    if (!tc || typeof tc !== "object") {
      this.err(`${path}.typed_config`, "required");
      return undefined;
    }
    if (tc["@type"] !== T_REQUEST_HEADER) {
      this.err(`${path}.typed_config.@type`, `only ${T_REQUEST_HEADER} is modelled (not ${String(tc["@type"])})`);
      return undefined;
    }
    const t = this.any(`${path}.typed_config`, tc, T_REQUEST_HEADER, ["header_name"]);
    const h = t && this.str(`${path}.typed_config.header_name`, t.header_name, true);
    if (h === undefined) return undefined;
    if (!HEADER_NAME.test(h)) this.err(`${path}.typed_config.header_name`, "not a valid HTTP header name (HTTP_HEADER_NAME)");
    return h.toLowerCase();
  }

  private onMatch(path: string, v: unknown): SkipOnMatch | undefined {
    const o = this.obj(path, v, ["action", "matcher", "keep_matching"]);
    if (!o) return undefined;
    if (o.keep_matching !== undefined && o.keep_matching !== false) {
      // DelegatingStreamFilter evaluates without a skipped-match callback: a keep_matching action is dropped
      this.err(`${path}.keep_matching`, "not modelled (match_delegate drops keep_matching actions; semantics differ across releases)");
    }
    if (o.matcher !== undefined) {
      this.err(`${path}.matcher`, "nested matchers are not modelled (a nested no-match falls through only in newer releases)");
      return undefined;
    }
    const a = this.obj(`${path}.action`, o.action, ["name", "typed_config"]);
    if (!a) return undefined;
    const name = this.str(`${path}.action.name`, a.name, true) ?? "";
    if (name === "" && a.name !== undefined) this.err(`${path}.action.name`, "must not be empty (min_len 1)");
    const tc = a.typed_config as Obj | undefined;
    if (!tc || tc["@type"] !== T_SKIP) {
      this.err(`${path}.action.typed_config.@type`, `only the SkipFilter action (${T_SKIP}) is modelled`);
      return undefined;
    }
    this.any(`${path}.action.typed_config`, tc, T_SKIP, []);
    return { action: "skip", name };
  }
}

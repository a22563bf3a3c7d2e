// Reader for routes: match (prefix | path, headers[]) and the route action (cluster, timeout, idle_timeout).
// Header matchers follow config.route.v3.HeaderMatcher: string_match (envoy.type.matcher.v3.StringMatcher: exact,
// prefix, suffix, contains, safe_regex; ignore_case), the deprecated direct specifiers (exact_match, prefix_match,
// suffix_match, contains_match, safe_regex_match), present_match, range_match, invert_match,
// treat_missing_header_as_empty. No specifier = present. Evaluation: routing.ts.
import type { Obj } from "./bootstrap_fields.ts";
import { TlsReader } from "./bootstrap_tls.ts";
import type { HeaderMatcher, RouteEntry, StringMatch } from "./bootstrap_types.ts";

const STRING_KINDS = { exact: "exact", prefix: "prefix", suffix: "suffix", contains: "contains", safe_regex: "regex" } as const;
const DIRECT = { exact_match: "exact", prefix_match: "prefix", suffix_match: "suffix", contains_match: "contains", safe_regex_match: "regex" } as const;

export class RouteReader extends TlsReader {
  /** RegexMatcher {google_re2: {}, regex}: RE2 matches the whole value; an anchored JS RegExp stands in for it */
  private regexMatcher(path: string, v: unknown): RegExp | undefined {
    const o = this.obj(path, v, ["google_re2", "regex"]);
    if (!o) return undefined;
    if (o.google_re2 !== undefined) this.obj(`${path}.google_re2`, o.google_re2, []);
    const src = this.str(`${path}.regex`, o.regex, true);
    if (src === undefined) return undefined;
    try {
      return new RegExp(`^(?:${src})$`, "s");
    } catch {
      this.err(`${path}.regex`, "not a valid regular expression");
      return undefined;
    }
  }

  protected stringMatcher(path: string, v: unknown): StringMatch | undefined {
    const o = this.obj(path, v, [...Object.keys(STRING_KINDS), "ignore_case"]);
    if (!o) return undefined;
    const set = Object.keys(STRING_KINDS).filter((k) => o[k] !== undefined) as Array<keyof typeof STRING_KINDS>;
    if (set.length !== 1) {
      this.err(path, "exactly one of exact, prefix, suffix, contains, safe_regex (match_pattern is a required oneof)");
      return undefined;
    }
    let ignoreCase = false;
    if (o.ignore_case !== undefined) {
      if (typeof o.ignore_case !== "boolean") this.err(`${path}.ignore_case`, "expected a bool");
      else ignoreCase = o.ignore_case;
    }
    const key = set[0];
    const kind = STRING_KINDS[key];
    if (kind === "regex") {
      // StringMatcherImpl: "ignore_case has no effect for safe_regex" is a configuration error
      if (ignoreCase) this.err(`${path}.ignore_case`, "ignore_case has no effect for safe_regex");
      const regex = this.regexMatcher(`${path}.safe_regex`, o.safe_regex);
      return regex ? { kind, value: regex.source, ignoreCase: false, regex } : undefined;
    }
    const value = this.str(`${path}.${key}`, o[key]) ?? "";
    if (kind !== "exact" && value.length === 0) this.err(`${path}.${key}`, "must not be empty (min_len 1)");
    return { kind, value, ignoreCase };
  }

  private headerMatcher(path: string, v: unknown): HeaderMatcher | undefined {
    const o = this.obj(path, v, [
      "name", "invert_match", "treat_missing_header_as_empty", "string_match", "present_match", "range_match", ...Object.keys(DIRECT),
    ]);
    if (!o) return undefined;
    const name = (this.str(`${path}.name`, o.name, true) ?? "").toLowerCase();
    if (name === "" && o.name !== undefined) this.err(`${path}.name`, "must not be empty");
    const bool = (k: string): boolean => {
      if (o[k] === undefined) return false;
      if (typeof o[k] !== "boolean") this.err(`${path}.${k}`, "expected a bool");
      return o[k] === true;
    };
    const specs = ["string_match", "present_match", "range_match", ...Object.keys(DIRECT)].filter((k) => o[k] !== undefined);
    if (specs.length > 1) this.err(path, `header_match_specifier is a oneof (found ${specs.join(", ")})`);
    let spec: HeaderMatcher["spec"] = { kind: "present", present: true }; // HEADER_MATCH_SPECIFIER_NOT_SET
    const k = specs[0];
    if (k === "string_match") {
      const m = this.stringMatcher(`${path}.string_match`, o.string_match);
      if (m) spec = { kind: "string", m };
    } else if (k === "present_match") {
      spec = { kind: "present", present: bool("present_match") };
    } else if (k === "range_match") {
      const r = this.obj(`${path}.range_match`, o.range_match, ["start", "end"]);
      const int = (x: unknown, p: string): number => {
        const n = typeof x === "string" ? Number(x) : x; // int64 may be written as a string
        if (typeof n !== "number" || !Number.isSafeInteger(n)) { this.err(p, "expected an integer"); return 0; }
        return n;
      };
      if (r) spec = { kind: "range", start: int(r.start ?? 0, `${path}.range_match.start`), end: int(r.end ?? 0, `${path}.range_match.end`) };
    } else if (k !== undefined) {
      const kind = DIRECT[k as keyof typeof DIRECT];
      if (kind === "regex") {
        const regex = this.regexMatcher(`${path}.${k}`, o[k]);
        if (regex) spec = { kind: "string", m: { kind, value: regex.source, ignoreCase: false, regex } };
      } else {
        const value = this.str(`${path}.${k}`, o[k]) ?? "";
        if (kind !== "exact" && value.length === 0) this.err(`${path}.${k}`, "must not be empty (min_len 1)");
        // HeaderDataExactMatch: an empty exact_match matches any value (string_match exact "" only the empty one)
        if (kind === "exact" && value === "") spec = { kind: "string", m: { kind: "prefix", value: "", ignoreCase: false } };
        else spec = { kind: "string", m: { kind, value, ignoreCase: false } };
      }
    }
    return { name, invert: bool("invert_match"), treatMissingAsEmpty: bool("treat_missing_header_as_empty"), spec };
  }

  protected route(path: string, v: unknown): RouteEntry | undefined {
    const o = this.obj(path, v, ["name", "match", "route"]);
    if (!o) return undefined;
    const m = this.obj(`${path}.match`, o.match, ["prefix", "path", "headers"]);
    const match: RouteEntry["match"] = {};
    if (m) {
      if (m.prefix !== undefined && m.path !== undefined) this.err(`${path}.match`, "prefix and path are a oneof");
      if (m.prefix !== undefined) match.prefix = this.str(`${path}.match.prefix`, m.prefix);
      else if (m.path !== undefined) match.path = this.str(`${path}.match.path`, m.path);
      else this.err(`${path}.match`, "prefix or path required");
      if (m.headers !== undefined) {
        match.headers = [];
        this.list(`${path}.match.headers`, m.headers).forEach((h, i) => {
          const hm = this.headerMatcher(`${path}.match.headers[${i}]`, h);
          if (hm) match.headers!.push(hm);
        });
      }
    }
    const ra = this.obj(`${path}.route`, o.route, ["cluster", "timeout", "idle_timeout"]);
    if (!ra) return undefined;
    return {
      name: this.str(`${path}.name`, o.name) ?? "",
      match,
      cluster: this.str(`${path}.route.cluster`, ra.cluster, true) ?? "",
      timeoutMs: this.dur(`${path}.route.timeout`, ra.timeout, 15_000),
      idleTimeoutMs: ra.idle_timeout === undefined ? undefined : this.dur(`${path}.route.idle_timeout`, ra.idle_timeout, 0),
    };
  }

  /** stats_config.histogram_bucket_settings[]: {match: StringMatcher, buckets: unique doubles > 0 (proto
   *  validation), sorted by Envoy (HistogramSettingsImpl) } */
  protected histogramBuckets(path: string, v: unknown): Array<{ match: StringMatch; buckets: number[] }> {
    const out: Array<{ match: StringMatch; buckets: number[] }> = [];
    this.list(path, v).forEach((e, i) => {
      const p = `${path}[${i}]`;
      const o = this.obj(p, e, ["match", "buckets"]) as Obj | undefined;
      if (!o) return;
      const match = this.stringMatcher(`${p}.match`, o.match);
      const buckets = this.list(`${p}.buckets`, o.buckets);
      if (buckets.length === 0) this.err(`${p}.buckets`, "at least one bucket");
      const ok = buckets.every((b) => typeof b === "number" && b > 0) && new Set(buckets).size === buckets.length;
      if (!ok) this.err(`${p}.buckets`, "expected unique numbers greater than 0");
      if (match && ok) out.push({ match, buckets: (buckets as number[]).slice().sort((a, b) => a - b) });
    });
    return out;
  }
}

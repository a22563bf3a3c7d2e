// protoc-gen-validate rules that Envoy enforces when it loads a config (MessageUtil::validate runs the
// generated Validate() on every message). As in the generated code: rules on plain scalars apply even when
// the field is absent (an absent stat_prefix fails string.min_len = 1); in a oneof only the member that is
// set is checked; message, wrapper, duration and any rules only when set, except `required`.
import { isIP } from "node:net";

/** The (validate.rules) of a field, or undefined. */
export function rulesOf(field) {
  return field.parsedOptions?.find((o) => o && "(validate.rules)" in o)?.["(validate.rules)"];
}

export function messageDisabled(type) {
  const o = type.options ?? {};
  return o["(validate.disabled)"] === true || o["(validate.ignored)"] === true;
}

export function oneofRequired(oneof) {
  return oneof.options?.["(validate.required)"] === true ||
    Boolean(oneof.parsedOptions?.some((o) => o?.["(validate.required)"] === true));
}

const SCALAR_KINDS = new Set(["string", "bytes", "bool", "enum", "float", "double", "int32", "int64", "uint32",
  "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"]);

const asList = (x) => (x === undefined ? undefined : Array.isArray(x) ? x : [x]);
const describe = (v) => (typeof v === "string" ? JSON.stringify(v) : typeof v === "bigint" ? v.toString() : String(v));
const ruleText = (kind, name, value) => `validate.rules ${kind}.${name} = ${typeof value === "object" ? JSON.stringify(value) : value}`;

function cmp(a, b) {
  if (typeof a === "bigint") {
    const n = Number(b);
    if (Number.isInteger(n)) {
      const bb = BigInt(typeof b === "string" ? b : n);
      return a < bb ? -1 : a > bb ? 1 : 0;
    }
    a = Number(a);
  }
  const x = Number(a);
  const y = Number(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Duration rule value ({seconds, nanos}, maybe {}) as nanoseconds. */
const durNanos = (d) => BigInt(d?.seconds ?? 0) * 1000000000n + BigInt(d?.nanos ?? 0);
const fmtDur = (n) => `${Number(n) / 1e9}s`;

/** Range rules gt/gte/lt/lte (PGV: lt below gt means "outside the range"). Returns [rule, value] broken or undefined. */
function rangeViolation(r, v, cmpFn) {
  const lower = r.gt !== undefined ? ["gt", r.gt] : r.gte !== undefined ? ["gte", r.gte] : undefined;
  const upper = r.lt !== undefined ? ["lt", r.lt] : r.lte !== undefined ? ["lte", r.lte] : undefined;
  const okLower = lower && (lower[0] === "gt" ? cmpFn(v, lower[1]) > 0 : cmpFn(v, lower[1]) >= 0);
  const okUpper = upper && (upper[0] === "lt" ? cmpFn(v, upper[1]) < 0 : cmpFn(v, upper[1]) <= 0);
  if (lower && upper && cmpFn(upper[1], lower[1]) < 0) return okLower || okUpper ? undefined : lower;
  if (lower && !okLower) return lower;
  if (upper && !okUpper) return upper;
  return undefined;
}

const HEADER_NAME = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
const HEADER_VALUE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;

/**
 * Checks value v of one kind (`string`, `uint32`, `duration`, `any`, `enum`, ...) against rules r[kind].
 * v: string, bigint (integers), number (floats), boolean, enum number, { duration } nanos, { anyType }.
 * report(message, ruleText).
 */
function checkKind(kind, rules, v, report, enumType) {
  if (!rules) return;
  // protobufjs gives a repeated option written once as a single value
  const r = { ...rules, in: asList(rules.in), not_in: asList(rules.not_in) };
  if (r.ignore_empty && (v === "" || v === 0n || v === 0 || v === false)) return;
  if (kind === "string" || kind === "bytes") {
    const len = kind === "string" ? [...v].length : v.length;
    const bytes = kind === "string" ? Buffer.byteLength(v) : v.length;
    if (r.min_len !== undefined && len < r.min_len) report(`length ${len} is less than ${r.min_len}`, ruleText(kind, "min_len", r.min_len));
    if (r.max_len !== undefined && len > r.max_len) report(`length ${len} is more than ${r.max_len}`, ruleText(kind, "max_len", r.max_len));
    if (r.len !== undefined && len !== r.len) report(`length ${len} is not ${r.len}`, ruleText(kind, "len", r.len));
    if (r.min_bytes !== undefined && bytes < r.min_bytes) report(`${bytes} bytes, fewer than ${r.min_bytes}`, ruleText(kind, "min_bytes", r.min_bytes));
    if (r.max_bytes !== undefined && bytes > r.max_bytes) report(`${bytes} bytes, more than ${r.max_bytes}`, ruleText(kind, "max_bytes", r.max_bytes));
    if (kind !== "string") return;
    if (r.prefix !== undefined && !v.startsWith(r.prefix)) report(`does not start with ${describe(r.prefix)}`, ruleText(kind, "prefix", JSON.stringify(r.prefix)));
    if (r.suffix !== undefined && !v.endsWith(r.suffix)) report(`does not end with ${describe(r.suffix)}`, ruleText(kind, "suffix", JSON.stringify(r.suffix)));
    if (r.contains !== undefined && !v.includes(r.contains)) report(`does not contain ${describe(r.contains)}`, ruleText(kind, "contains", JSON.stringify(r.contains)));
    if (r.const !== undefined && v !== r.const) report(`must be ${describe(r.const)}`, ruleText(kind, "const", JSON.stringify(r.const)));
    if (r.in && !r.in.includes(v)) report(`${describe(v)} is not one of ${r.in.map(describe).join(", ")}`, ruleText(kind, "in", JSON.stringify(r.in)));
    if (r.not_in?.includes(v)) report(`${describe(v)} is not allowed`, ruleText(kind, "not_in", JSON.stringify(r.not_in)));
    if (r.well_known_regex !== undefined) {
      const wk = String(r.well_known_regex);
      const strict = r.strict !== false;
      const re = /NAME|^1$/.test(wk) ? (strict ? HEADER_NAME : HEADER_LOOSE) : strict ? HEADER_VALUE : HEADER_LOOSE;
      if (v !== "" && !re.test(v)) report(`${describe(v)} is not a valid ${/NAME|^1$/.test(wk) ? "HTTP header name" : "HTTP header value"}`, ruleText(kind, "well_known_regex", wk));
    }
    if ((r.ip && !isIP(v)) || (r.ipv4 && isIP(v) !== 4) || (r.ipv6 && isIP(v) !== 6)) report(`${describe(v)} is not an IP address`, ruleText(kind, "ip", true));
    if (r.pattern !== undefined) {
      let re;
      try {
        re = new RegExp(r.pattern, "u"); // RE2 syntax mostly agrees; patterns JS cannot compile are skipped
      } catch {
        re = undefined;
      }
      if (re && !re.test(v)) report(`${describe(v)} does not match ${r.pattern}`, ruleText(kind, "pattern", JSON.stringify(r.pattern)));
    }
    return;
  }
  if (kind === "bool") {
    if (r.const !== undefined && v !== r.const) report(`must be ${r.const}`, ruleText(kind, "const", r.const));
    return;
  }
  if (kind === "enum") {
    if (r.defined_only && enumType && !Object.values(enumType.values).includes(v)) report(`${v} is not a defined value of ${enumType.fullName.slice(1)}`, ruleText(kind, "defined_only", true));
    if (r.const !== undefined && v !== r.const) report(`must be ${r.const}`, ruleText(kind, "const", r.const));
    if (r.in && !r.in.includes(v)) report(`${v} is not one of ${r.in.join(", ")}`, ruleText(kind, "in", JSON.stringify(r.in)));
    if (r.not_in?.includes(v)) report(`${v} is not allowed`, ruleText(kind, "not_in", JSON.stringify(r.not_in)));
    return;
  }
  if (kind === "duration") {
    const bad = rangeViolation(r, v, (a, b) => {
      const x = typeof a === "bigint" ? a : durNanos(a);
      const y = typeof b === "bigint" ? b : durNanos(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    if (bad) report(`${fmtDur(v)} must be ${{ gt: ">", gte: "≥", lt: "<", lte: "≤" }[bad[0]]} ${fmtDur(durNanos(bad[1]))}`, ruleText(kind, bad[0], fmtDur(durNanos(bad[1]))));
    if (r.const !== undefined && v !== durNanos(r.const)) report(`must be ${fmtDur(durNanos(r.const))}`, ruleText(kind, "const", fmtDur(durNanos(r.const))));
    return;
  }
  if (kind === "any") {
    if (r.in && !r.in.includes(`type.googleapis.com/${v}`)) report(`@type ${v} is not one of ${r.in.join(", ")}`, ruleText(kind, "in", JSON.stringify(r.in)));
    if (r.not_in?.includes(`type.googleapis.com/${v}`)) report(`@type ${v} is not allowed here`, ruleText(kind, "not_in", JSON.stringify(r.not_in)));
    return;
  }
  // numbers
  const bad = rangeViolation(r, v, cmp);
  if (bad) report(`${describe(v)} must be ${{ gt: ">", gte: "≥", lt: "<", lte: "≤" }[bad[0]]} ${bad[1]}`, ruleText(kind, bad[0], bad[1]));
  if (r.const !== undefined && cmp(v, r.const) !== 0) report(`must be ${r.const}`, ruleText(kind, "const", r.const));
  if (r.in && !r.in.some((x) => cmp(v, x) === 0)) report(`${describe(v)} is not one of ${r.in.join(", ")}`, ruleText(kind, "in", JSON.stringify(r.in)));
  if (r.not_in?.some((x) => cmp(v, x) === 0)) report(`${describe(v)} is not allowed`, ruleText(kind, "not_in", JSON.stringify(r.not_in)));
}

/**
 * Rules for one singular value that is set. kind: the field's scalar kind, "enum", or for messages the
 * value's description { message, duration?, wrapped?, wrappedKind?, anyType? }.
 */
export function checkSetValue(rules, field, v, report) {
  if (!rules) return;
  const enumType = field.resolvedType?.values ? field.resolvedType : undefined;
  if (v && typeof v === "object" && "message" in v) {
    if (rules.duration && v.duration !== undefined) checkKind("duration", rules.duration, v.duration, report);
    if (rules.any && v.anyType !== undefined) checkKind("any", rules.any, v.anyType, report);
    if (v.wrappedKind && rules[v.wrappedKind] && v.wrapped !== undefined) checkKind(v.wrappedKind, rules[v.wrappedKind], v.wrapped, report);
    return;
  }
  const kind = enumType ? "enum" : field.type;
  if (SCALAR_KINDS.has(kind) && rules[kind]) checkKind(kind, rules[kind], v, report, enumType);
}

/** Rules of a field that is absent (or a oneof member not set: not called for those). */
export function checkAbsent(rules, field, report) {
  if (!rules) return;
  if (field.map) {
    if (rules.map?.min_pairs > 0 && !rules.map.ignore_empty) report(`no entries, at least ${rules.map.min_pairs} required`, ruleText("map", "min_pairs", rules.map.min_pairs));
    return;
  }
  if (field.repeated) {
    if (rules.repeated?.min_items > 0 && !rules.repeated.ignore_empty) report(`no items, at least ${rules.repeated.min_items} required`, ruleText("repeated", "min_items", rules.repeated.min_items));
    return;
  }
  if (rules.message?.required) return report("required field is missing", ruleText("message", "required", true));
  if (rules.duration?.required) return report("required Duration is missing", ruleText("duration", "required", true));
  if (rules.any?.required) return report("required Any is missing", ruleText("any", "required", true));
  if (rules.timestamp?.required) return report("required Timestamp is missing", ruleText("timestamp", "required", true));
  const enumType = field.resolvedType?.values ? field.resolvedType : undefined;
  if (field.resolvedType && !enumType) return; // message (wrappers too): no scalar rule applies when unset
  const kind = enumType ? "enum" : field.type;
  const dflt = kind === "string" ? "" : kind === "bytes" ? new Uint8Array(0) : kind === "bool" ? false
    : kind === "enum" ? 0 : kind === "float" || kind === "double" ? 0 : 0n;
  if (rules[kind]) checkKind(kind, rules[kind], dflt, report, enumType);
}

/** repeated/map rules on a list of item values (undefined for items that failed their own checks). */
export function checkCollection(rules, field, items, report, itemReport) {
  if (!rules) return;
  const r = field.map ? rules.map : rules.repeated;
  const kind = field.map ? "map" : "repeated";
  if (!r) return;
  const n = items.length;
  if (r.ignore_empty && n === 0) return;
  const min = field.map ? r.min_pairs : r.min_items;
  const max = field.map ? r.max_pairs : r.max_items;
  if (min !== undefined && n < min) report(`${n} item${n === 1 ? "" : "s"}, at least ${min} required`, ruleText(kind, field.map ? "min_pairs" : "min_items", min));
  if (max !== undefined && n > max) report(`${n} items, at most ${max} allowed`, ruleText(kind, field.map ? "max_pairs" : "max_items", max));
  if (r.unique) {
    const seen = new Set();
    for (const v of items) {
      const k = typeof v === "object" ? JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x)) : String(v);
      if (seen.has(k)) report(`duplicate item ${describe(v)}`, ruleText(kind, "unique", true));
      seen.add(k);
    }
  }
  const itemRules = field.map ? r.values : r.items;
  if (itemRules) items.forEach((v, i) => { if (v !== undefined) checkSetValue(itemRules, field, v, itemReport(i)); });
}

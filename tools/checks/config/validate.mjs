// The proto3 JSON mapping as Envoy's protobuf parser applies it to a config tree (see yaml.mjs), checked
// against the message types of the pinned Envoy API, plus the protoc-gen-validate rules (pgv.mjs).
// Findings: { severity: error|warning|note, code, path, line, message, rule? }, path as written in the file.
import { checkAbsent, checkCollection, checkSetValue, messageDisabled, oneofRequired, rulesOf } from "./pgv.mjs";

const INT_RANGES = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n], sint32: [-(2n ** 31n), 2n ** 31n - 1n], sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n], fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], sint64: [-(2n ** 63n), 2n ** 63n - 1n], sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n], fixed64: [0n, 2n ** 64n - 1n],
};
const WRAPPERS = {
  DoubleValue: "double", FloatValue: "float", Int64Value: "int64", UInt64Value: "uint64", Int32Value: "int32",
  UInt32Value: "uint32", BoolValue: "bool", StringValue: "string", BytesValue: "bytes",
};
// Well-known types whose JSON form is not an object of their fields (in an Any they go under "value").
const SPECIAL_JSON = new Set(["Any", "Duration", "Timestamp", "Struct", "Value", "ListValue", "Empty", "FieldMask", ...Object.keys(WRAPPERS)]);
// Envoy refuses Durations above this many seconds (DurationUtil, protobuf's own limit is higher).
const MAX_DURATION_SECONDS = 9223372035n;
const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const child = (path, key) => (path === "" ? key : /^[A-Za-z_@][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}["${key}"]`);
const shown = (n) => (n.t === "map" ? "an object" : n.t === "seq" ? "a list" : n.kind === "string" ? `the string ${JSON.stringify(n.value)}`
  : n.kind === "int" || n.kind === "float" ? `the number ${n.text}` : n.kind === "bool" ? `the bool ${n.text}` : "null");

function editDistance(a, b) {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

export class Validator {
  /** options.partial: the node is merged into an existing object (EnvoyFilter MERGE, bootstrap override),
   *  so absent fields and unset required oneofs are not errors. */
  constructor(api, options = {}) {
    this.api = api;
    this.partial = Boolean(options.partial);
    this.findings = [];
  }

  add(severity, code, path, line, message, rule) {
    this.findings.push({ severity, code, path, line, message, ...(rule ? { rule } : {}) });
  }

  /** Validates node as the message typeName (e.g. "envoy.config.bootstrap.v3.Bootstrap"). */
  check(node, typeName, path = "") {
    const type = this.lookupType(typeName);
    if (!type) {
      this.add("error", "any-type", path, node?.line, `type ${typeName} is not in the pinned protos (${this.api.source.package})`);
      return;
    }
    this.message(type, node, path);
  }

  lookupType(name) {
    try {
      const t = this.api.root.lookup(name.replace(/^\./, ""));
      return t && t.fields !== undefined ? t : undefined;
    } catch {
      return undefined;
    }
  }

  /** Returns a value description for PGV ({ message, duration?, wrapped?, anyType? }) or undefined. */
  message(type, node, path) {
    const full = type.fullName.slice(1);
    if (full.startsWith("google.protobuf.")) {
      const special = this.wellKnown(full, node, path);
      if (special !== null) return special;
    }
    if (node.t !== "map") {
      this.add("error", "type", path, node.line, `expected an object (${full}), got ${shown(node)}`);
      return undefined;
    }
    const byName = new Map();
    for (const f of type.fieldsArray) {
      byName.set(f.name, f);
      byName.set(camel(f.name), f);
    }
    const set = new Map(); // field name -> entry
    for (const e of node.entries) {
      const p = child(path, e.key);
      const field = byName.get(e.key);
      if (!field) {
        this.unknownField(type, e, p);
        continue;
      }
      if (e.node.t === "scalar" && e.node.kind === "null") continue; // null = not set
      if (set.has(field.name)) this.add("warning", "duplicate-field", p, e.line, `'${field.name}' is given twice (as ${set.get(field.name).key} and ${e.key}); the last one is used`);
      set.set(field.name, e);
      if (field.overlay) this.add("note", "envoy-version", p, e.line, `'${field.name}' needs Envoy ${field.overlay.since}+; it is newer than the pinned API and checked from tools/checks/config/api-overlay.json`);
      if (field.options?.deprecated) this.add("warning", "deprecated", p, e.line, `'${field.name}' is deprecated in ${full}`);
      this.field(field, e.node, p);
    }
    const pgv = !messageDisabled(type);
    for (const oneof of type.oneofsArray) {
      const members = oneof.fieldsArray.map((f) => f.name);
      if (oneof.name.startsWith("_") && members.length === 1 && type.fields[members[0]].options?.proto3_optional) continue;
      const present = members.filter((m) => set.has(m));
      if (present.length > 1) {
        const e = set.get(present[1]);
        this.add("error", "oneof", child(path, e.key), e.line, `only one of ${present.join(", ")} may be set (oneof ${oneof.name})`);
      } else if (present.length === 0 && pgv && !this.partial && oneofRequired(oneof)) {
        this.add("error", "pgv", path, node.line, `one of ${members.join(", ")} is required (oneof ${oneof.name})`, "validate.required oneof");
      }
    }
    if (pgv && !this.partial) {
      for (const f of type.fieldsArray) {
        if (set.has(f.name) || f.partOf) continue; // oneof members (and proto3 optional) are checked only when set
        checkAbsent(rulesOf(f), f, (msg, rule) => this.add("error", "pgv", child(path, f.name), node.line, `${f.name}: ${msg}`, rule));
      }
    }
    return { message: full };
  }

  unknownField(type, e, p) {
    const names = type.fieldsArray.map((f) => f.name);
    const reserved = (type.reserved ?? []).filter((r) => typeof r === "string");
    let hint = "";
    if (reserved.includes(e.key)) hint = " (removed from the API)";
    else {
      const best = names.map((n) => [n, editDistance(e.key.toLowerCase(), n)]).sort((a, b) => a[1] - b[1])[0];
      if (best && best[1] <= Math.max(1, Math.floor(e.key.length / 4))) hint = ` (did you mean '${best[0]}'?)`;
    }
    this.add("error", "unknown-field", p, e.line, `unknown field '${e.key}' in ${type.fullName.slice(1)}${hint}`);
  }

  field(field, node, path) {
    if (field.map) {
      if (node.t !== "map") return this.add("error", "type", path, node.line, `expected an object (map), got ${shown(node)}`);
      const vals = node.entries.map((e) => {
        const p = child(path, e.key);
        this.scalar(field.keyType, { t: "scalar", kind: "string", value: e.key, text: e.key, line: e.line }, p, true);
        return this.value(field, e.node, p);
      });
      this.collectionRules(field, vals, path, node.line);
      return;
    }
    if (field.repeated) {
      let items = [];
      if (node.t === "seq") {
        const flat = (n, p) => n.items.forEach((x, i) => {
          if (x.t === "seq") {
            this.add("warning", "nested-list", `${p}[${i}]`, x.line, "nested list: Envoy flattens it");
            flat(x, `${p}[${i}]`);
          } else if (x.t === "scalar" && x.kind === "null") this.add("warning", "null-in-list", `${p}[${i}]`, x.line, "null list element is skipped");
          else items.push([x, `${p}[${i}]`]);
        });
        flat(node, path);
      } else {
        this.add("warning", "single-for-list", path, node.line, `'${field.name}' is a list; a single value is read as a one-element list`);
        items = [[node, path]];
      }
      const vals = items.map(([n, p]) => this.value(field, n, p));
      this.collectionRules(field, vals, path, node.line, items.map(([n, p]) => [p, n.line]));
      return;
    }
    const v = this.value(field, node, path);
    if (v !== undefined) checkSetValue(rulesOf(field), field, v, (msg, rule) => this.add("error", "pgv", path, node.line, msg, rule));
  }

  collectionRules(field, vals, path, line, where = []) {
    checkCollection(rulesOf(field), field, vals, (msg, rule) => this.add("error", "pgv", path, line, msg, rule),
      (i) => (msg, rule) => this.add("error", "pgv", where[i]?.[0] ?? path, where[i]?.[1] ?? line, msg, rule));
  }

  /** One value of field's element type. */
  value(field, node, path) {
    if (field.unresolvable) {
      this.add("error", "any-type", path, node.line, `field '${field.name}' has type ${field.type}, which the pinned protos (${this.api.source.package}) do not ship`);
      return undefined;
    }
    const rt = field.resolvedType;
    if (rt && rt.values !== undefined) return this.enumValue(rt, node, path);
    if (rt) return this.message(rt, node, path);
    return this.scalar(field.type, node, path);
  }

  enumValue(en, node, path) {
    const full = en.fullName.slice(1);
    if (node.t === "scalar" && (node.kind === "int" || (node.kind === "string" && /^-?\d+$/.test(node.value)))) {
      return Number(node.value); // undefined numbers pass unless enum.defined_only
    }
    if (node.t !== "scalar" || node.kind !== "string") {
      this.add("error", "type", path, node.line, `expected an enum name of ${full}, got ${shown(node)}`);
      return undefined;
    }
    const name = Object.keys(en.values).find((k) => k.toUpperCase() === node.value.toUpperCase());
    if (name === undefined) {
      this.add("error", "enum", path, node.line, `unknown value '${node.value}' for enum ${full} (one of ${Object.keys(en.values).join(", ")})`);
      return undefined;
    }
    if (en.valuesOptions?.[name]?.deprecated) this.add("warning", "deprecated", path, node.line, `enum value ${name} of ${full} is deprecated`);
    return en.values[name];
  }

  scalar(kind, node, path, isKey = false) {
    const bad = (what) => {
      const quote = kind === "string" && (node.kind === "int" || node.kind === "bool") ? " (YAML reads it unquoted as that; quote it)" : "";
      this.add("error", "type", path, node.line, `expected ${what}, got ${shown(node)}${quote}`);
      return undefined;
    };
    if (node.t !== "scalar" || node.kind === "null") return bad(kind === "string" ? "a string" : `a ${kind}`);
    if (kind === "string") return node.kind === "string" ? node.value : bad("a string");
    if (kind === "bool") {
      if (node.kind === "bool") return node.value;
      if (node.kind === "string" && (node.value === "true" || node.value === "false")) return node.value === "true";
      return bad("true or false");
    }
    if (kind === "bytes") {
      if (node.kind !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(node.value)) return bad("base64 bytes");
      return Buffer.from(node.value, "base64");
    }
    if (kind === "double" || kind === "float") {
      if (node.kind === "int" || node.kind === "float") return Number(node.value);
      if (node.kind === "string" && (/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(node.value) || ["NaN", "Infinity", "-Infinity"].includes(node.value))) return Number(node.value);
      return bad("a number");
    }
    const range = INT_RANGES[kind];
    if (!range) return bad(kind);
    let v;
    if (node.kind === "int") v = node.value;
    else if (node.kind === "float" || (node.kind === "string" && /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(node.value))) {
      if (/^-?\d+$/.test(node.value)) v = BigInt(node.value);
      else {
        const n = Number(node.value);
        if (!Number.isInteger(n)) return bad(`an integer (${kind})`);
        v = BigInt(n);
      }
    } else return bad(isKey ? `an integer map key (${kind})` : `an integer (${kind})`);
    if (v < range[0] || v > range[1]) {
      this.add("error", "type", path, node.line, `${v} is out of range for ${kind}`);
      return undefined;
    }
    return v;
  }

  /** Well-known types with their own JSON form; null means "an ordinary message". */
  wellKnown(full, node, path) {
    const name = full.slice("google.protobuf.".length);
    if (name === "Any") return this.any(node, path);
    if (name === "Duration") return this.duration(node, path);
    if (WRAPPERS[name]) {
      const inner = node.t === "map" && node.entries.length === 1 && node.entries[0].key === "value" ? node.entries[0].node : node;
      const v = this.scalar(WRAPPERS[name], inner, path);
      return v === undefined ? undefined : { message: full, wrapped: v, wrappedKind: WRAPPERS[name] };
    }
    if (name === "Struct") return node.t === "map" ? { message: full } : (this.add("error", "type", path, node.line, `expected an object (Struct), got ${shown(node)}`), undefined);
    if (name === "ListValue") return node.t === "seq" ? { message: full } : (this.add("error", "type", path, node.line, `expected a list (ListValue), got ${shown(node)}`), undefined);
    if (name === "Value") return { message: full };
    if (name === "Empty") return node.t === "map" && node.entries.length === 0 ? { message: full } : (this.add("error", "type", path, node.line, "expected {} (Empty)"), undefined);
    if (name === "FieldMask") return this.scalar("string", node, path) === undefined ? undefined : { message: full };
    if (name === "Timestamp") {
      if (node.t === "scalar" && node.kind === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(node.value)) return { message: full };
      this.add("error", "timestamp", path, node.line, `expected an RFC 3339 timestamp, got ${shown(node)}`);
      return undefined;
    }
    return null;
  }

  duration(node, path) {
    let nanos;
    if (node.t === "scalar" && node.kind === "string") {
      const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(node.value);
      if (m) nanos = (BigInt(m[2]) * 1000000000n + BigInt((m[3] ?? "").padEnd(9, "0"))) * (m[1] ? -1n : 1n);
    } else if (node.t === "map" && node.entries.every((e) => e.key === "seconds" || e.key === "nanos")) {
      const get = (k) => node.entries.find((e) => e.key === k)?.node;
      const s = get("seconds") ? this.scalar("int64", get("seconds"), child(path, "seconds")) : 0n;
      const n = get("nanos") ? this.scalar("int32", get("nanos"), child(path, "nanos")) : 0n;
      if (s === undefined || n === undefined) return undefined;
      nanos = s * 1000000000n + n;
    }
    if (nanos === undefined) {
      this.add("error", "duration", path, node.line, `bad Duration ${node.t === "scalar" ? JSON.stringify(node.text) : shown(node)}: write seconds with an "s" suffix, e.g. "5s" or "0.25s"`);
      return undefined;
    }
    if (nanos < 0n) {
      this.add("error", "duration", path, node.line, `negative Duration ${node.text}: Envoy refuses negative durations`);
      return undefined;
    }
    if (nanos / 1000000000n > MAX_DURATION_SECONDS) {
      this.add("error", "duration", path, node.line, `Duration ${node.text} is out of range (at most ${MAX_DURATION_SECONDS}s)`);
      return undefined;
    }
    return { message: "google.protobuf.Duration", duration: nanos };
  }

  any(node, path) {
    if (node.t !== "map") {
      this.add("error", "type", path, node.line, `expected an object with "@type" (Any), got ${shown(node)}`);
      return undefined;
    }
    const typeEntry = node.entries.find((e) => e.key === "@type");
    if (!typeEntry) {
      if (node.entries.length === 0) this.add("warning", "any", path, node.line, "empty Any {}");
      else this.add("error", "any", path, node.line, `Any without "@type" (has ${node.entries.map((e) => e.key).join(", ")})`);
      return undefined;
    }
    const url = typeEntry.node.t === "scalar" && typeEntry.node.kind === "string" ? typeEntry.node.value : undefined;
    const p = child(path, "@type");
    if (!url || !url.includes("/")) {
      this.add("error", "any-type", p, typeEntry.line, `"@type" must be a type URL like type.googleapis.com/<message>, got ${shown(typeEntry.node)}`);
      return undefined;
    }
    const name = url.slice(url.lastIndexOf("/") + 1);
    const type = this.lookupType(name);
    if (!type) {
      const missing = this.api.missingImports.length ? ` (not shipped by the package: ${this.api.missingImports.join(", ")})` : "";
      this.add("error", "any-type", p, typeEntry.line, `unknown "@type" ${url}: no message ${name} in the pinned Envoy API ${this.api.source.package}${missing}`);
      return undefined;
    }
    const rest = { t: "map", line: node.line, entries: node.entries.filter((e) => e !== typeEntry) };
    if (name.startsWith("google.protobuf.") && SPECIAL_JSON.has(name.slice("google.protobuf.".length))) {
      const extra = rest.entries.filter((e) => e.key !== "value");
      if (extra.length) this.add("error", "unknown-field", child(path, extra[0].key), extra[0].line, `unknown field '${extra[0].key}' next to "@type" ${name} (its JSON form goes under "value")`);
      const valueEntry = rest.entries.find((e) => e.key === "value");
      if (valueEntry) this.message(type, valueEntry.node, child(path, "value"));
    } else {
      this.message(type, rest, path);
      if (name === "xds.type.v3.TypedStruct" || name === "udpa.type.v1.TypedStruct") this.typedStruct(rest, path);
    }
    return { message: "google.protobuf.Any", anyType: name };
  }

  typedStruct(node, path) {
    const url = node.entries.find((e) => e.key === "type_url" || e.key === "typeUrl")?.node;
    const value = node.entries.find((e) => e.key === "value");
    if (!url || url.kind !== "string" || !value) return;
    const type = this.lookupType(url.value.slice(url.value.lastIndexOf("/") + 1));
    if (type) this.message(type, value.node, child(path, "value"));
  }
}

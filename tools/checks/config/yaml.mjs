// Reads YAML (or JSON) into a small tree the validator walks, typing scalars the way Envoy does.
//
// Envoy converts YAML with yaml-cpp before the proto3 JSON parser sees it: a quoted or block scalar is a
// string; an unquoted scalar is null (~, null, empty), else a bool (y/yes/true/on, n/no/false/off in lower,
// Capitalised or UPPER case), else an integer (decimal, 0x hex, 0 octal, within int64), else a string — so an
// unquoted 1.5 is the string "1.5". Keys tagged !ignore are dropped; `<<` merge keys are not special (an
// unknown field); only the first document is read; a repeated key keeps its last value.
//
// Nodes: { t: "map", line, entries: [{ key, line, node }] } | { t: "seq", line, items } |
//        { t: "scalar", line, kind: "null"|"bool"|"int"|"float"|"string", value, text }
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseAllDocuments } from "yaml";

const NULLS = new Set(["", "~", "null", "Null", "NULL"]);
const TRUE = ["y", "yes", "true", "on"];
const FALSE = ["n", "no", "false", "off"];
const cases = (words) => new Set(words.flatMap((w) => [w, w[0].toUpperCase() + w.slice(1), w.toUpperCase()]));
const TRUES = cases(TRUE);
const FALSES = cases(FALSE);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Envoy's (yaml-cpp's) reading of an unquoted scalar. With floats (Kubernetes manifests: sigs.k8s.io/yaml
 * turns them into JSON numbers before Istio reads a patch) a decimal fraction is a number instead of a string.
 */
export function typePlain(text, floats = false) {
  if (NULLS.has(text)) return { kind: "null", value: null };
  if (TRUES.has(text)) return { kind: "bool", value: true };
  if (FALSES.has(text)) return { kind: "bool", value: false };
  let m;
  let v;
  if ((m = /^([-+]?)(0|[1-9][0-9]*)$/.exec(text))) v = BigInt(m[2]);
  else if ((m = /^([-+]?)0x([0-9a-fA-F]+)$/.exec(text))) v = BigInt(`0x${m[2]}`);
  else if ((m = /^([-+]?)0([0-7]+)$/.exec(text))) v = BigInt(`0o${m[2]}`);
  if (v !== undefined) {
    if (m[1] === "-") v = -v;
    if (v >= INT64_MIN && v <= INT64_MAX) return { kind: "int", value: v };
  }
  if (floats && /^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(text)) return { kind: "float", value: Number(text) };
  return { kind: "string", value: text };
}

/**
 * Parses text. format "yaml" (Envoy's typing), "k8s" (the same with float numbers) or "json" (JSON types).
 * Returns { root, roots, warnings, errors }: root is the first document (the one Envoy reads), roots all of
 * them (Kubernetes files); warnings/errors are { line, message }.
 */
export function parseConfig(text, format = "yaml", lineOffset = 0) {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, schema: "failsafe", uniqueKeys: false, merge: false, prettyErrors: false });
  const warnings = [];
  const errors = [];
  const lineOf = (node) => (node?.range ? lc.linePos(node.range[0]).line + lineOffset : undefined);
  const docList = Array.isArray(docs) ? docs : [docs];
  if (docList.length === 0) return { root: undefined, roots: [], warnings, errors: [{ line: 1, message: "empty document" }] };
  for (const d of docList) {
    for (const e of d.errors) errors.push({ line: (e.linePos?.[0]?.line ?? 0) + lineOffset, message: e.message.split("\n")[0] });
  }
  if (docList.length > 1 && format !== "k8s") warnings.push({ line: lineOf(docList[1].contents), message: "only the first YAML document is read" });
  let doc;
  const convert = (node, depth) => {
    if (depth > 200) throw new Error("nesting too deep (alias cycle?)");
    if (isAlias(node)) return convert(node.resolve(doc), depth + 1);
    const line = lineOf(node);
    if (node === null || node === undefined) return { t: "scalar", line, kind: "null", value: null, text: "" };
    if (isMap(node)) {
      const entries = [];
      for (const pair of node.items) {
        if (pair.key?.tag === "!ignore") continue;
        const keyNode = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
        const key = isScalar(keyNode) ? String(keyNode.value) : JSON.stringify(keyNode?.toJSON?.() ?? null);
        const value = pair.value === null ? { t: "scalar", line: lineOf(keyNode), kind: "null", value: null, text: "" }
          : convert(pair.value, depth + 1);
        const previous = entries.findIndex((e) => e.key === key);
        if (previous >= 0) {
          warnings.push({ line: lineOf(keyNode), message: `duplicate key '${key}': the last value is used` });
          entries.splice(previous, 1);
        }
        entries.push({ key, line: lineOf(keyNode), node: value });
      }
      return { t: "map", line, entries };
    }
    if (isSeq(node)) return { t: "seq", line, items: node.items.map((i) => convert(i, depth + 1)) };
    if (isScalar(node)) {
      const text = String(node.value);
      if (format === "json") {
        if (node.type !== "PLAIN") return { t: "scalar", line, kind: "string", value: text, text };
        if (text === "null") return { t: "scalar", line, kind: "null", value: null, text };
        if (text === "true" || text === "false") return { t: "scalar", line, kind: "bool", value: text === "true", text };
        if (/^-?(0|[1-9]\d*)$/.test(text)) return { t: "scalar", line, kind: "int", value: BigInt(text), text };
        if (/^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$/.test(text)) return { t: "scalar", line, kind: "float", value: Number(text), text };
        return { t: "scalar", line, kind: "string", value: text, text };
      }
      if (node.type !== "PLAIN") return { t: "scalar", line, kind: "string", value: text, text };
      return { t: "scalar", line, ...typePlain(text, format === "k8s"), text };
    }
    throw new Error(`unsupported YAML node at line ${line}`);
  };
  const roots = docList.map((d) => {
    doc = d;
    return d.contents === null ? undefined : convert(d.contents, 0);
  });
  return { root: roots[0], roots, warnings, errors };
}

/** The node as plain JSON-like data (ints as Numbers when safe), for code that reads shipped configs. */
export function toPlain(node) {
  if (node.t === "map") return Object.fromEntries(node.entries.map((e) => [e.key, toPlain(e.node)]));
  if (node.t === "seq") return node.items.map(toPlain);
  if (node.kind === "int") return Number(node.value);
  return node.value;
}

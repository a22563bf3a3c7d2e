#!/usr/bin/env node
// make check-config: would Envoy accept these configs? Validates Envoy configs (bootstrap by default) and
// the Envoy config embedded in Kubernetes manifests against Envoy's v3 API protos from @grpc/grpc-js-xds.
// Usage: node tools/checks/check-config.mjs [--type MESSAGE] [--json] FILE|DIR...
// Exit: 0 no errors (warnings and notes allowed), 1 errors, 2 usage, unreadable file or unknown --type.
import { readFileSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadApi } from "./config/api.mjs";
import { findTargets } from "./config/sources.mjs";
import { Validator } from "./config/validate.mjs";

/**
 * Checks one file; returns { file, type, ok, errors, findings, targets: [{ label, type, partial, findings }],
 * skipped, problems }. type/ok/errors/findings summarise the file (findings of all targets and problems).
 */
export function checkFile(api, file, text, options = {}) {
  const found = findTargets(file, text, options);
  const targets = found.targets.map((t) => {
    const v = new Validator(api, { partial: t.partial });
    v.check(t.node, t.type, t.base);
    return { label: t.label, type: t.type, partial: t.partial, findings: v.findings };
  });
  const findings = [...found.problems, ...targets.flatMap((t) => t.findings)];
  const errors = count(findings, "error");
  return { file, type: targets[0]?.type, ok: errors === 0, errors, findings, targets, skipped: found.skipped, problems: found.problems };
}

function expand(arg) {
  if (!statSync(arg).isDirectory()) return [arg];
  return readdirSync(arg).sort().flatMap((n) => {
    const p = join(arg, n);
    return statSync(p).isDirectory() ? expand(p) : /\.(ya?ml|json)$/i.test(n) ? [p] : [];
  });
}

const count = (fs, s) => fs.filter((f) => f.severity === s).length;
const plural = (n, w) => `${n} ${w}${n === 1 ? "" : "s"}`;
const line = (f) => `  ${f.severity} ${f.path || "(top)"}${f.line ? ` (line ${f.line})` : ""}: ${f.message}${f.rule ? ` [${f.rule}]` : ""}`;

function main(argv) {
  let type;
  let json = false;
  const args = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") json = true;
    else if (a === "--type") type = argv[++i];
    else if (a === "-h" || a === "--help") return usage();
    else if (a.startsWith("-")) return usage(`unknown option ${a}`);
    else args.push(a);
  }
  if (args.length === 0) return usage("no file given");
  let files;
  try {
    files = args.flatMap(expand);
  } catch (e) {
    console.error(`check-config: ${e.message}`);
    return 2;
  }
  const api = loadApi();
  if (type && !new Validator(api).lookupType(type)) return usage(`--type ${type}: no such message in the pinned protos`);
  const results = [];
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      console.error(`check-config: ${file}: ${e.message}`);
      return 2;
    }
    results.push(checkFile(api, file, text, { type }));
  }
  const all = results.flatMap((r) => [...r.problems, ...r.targets.flatMap((t) => t.findings)]);
  const errors = count(all, "error");
  if (json) {
    const apiInfo = { ...api.source, files: api.files, missingImports: api.missingImports, unresolvedFields: api.unresolved };
    console.log(JSON.stringify({ ok: errors === 0, api: apiInfo, files: results }, (_, v) => (typeof v === "bigint" ? v.toString() : v), 2));
    return errors ? 1 : 0;
  }
  console.log(`check-config: ${api.source.summary}, from ${api.source.package}: ${api.files} proto files; ` +
    `${api.unresolved.length} fields unchecked (need ${api.missingImports.join(", ")}, not in the package)`);
  for (const r of results) {
    for (const p of r.problems) console.log(`${r.file}: ${p.severity} (line ${p.line ?? "?"}): ${p.message}`);
    for (const s of r.skipped) console.log(`${s.label}: skipped (${s.reason})`);
    if (r.targets.length === 0 && r.skipped.length === 0 && r.problems.length === 0) console.log(`${r.file}: no Envoy config found`);
    for (const t of r.targets) {
      const fs = t.findings;
      const summary = `${t.type}${t.partial ? ", partial" : ""}; ${plural(count(fs, "error"), "error")}, ${plural(count(fs, "warning"), "warning")}, ${plural(count(fs, "note"), "note")}`;
      console.log(`${t.label}: ${count(fs, "error") ? "FAIL" : "OK"} (${summary})`);
      for (const f of fs) console.log(line(f));
    }
  }
  const n = results.reduce((a, r) => a + r.targets.length, 0);
  console.log(`check-config: ${plural(n, "config")} in ${plural(results.length, "file")}: ${plural(errors, "error")}, ${plural(count(all, "warning"), "warning")}`);
  return errors ? 1 : 0;
}

function usage(problem) {
  if (problem) console.error(`check-config: ${problem}`);
  console.error("usage: node tools/checks/check-config.mjs [--type envoy.config.listener.v3.Listener] [--json] FILE|DIR...");
  return problem ? 2 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) process.exitCode = main(process.argv.slice(2));

#!/usr/bin/env node
// make check-abi: would Envoy 1.30–1.36 link these proxy-wasm modules? See tools/checks/README.md.
// Usage: node tools/checks/check-abi.mjs [--envoy 1.30] [--json] FILE.wasm...
// Exit: 0 no errors (warnings and notes allowed), 1 errors, 2 usage or unreadable file.
import { readFileSync } from "node:fs";
import { checkModule, formatReport, normalizeEnvoy, TABLE } from "./abi/check.mjs";

function main(argv) {
  let envoy = TABLE.envoyVersions[0];
  let json = false;
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") json = true;
    else if (a === "--envoy") {
      envoy = normalizeEnvoy(argv[++i]);
      if (!envoy) return usage(`--envoy wants one of ${TABLE.envoyVersions.join(", ")}`);
    } else if (a === "-h" || a === "--help") return usage();
    else if (a.startsWith("-")) return usage(`unknown option ${a}`);
    else files.push(a);
  }
  if (files.length === 0) return usage("no module given");
  let failed = false;
  const reports = [];
  for (const file of files) {
    let bytes;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      console.error(`check-abi: ${file}: ${e.message}`);
      return 2;
    }
    const r = checkModule(new Uint8Array(bytes), { envoy });
    if (r.findings.some((f) => f.severity === "error")) failed = true;
    reports.push({ file, ...r });
    if (!json) console.log(formatReport(file, r));
  }
  if (json) console.log(JSON.stringify({ ok: !failed, envoy, modules: reports }, null, 2));
  return failed ? 1 : 0;
}

function usage(problem) {
  if (problem) console.error(`check-abi: ${problem}`);
  console.error("usage: node tools/checks/check-abi.mjs [--envoy 1.30..1.36] [--json] FILE.wasm...");
  return problem ? 2 : 0;
}

process.exitCode = main(process.argv.slice(2));
